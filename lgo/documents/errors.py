"""Typed errors of the document builders (CDA R2) and of the document use cases.

Titles are French (the pharmacist reads them); details never carry identities or health data.
"""

from __future__ import annotations

from lgo.core.errors import Conflict, InvalidInput, LgoError, NotFound, Unavailable


class InsNotQualifiedError(Conflict):
    """The patient's identity is not qualified: its INS may not leave the pharmacy."""

    slug = "ins-not-qualified"
    title = (
        "Identité du patient non qualifiée : le document ne peut pas être partagé "
        "(qualifier l'INS avant l'envoi)"
    )


class CdaInvalidError(LgoError):
    """A CDA document we built does not validate against the schema (a bug on our side)."""

    slug = "cda-invalid"
    status = 500
    title = "Document CDA non conforme au schéma : envoi bloqué"


class CdaNonConformantError(LgoError):
    """A document fails its CI-SIS volet (schematron) or the CDA schema: it is not sent.

    ``failed_rules`` lists the failed rules in French (each starts with the rule id).
    """

    slug = "cda-non-conformant"
    status = 422
    title = "Document non conforme au volet CI-SIS : envoi bloqué"


class CisisKitUnusable(Unavailable):
    """The CI-SIS kit is configured but cannot run: documents are not sent unchecked."""

    slug = "cisis-kit-unusable"
    title = "Kit de conformité CI-SIS configuré mais inutilisable : envoi suspendu"


class DocumentInputError(InvalidInput):
    """The data given to build a document is incomplete or inconsistent."""

    slug = "document-input-invalid"
    title = "Données du document incomplètes ou invalides"


class DocumentNotFoundError(NotFound):
    slug = "document-not-found"
    title = "Document introuvable"
