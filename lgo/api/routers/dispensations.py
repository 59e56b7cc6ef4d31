"""``/v1/dispensations``: record a dispensation exactly once, read it, list, export as FHIR.

``POST`` needs an open pharmacist session and an ``Idempotency-Key`` header: the same key with the
same body answers the first answer again (``Idempotent-Replayed: true``); the same key with another
body is a 409 problem; two counters on the same line at once → one dispensation, the other a 409.

The two ``POST`` routes are served directly (lgo/api/direct.py): ``_create_directly`` and
``_check_directly`` run what FastAPI's dependency solving would, in its order, then the endpoint.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from lgo.api.contract import NATIONAL_ERRORS, answers
from lgo.api.deps import (
    CounterDep,
    DispensationIntakeDep,
    DispensingDep,
    IdentityDep,
    PharmacistDep,
    db_threads,
    get_dispensation_intake,
    require_counter,
    require_pharmacist,
)
from lgo.api.direct import DirectRoute, served_directly
from lgo.api.schemas.dispensations import Dispensation, DispensationCheck, FhirBundle
from lgo.core.errors import InvalidInput, LgoError
from lgo.domain.dispensing import InterventionKind
from lgo.domain.legal_record import Bearer
from lgo.domain.prescription import NonSubstitutionReason
from lgo.domain.products import RegulatoryList, is_valid_cip13
from lgo.domain.refusals import RefusalCode
from lgo.national.errors import PrescriptionCancelled, PrescriptionUnknown
from lgo.services.dispensation_intake import (
    DispensationCommand,
    LineCommand,
    OverrideCommand,
    PaperCommand,
    PaperLineCommand,
    SubstitutionCommand,
)
from lgo.services.dispensing import (
    CheckOutcome,
    DispensationRecord,
    ProfessionalContext,
    request_fingerprint,
)
from lgo.services.dispensing_errors import (
    DispensationNotFound,
    DispensingRefused,
    EPrescriptionDown,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    LineAlreadyDispensed,
    PatientNotFound,
    PrescriptionNotLoaded,
)
from lgo.services.fhir_export import dispensation_bundle
from lgo.services.legal_record import LegalRecordIncomplete
from lgo.services.local_time import local_date
from lgo.services.prescriber_check import PrescriberNotAcknowledged
from lgo.services.prescription_patient import (
    PrescriptionPatientMismatch,
    PrescriptionPatientUnknown,
)
from lgo.services.sessions import ProfessionalSession
from lgo.store.columns import utcnow

router = APIRouter(
    tags=["dispensations"], dependencies=[Depends(require_counter)], route_class=DirectRoute
)


def _cip13(value: object) -> object:
    """A box code as the pharmacist can fix it: the length, then the EAN-13 check key (a wrong key
    is a misread or a typo, never another product)."""
    if not isinstance(value, str):
        return value  # pydantic's own "texte attendu"
    if len(value) != 13 or not value.isdigit() or not value.startswith("3400"):
        raise ValueError("CIP13 attendu : 13 chiffres commençant par 3400")
    if not _valid_cip13(value):
        raise ValueError("clé de contrôle du CIP13 fausse")
    return value


# The same few codes come back all day (the catalogue's packs): their check key is computed once.
_valid_cip13 = functools.lru_cache(maxsize=4096)(is_valid_cip13)


def _json_number(value: object) -> object:
    """A JSON number as pydantic reads it from ``json.loads``'s float (``Decimal(repr(value))``),
    also when the body is validated from its bytes (lgo/api/direct.py): without this, pydantic
    reads ``2.0`` or ``1e0`` from bytes as ``Decimal('2')``, ``Decimal('1')``, from a float as
    ``Decimal('2.0')``, ``Decimal('1.0')``; the request fingerprint (the replay check, a paper
    prescription's local id) and the recorded quantity must not depend on which way was taken."""
    return Decimal(repr(value)) if isinstance(value, float) else value


CIP13 = Annotated[str, BeforeValidator(_cip13), Field(pattern=r"^\d{13}$")]
JsonDecimal = Annotated[Decimal, BeforeValidator(_json_number)]
RPPS = Annotated[str, Field(pattern=r"^\d{11}$")]
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{8,128}$"  # the header's declaration, and the direct call's check
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubstitutionIn(_In):
    cip13: CIP13
    name: str = Field(min_length=1, max_length=200)
    form: str = Field(min_length=1, max_length=64)
    units: int = Field(gt=0, le=10_000)


class OverrideIn(_In):
    code: RefusalCode
    reason: str = Field(min_length=3, max_length=200)


class LineIn(_In):
    line_no: int = Field(ge=1, le=99)
    intervention: InterventionKind
    days: int = Field(0, ge=0, le=366, description="Jours de traitement délivrés.")
    cip13: CIP13 | None = Field(None, description="CIP13 de la boîte délivrée.")
    boxes: int | None = Field(None, ge=0, le=999)
    substitution: SubstitutionIn | None = None
    modification_reason: str | None = Field(None, max_length=200)
    prescriber_agreement_on: date | None = None
    not_dispensed_reason: str | None = Field(None, max_length=200)
    exceptional: bool = False
    unit_dispensing: bool = False
    lot: str | None = Field(None, max_length=40)
    mte_ph: bool = False
    override: OverrideIn | None = None
    units_per_day: Annotated[Decimal | None, BeforeValidator(_json_number)] = Field(
        None,
        gt=0,
        le=100,
        description="Quantité par jour retenue par le pharmacien quand la posologie structurée "
        "n'en donne pas (si besoin, au poids, texte libre) ; ignorée sinon.",
    )


class PaperLineIn(_In):
    designation: str = Field(min_length=1, max_length=200)
    cip13: CIP13 | None = None
    molecule: str | None = Field(None, max_length=100)
    regulatory_list: RegulatoryList = RegulatoryList.NONE
    units_per_day: JsonDecimal = Field(gt=0, le=100)
    duration_days: int = Field(ge=1, le=366)
    renewals: int = Field(0, ge=0, le=12)
    substitutable: bool = True
    non_substitution_reason: NonSubstitutionReason | None = None
    single_delivery: bool = False
    fraction_days: int | None = Field(None, ge=1, le=28)
    overlap_mention: bool = False


class PaperPrescriptionIn(_In):
    prescribed_on: date
    prescriber_rpps: RPPS
    prescriber_name: str = Field(min_length=1, max_length=200)
    prescriber_address: str = Field(
        "", max_length=300, description="Adresse du prescripteur (ordonnancier, R.5132-10)."
    )
    eprescription: bool = Field(
        False, description="Copie papier d'une ordonnance numérique (mode dégradé)."
    )
    lines: list[PaperLineIn] = Field(min_length=1, max_length=30)

    @field_validator("prescribed_on")
    @classmethod
    def _plausible_date(cls, value: date) -> date:
        # A typed prescription is dated today or in the past (and not before electronic records).
        if not date(2000, 1, 1) <= value <= date.today() + timedelta(days=1):
            raise ValueError("date de prescription invraisemblable")
        return value


class BearerIn(_In):
    is_patient: bool = Field(description="Le patient apporte lui-même l'ordonnance.")
    name: str = Field("", max_length=200, description="Nom et prénom du porteur (sinon).")
    address: str = Field("", max_length=300, description="Adresse du porteur (sinon).")


class DispensationIn(_In):
    patient_id: str = Field(min_length=1, max_length=36)
    prescription_id: str | None = Field(
        None, pattern=r"^[0-9A-Z]{10,40}$", description="Absent pour une ordonnance papier."
    )
    patient_address: str = Field(
        "",
        max_length=300,
        description="Adresse du patient : obligatoire dès qu'une ligne va à l'ordonnancier "
        "(listes I et II, stupéfiants ; R.5132-10).",
    )
    prescriber_address: str = Field(
        "",
        max_length=300,
        description="Adresse du prescripteur quand l'ordonnance ne la donne pas (R.5132-10).",
    )
    bearer: BearerIn | None = Field(
        None,
        description="Porteur de l'ordonnance : obligatoire pour un stupéfiant (R.5132-35).",
    )
    paper: PaperPrescriptionIn | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=30)
    prescriber_acknowledged: bool = Field(
        False,
        description="Le pharmacien a pris connaissance de l'avertissement sur le prescripteur "
        "(inactif, inconnu de l'Annuaire Santé, RPPS invalide ou non vérifiable).",
    )


