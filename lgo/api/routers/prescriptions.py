"""``/v1/prescriptions/{id}``: fetch an e-prescription, verify it for today, propose packs."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Path

from lgo.api.deps import ContainerDep, PharmacistDep, require_counter
from lgo.domain.dispensing import LineHistory, delivery_cap_days, units_for
from lgo.domain.prescription import Prescription, PrescriptionLine
from lgo.domain.products import RegulatoryList, cheapest_pack_set
from lgo.services.dispensing_part import part_of
from lgo.services.local_time import local_date
from lgo.services.prescriptions import patient_view, prescriber_view
from lgo.services.psc_part import prescriber_checker_of
from lgo.store.types import utcnow

router = APIRouter(tags=["prescriptions"], dependencies=[Depends(require_counter)])


def _line_view(
    prescription: Prescription, line: PrescriptionLine, history: LineHistory, today: date
) -> dict[str, Any]:
    remaining = max(line.treatment_days - history.days_dispensed, 0)
    listed = line.regulatory_list in (RegulatoryList.LIST_I, RegulatoryList.LIST_II)
    warnings = []
    if listed and history.deliveries == 0 and today > prescription.first_delivery_deadline:
        warnings.append("first_delivery_too_late")
    if line.regulatory_list.goes_to_ordonnancier and today > prescription.treatment_limit:
        warnings.append("treatment_limit_passed")
    if remaining == 0:
        warnings.append("nothing_left")
    proposal = None
    days = min(remaining, delivery_cap_days(line, None))
    if line.product.packs and days > 0:
        packs = cheapest_pack_set(line.product.packs, units_for(line, days))
        proposal = {
            "days": days,
            "price_cents": packs.price_cents,
            "packs": [{"cip13": p.pack.cip13, "units": p.pack.units, "count": p.count}
                      for p in packs.lines],
        }  # fmt: skip
    return {
        "line_no": line.line_no,
        "designation": line.product.name,
        "product_code": line.product.code,
        "regulatory_list": line.regulatory_list.value,
        "units_per_day": str(line.units_per_day),
        "duration_days": line.duration_days,
        "renewals": line.renewals,
        "substitutable": line.substitutable,
        "non_substitution_reason": (
            line.non_substitution_reason.value if line.non_substitution_reason else None
        ),
        "days_dispensed": history.days_dispensed,
        "deliveries": history.deliveries,
        "remaining_days": remaining,
        "warnings": warnings,
        "proposal": proposal,
    }


@router.get("/v1/prescriptions/{prescription_id}", summary="Lire et vérifier une ordonnance")
def read_prescription(
    container: ContainerDep,
    session: PharmacistDep,
    prescription_id: str = Path(pattern=r"^[0-9A-Za-z]{10,40}$"),
) -> dict[str, Any]:
    view = part_of(container).service.load_prescription(
        prescription_id.upper(), author_rpps=session.identity.rpps
    )
    rx = view.prescription
    today = local_date(utcnow())
    # Annuaire Santé: an inactive, unknown or unverifiable prescriber is a warning the pharmacist
    # acknowledges at commit (POST /v1/dispensations, prescriber_acknowledged).
    prescriber = prescriber_checker_of(container).check(
        rx.prescriber_rpps, author_rpps=session.identity.rpps
    )
    return {
        "prescription_id": rx.prescription_id,
        "source": rx.source.value,
        "prescribed_on": rx.prescribed_on.isoformat(),
        "prescriber_rpps": rx.prescriber_rpps,
        "prescriber": prescriber_view(rx, prescriber.public()),
        "patient": patient_view(rx.patient),
        "first_delivery_deadline": rx.first_delivery_deadline.isoformat(),
        "treatment_limit": rx.treatment_limit.isoformat(),
        "degraded": view.degraded,
        "lines": [
            _line_view(rx, line, view.histories.get(line.line_no, LineHistory()), today)
            for line in rx.lines
        ],
    }
