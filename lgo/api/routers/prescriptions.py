"""``/v1/prescriptions/{id}``: fetch an e-prescription, verify it for today, propose packs."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lgo.api.contract import NATIONAL_ERRORS, answers
from lgo.api.deps import ContainerDep, PharmacistDep, require_counter
from lgo.api.schemas.prescriptions import CandidatesMatch, PrescriptionView
from lgo.domain.dispensing import LineHistory
from lgo.national.errors import PrescriptionCancelled, PrescriptionUnknown
from lgo.services.dispensing_errors import EPrescriptionDown, PatientNotFound, PrescriptionNotLoaded
from lgo.services.dispensing_part import part_of
from lgo.services.line_view import line_view
from lgo.services.local_time import local_date
from lgo.services.prescription_patient import card_traits
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
        PatientNotFound,
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
        "comptent alors dans « délivrable aujourd'hui », et `patient_match` dit s'il est le "
        "patient de l'ordonnance.",
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
        # The commit's own patient rule: the page warns with it, never with a copy of the rule.
        "patient_match": (
            part_of(container).service.patient_match(rx, patient_id) if patient_id else None
        ),
        "first_delivery_deadline": rx.first_delivery_deadline.isoformat(),
        "treatment_limit": rx.treatment_limit.isoformat(),
        "degraded": view.degraded,
        "lines": [
            line_view(rx, line, view.histories.get(line.line_no, LineHistory()), today,
                      covered.get(line.line_no, ()))
            for line in rx.lines
        ],
    }


class Candidate(BaseModel):
    """A beneficiary as the card or the apCV gives it."""

    model_config = ConfigDict(extra="forbid")
    family_name: str = Field(min_length=1, max_length=80)
    given_names: str = Field("", max_length=120)
    birth_date: str = Field(
        pattern=r"^(\d{8}|\d{4}(-\d{2}(-\d{2})?)?)$",
        description="AAAAMMJJ tel que la carte le donne (date lunaire possible) ou AAAA-MM-JJ.",
    )
    sex: Literal["M", "F", "U"] = "U"
    ins: str | None = Field(None, pattern=r"^\d{15}$")
    ins_oid: str | None = Field(None, max_length=64)


class CandidatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidates: list[Candidate] = Field(min_length=1, max_length=20)


@router.post(
    "/v1/prescriptions/{prescription_id}/patient-match",
    summary="Lesquels de ces bénéficiaires (carte, apCV) sont le patient de l'ordonnance ?",
    **answers(CandidatesMatch, PrescriptionNotLoaded),
)
def match_candidates(
    body: CandidatesIn,
    container: ContainerDep,
    _session: PharmacistDep,
    prescription_id: str = Path(pattern=r"^[0-9A-Za-z]{10,40}$"),
) -> dict[str, Any]:
    # The commit's rule on the copy the commit checks: the page offers the switch with it.
    traits = [card_traits(c.family_name, c.given_names, c.birth_date, c.sex, c.ins, c.ins_oid)
              for c in body.candidates]  # fmt: skip
    return {"matches": part_of(container).service.candidates_match(prescription_id, traits)}
