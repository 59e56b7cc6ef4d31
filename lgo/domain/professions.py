"""French labels of the profession (TRE_G15) and specialty (TRE_R38) codes a prescriber carries.

Only the codes a pharmacy meets on prescriptions; an unknown code has no label (the code is still
shown). Labels as the nomenclatures of the ANS write them.
"""

from __future__ import annotations

from typing import Final

PROFESSIONS: Final = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
}

SPECIALTIES: Final = {
    "SM04": "Cardiologie et maladies vasculaires",
    "SM15": "Dermatologie et vénéréologie",
    "SM16": "Endocrinologie et métabolisme",
    "SM18": "Gériatrie",
    "SM19": "Gynécologie médicale",
    "SM20": "Gynécologie-obstétrique",
    "SM24": "Gastro-entérologie et hépatologie",
    "SM26": "Qualifié en médecine générale",
    "SM27": "Médecine interne",
    "SM32": "Neurologie",
    "SM38": "Ophtalmologie",
    "SM40": "Pédiatrie",
    "SM41": "Pneumologie",
    "SM42": "Psychiatrie",
    "SM48": "Rhumatologie",
    "SM53": "Spécialiste en médecine générale",
    "SM54": "Médecine générale",
    "SM57": "Allergologie",
    "SM59": "Médecine d'urgence",
    "SCD01": "Orthopédie dento-faciale",
    "SCD02": "Chirurgie orale",
    "SCD03": "Médecine bucco-dentaire",
}


def profession_label(code: str | None) -> str | None:
    return PROFESSIONS.get(code or "")


def specialty_label(code: str | None) -> str | None:
    return SPECIALTIES.get(code or "")
