"""INSi (SESAM-Vitale, restricted): the elements of the INSi specification lgo relies on.

``contracts/insi/profile.json`` is the reviewed list and docs/contracts.md says what the real
specification supplies. RESTRICTED values are taken from the INSi specification as understood, not
checked against its text; the PLACEHOLDER is invented.
"""

from typing import Final

# RESTRICTED: the SIRAM context headers (structure context, professional context).
CTXBAM: Final = "urn:siram:bam:ctxbam"
CTXLPS: Final = "urn:siram:lps:ctxlps"
# PLACEHOLDER: the caller assertion of the INSi specification (a signed assertion of the CPS holder).
ASSERTION_PS: Final = "urn:lgo:insi:assertion-ps"
# RESTRICTED: the namespaces of the two searches and of their result, and the SIRAM namespace.
REC_SANS: Final = "http://www.cnamts.fr/INSiRecSans"
REC_VIT: Final = "http://www.cnamts.fr/INSiRecVit"
RESULT: Final = "http://www.cnamts.fr/INSiResultat"
SIRAM: Final = "urn:siram"
# RESTRICTED: the WS-Addressing actions of the two searches.
ACTION_TRAITS: Final = "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecTraitsIdentite"
ACTION_VITALE: Final = "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecCarteVitale"
