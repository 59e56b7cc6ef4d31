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

# Why a line is capped at ``{days}`` days today (the view's reasons when the line is allowed).
LIMIT_MESSAGES_FR: dict[RefusalCode, str] = {
    RefusalCode.QUANTITY_EXCEEDS_REMAINING: "Reste à délivrer sur la ligne : {days} jours.",
    RefusalCode.PER_DELIVERY_CAP_EXCEEDED: (
        "Au plus {days} jours par délivrance selon le conditionnement (3 mois pour un grand "
        "conditionnement, 12 semaines pour un contraceptif)."
    ),
    RefusalCode.CONTROLLED_DURATION_EXCEEDED: "Stupéfiant ou assimilé : au plus {days} jours.",
    RefusalCode.FRACTION_EXCEEDED: "Délivrance fractionnée : {days} jours par fraction.",
    RefusalCode.PRESENTED_LATE_REDUCED: (
        "Présentée après le délai de 3 jours : délivrable seulement pour la durée restant à "
        "courir, {days} jours."
    ),
    RefusalCode.OVERLAP: "Une période est déjà couverte pour ce patient dans {days} jours.",
}

# Article of the Code de la santé publique behind each rule (docs/dispensing.md, "Règles appliquées
# avant la délivrance"). None: a rule of the e-prescription execution report, not of the Code.
ARTICLES: dict[RefusalCode, str | None] = {
    RefusalCode.FIRST_DELIVERY_TOO_LATE: "R.5132-22",
    RefusalCode.TREATMENT_LIMIT_PASSED: "R.5132-21",
    RefusalCode.NOT_RENEWABLE: "R.5132-22",
    RefusalCode.NOTHING_LEFT: "R.5123-2",
    RefusalCode.QUANTITY_EXCEEDS_REMAINING: "R.5123-2",
    RefusalCode.PER_DELIVERY_CAP_EXCEEDED: "R.5123-2",
    RefusalCode.CONTROLLED_DURATION_EXCEEDED: "R.5132-30",
    RefusalCode.PRESENTED_LATE_REDUCED: "R.5132-33",
    RefusalCode.FRACTION_EXCEEDED: "R.5132-30",
    RefusalCode.OVERLAP: "R.5132-33",
    RefusalCode.NON_SUBSTITUTABLE: "L.5125-23",
    RefusalCode.NOT_SAME_GENERIC_GROUP: "L.5125-23",
    RefusalCode.SUBSTITUTION_RECORD_INCOMPLETE: "L.5125-23",
    RefusalCode.MTE_PH_NOT_MTE: "L.5125-23",
    RefusalCode.EXCEPTIONAL_NOT_ALLOWED: "L.5125-23-1",
    RefusalCode.UNIT_DISPENSING_NOT_ALLOWED: "L.5123-8",
    RefusalCode.UNIT_DISPENSING_MIXED_LOTS: "L.5123-8",
}

# Refusals the pharmacist may lift with a recorded reason and their CPS identity. From the law:
# only the per-delivery quantity of R.5123-2, a condition of reimbursement that the caisse may
# waive (prior agreement, e.g. a long stay abroad). The 3-month first delivery and the 12-month
# limit (R.5132-21/22), renewals, the stupéfiant rules (R.5132-30, R.5132-33) and a justified
# "non substituable" (L.5125-23) have no exception the pharmacist may apply: never overridable.
OVERRIDABLE: frozenset[RefusalCode] = frozenset({RefusalCode.PER_DELIVERY_CAP_EXCEEDED})


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    line_no: int | None = None
    # What may still be handed over today on the line (days), when the rule caps a quantity.
    max_days: int | None = None

    @property
    def message(self) -> str:
        text = MESSAGES_FR[self.code]
        if self.max_days is None:
            return text
        if self.max_days <= 0:
            return f"{text} Rien n'est délivrable aujourd'hui sur cette ligne."
        plural = "s" if self.max_days > 1 else ""
        return f"{text} Délivrable aujourd'hui : {self.max_days} jour{plural} au plus."

    @property
    def article(self) -> str | None:
        return ARTICLES.get(self.code)

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
