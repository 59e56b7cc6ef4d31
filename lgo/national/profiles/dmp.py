"""DMP (restricted integration guide over public IHE XDS.b): what lgo had to invent or assume.

``contracts/dmp/profile.json`` is the reviewed list and docs/contracts.md says what the real
specification supplies.
"""

from typing import Final

# PLACEHOLDER: the caller context header (author idNat_PS, structure idNat_Struct), lgo's stand-in
# for the VIHF SAML assertion of the DMP integration guide.
CTX: Final = "urn:lgo:hwsim:dmp-context"
# PLACEHOLDER: the namespace of lgo's signed VIHF stand-in (the real VIHF is a SAML 2 assertion).
VIHF: Final = "urn:lgo:dmp:vihf"
