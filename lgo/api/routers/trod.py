"""``/v1/trod``: rapid tests (TROD) at the counter, the antibiotic under the national protocol, the
referral letter.

- ``POST /v1/trod`` (pharmacist session, ``Idempotency-Key``): record a test with its kit, readings
  and the questionnaire; the answer says what comes next (``protocol.next``: ``dispense``,
  ``refer`` or ``none``) and the regimens the protocol allows. The BIO-TROD document goes to the DMP
  when the patient's INS is qualified.
- ``POST /v1/trod/{id}/dispensation`` (pharmacist session): the antibiotic, once per test, recorded
  in the ordonnancier with the pharmacist as prescriber.
- ``GET /v1/trod/{id}/referral``: the printable letter to a doctor (HTML).
- ``GET /v1/trod?patient=&from=&to=&test=``, ``GET /v1/trod/{id}``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lgo.api.contract import answers, problem_responses
from lgo.api.deps import CounterDep, PharmacistDep, TrodDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.routers.documents import HTML_HEADERS
from lgo.api.routers.vaccinations import DocumentRequestIn, IdempotencyHeader, actor_of
from lgo.api.schemas import view_of
from lgo.api.schemas.dispensations import Dispensation
from lgo.api.schemas.trod import TrodView
from lgo.core.errors import InvalidInput
from lgo.domain.trod import Allergy, Exclusion, Reading, TrodTest
from lgo.services.dispensing import ProfessionalContext, request_fingerprint
from lgo.services.dispensing_errors import DispensingRefused, IdempotencyKeyMissing, PatientNotFound
from lgo.services.documents import MssNotConfigured, MssRecipientInvalid
from lgo.services.legal_record import LegalRecordIncomplete
from lgo.services.missions_common import (
    ActNotFound,
    DocumentAlreadyProduced,
    MissionKeyReused,
    MissionPatientNotFound,
)
from lgo.services.sessions import ProfessionalSession
from lgo.services.trod import (
    Criteria,
    Kit,
    ProtocolAlreadyDispensed,
    ProtocolDispenseInput,
    ProtocolNotApplicable,
    TrodInput,
    TrodKitExpired,
)
from lgo.services.trod import TrodView as RecordedTest

router = APIRouter(tags=["TROD"], dependencies=[Depends(require_counter)], route_class=CounterRoute)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KitIn(_In):
    manufacturer: str = Field(min_length=1, max_length=100, description="Fabricant du test")
    reference: str = Field(min_length=1, max_length=64, description="Référence du test")
    lot: str = Field(min_length=1, max_length=20, description="Numéro de lot du kit")
    expiry: date | None = Field(None, description="Date de péremption du kit")


class CriteriaIn(_In):
    temperature_c: Decimal | None = Field(None, ge=34, le=43, description="Température (°C)")
    no_cough: bool = Field(False, description="Absence de toux (Mac Isaac)")
    tender_nodes: bool = Field(False, description="Adénopathies cervicales sensibles (Mac Isaac)")
    tonsil_swelling: bool = Field(False, description="Amygdales augmentées ou exsudat (Mac Isaac)")
    exclusions: list[Exclusion] = Field(
        default_factory=list, max_length=20, description="Critères d'exclusion relevés"
    )
    previous_episodes_12_months: int = Field(
        0, ge=0, le=50, description="Cystites dans les 12 derniers mois"
    )
    allergy: Allergy = Field(Allergy.NONE, description="Allergie aux pénicillines / bêtalactamines")
    weight_kg: Decimal | None = Field(None, gt=0, le=300, description="Poids (dose de l'enfant)")


class TrodIn(_In):
    patient_id: str = Field(min_length=1, max_length=36, description="Patient testé")
    test: TrodTest = Field(description="angine, cystite, covid-19 ou grippe")
    performed_at: datetime | None = Field(None, description="Heure du test (maintenant)")
    kit: KitIn
    readings: dict[str, Reading] = Field(
        min_length=1,
        max_length=4,
        description="Résultat par analyte : streptocoque-a ; leucocytes et nitrites ; …",
    )
    criteria: CriteriaIn = Field(default_factory=CriteriaIn)
    to_dmp: bool = Field(True, description="Verser le résultat au DMP (INS qualifiée seulement)")
    mss_recipient: str | None = Field(
        None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Adresse MSSanté du médecin du patient",
    )

    @model_validator(mode="after")
    def _aware(self) -> TrodIn:
        if self.performed_at is not None and self.performed_at.tzinfo is None:
            raise ValueError("heure du test avec fuseau horaire attendue")
        return self


class ProtocolDispensationIn(_In):
    regimen: str = Field(min_length=1, max_length=32, description="Traitement du protocole choisi")
    cip13: str = Field(pattern=r"^\d{13}$", description="CIP13 de la boîte délivrée")
    unit_mg: Decimal | None = Field(
        None, gt=0, le=5000, description="Dosage d'une unité (mg), si le nom ne le dit pas"
    )
    patient_address: str = Field(
        "", max_length=300, description="Adresse du patient (ordonnancier, art. R.5132-10)"
    )


def _context(session: ProfessionalSession, counter: str) -> ProfessionalContext:
    """The CPS situation stored on the protocol dispensation, as on any other."""
    identity = session.identity
    return ProfessionalContext(
        national_id=identity.national_id,
        rpps=identity.rpps,
        structure_id=identity.structure_id,
        session_kind=session.kind.value,
        session_id=session.id,
        counter_name=counter,
    )


@router.post(
    "/v1/trod",
    status_code=201,
    summary="Enregistrer un test rapide (TROD)",
    **answers(
        TrodView,
        IdempotencyKeyMissing,
        MissionKeyReused,
        MissionPatientNotFound,
        InvalidInput,
        TrodKitExpired,
        MssNotConfigured,
        MssRecipientInvalid,
    ),
)
def record_trod(
    body: TrodIn,
    trod: TrodDep,
    counter: CounterDep,
    session: PharmacistDep,
    response: Response,
    idempotency_key: IdempotencyHeader = None,
) -> TrodView:
    if not idempotency_key:
        raise IdempotencyKeyMissing()
    c = body.criteria
    data = TrodInput(
        patient_id=body.patient_id,
        test=body.test,
        performed_at=body.performed_at,
        kit=Kit(body.kit.manufacturer, body.kit.reference, body.kit.lot, body.kit.expiry),
        readings=dict(body.readings),
        criteria=Criteria(
            c.temperature_c,
            c.no_cough,
            c.tender_nodes,
            c.tonsil_swelling,
            frozenset(c.exclusions),
            c.previous_episodes_12_months,
            c.allergy,
            c.weight_kg,
        ),
        to_dmp=body.to_dmp,
        mss_recipient=body.mss_recipient,
        fingerprint=request_fingerprint(body.model_dump(mode="json")),
    )
    status, view, replayed = trod.record(idempotency_key, data, actor_of(session, counter.name))
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.status_code = status
    return _view(view)


@router.post(
    "/v1/trod/{trod_id}/dispensation",
    status_code=201,
    summary="Délivrer l'antibiotique du protocole (pharmacien prescripteur)",
    **answers(
        Dispensation,
        ActNotFound,
        ProtocolNotApplicable,
        ProtocolAlreadyDispensed,
        InvalidInput,
        DispensingRefused,
        LegalRecordIncomplete,
        PatientNotFound,
    ),
)
def dispense_under_protocol(
    trod_id: uuid.UUID,
    body: ProtocolDispensationIn,
    trod: TrodDep,
    counter: CounterDep,
    session: PharmacistDep,
) -> JSONResponse:
    data = ProtocolDispenseInput(body.regimen, body.cip13, body.unit_mg, body.patient_address)
    result = trod.dispense(
        str(trod_id), data, actor_of(session, counter.name), _context(session, counter.name)
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.post(
    "/v1/trod/{trod_id}/document",
    status_code=201,
    summary="Produire le document BIO-TROD d'un test enregistré sans document",
    **answers(
        TrodView, ActNotFound, DocumentAlreadyProduced, MssNotConfigured, MssRecipientInvalid
    ),
)
def produce_document(
    trod_id: uuid.UUID,
    body: DocumentRequestIn,
    trod: TrodDep,
    counter: CounterDep,
    session: PharmacistDep,
) -> TrodView:
    documented = trod.document(
        str(trod_id),
        actor_of(session, counter.name),
        to_dmp=body.to_dmp,
        mss_recipient=body.mss_recipient,
    )
    return _view(documented)


@router.get(
    "/v1/trod/{trod_id}/referral",
    response_class=HTMLResponse,
    summary="Lettre d'orientation vers un médecin (à imprimer)",
    responses=problem_responses(ActNotFound),
)
def referral(trod_id: uuid.UUID, trod: TrodDep) -> HTMLResponse:
    return HTMLResponse(trod.referral(str(trod_id)), headers=HTML_HEADERS)


@router.get("/v1/trod", summary="Tests rapides réalisés (recherche)", **answers(list[TrodView]))
def search_trod(
    trod: TrodDep,
    patient: Annotated[str | None, Query(max_length=36)] = None,
    start: Annotated[date | None, Query(alias="from", description="Premier jour (inclus)")] = None,
    end: Annotated[date | None, Query(alias="to", description="Dernier jour (inclus)")] = None,
    test: TrodTest | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[TrodView]:
    found = trod.search(patient_id=patient, start=start, end=end, test=test, limit=limit)
    return [_view(recorded) for recorded in found]


@router.get("/v1/trod/{trod_id}", summary="Un test rapide", **answers(TrodView, ActNotFound))
def read_trod(trod_id: uuid.UUID, trod: TrodDep) -> TrodView:
    return _view(trod.get(str(trod_id)))


def _view(recorded: RecordedTest) -> TrodView:
    return view_of(TrodView, recorded, omit_none=("document_problem",))
