"""Why a scanned code was not recognised, in French for the pharmacist (the ``reason`` code stays
the stable machine value; the classifier's GS1 details are English: they are translated here)."""

from __future__ import annotations

import re
from typing import Final

_REASONS: Final = {
    "ean13_bad_check_digit": "code-barres EAN-13 à la clé de contrôle fausse (boîte non reconnue)",
    "ean13_not_cip": "code-barres EAN-13 qui n'est pas un code CIP (340…)",
    "product_code_without_ai": "code produit sans identifiant GS1 : ni CIP13, ni numéro d'ordonnance",
    "unrecognised": "ni numéro d'ordonnance, ni boîte, ni apCV",
    "eprescription_wrong_symbology": "numéro d'ordonnance dans un type de code-barres inattendu",
    "rpps_number": "numéro RPPS (code-barres du prescripteur), pas une ordonnance",
    "rpps_bad_key": "numéro à 11 chiffres à la clé fausse",
    "prescriber_code128": "code-barres du prescripteur (Code 128), pas une ordonnance",
    "control_characters": "caractères de contrôle inattendus",
    "empty": "code vide",
    "too_long": "code trop long",
}
_GS1_DETAILS: Final = {
    "GTIN check digit is wrong": "clé de contrôle du GTIN fausse",
    "expiry is not YYMMDD": "date de péremption illisible (AAMMJJ attendu)",
    "expiry month out of range": "mois de péremption impossible",
    "expiry day out of range": "jour de péremption impossible",
    "unknown application identifier": "identifiant d'application (AI) inconnu",
    "empty element string": "code vide",
    "control characters in element string": "caractères de contrôle inattendus",
    "repeated application identifier": "identifiant d'application (AI) répété",
    "no GTIN (AI 01)": "pas de GTIN (AI 01)",
}
_AI_SHORT: Final = re.compile(r"^AI (\d+) is too short$")
_AI_LENGTH: Final = re.compile(r"^AI (\d+) has a bad length$")


def _gs1_detail(detail: str) -> str:
    if known := _GS1_DETAILS.get(detail):
        return known
    if match := _AI_SHORT.match(detail):
        return f"AI {match.group(1)} tronqué"
    if match := _AI_LENGTH.match(detail):
        return f"AI {match.group(1)} de longueur incorrecte"
    return "données mal formées"


def reason_fr(reason: str | None) -> str | None:
    """The French sentence of a classifier reason (None when the code was recognised)."""
    if reason is None:
        return None
    if reason.startswith("gs1_invalid:"):
        return f"DataMatrix GS1 invalide : {_gs1_detail(reason.removeprefix('gs1_invalid:'))}"
    if reason.startswith("ins_"):
        return "DataMatrix INS illisible"
    if reason.startswith("internal:"):
        return "erreur interne de lecture du code"
    return _REASONS.get(reason, "code non reconnu")
