"""``/v1/prescriptions/{id}``: fetch an e-prescription, verify it for today, propose packs."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lgo.api.contract import NATIONAL_ERRORS, answers
from lgo.api.deps import PharmacistDep, PrescriptionsDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas.prescriptions import CandidatesMatch, PrescriptionView
from lgo.national.errors import PrescriptionCancelled, PrescriptionUnknown
from lgo.services.dispensing_errors import EPrescriptionDown, PatientNotFound, PrescriptionNotLoaded
from lgo.services.prescription_patient import card_traits
from lgo.services.prescription_reading import CandidateMatches, PrescriptionReading

router = APIRouter(
    tags=["prescriptions"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)


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
    prescriptions: PrescriptionsDep,
    session: PharmacistDep,
    prescription_id: str = Path(pattern=r"^[0-9A-Za-z]{10,40}$"),
    patient_id: str | None = Query(
        None,
        max_length=36,
        description="Patient au comptoir : les stupéfiants déjà couverts pour lui (chevauchement) "
        "comptent alors dans « délivrable aujourd'hui », et `patient_match` dit s'il est le "
        "patient de l'ordonnance.",
    ),
) -> PrescriptionReading:
    return prescriptions.read(
        prescription_id.upper(), author_rpps=session.identity.rpps, patient_id=patient_id
    )


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
    prescriptions: PrescriptionsDep,
    _session: PharmacistDep,
    prescription_id: str = Path(pattern=r"^[0-9A-Za-z]{10,40}$"),
) -> CandidateMatches:
    # The commit's rule on the copy the commit checks: the page offers the switch with it.
    traits = [
        card_traits(c.family_name, c.given_names, c.birth_date, c.sex, c.ins, c.ins_oid)
        for c in body.candidates
    ]
    return prescriptions.match_candidates(prescription_id, traits)
