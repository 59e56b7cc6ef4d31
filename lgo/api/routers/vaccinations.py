"""``/v1/vaccinations``: record a vaccination given at the counter, check eligibility, search the
register of acts.

``POST`` needs an open pharmacist session (the vaccinating pharmacist) and an ``Idempotency-Key``:
the same key with the same body answers the first answer again (``Idempotent-Replayed: true``).
The dose is given by its GS1 DataMatrix, typed or scanned (``datamatrix``), or by the id of a scan
the daemon received (``scan_id``). An expired dose, an ineligible patient or an unreadable code is
a 422 problem and nothing is written. The note (VAC-NOTE) goes to the DMP when the patient's INS is
qualified, and to ``mss_recipient`` (the patient's doctor) when given.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lgo.api.contract import answers
from lgo.api.deps import CounterDep, PharmacistDep, VaccinationsDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas import view_of
from lgo.api.schemas.vaccinations import VaccinationEligibility, VaccinationView, VaccineInfo
from lgo.documents.models import VaccinationAct, VaccinationRoute, VaccinationSite
from lgo.domain.vaccination import Vaccine
from lgo.services.dispensing import request_fingerprint
from lgo.services.dispensing_errors import IdempotencyKeyMissing
from lgo.services.documents import MssNotConfigured, MssRecipientInvalid, author_from_session
from lgo.services.missions_common import (
    ActNotFound,
    Actor,
    DocumentAlreadyProduced,
    MissionKeyReused,
    MissionPatientNotFound,
)
from lgo.services.sessions import ProfessionalSession
from lgo.services.vaccinations import (
    VaccinationInput,
    VaccinationNotEligible,
    VaccineCodeInvalid,
    VaccineExpired,
)
from lgo.services.vaccinations import (
    VaccinationView as RecordedVaccination,
)

router = APIRouter(
    tags=["vaccinations"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)

IdempotencyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=128, pattern=r"^[\x21-\x7e]{8,128}$")
]


class VaccinationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(min_length=1, max_length=36, description="Patient vacciné")
    vaccine: Vaccine = Field(description="Valence : grippe, covid-19, hpv, dtcap …")
    datamatrix: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="DataMatrix GS1 de la dose tel que lu (GTIN, péremption, lot)",
    )
    scan_id: str | None = Field(None, max_length=36, description="Ou l'id d'un scan reçu")
    administered_at: datetime | None = Field(None, description="Heure de l'injection (maintenant)")
    dose_number: int | None = Field(None, ge=1, le=10, description="Rang de la dose")
    act: VaccinationAct = VaccinationAct.UNSPECIFIED
    route: VaccinationRoute = VaccinationRoute.INTRAMUSCULAR
    site: VaccinationSite | None = None
    immunocompromised: bool = Field(False, description="Personne immunodéprimée (questionnaire)")
    severe_reaction_history: bool = Field(
        False, description="Antécédent de réaction allergique sévère à une vaccination"
    )
    product_label: str | None = Field(None, max_length=200, description="Si hors catalogue")
    cis_code: str | None = Field(None, pattern=r"^\d{8}$", description="Si hors catalogue")
    to_dmp: bool = Field(True, description="Verser la note au DMP (INS qualifiée seulement)")
    mss_recipient: str | None = Field(
        None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Adresse MSSanté du médecin du patient, si le pharmacien l'envoie",
    )

    @model_validator(mode="after")
    def _one_code(self) -> VaccinationIn:
        if (self.datamatrix is None) == (self.scan_id is None):
            raise ValueError("donner le DataMatrix de la dose ou l'id de son scan (un seul)")
        if self.administered_at is not None and self.administered_at.tzinfo is None:
            raise ValueError("heure de l'injection avec fuseau horaire attendue")
        return self


def actor_of(session: ProfessionalSession, counter: str) -> Actor:
    """The acting pharmacist, from the open session (shared with the TROD router)."""
    return Actor(author_from_session(session.identity), session.identity.rpps, session.id, counter)


@router.post(
    "/v1/vaccinations",
    status_code=201,
    summary="Enregistrer une vaccination (une fois par Idempotency-Key)",
    **answers(
        VaccinationView,
        IdempotencyKeyMissing,
        MissionKeyReused,
        MissionPatientNotFound,
        VaccineCodeInvalid,
        VaccineExpired,
        VaccinationNotEligible,
        MssNotConfigured,
        MssRecipientInvalid,
    ),
)
def record_vaccination(
    body: VaccinationIn,
    vaccinations: VaccinationsDep,
    counter: CounterDep,
    session: PharmacistDep,
    response: Response,
    idempotency_key: IdempotencyHeader = None,
) -> VaccinationView:
    if not idempotency_key:
        raise IdempotencyKeyMissing()
    data = VaccinationInput(
        patient_id=body.patient_id,
        vaccine=body.vaccine,
        datamatrix=body.datamatrix,
        scan_id=body.scan_id,
        administered_at=body.administered_at,
        act=body.act,
        route=body.route,
        site=body.site,
        dose_number=body.dose_number,
        immunocompromised=body.immunocompromised,
        severe_reaction_history=body.severe_reaction_history,
        product_label=body.product_label,
        cis_code=body.cis_code,
        to_dmp=body.to_dmp,
        mss_recipient=body.mss_recipient,
        fingerprint=request_fingerprint(body.model_dump(mode="json")),
    )
    result = vaccinations.record(idempotency_key, data, actor_of(session, counter.name))
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.status_code = result.status_code
    return _view(result.body)


class DocumentRequestIn(BaseModel):
    """A document produced after the act (the patient's INS was qualified since, or a crash)."""

    model_config = ConfigDict(extra="forbid")

    to_dmp: bool = Field(True, description="Verser au DMP (INS qualifiée seulement)")
    mss_recipient: str | None = Field(
        None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Adresse MSSanté du médecin du patient",
    )


@router.post(
    "/v1/vaccinations/{vaccination_id}/note",
    status_code=201,
    summary="Produire la note d'une vaccination enregistrée sans note",
    **answers(
        VaccinationView,
        ActNotFound,
        DocumentAlreadyProduced,
        MssNotConfigured,
        MssRecipientInvalid,
    ),
)
def produce_note(
    vaccination_id: uuid.UUID,
    body: DocumentRequestIn,
    vaccinations: VaccinationsDep,
    counter: CounterDep,
    session: PharmacistDep,
) -> VaccinationView:
    noted = vaccinations.note(
        str(vaccination_id),
        actor_of(session, counter.name),
        to_dmp=body.to_dmp,
        mss_recipient=body.mss_recipient,
    )
    return _view(noted)


@router.get(
    "/v1/vaccinations/vaccines",
    summary="Vaccins que le pharmacien peut administrer",
    **answers(list[VaccineInfo]),
)
def vaccines(vaccinations: VaccinationsDep) -> list[VaccineInfo]:
    return [view_of(VaccineInfo, vaccine) for vaccine in vaccinations.vaccines()]


@router.get(
    "/v1/vaccinations/eligibility",
    summary="Le patient peut-il être vacciné par le pharmacien ? (rien n'est enregistré)",
    **answers(VaccinationEligibility, MissionPatientNotFound),
)
def eligibility(
    vaccinations: VaccinationsDep,
    patient: Annotated[str, Query(min_length=1, max_length=36)],
    vaccine: Vaccine,
    immunocompromised: bool = False,
    severe_reaction_history: bool = False,
) -> VaccinationEligibility:
    answer = vaccinations.eligibility(
        patient,
        vaccine,
        immunocompromised=immunocompromised,
        severe_reaction_history=severe_reaction_history,
    )
    return view_of(VaccinationEligibility, answer)


@router.get(
    "/v1/vaccinations",
    summary="Registre des vaccinations (recherche)",
    **answers(list[VaccinationView]),
)
def search_vaccinations(
    vaccinations: VaccinationsDep,
    patient: Annotated[str | None, Query(max_length=36)] = None,
    start: Annotated[date | None, Query(alias="from", description="Premier jour (inclus)")] = None,
    end: Annotated[date | None, Query(alias="to", description="Dernier jour (inclus)")] = None,
    vaccine: Vaccine | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[VaccinationView]:
    found = vaccinations.search(
        patient_id=patient, start=start, end=end, vaccine=vaccine, limit=limit
    )
    return [_view(vaccination) for vaccination in found]


@router.get(
    "/v1/vaccinations/{vaccination_id}",
    summary="Une vaccination",
    **answers(VaccinationView, ActNotFound),
)
def read_vaccination(vaccination_id: uuid.UUID, vaccinations: VaccinationsDep) -> VaccinationView:
    return _view(vaccinations.get(str(vaccination_id)))


def _view(vaccination: RecordedVaccination) -> VaccinationView:
    return view_of(VaccinationView, vaccination, omit_none=("document_problem",))
