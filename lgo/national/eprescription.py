"""E-prescription (ordonnance numérique) client: typed DTOs and a FHIR R4 JSON client.

The real service (Cnam EPU téléservice) is restricted; this client speaks the public standard it is
built on, FHIR R4 (validated with ``fhir.resources.R4B``: the installed fhir.resources 8 ships R5 at
top level plus ``R4B`` and ``STU3``; R4B is wire-compatible with R4 for the resources used here).

Contract (mirrored by ``hwsim.national.eprescription``; see its README):

- read: ``GET {base}/MedicationRequest?group-identifier=<OID>|<id>&_include=...&_revinclude=...``
  → searchset Bundle: one MedicationRequest per line (``groupIdentifier`` = the prescription id),
  the Patient, the Practitioner, and the MedicationDispenses already recorded; empty → unknown id.
- execution: ``POST {base}`` a transaction Bundle of MedicationDispense (one per line) with an
  ``Idempotency-Key`` header; the same key replays the first answer, the same key with another body
  is refused (``idempotency-key-reuse``). Refusals are OperationOutcomes whose first issue carries
  a code of :data:`OUTCOME_SYSTEM`.

Codes the Cnam keeps restricted (interventions, motifs) use placeholder systems under
``https://lgo.invalid/``, all in :mod:`lgo.national.profiles.eprescription` (the contract:
``contracts/eprescription/``); a real adapter maps them.

The dispensing service maps :class:`PrescriptionRecord` to its domain and builds
:class:`ExecutionReport`; these DTOs are the stable interface.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lgo.domain.posology import (
    UNREADABLE,
    Posology,
    PosologyFormatError,
    parse_dosages,
    read_posology,
)
from lgo.national.errors import (
    IdempotencyConflict,
    MalformedResponse,
    NationalServiceError,
    PatientMismatch,
    PrescriptionAlreadyDispensed,
    PrescriptionCancelled,
    PrescriptionExpired,
    PrescriptionUnknown,
)
from lgo.national.profiles.eprescription import (
    EXCEPTIONAL_RENEWAL_REASON,
    EXT_CONTROLLED,
    EXT_INTERVENTION,
    EXT_INTERVENTION_REASON,
    EXT_LIST,
    EXT_NON_SUBSTITUTABLE,
    EXT_PHARMACY,
    EXT_PRESCRIBER_AGREEMENT,
    EXT_RENEWAL,
    OUTCOME_SYSTEM,
    STATUS_REASON_SYSTEM,
)
from lgo.national.transport import (
    ServiceClient,
    decode_json,
    json_or_none,
    refusal_error,
)

SERVICE = "eprescription"
PRESCRIPTION_ID_SYSTEM = "urn:oid:1.2.250.1.215.500.1.1"
PRESCRIPTION_ID_RE = re.compile(r"^[0-9A-Z]{10,40}$")
CIP_SYSTEM = "urn:oid:1.2.250.1.213.2.3.2"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
# The prescriber's specialty (TRE_R38, as in the Annuaire Santé); any other coding of the
# qualification is the profession (TRE_G15).
SPECIALTY_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)
INS_SYSTEMS = frozenset(
    {"urn:oid:1.2.250.1.213.1.4.8", "urn:oid:1.2.250.1.213.1.4.9", "urn:oid:1.2.250.1.213.1.4.10"}
)
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SUBSTITUTION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
# The prescriber's posology text next to a structured dosage (French ePrescription IG, R5 backport).
EXT_RENDERED_DOSAGE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationRequest.renderedDosageInstruction"


# ---------------------------------------------------------------- DTOs (stable interface)


class _Dto(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineStatus(StrEnum):
    OPEN = "open"  # nothing dispensed yet
    PARTIAL = "partial"  # something dispensed, renewals or quantity left
    COMPLETED = "completed"  # every renewal fully dispensed
    CANCELLED = "cancelled"  # cancelled by the prescriber
    EXPIRED = "expired"  # validity period over (per the service's clock)


class PrescriptionState(StrEnum):
    OPEN = "open"
    PARTIAL = "partial"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class NonSubstitutableReason(StrEnum):
    MTE = "MTE"  # marge thérapeutique étroite
    EFG = "EFG"  # enfant < 6 ans, pas de forme générique adaptée
    CIF = "CIF"  # contre-indication formelle à un excipient


class RegulatoryList(StrEnum):
    LIST_I = "I"
    LIST_II = "II"
    STUPEFIANT = "stupefiant"


class Prescriber(_Dto):
    rpps: str = Field(pattern=r"^\d{11}$")
    family_name: str
    given_name: str
    profession_code: str | None = None
    specialty_code: str | None = None
    address: str | None = None  # one line: "12 rue des Essais, 75010 PARIS"


class PatientIdentity(_Dto):
    """The patient as the prescription names them. ``ins`` is None when the prescriber had none."""

    ins: str | None = None
    ins_oid: str | None = None
    family_name: str
    given_names: tuple[str, ...] = ()
    # As the service gives it: a full ISO date or a partial one (``1980``, ``1980-05``).
    birth_date: str | None = Field(None, pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")
    sex: str | None = None  # FHIR administrative gender


class PastDispense(_Dto):
    """One execution already recorded on a line (this pharmacy's or another's)."""

    renewal_number: int = Field(ge=0)
    quantity: int = Field(ge=0)
    complete: bool
    handed_over_at: datetime | None = None


class PrescriptionLine(_Dto):
    line_id: str
    cip13: str | None = Field(None, pattern=r"^\d{13}$")
    product_label: str
    dosage_text: str
    # What the structured dosage (FHIR Dosage) defines; None when the line has only the text.
    posology: Posology | None = None
    quantity: int = Field(ge=0, description="Boxes per dispensation.")
    treatment_days: int | None = Field(None, ge=0)
    renewals_allowed: int = Field(ge=0, description="0 = not renewable.")
    substitutable: bool
    non_substitutable_reason: NonSubstitutableReason | None = None
    controlled: bool = False
    regulatory_list: RegulatoryList | None = None
    status: LineStatus
    dispensed: tuple[PastDispense, ...] = ()


class PrescriptionRecord(_Dto):
    prescription_id: str
    authored_on: date
    validity_start: date | None = None
    validity_end: date | None = None
    prescriber: Prescriber
    patient: PatientIdentity
    lines: tuple[PrescriptionLine, ...]
    state: PrescriptionState


class Intervention(StrEnum):
    UNCHANGED = "unchanged"
    SUBSTITUTED = "substituted"
    MODIFIED = "modified"  # with the prescriber's agreement, or an exceptional renewal
    NOT_DISPENSED = "not-dispensed"


class LineExecution(_Dto):
    line_id: str = Field(min_length=1, max_length=64)
    intervention: Intervention
    cip13: str | None = Field(
        None, pattern=r"^\d{13}$", description="Delivered product (None when not dispensed)."
    )
    quantity: int = Field(ge=0, le=999)
    complete: bool = Field(description="This renewal fully served (FFC/RFC) or not (FFP/RFP).")
    renewal_number: int = Field(0, ge=0, le=99, description="0 = first dispensation.")
    reason: str | None = Field(None, max_length=200)
    prescriber_agreement_date: date | None = None

    @model_validator(mode="after")
    def _coherent(self) -> LineExecution:
        if self.intervention is Intervention.NOT_DISPENSED:
            if self.quantity != 0 or not self.reason:
                raise ValueError("a line not dispensed has quantity 0 and a reason")
        elif self.cip13 is None or self.quantity == 0:
            raise ValueError("a dispensed line names the delivered CIP13 and a quantity")
        if self.intervention is Intervention.MODIFIED and (
            not self.reason or (self.prescriber_agreement_date is None and not self.exceptional)
        ):
            raise ValueError("a modification needs the prescriber's agreement date and a reason")
        return self

    @property
    def exceptional(self) -> bool:
        """An exceptional renewal of an expired prescription (no prescriber agreement)."""
        return (
            self.intervention is Intervention.MODIFIED and self.reason == EXCEPTIONAL_RENEWAL_REASON
        )

    @property
    def completeness_code(self) -> str:
        first = "FF" if self.renewal_number == 0 else "RF"
        return first + ("C" if self.complete else "P")


class ExecutionReport(_Dto):
    prescription_id: str
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=r"^[\x21-\x7e]+$")
    dispensed_at: datetime
    pharmacist_rpps: str = Field(pattern=r"^\d{11}$")
    pharmacy_finess: str | None = Field(None, pattern=r"^\d{9}$")
    patient_ins: str | None = Field(
        None,
        pattern=r"^[0-9]{5}[0-9AB][0-9]{9}$",
        description="Only a qualified INS (the identity service decides); None otherwise.",
    )
    patient_ins_oid: str | None = Field(None, pattern=r"^[0-9.]{3,64}$")
    lines: tuple[LineExecution, ...] = Field(min_length=1)

    @field_validator("prescription_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return normalise_prescription_id(value)

    @field_validator("dispensed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("dispensed_at must be timezone-aware")
        return value


class ExecutionReceipt(_Dto):
    execution_id: str
    prescription_id: str
    dispense_ids: tuple[str, ...]
    replayed: bool = Field(description="The service had already recorded this key.")


class EPrescriptionService(Protocol):
    """What the dispensing service needs; :class:`EPrescriptionClient` implements it."""

    def fetch(self, prescription_id: str, *, author_rpps: str) -> PrescriptionRecord: ...

    def record_execution(self, report: ExecutionReport) -> ExecutionReceipt: ...


def normalise_prescription_id(raw: str) -> str:
    """Upper-case, strip spaces; :class:`PrescriptionUnknown` when it cannot be an id."""
    value = raw.strip().replace(" ", "").upper()
    if not PRESCRIPTION_ID_RE.match(value):
        raise PrescriptionUnknown("numéro d'ordonnance mal formé")
    return value


def ensure_dispensable(record: PrescriptionRecord) -> PrescriptionRecord:
    """Raise the typed error matching a state in which nothing can be dispensed."""
    errors: dict[PrescriptionState, type[Exception]] = {
        PrescriptionState.COMPLETED: PrescriptionAlreadyDispensed,
        PrescriptionState.CANCELLED: PrescriptionCancelled,
        PrescriptionState.EXPIRED: PrescriptionExpired,
    }
    error = errors.get(record.state)
    if error is not None:
        raise error(f"ordonnance {record.prescription_id}")
    return record


# ---------------------------------------------------------------- FHIR → DTO

# What a hostile or broken body can raise while fhir.resources validates it and we walk it.
_DECODE_ERRORS = (ValidationError, ValueError, TypeError, KeyError, AttributeError, RecursionError)


def _fhir() -> Any:
    # Imported lazily: fhir.resources builds hundreds of models on import.
    from fhir.resources.R4B import bundle

    return bundle.Bundle


def _ext(resource: Any, url: str) -> Any:
    for ext in resource.extension or ():
        if ext.url == url:
            for name in (
                "valueBoolean",
                "valueCode",
                "valueInteger",
                "valueDate",
                "valueString",
                "valueMarkdown",
            ):
                value = getattr(ext, name, None)
                if value is not None:
                    return value
    return None


def _first_identifier(identifiers: Iterable[Any] | None, systems: Iterable[str]) -> Any:
    wanted = set(systems)
    for identifier in identifiers or ():
        if identifier.system in wanted:
            return identifier
    return None


def _cip13(concept: Any) -> tuple[str | None, str]:
    label = concept.text or ""
    for coding in concept.coding or ():
        if coding.system == CIP_SYSTEM:
            return coding.code, label or coding.display or ""
    return None, label


def _line_status(request: Any) -> LineStatus:
    if request.status == "cancelled":
        return LineStatus.CANCELLED
    if request.status == "completed":
        return LineStatus.COMPLETED
    if request.status == "stopped":
        reasons = request.statusReason.coding if request.statusReason else ()
        if any(c.system == STATUS_REASON_SYSTEM and c.code == "expired" for c in reasons or ()):
            return LineStatus.EXPIRED
        return LineStatus.CANCELLED
    if request.status == "active":
        return LineStatus.OPEN  # PARTIAL is decided once the dispenses are known
    raise MalformedResponse(f"{SERVICE}: unexpected MedicationRequest.status")


def _past_dispense(dispense: Any) -> PastDispense:
    completeness = ""
    for coding in (dispense.type.coding if dispense.type else None) or ():
        if coding.system == ACT_CODE_SYSTEM:
            completeness = (coding.code or "").strip()
    quantity = dispense.quantity.value if dispense.quantity else 0
    return PastDispense(
        renewal_number=_ext(dispense, EXT_RENEWAL) or 0,
        quantity=int(quantity or 0),
        complete=completeness.endswith("C"),
        handed_over_at=dispense.whenHandedOver,
    )


def _line(request: Any, dispenses: list[PastDispense]) -> PrescriptionLine:
    cip13, label = _cip13(request.medicationCodeableConcept)
    dispense_request = request.dispenseRequest
    supply = dispense_request.expectedSupplyDuration if dispense_request else None
    boxes = dispense_request.quantity if dispense_request else None
    quantity = boxes.value if boxes else 0
    substitution = request.substitution
    substitutable = bool(substitution is None or substitution.allowedBoolean)
    reason = _ext(substitution, EXT_NON_SUBSTITUTABLE) if substitution else None
    status = _line_status(request)
    if status is LineStatus.OPEN and dispenses:
        status = LineStatus.PARTIAL
    dosage = _ext(request, EXT_RENDERED_DOSAGE) or " ; ".join(
        d.text for d in request.dosageInstruction or () if d.text
    )
    regulatory = _ext(request, EXT_LIST)
    return PrescriptionLine(
        line_id=request.id,
        cip13=cip13,
        product_label=label,
        dosage_text=dosage,
        posology=_posology(request.dosageInstruction),
        quantity=int(quantity or 0),
        treatment_days=int(supply.value) if supply and supply.value is not None else None,
        renewals_allowed=(dispense_request.numberOfRepeatsAllowed or 0) if dispense_request else 0,
        substitutable=substitutable,
        non_substitutable_reason=NonSubstitutableReason(reason) if reason else None,
        controlled=bool(_ext(request, EXT_CONTROLLED)),
        regulatory_list=RegulatoryList(regulatory) if regulatory else None,
        status=status,
        dispensed=tuple(dispenses),
    )


def _posology(dosages: Any) -> Posology | None:
    """The structured dosage read into figures (lgo.domain.posology); None for text only."""
    raw = [d.model_dump(mode="json", exclude_none=True, by_alias=True) for d in dosages or ()]
    try:
        parsed = parse_dosages(raw)
        return read_posology(parsed) if any(d.structured for d in parsed) else None
    except PosologyFormatError:
        # The text still stands; the pharmacist gives the figure rather than losing the line.
        return Posology(reason=UNREADABLE)


def _patient(resource: Any) -> PatientIdentity:
    ins = _first_identifier(resource.identifier, INS_SYSTEMS)
    name = (resource.name or [None])[0]
    if name is None or not name.family:
        raise MalformedResponse(f"{SERVICE}: patient without a family name")
    return PatientIdentity(
        ins=ins.value if ins else None,
        ins_oid=ins.system.removeprefix("urn:oid:") if ins else None,
        family_name=name.family,
        given_names=tuple(name.given or ()),
        birth_date=_birth_date(resource.birthDate),
        sex=resource.gender,
    )


def _prescriber(resource: Any) -> Prescriber:
    rpps = _first_identifier(resource.identifier, {RPPS_SYSTEM})
    name = (resource.name or [None])[0]
    if rpps is None or name is None:
        raise MalformedResponse(f"{SERVICE}: prescriber without RPPS or name")
    codings = [c for q in resource.qualification or () for c in q.code.coding or ()]
    profession = next((c.code for c in codings if c.system != SPECIALTY_SYSTEM), None)
    specialty = next((c.code for c in codings if c.system == SPECIALTY_SYSTEM), None)
    return Prescriber(
        rpps=rpps.value,
        family_name=name.family or "",
        given_name=" ".join(name.given or ()),
        profession_code=profession,
        specialty_code=specialty,
        address=_address(resource.address),
    )


def _address(addresses: Any) -> str | None:
    """The first address as one line (lines, then postal code and city), or its text."""
    for address in addresses or ():
        city = " ".join(p for p in (address.postalCode, address.city) if p)
        parts = [*(address.line or ()), city] if (address.line or city) else [address.text or ""]
        text = ", ".join(p for p in parts if p)
        if text:
            return text
    return None


def _birth_date(value: Any) -> str | None:
    # fhir.resources gives a full date as a date and a partial one (year, year-month) as text.
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def _state(lines: tuple[PrescriptionLine, ...]) -> PrescriptionState:
    statuses = {line.status for line in lines}
    for single in (LineStatus.CANCELLED, LineStatus.EXPIRED, LineStatus.COMPLETED):
        if statuses == {single}:
            return PrescriptionState(single.value)
    if statuses <= {LineStatus.CANCELLED, LineStatus.COMPLETED, LineStatus.EXPIRED}:
        return PrescriptionState.COMPLETED  # nothing left to dispense
    if statuses == {LineStatus.OPEN}:
        return PrescriptionState.OPEN
    return PrescriptionState.PARTIAL


def _by_type(bundle: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for entry in bundle.entry or ():
        if entry.resource is not None:
            found.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    return found


def _ref_id(reference: Any, kind: str) -> str | None:
    ref = reference.reference if reference is not None else None
    if not ref or not ref.startswith(kind + "/"):
        return None
    return str(ref.split("/", 1)[1])


def _only(found: dict[str, list[Any]], kind: str, wanted_id: str | None) -> Any:
    matches = [r for r in found.get(kind, ()) if wanted_id is None or r.id == wanted_id]
    if len(matches) != 1:
        raise MalformedResponse(f"{SERVICE}: expected one {kind}, got {len(matches)}")
    return matches[0]


def record_from_bundle(data: Any, prescription_id: str) -> PrescriptionRecord:
    """Turn a searchset Bundle (already JSON-decoded) into a record. Only typed errors escape."""
    try:
        return _record_from_bundle(data, prescription_id)
    except (PrescriptionUnknown, MalformedResponse):
        raise
    except _DECODE_ERRORS as exc:
        raise MalformedResponse(f"{SERVICE}: invalid Bundle ({type(exc).__name__})") from None


def _record_from_bundle(data: Any, prescription_id: str) -> PrescriptionRecord:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise MalformedResponse(f"{SERVICE}: not a Bundle")
    bundle = _fhir().model_validate(data)
    if bundle.type != "searchset":
        raise MalformedResponse(f"{SERVICE}: not a searchset")
    found = _by_type(bundle)
    requests = [
        r
        for r in found.get("MedicationRequest", ())
        if r.groupIdentifier is not None and r.groupIdentifier.value == prescription_id
    ]
    if not requests:
        raise PrescriptionUnknown(f"ordonnance {prescription_id}")
    dispenses: dict[str, list[PastDispense]] = {}
    for dispense in found.get("MedicationDispense", ()):
        for prescription in dispense.authorizingPrescription or ():
            line_id = _ref_id(prescription, "MedicationRequest")
            if line_id is not None and dispense.status == "completed":
                dispenses.setdefault(line_id, []).append(_past_dispense(dispense))
    lines = tuple(_line(r, dispenses.get(r.id, [])) for r in requests)
    first = requests[0]
    patient = _only(found, "Patient", _ref_id(first.subject, "Patient"))
    prescriber = _only(found, "Practitioner", _ref_id(first.requester, "Practitioner"))
    validity = first.dispenseRequest.validityPeriod if first.dispenseRequest else None
    if first.authoredOn is None:
        raise MalformedResponse(f"{SERVICE}: prescription without authoring date")
    return PrescriptionRecord(
        prescription_id=prescription_id,
        authored_on=_as_date(first.authoredOn),
        validity_start=_as_date(validity.start) if validity and validity.start else None,
        validity_end=_as_date(validity.end) if validity and validity.end else None,
        prescriber=_prescriber(prescriber),
        patient=_patient(patient),
        lines=lines,
        state=_state(lines),
    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise MalformedResponse(f"{SERVICE}: invalid date")


# ---------------------------------------------------------------- DTO → FHIR


def _dispense_resource(report: ExecutionReport, line: LineExecution) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = [
        {"url": EXT_INTERVENTION, "valueCode": line.intervention.value},
        {"url": EXT_RENEWAL, "valueInteger": line.renewal_number},
    ]
    if line.reason:
        extensions.append({"url": EXT_INTERVENTION_REASON, "valueString": line.reason})
    if line.prescriber_agreement_date:
        extensions.append(
            {"url": EXT_PRESCRIBER_AGREEMENT, "valueDate": str(line.prescriber_agreement_date)}
        )
    if report.pharmacy_finess:
        extensions.append({"url": EXT_PHARMACY, "valueString": report.pharmacy_finess})
    dispensed = line.intervention is not Intervention.NOT_DISPENSED
    rpps = report.pharmacist_rpps
    medication: dict[str, Any] = (
        {"coding": [{"system": CIP_SYSTEM, "code": line.cip13}]}
        if line.cip13
        else {"text": "non délivré"}
    )
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "extension": extensions,
        "status": "completed" if dispensed else "declined",
        "medicationCodeableConcept": medication,
        "authorizingPrescription": [{"reference": f"MedicationRequest/{line.line_id}"}],
        "performer": [{"actor": {"identifier": {"system": RPPS_SYSTEM, "value": rpps}}}],
        "quantity": {"value": line.quantity, "unit": "boîte"},
        "whenHandedOver": report.dispensed_at.isoformat(),
    }
    if report.patient_ins:
        oid = report.patient_ins_oid or "1.2.250.1.213.1.4.8"
        resource["subject"] = {
            "identifier": {"system": f"urn:oid:{oid}", "value": report.patient_ins}
        }
    if dispensed:
        resource["type"] = {"coding": [{"system": ACT_CODE_SYSTEM, "code": line.completeness_code}]}
    else:
        resource["statusReasonCodeableConcept"] = {"text": line.reason}
    substituted = line.intervention is Intervention.SUBSTITUTED
    resource["substitution"] = {"wasSubstituted": substituted}
    if substituted:
        generic = {"system": SUBSTITUTION_TYPE_SYSTEM, "code": "G"}
        resource["substitution"]["type"] = {"coding": [generic]}
    return resource


def execution_bundle(report: ExecutionReport) -> dict[str, Any]:
    """The transaction Bundle for ``report``, validated with fhir.resources before it leaves."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": {"system": PRESCRIPTION_ID_SYSTEM, "value": report.prescription_id},
        "entry": [
            {
                "resource": _dispense_resource(report, line),
                "request": {"method": "POST", "url": "MedicationDispense"},
            }
            for line in report.lines
        ],
    }
    validated = _fhir().model_validate(bundle)
    result: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return result


