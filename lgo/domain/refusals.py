"""Typed refusal reasons the counter can show, and the override a pharmacist may record (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RefusalCode(StrEnum):
    FIRST_DELIVERY_TOO_LATE = "first_delivery_too_late"
    TREATMENT_LIMIT_PASSED = "treatment_limit_passed"
    NOT_RENEWABLE = "not_renewable"
    NOTHING_LEFT = "nothing_left"
    QUANTITY_EXCEEDS_REMAINING = "quantity_exceeds_remaining"
    PER_DELIVERY_CAP_EXCEEDED = "per_delivery_cap_exceeded"
    CONTROLLED_DURATION_EXCEEDED = "controlled_duration_exceeded"
    PRESENTED_LATE_REDUCED = "presented_late_reduced"
    FRACTION_EXCEEDED = "fraction_exceeded"
    OVERLAP = "overlap"
    NON_SUBSTITUTABLE = "non_substitutable"
    NOT_SAME_GENERIC_GROUP = "not_same_generic_group"
    SUBSTITUTION_RECORD_INCOMPLETE = "substitution_record_incomplete"
    MTE_PH_NOT_MTE = "mte_ph_not_mte"
    EXCEPTIONAL_NOT_ALLOWED = "exceptional_not_allowed"
    UNIT_DISPENSING_NOT_ALLOWED = "unit_dispensing_not_allowed"
    UNIT_DISPENSING_MIXED_LOTS = "unit_dispensing_mixed_lots"
    MODIFICATION_NEEDS_AGREEMENT = "modification_needs_agreement"
    NOT_DISPENSED_NEEDS_REASON = "not_dispensed_needs_reason"
    MISSING_INTERVENTION = "missing_intervention"
    DUPLICATE_INTERVENTION = "duplicate_intervention"
    UNKNOWN_LINE = "unknown_line"


MESSAGES_FR: dict[RefusalCode, str] = {
    RefusalCode.FIRST_DELIVERY_TOO_LATE: (
        "Première délivrance impossible : ordonnance de plus de 3 mois (liste I/II)."
    ),
    RefusalCode.TREATMENT_LIMIT_PASSED: "Délivrance impossible au-delà de 12 mois de traitement.",
    RefusalCode.NOT_RENEWABLE: "Cette ligne n'est pas renouvelable.",
    RefusalCode.NOTHING_LEFT: "Toute la quantité prescrite a déjà été délivrée.",
    RefusalCode.QUANTITY_EXCEEDS_REMAINING: "Quantité supérieure au reste à délivrer.",
    RefusalCode.PER_DELIVERY_CAP_EXCEEDED: "Quantité supérieure au maximum par délivrance.",
    RefusalCode.CONTROLLED_DURATION_EXCEEDED: (
        "Durée supérieure au maximum autorisé pour ce stupéfiant ou assimilé."
    ),
    RefusalCode.PRESENTED_LATE_REDUCED: (
        "Ordonnance présentée après 3 jours : la durée délivrable est réduite."
    ),
    RefusalCode.FRACTION_EXCEEDED: "Durée supérieure à la fraction autorisée.",
    RefusalCode.OVERLAP: "Chevauchement avec une période déjà couverte sans mention expresse.",
    RefusalCode.NON_SUBSTITUTABLE: "Ligne non substituable (mention justifiée).",
    RefusalCode.NOT_SAME_GENERIC_GROUP: "Le produit délivré n'est pas du même groupe générique.",
    RefusalCode.SUBSTITUTION_RECORD_INCOMPLETE: (
        "Substitution : nom, forme et nombre d'unités délivrés obligatoires."
    ),
    RefusalCode.MTE_PH_NOT_MTE: "La mention MTE-PH ne vaut que pour une molécule à marge étroite.",
    RefusalCode.EXCEPTIONAL_NOT_ALLOWED: "Dispensation exceptionnelle impossible pour cette ligne.",
    RefusalCode.UNIT_DISPENSING_NOT_ALLOWED: (
        "Dispensation à l'unité non autorisée pour ce produit."
    ),
    RefusalCode.UNIT_DISPENSING_MIXED_LOTS: (
        "Dispensation à l'unité : les lots ne se mélangent pas."
    ),
    RefusalCode.MODIFICATION_NEEDS_AGREEMENT: (
        "Modification : accord du prescripteur (date) et motif obligatoires."
    ),
    RefusalCode.NOT_DISPENSED_NEEDS_REASON: "Non-délivrance : motif obligatoire.",
    RefusalCode.MISSING_INTERVENTION: "Chaque ligne doit recevoir une intervention.",
    RefusalCode.DUPLICATE_INTERVENTION: "Une seule intervention par ligne.",
    RefusalCode.UNKNOWN_LINE: "Ligne inconnue sur cette ordonnance.",
}

# Refusals the pharmacist may lift with a recorded reason and their identity (domain.md §9 item 9).
OVERRIDABLE: frozenset[RefusalCode] = frozenset({RefusalCode.FIRST_DELIVERY_TOO_LATE})


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    line_no: int | None = None

    @property
    def message(self) -> str:
        return MESSAGES_FR[self.code]

    @property
    def overridable(self) -> bool:
        return self.code in OVERRIDABLE


@dataclass(frozen=True)
class Override:
    """A pharmacist's decision to lift an overridable refusal: always reason + identity."""

    code: RefusalCode
    reason: str
    pharmacist_rpps: str

    def __post_init__(self) -> None:
        if not self.reason.strip() or not self.pharmacist_rpps.strip():
            raise ValueError("an override needs a reason and the pharmacist's identity")
        if self.code not in OVERRIDABLE:
            raise ValueError("this refusal cannot be overridden")
