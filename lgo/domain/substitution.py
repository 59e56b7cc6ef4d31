"""Generic substitution rules (CSP L5125-23, arrêté du 12 nov. 2019; domain.md §6.2) (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from lgo.domain.prescription import NonSubstitutionReason, PrescriptionLine
from lgo.domain.products import Product, is_mte
from lgo.domain.refusals import Refusal, RefusalCode

MTE_PH_MENTION = "Non substituable MTE-PH"


@dataclass(frozen=True)
class SubstitutionRecord:
    """What a substitution must record: delivered name, form and unit count (meddispar)."""

    delivered_cip13: str
    delivered_name: str
    delivered_form: str
    delivered_units: int


def substitution_refusals(
    line: PrescriptionLine, delivered: Product, record: SubstitutionRecord
) -> list[Refusal]:
    """Why delivering ``delivered`` instead of the prescribed product is refused (if it is)."""
    refusals: list[Refusal] = []
    if not line.substitutable and line.non_substitution_reason is not None:
        # Only a justified mention binds the pharmacist (since 1 Jan 2020).
        refusals.append(Refusal(RefusalCode.NON_SUBSTITUTABLE, line.line_no))
    group = line.product.generic_group
    if group is None or delivered.generic_group != group:
        refusals.append(Refusal(RefusalCode.NOT_SAME_GENERIC_GROUP, line.line_no))
    if (
        not record.delivered_name.strip()
        or not record.delivered_form.strip()
        or record.delivered_units <= 0
        or not record.delivered_cip13
    ):
        refusals.append(Refusal(RefusalCode.SUBSTITUTION_RECORD_INCOMPLETE, line.line_no))
    return refusals


def unjustified_non_substitution(line: PrescriptionLine) -> bool:
    """A "non substituable" mention without MTE/EFG/CIF: not binding, shown as a warning."""
    return not line.substitutable and line.non_substitution_reason is None


def mte_ph_refusals(line: PrescriptionLine) -> list[Refusal]:
    """The pharmacist may keep an MTE molecule non-substituted ("MTE-PH"), nothing else."""
    if is_mte(line.product.molecule):
        return []
    return [Refusal(RefusalCode.MTE_PH_NOT_MTE, line.line_no)]


def binding_reason(line: PrescriptionLine) -> NonSubstitutionReason | None:
    return None if line.substitutable else line.non_substitution_reason