def receipt_from_bundle(data: Any, prescription_id: str, replayed: bool) -> ExecutionReceipt:
    try:
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            raise MalformedResponse(f"{SERVICE}: not a Bundle")
        bundle = _fhir().model_validate(data)
        if bundle.type != "transaction-response" or not bundle.id:
            raise MalformedResponse(f"{SERVICE}: not a transaction-response")
        locations = tuple(
            str(e.response.location).split("/", 1)[-1]
            for e in bundle.entry or ()
            if e.response is not None and e.response.location
        )
        return ExecutionReceipt(
            execution_id=bundle.id,
            prescription_id=prescription_id,
            dispense_ids=locations,
            replayed=replayed,
        )
    except MalformedResponse:
        raise
    except _DECODE_ERRORS as exc:
        raise MalformedResponse(f"{SERVICE}: invalid response ({type(exc).__name__})") from None


# ---------------------------------------------------------------- errors from OperationOutcome

_OUTCOME_ERRORS: dict[str, type[NationalServiceError]] = {
    "prescription-unknown": PrescriptionUnknown,
    "prescription-completed": PrescriptionAlreadyDispensed,
    "renewal-already-dispensed": PrescriptionAlreadyDispensed,
    "prescription-expired": PrescriptionExpired,
    "prescription-cancelled": PrescriptionCancelled,
    "idempotency-key-reuse": IdempotencyConflict,
    "patient-mismatch": PatientMismatch,
}