def _command(body: DispensationIn) -> DispensationCommand:
    """The request as the use case reads it (lgo/services/dispensation_intake.py)."""
    paper = body.paper
    bearer = body.bearer
    return DispensationCommand(
        patient_id=body.patient_id,
        lines=tuple(_line(line) for line in body.lines),
        # The key-independent body: the replay check, and a paper prescription's local id.
        fingerprint=request_fingerprint(body.model_dump(mode="json")),
        prescription_id=body.prescription_id,
        paper=_paper(paper) if paper is not None else None,
        patient_address=body.patient_address,
        prescriber_address=body.prescriber_address,
        bearer=Bearer(bearer.is_patient, bearer.name, bearer.address) if bearer else None,
        prescriber_acknowledged=body.prescriber_acknowledged,
    )


# The commands take the models' field values as they are (``__dict__``: what ``model_dump`` would
# copy for these flat models, without its copy; a few µs per line on every dispensation).
def _line(line: LineIn) -> LineCommand:
    sub, override = line.substitution, line.override
    return LineCommand(
        **{
            **line.__dict__,
            "substitution": SubstitutionCommand(**sub.__dict__) if sub else None,
            "override": OverrideCommand(**override.__dict__) if override else None,
        }
    )


def _paper(paper: PaperPrescriptionIn) -> PaperCommand:
    lines = tuple(PaperLineCommand(**line.__dict__) for line in paper.lines)
    return PaperCommand(**{**paper.__dict__, "lines": lines})


