"""``/v1/dispensations``: record a dispensation exactly once, read it, list, export as FHIR.

``POST`` needs an open pharmacist session and an ``Idempotency-Key`` header: the same key with the
same body answers the first answer again (``Idempotent-Replayed: true``); the same key with another
body is a 409 problem; two counters on the same line at once → one dispensation, the other a 409.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from lgo.api.contract import NATIONAL_ERRORS, answers
from lgo.api.deps import ContainerDep, CounterDep, PharmacistDep, require_counter
from lgo.api.schemas.dispensations import Dispensation, DispensationCheck, FhirBundle
from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import DispensingPart, part_of
from lgo.bootstrap.psc import prescriber_checker_of
from lgo.core.errors import InvalidInput, LgoError
from lgo.core.logs import get_logger
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.legal_record import Bearer
from lgo.domain.prescription import (
    NonSubstitutionReason,
    Prescription,
    PrescriptionLine,
    PrescriptionSource,
)
from lgo.domain.products import Product, RegulatoryList, is_valid_cip13
from lgo.domain.refusals import Override, RefusalCode
from lgo.domain.substitution import SubstitutionRecord
from lgo.national.errors import PrescriptionCancelled, PrescriptionUnknown
from lgo.services.dispensing import (
    DispensationInput,
    LineInput,
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
from lgo.services.prescriber_check import PrescriberNotAcknowledged, require_acknowledgement
from lgo.services.prescription_patient import (
    PrescriptionPatientMismatch,
    PrescriptionPatientUnknown,
)
from lgo.services.prescriptions import ProductCatalog
from lgo.services.sessions import ProfessionalSession
from lgo.store.columns import utcnow

router = APIRouter(tags=["dispensations"], dependencies=[Depends(require_counter)])
log = get_logger(__name__)


def _cip13(value: object) -> object:
    """A box code as the pharmacist can fix it: the length, then the EAN-13 check key (a wrong key
    is a misread or a typo, never another product)."""
    if not isinstance(value, str):
        return value  # pydantic's own "texte attendu"
    if len(value) != 13 or not value.isdigit() or not value.startswith("3400"):
        raise ValueError("CIP13 attendu : 13 chiffres commençant par 3400")
    if not is_valid_cip13(value):
        raise ValueError("clé de contrôle du CIP13 fausse")
    return value


CIP13 = Annotated[str, BeforeValidator(_cip13), Field(pattern=r"^\d{13}$")]
RPPS = Annotated[str, Field(pattern=r"^\d{11}$")]


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
    units_per_day: Decimal | None = Field(
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
    units_per_day: Decimal = Field(gt=0, le=100)
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


class DispensationMode(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"


def _paper_product(line: PaperLineIn, catalog: ProductCatalog) -> Product:
    known = catalog.product(line.cip13) if line.cip13 else None
    if known is not None and known.regulatory_list is line.regulatory_list:
        return known
    return Product(
        code=line.cip13 or "TYPED",
        name=line.designation,
        regulatory_list=line.regulatory_list,
        molecule=line.molecule,
        generic_group=known.generic_group if known else None,
        packs=known.packs if known else (),
    )


def _paper(
    prescription_id: str, body: PaperPrescriptionIn, catalog: ProductCatalog, patient_id: str
) -> Prescription:
    lines = tuple(
        PrescriptionLine(
            line_no=i,
            product=_paper_product(ln, catalog),
            units_per_day=ln.units_per_day,
            duration_days=ln.duration_days,
            renewals=ln.renewals,
            substitutable=ln.substitutable,
            non_substitution_reason=ln.non_substitution_reason,
            single_delivery=ln.single_delivery,
            fraction_days=ln.fraction_days,
            overlap_mention=ln.overlap_mention,
        )
        for i, ln in enumerate(body.lines, start=1)
    )
    extra = {"prescriber_name": body.prescriber_name}
    if body.prescriber_address.strip():
        extra["prescriber_address"] = body.prescriber_address.strip()
    if body.eprescription:
        extra["eprescription"] = "true"
    return Prescription(
        prescription_id=prescription_id,
        source=PrescriptionSource.PAPER,
        prescribed_on=body.prescribed_on,
        prescriber_rpps=body.prescriber_rpps,
        lines=lines,
        patient_id=patient_id,
        extra=extra,
    )


def _line_input(line: LineIn, catalog: ProductCatalog, rpps: str) -> LineInput:
    delivered: Product | None = None
    record: SubstitutionRecord | None = None
    if line.substitution is not None:
        sub = line.substitution
        delivered = catalog.product(sub.cip13) or Product(code=sub.cip13, name=sub.name)
        record = SubstitutionRecord(sub.cip13, sub.name, sub.form, sub.units)
    try:
        override = (
            Override(line.override.code, line.override.reason, rpps) if line.override else None
        )
    except ValueError as exc:
        raise InvalidInput(f"ligne {line.line_no} : dérogation impossible ({exc})") from None
    request = LineRequest(
        line_no=line.line_no,
        kind=line.intervention,
        days=line.days,
        pack=catalog.pack(line.cip13) if line.cip13 else None,
        delivered_product=delivered,
        substitution=record,
        modification_reason=line.modification_reason,
        prescriber_agreement_on=line.prescriber_agreement_on,
        not_dispensed_reason=line.not_dispensed_reason,
        exceptional=line.exceptional,
        unit_dispensing=line.unit_dispensing,
        lots=(line.lot,) if line.lot else (),
        mte_ph=line.mte_ph,
        override=override,
        units_per_day=line.units_per_day,
    )
    return LineInput(request, cip13=line.cip13, boxes=line.boxes)


def _bearer(bearer: BearerIn | None) -> Bearer | None:
    return Bearer(bearer.is_patient, bearer.name, bearer.address) if bearer else None


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


def _resolve(
    part: DispensingPart, body: DispensationIn, rpps: str
) -> tuple[str, Prescription | None, bool, str]:
    """Which prescription the commit uses: (id, typed paper copy or None, degraded, prescriber's
    RPPS)."""
    if body.prescription_id is None:
        if body.paper is None or body.paper.eprescription:
            raise InvalidInput("numéro d'ordonnance numérique ou ordonnance papier attendu")
        # Paper only: a local id derived from the key-independent body keeps replays stable.
        local = "P" + request_fingerprint(body.model_dump(mode="json"))[:17].upper()
        typed = _paper(local, body.paper, part.catalog, body.patient_id)
        return local, typed, False, typed.prescriber_rpps
    try:
        view = part.service.load_prescription(
            body.prescription_id, author_rpps=rpps, patient_id=body.patient_id
        )
    except EPrescriptionDown:
        if body.paper is None:
            raise
        paper = _paper(body.prescription_id, body.paper, part.catalog, body.patient_id)
        extra = {**paper.extra, "eprescription": "true"}
        return body.prescription_id, _with_extra(paper, extra), True, paper.prescriber_rpps
    return body.prescription_id, None, view.degraded, view.prescription.prescriber_rpps


def _check_prescriber(
    container: Container, prescriber_rpps: str, rpps: str, acknowledged: bool
) -> None:
    """Refuse (409) while a non-active prescriber has not been acknowledged by the pharmacist.
    An acknowledged request needs no Annuaire call: the answer could not change the outcome, and
    the counter must not wait on a directory that is down (the page saw the warning on opening)."""
    if acknowledged:
        log.info(
            "prescriber_warning_acknowledged", prescriber_rpps=prescriber_rpps, pharmacist_rpps=rpps
        )
        return
    check = prescriber_checker_of(container).check(prescriber_rpps, author_rpps=rpps)
    require_acknowledgement(check, acknowledged)


def _with_extra(prescription: Prescription, extra: dict[str, str]) -> Prescription:
    return Prescription(
        prescription.prescription_id,
        prescription.source,
        prescription.prescribed_on,
        prescription.prescriber_rpps,
        prescription.lines,
        prescription.patient_id,
        prescription.surgery_window,
        extra,
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
def create_dispensation(
    body: DispensationIn,
    container: ContainerDep,
    counter: CounterDep,
    session: PharmacistDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=128, pattern=r"^[\x21-\x7e]{8,128}$")
    ] = None,
) -> JSONResponse:
    if not idempotency_key:
        raise IdempotencyKeyMissing()
    part = part_of(container)
    fingerprint = request_fingerprint(body.model_dump(mode="json"))
    rpps = session.identity.rpps
    prescription_id, typed, degraded, prescriber_rpps = _resolve(part, body, rpps)
    _check_prescriber(container, prescriber_rpps, rpps, body.prescriber_acknowledged)
    data = DispensationInput(
        patient_id=body.patient_id,
        prescription_id=prescription_id,
        lines=tuple(_line_input(ln, part.catalog, rpps) for ln in body.lines),
        paper=typed,
        patient_address=body.patient_address,
        fingerprint=fingerprint,
        prescriber_address=body.prescriber_address,
        bearer=_bearer(body.bearer),
    )
    result = part.service.dispense(
        idempotency_key, data, _context(session, counter.name), degraded=degraded
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.post(
    "/v1/dispensations/check",
    summary="Vérifier les interventions sans rien enregistrer (refus, alertes, complétude)",
    **answers(DispensationCheck, *_COMMIT_ERRORS),
)
def check_dispensation(
    body: DispensationIn, container: ContainerDep, session: PharmacistDep
) -> dict[str, Any]:
    part = part_of(container)
    rpps = session.identity.rpps
    prescription_id, typed, _, _ = _resolve(part, body, rpps)
    data = DispensationInput(
        patient_id=body.patient_id,
        prescription_id=prescription_id,
        lines=tuple(_line_input(ln, part.catalog, rpps) for ln in body.lines),
        paper=typed,
        patient_address=body.patient_address,
        prescriber_address=body.prescriber_address,
        bearer=_bearer(body.bearer),
    )
    return part.service.check(data)


@router.get(
    "/v1/dispensations/{dispensation_id}",
    summary="Lire une dispensation",
    **answers(Dispensation, DispensationNotFound),
)
def read_dispensation(dispensation_id: uuid.UUID, container: ContainerDep) -> dict[str, Any]:
    return part_of(container).service.get(str(dispensation_id))


@router.get(
    "/v1/dispensations/{dispensation_id}/fhir",
    summary="Dispensation au format FHIR R4 (Bundle de MedicationDispense)",
    response_class=FhirJSONResponse,
    **answers(FhirBundle, DispensationNotFound),
)
def dispensation_fhir(dispensation_id: uuid.UUID, container: ContainerDep) -> JSONResponse:
    body = part_of(container).service.get(str(dispensation_id))
    bundle = dispensation_bundle(body, container.identity.service)
    return FhirJSONResponse(bundle)


@router.get(
    "/v1/dispensations",
    summary="Dispensations d'un patient ou d'un jour",
    **answers(list[Dispensation]),
)
def list_dispensations(
    container: ContainerDep,
    patient_id: Annotated[str | None, Query(max_length=36)] = None,
    day: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    if patient_id is None and day is None:
        day = local_date(utcnow())
    return part_of(container).service.list(patient_id=patient_id, day=day, limit=limit)