def outcome_code(data: Any) -> str | None:
    """The first issue's code in :data:`OUTCOME_SYSTEM`, if the body is such an OperationOutcome."""
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return None
    issues = data.get("issue")
    if not isinstance(issues, list) or not issues or not isinstance(issues[0], dict):
        return None
    details = issues[0].get("details")
    codings = details.get("coding") if isinstance(details, dict) else None
    for coding in codings if isinstance(codings, list) else ():
        if isinstance(coding, dict) and coding.get("system") == OUTCOME_SYSTEM:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _raise_for_refusal(response: httpx.Response, prescription_id: str) -> None:
    error = _OUTCOME_ERRORS.get(outcome_code(json_or_none(response, SERVICE)) or "")
    detail = f"ordonnance {prescription_id} (HTTP {response.status_code})"
    raise refusal_error(response, error, detail, not_found=PrescriptionUnknown)


# ---------------------------------------------------------------- the client


class EPrescriptionClient(ServiceClient):
    """FHIR client of the e-prescription service. Thread-safe; close it when done."""

    service = SERVICE

    def fetch(self, prescription_id: str, *, author_rpps: str) -> PrescriptionRecord:
        """The prescription as the service knows it now, whatever its state.

        Raises :class:`PrescriptionUnknown` for an unknown id; use :func:`ensure_dispensable` to
        refuse completed, cancelled or expired ones.
        """
        prescription_id = normalise_prescription_id(prescription_id)
        params = {
            "group-identifier": f"{PRESCRIPTION_ID_SYSTEM}|{prescription_id}",
            "_include": "MedicationRequest:subject,MedicationRequest:requester",
            "_revinclude": "MedicationDispense:prescription",
        }
        response = self._http.request(
            "eprescription.read",
            "GET",
            "/MedicationRequest",
            author_rpps=author_rpps,
            idempotent=True,
            params=params,
            headers={"Accept": "application/fhir+json"},
        )
        if response.status_code != 200:
            _raise_for_refusal(response, prescription_id)
        return record_from_bundle(decode_json(response, SERVICE), prescription_id)

    def record_execution(self, report: ExecutionReport) -> ExecutionReceipt:
        """Record the execution; safe to repeat with the same ``idempotency_key``."""
        response = self._http.request(
            "eprescription.execute",
            "POST",
            "/",
            author_rpps=report.pharmacist_rpps,
            idempotent=True,  # the Idempotency-Key makes a repeat harmless
            json_body=execution_bundle(report),
            headers={
                "Idempotency-Key": report.idempotency_key,
                "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json",
            },
        )
        if response.status_code not in (200, 201):
            _raise_for_refusal(response, report.prescription_id)
        replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
        data = decode_json(response, SERVICE)
        return receipt_from_bundle(data, report.prescription_id, replayed)


def _conforms(client: EPrescriptionClient) -> EPrescriptionService:
    return client  # mypy checks that the client keeps the Protocol's shape
