"""``/v1/prescriptions/{id}``: fetch an e-prescription, verify it for today, propose packs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from lgo.api.contract import NATIONAL_ERRORS, answers
from lgo.api.deps import ContainerDep, PharmacistDep, require_counter
from lgo.api.schemas.prescriptions import PrescriptionView
from lgo.domain.dispensing import LineHistory
from lgo.national.errors import PrescriptionCancelled, PrescriptionUnknown
from lgo.services.dispensing_errors import EPrescriptionDown
from lgo.services.dispensing_part import part_of
from lgo.services.line_view import line_view
from lgo.services.local_time import local_date
from lgo.services.prescriptions import patient_view, prescriber_view
from lgo.services.psc_part import prescriber_checker_of
from lgo.store.types import utcnow

router = APIRouter(tags=["prescriptions"], dependencies=[Depends(require_counter)])


@router.get(
    "/v1/prescriptions/{prescription_id}",
    summary="Lire et vérifier une ordonnance",
    **answers(
        PrescriptionView,
        PrescriptionUnknown,
        PrescriptionCancelled,
        EPrescriptionDown,
        *NATIONAL_ERRORS,
    ),
)
def read_prescription(
    container: ContainerDep,
    session: PharmacistDep,
    prescription_id: str = Path(pattern=r"^[0-9A-Za-z]{10,40}$"),
    patient_id: str | None = Query(
        None, max_length=36,
        description="Patient au comptoir : les stupéfiants déjà couverts pour lui (chevauchement) "
        "comptent alors dans « délivrable aujourd'hui ».",
    ),
) -> dict[str, Any]:
    view = part_of(container).service.load_prescription(
        prescription_id.upper(), author_rpps=session.identity.rpps
    )
    rx = view.prescription
    today = local_date(utcnow())
    covered = part_of(container).service.covered_periods(rx, patient_id)
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
            line_view(rx, line, view.histories.get(line.line_no, LineHistory()), today,
                      covered.get(line.line_no, ()))
            for line in rx.lines
        ],
    }