def _context(session: ProfessionalSession, counter: str) -> ProfessionalContext:
    identity = session.identity
    return ProfessionalContext(
        national_id=identity.national_id,
        rpps=identity.rpps,
        structure_id=identity.structure_id,
        session_kind=session.kind.value,
        session_id=session.id,
        counter_name=counter,
    )


# What resolving the prescription and evaluating the interventions may refuse.
_COMMIT_ERRORS: tuple[type[LgoError], ...] = (
    InvalidInput,
    DispensingRefused,
    LegalRecordIncomplete,
    PatientNotFound,
    PrescriptionNotLoaded,
    PrescriptionPatientMismatch,
    PrescriptionPatientUnknown,
    PrescriptionUnknown,
    PrescriptionCancelled,
    EPrescriptionDown,
    *NATIONAL_ERRORS,
)


class FhirJSONResponse(JSONResponse):
    media_type = "application/fhir+json"


# What FastAPI's dependency solving does for the two POST routes, written out (lgo/api/direct.py):
# the same dependencies in the same order, then the endpoint.
async def _create_directly(request: Request, body: DispensationIn) -> JSONResponse | None:
    key = request.headers.get("idempotency-key")
    if key is not None and _IDEMPOTENCY_KEY.fullmatch(key) is None:
        return None  # FastAPI's 422, after the same dependencies
    counter = await require_counter(request)
    intake = await get_dispensation_intake(request)
    session = await require_pharmacist(request)
    return await create_dispensation(body, intake, counter, session, request, key)


async def _check_directly(request: Request, body: DispensationIn) -> CheckOutcome:
    await require_counter(request)
    intake = await get_dispensation_intake(request)
    session = await require_pharmacist(request)
    return await check_dispensation(body, intake, session, request)


@router.post(
    "/v1/dispensations",
    status_code=201,
    summary="Enregistrer une dispensation (une fois par Idempotency-Key)",
    **answers(
        Dispensation,
        IdempotencyKeyMissing,
        IdempotencyKeyReused,
        LineAlreadyDispensed,
        PrescriberNotAcknowledged,
        *_COMMIT_ERRORS,
    ),
)
@served_directly(
    _create_directly,
    solves=(require_counter, get_dispensation_intake, require_counter, require_pharmacist),
    headers=("Idempotency-Key",),
)
async def create_dispensation(
    body: DispensationIn,
    intake: DispensationIntakeDep,
    counter: CounterDep,
    session: PharmacistDep,
    request: Request,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=128, pattern=IDEMPOTENCY_KEY)
    ] = None,
) -> JSONResponse:
    if not idempotency_key:
        raise IdempotencyKeyMissing()
    # The commit runs in a database thread, to its end even if the client goes away (deps.py).
    result = await db_threads(request).run(
        intake.commit, idempotency_key, _command(body), _context(session, counter.name)
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.post(
    "/v1/dispensations/check",
    summary="Vérifier les interventions sans rien enregistrer (refus, alertes, complétude)",
    **answers(DispensationCheck, *_COMMIT_ERRORS),
)
@served_directly(
    _check_directly,
    solves=(require_counter, get_dispensation_intake, require_pharmacist),
)
async def check_dispensation(
    body: DispensationIn,
    intake: DispensationIntakeDep,
    session: PharmacistDep,
    request: Request,
) -> CheckOutcome:
    return await db_threads(request).run(intake.check, _command(body), session.identity.rpps)


@router.get(
    "/v1/dispensations/{dispensation_id}",
    summary="Lire une dispensation",
    **answers(Dispensation, DispensationNotFound),
)
def read_dispensation(dispensation_id: uuid.UUID, dispensing: DispensingDep) -> DispensationRecord:
    return dispensing.get(str(dispensation_id))


@router.get(
    "/v1/dispensations/{dispensation_id}/fhir",
    summary="Dispensation au format FHIR R4 (Bundle de MedicationDispense)",
    response_class=FhirJSONResponse,
    **answers(FhirBundle, DispensationNotFound),
)
def dispensation_fhir(
    dispensation_id: uuid.UUID, dispensing: DispensingDep, identity: IdentityDep
) -> JSONResponse:
    record = dispensing.get(str(dispensation_id))
    return FhirJSONResponse(dispensation_bundle(asdict(record), identity))


@router.get(
    "/v1/dispensations",
    summary="Dispensations d'un patient ou d'un jour",
    **answers(list[Dispensation]),
)
def list_dispensations(
    dispensing: DispensingDep,
    patient_id: Annotated[str | None, Query(max_length=36)] = None,
    day: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DispensationRecord]:
    if patient_id is None and day is None:
        day = local_date(utcnow())
    return dispensing.list(patient_id=patient_id, day=day, limit=limit)
