"""Simulated e-prescription service (FHIR R4 JSON, checked with ``fhir.resources.R4B``).

- ``GET  /eprescription/fhir/MedicationRequest?group-identifier=[<system>|]<id>`` → searchset Bundle
  of the prescription's MedicationRequests (one per line) + Patient + Practitioner + the
  MedicationDispenses recorded so far. Unknown id → empty searchset.
- ``POST /eprescription/fhir`` transaction Bundle of MedicationDispense, ``Idempotency-Key`` header
  required → transaction-response Bundle (``id`` = execution id). Same key + same body: the first
  answer again with ``Idempotent-Replayed: true``; same key + other body: 422
  ``idempotency-key-reuse``.

Refusals are OperationOutcomes; ``issue[0].details.coding[0]`` (system :data:`OUTCOME_SYSTEM`) holds
one of: prescription-unknown, prescription-expired, prescription-cancelled, prescription-completed,
renewal-already-dispensed, renewal-out-of-range (except for an exceptional renewal), unknown-line, product-unknown, patient-mismatch,
invalid-resource, idempotency-key-required, idempotency-key-reuse.

Fixtures: ``fixtures/national/eprescriptions.json`` (dates relative to the simulator clock). A line's
``structured`` is its FHIR R4 Dosage list in the French ePrescription modelling (timing, dose in
EDQM units of presentation, as-needed with a maximum); it is sent as ``dosageInstruction`` with the
prescriber's text in the ``renderedDosageInstruction`` extension. Without it the line carries the
text only (``dosageInstruction[0].text``).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hwsim.national.context import SimDep, SimState

NAME = "eprescription"
FHIR_JSON = "application/fhir+json"
PRESCRIPTION_ID_SYSTEM = "urn:oid:1.2.250.1.215.500.1.1"
ACCEPTED_ID = re.compile(r"^[0-9A-Z]{10,40}$")
CIP_SYSTEM = "urn:oid:1.2.250.1.213.2.3.2"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
SPECIALTY_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
EXT = "https://lgo.invalid/fhir/StructureDefinition/"
STATUS_REASON_SYSTEM = "https://lgo.invalid/fhir/CodeSystem/prescription-status-reason"
RENDERED_DOSAGE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationRequest.renderedDosageInstruction"
OUTCOME_SYSTEM = "https://lgo.invalid/fhir/CodeSystem/eprescription-outcome"
MAX_BODY_BYTES = 1024 * 1024
# Dispensation supplémentaire exceptionnelle (intervention "modified" with this reason): allowed on
# an expired or fully served prescription, numbered beyond the prescribed renewals. Placeholders of
# the restricted Cnam lists: the contract is contracts/eprescription/profile.json (a test holds this
# module and lgo's profile module to it; hwsim never imports lgo).
EXCEPTIONAL_RENEWAL_REASON = (
    "renouvellement — situation particulière de renouvellement exceptionnel"
)

router = APIRouter(tags=["e-prescription"])
control = APIRouter(tags=["e-prescription control"])


# ---------------------------------------------------------------- store


@dataclass
class Line:
    line_id: str
    cip13: str
    label: str
    dosage: str
    quantity: int
    days: int | None
    renewals: int
    substitutable: bool = True
    non_substitutable: str | None = None
    controlled: bool = False
    regulatory_list: str | None = None
    # FHIR R4 Dosage list in the French ePrescription modelling (None: the text only).
    structured: list[dict[str, Any]] | None = None


@dataclass
class Dispense:
    dispense_id: str
    line_id: str
    renewal: int
    quantity: int
    complete: bool
    status: str  # completed | declined
    handed_over: datetime
    resource: dict[str, Any]


@dataclass
class Prescription:
    prescription_id: str
    prescriber: dict[str, Any]
    patient: dict[str, Any]
    patient_key: str
    authored: datetime
    validity_start: date
    validity_end: date
    cancelled: bool
    lines: list[Line]
    dispenses: list[Dispense] = field(default_factory=list)

    def line(self, line_id: str) -> Line | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def served(self, line: Line, renewal: int) -> bool:
        done = [d for d in self.dispenses if d.line_id == line.line_id and d.renewal == renewal]
        done = [d for d in done if d.status == "completed"]
        return any(d.complete for d in done) or sum(d.quantity for d in done) >= line.quantity

    def line_done(self, line: Line) -> bool:
        return all(self.served(line, r) for r in range(line.renewals + 1))

    def expired(self, today: date) -> bool:
        return today > self.validity_end


@dataclass
class StoredReply:
    body_hash: str
    status: int
    body: dict[str, Any]


@dataclass
class EPrescriptionStore:
    prescriptions: dict[str, Prescription] = field(default_factory=dict)
    replies: dict[str, StoredReply] = field(default_factory=dict)

    def executions(self) -> int:
        """How many executions were recorded (replays excluded)."""
        return sum(1 for reply in self.replies.values() if reply.status == 200)


def store_of(sim: SimState) -> EPrescriptionStore:
    store: EPrescriptionStore = sim.stores[NAME]
    return store


def setup(sim: SimState) -> None:
    """(Re)load the fixtures, dates relative to the simulator clock."""
    data = json.loads((sim.fixtures_dir / "eprescriptions.json").read_text(encoding="utf-8"))
    now = sim.clock.now()
    store = EPrescriptionStore()
    for item in data["prescriptions"]:
        prescription = _load(item, data, now)
        store.prescriptions[prescription.prescription_id] = prescription
    sim.stores[NAME] = store


def _load(item: dict[str, Any], data: dict[str, Any], now: datetime) -> Prescription:
    pid = item["id"]
    authored = (now - timedelta(days=item["authored_days_ago"])).replace(microsecond=0)
    lines = []
    for number, spec in enumerate(item["lines"], start=1):
        product = data["products"][spec["product"]]
        lines.append(
            Line(
                line_id=f"{pid}-{number}",
                cip13=product["cip13"],
                label=product["label"],
                dosage=spec["dosage"],
                quantity=spec["quantity"],
                days=spec.get("days"),
                renewals=spec.get("renewals", 0),
                substitutable=spec.get("substitutable", True),
                non_substitutable=spec.get("non_substitutable"),
                controlled=spec.get("controlled", False),
                regulatory_list=spec.get("list"),
                structured=spec.get("structured"),
            )
        )
    prescription = Prescription(
        prescription_id=pid,
        prescriber=data["prescribers"][item["prescriber"]],
        patient=data["patients"][item["patient"]],
        patient_key=item["patient"],
        authored=authored,
        validity_start=authored.date(),
        validity_end=authored.date() + timedelta(days=item["validity_days"]),
        cancelled=item.get("status") == "cancelled",
        lines=lines,
    )
    for past in item.get("dispensed", ()):
        line = lines[past["line"] - 1]
        when = now - timedelta(days=past["days_ago"])
        dispense = Dispense(
            dispense_id=uuid.uuid4().hex,
            line_id=line.line_id,
            renewal=past["renewal"],
            quantity=past["quantity"],
            complete=past["complete"],
            status="completed",
            handed_over=when,
            resource={},
        )
        dispense.resource = _history_dispense(prescription, line, dispense)
        prescription.dispenses.append(dispense)
    return prescription


# ---------------------------------------------------------------- FHIR rendering


def _history_dispense(prescription: Prescription, line: Line, dispense: Dispense) -> dict[str, Any]:
    code = ("FF" if dispense.renewal == 0 else "RF") + ("C" if dispense.complete else "P")
    return {
        "resourceType": "MedicationDispense",
        "id": dispense.dispense_id,
        "extension": [{"url": EXT + "renewal-number", "valueInteger": dispense.renewal}],
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": CIP_SYSTEM, "code": line.cip13}]},
        "subject": {"reference": f"Patient/{prescription.patient_key}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{line.line_id}"}],
        "type": {"coding": [{"system": ACT_CODE_SYSTEM, "code": code}]},
        "quantity": {"value": dispense.quantity, "unit": "boîte"},
        "whenHandedOver": dispense.handed_over.isoformat(),
    }


def _request_status(prescription: Prescription, line: Line, today: date) -> dict[str, Any]:
    if prescription.cancelled:
        return {"status": "cancelled"}
    if prescription.line_done(line):
        return {"status": "completed"}
    if prescription.expired(today):
        reason = {"coding": [{"system": STATUS_REASON_SYSTEM, "code": "expired"}]}
        return {"status": "stopped", "statusReason": reason}
    return {"status": "active"}


def _medication_request(prescription: Prescription, line: Line, today: date) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = []
    if line.controlled:
        extensions.append({"url": EXT + "controlled-drug", "valueBoolean": True})
    if line.regulatory_list:
        extensions.append({"url": EXT + "regulatory-list", "valueCode": line.regulatory_list})
    dosage: list[dict[str, Any]] = [{"text": line.dosage}]
    if line.structured:
        # As the French ePrescription IG: the structure, and the prescriber's text beside it.
        dosage = line.structured
        extensions.append({"url": RENDERED_DOSAGE, "valueMarkdown": line.dosage})
    substitution: dict[str, Any] = {"allowedBoolean": line.substitutable}
    if line.non_substitutable:
        substitution["extension"] = [
            {"url": EXT + "non-substitutable-reason", "valueCode": line.non_substitutable}
        ]
        substitution["reason"] = {"text": f"Non substituable ({line.non_substitutable})"}
    dispense_request: dict[str, Any] = {
        "validityPeriod": {
            "start": prescription.validity_start.isoformat(),
            "end": prescription.validity_end.isoformat(),
        },
        "numberOfRepeatsAllowed": line.renewals,
        "quantity": {"value": line.quantity, "unit": "boîte"},
    }
    if line.days is not None:
        dispense_request["expectedSupplyDuration"] = {
            "value": line.days,
            "unit": "jours",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": line.line_id,
        **_request_status(prescription, line, today),
        "intent": "order",
        "groupIdentifier": {
            "system": PRESCRIPTION_ID_SYSTEM,
            "value": prescription.prescription_id,
        },
        "medicationCodeableConcept": {
            "coding": [{"system": CIP_SYSTEM, "code": line.cip13, "display": line.label}],
            "text": line.label,
        },
        "subject": {"reference": f"Patient/{prescription.patient_key}"},
        "requester": {"reference": f"Practitioner/{prescription.prescriber['rpps']}"},
        "authoredOn": prescription.authored.isoformat(),
        "dosageInstruction": dosage,
        "dispenseRequest": dispense_request,
        "substitution": substitution,
    }
    if extensions:
        resource["extension"] = extensions
    return resource


def _patient(key: str, patient: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": key,
        "name": [{"family": patient["family"], "given": patient["given"]}],
        "gender": patient["gender"],
        "birthDate": patient["birth_date"],
    }
    if patient.get("ins"):
        system = "urn:oid:" + patient["ins_oid"]
        resource["identifier"] = [{"system": system, "value": patient["ins"]}]
    return resource


def _practitioner(prescriber: dict[str, Any]) -> dict[str, Any]:
    codings = [{"system": "urn:oid:1.2.250.1.71.1.2.7", "code": prescriber["profession"]}]
    if prescriber.get("specialty"):
        codings.append({"system": SPECIALTY_SYSTEM, "code": prescriber["specialty"]})
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": prescriber["rpps"],
        "identifier": [{"system": RPPS_SYSTEM, "value": prescriber["rpps"]}],
        "name": [{"family": prescriber["family"], "given": [prescriber["given"]]}],
        "qualification": [{"code": {"coding": [c]}} for c in codings],
    }
    if prescriber.get("address"):  # the practice address printed on the prescription
        resource["address"] = [{"use": "work", **prescriber["address"]}]
    return resource


def search_bundle(prescription: Prescription | None, today: date) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    if prescription is not None:
        for line in prescription.lines:
            resource = _medication_request(prescription, line, today)
            entries.append({"resource": resource, "search": {"mode": "match"}})
        included = [
            _patient(prescription.patient_key, prescription.patient),
            _practitioner(prescription.prescriber),
            *(d.resource for d in prescription.dispenses),
        ]
        entries.extend({"resource": r, "search": {"mode": "include"}} for r in included)
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "searchset",
        "total": len(prescription.lines) if prescription else 0,
        "entry": entries,
    }


def outcome(status: int, code: str, text: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing" if status < 500 else "exception",
                "details": {"coding": [{"system": OUTCOME_SYSTEM, "code": code}], "text": text},
            }
        ],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _bundle_model() -> Any:
    from fhir.resources.R4B import bundle

    return bundle.Bundle


# ---------------------------------------------------------------- routes


@router.get("/MedicationRequest")
async def search(
    sim: SimDep, group_identifier: Annotated[str, Query(alias="group-identifier")]
) -> JSONResponse:
    value = group_identifier.rsplit("|", 1)[-1].strip().upper()
    prescription = store_of(sim).prescriptions.get(value) if ACCEPTED_ID.match(value) else None
    body = search_bundle(prescription, sim.clock.today())
    _bundle_model().model_validate(body)  # never serve what the client would reject
    return JSONResponse(body, media_type=FHIR_JSON)


@router.post("")
@router.post("/")
async def transaction(
    request: Request,
    sim: SimDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    raw = await request.body()
    if not idempotency_key or len(idempotency_key) > 128:
        return outcome(400, "idempotency-key-required", "Idempotency-Key manquant ou trop long")
    if len(raw) > MAX_BODY_BYTES:
        return outcome(413, "invalid-resource", "Corps trop volumineux")
    try:
        data = json.loads(raw)
        bundle = _bundle_model().model_validate(data)
    except (ValueError, ValidationError, TypeError, KeyError, RecursionError):
        return outcome(400, "invalid-resource", "Bundle FHIR invalide")
    store = store_of(sim)
    body_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    stored = store.replies.get(idempotency_key)
    if stored is not None:
        if stored.body_hash != body_hash:
            return outcome(422, "idempotency-key-reuse", "Clé déjà utilisée pour un autre contenu")
        return JSONResponse(
            stored.body,
            status_code=stored.status,
            media_type=FHIR_JSON,
            headers={"Idempotent-Replayed": "true"},
        )
    status, body = _execute(store, bundle, data, sim.clock)
    if status == 200:
        store.replies[idempotency_key] = StoredReply(body_hash, status, body)
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


@dataclass
class _Incoming:
    line: Line
    renewal: int
    quantity: int
    complete: bool
    status: str
    resource: dict[str, Any]


def _execute(
    store: EPrescriptionStore, bundle: Any, data: dict[str, Any], clock: Any
) -> tuple[int, dict[str, Any]]:
    refusal = _check_bundle(store, bundle, data, clock.today())
    if isinstance(refusal, JSONResponse):
        return refusal.status_code, json.loads(bytes(refusal.body))
    prescription, incoming = refusal
    execution_id = uuid.uuid4().hex
    entries = []
    for item in incoming:
        dispense_id = uuid.uuid4().hex
        resource = {**item.resource, "id": dispense_id}
        resource["subject"] = {"reference": f"Patient/{prescription.patient_key}"}
        prescription.dispenses.append(
            Dispense(
                dispense_id=dispense_id,
                line_id=item.line.line_id,
                renewal=item.renewal,
                quantity=item.quantity,
                complete=item.complete,
                status=item.status,
                handed_over=clock.now(),
                resource=resource,
            )
        )
        location = f"MedicationDispense/{dispense_id}"
        entries.append({"response": {"status": "201 Created", "location": location}})
    body = {
        "resourceType": "Bundle",
        "id": execution_id,
        "type": "transaction-response",
        "entry": entries,
    }
    return 200, body


def _check_bundle(
    store: EPrescriptionStore, bundle: Any, data: dict[str, Any], today: date
) -> JSONResponse | tuple[Prescription, list[_Incoming]]:
    if bundle.type != "transaction" or not bundle.entry:
        return outcome(400, "invalid-resource", "Bundle de type transaction attendu")
    pid = bundle.identifier.value if bundle.identifier else None
    prescription = store.prescriptions.get(pid or "")
    if prescription is None:
        return outcome(404, "prescription-unknown", "Ordonnance inconnue")
    if prescription.cancelled:
        return outcome(409, "prescription-cancelled", "Ordonnance annulée")
    # An exceptional renewal is made precisely because the prescription is over.
    if not all(_exceptional(entry.resource) for entry in bundle.entry):
        if all(prescription.line_done(line) for line in prescription.lines):
            return outcome(409, "prescription-completed", "Ordonnance entièrement délivrée")
        if prescription.expired(today):
            return outcome(409, "prescription-expired", "Ordonnance expirée")
    incoming: list[_Incoming] = []
    for entry, raw_entry in zip(bundle.entry, data["entry"], strict=True):
        item = _check_dispense(prescription, entry.resource, raw_entry.get("resource", {}))
        if isinstance(item, JSONResponse):
            return item
        incoming.append(item)
    return prescription, incoming


def _check_dispense(
    prescription: Prescription, resource: Any, raw: dict[str, Any]
) -> JSONResponse | _Incoming:
    if resource is None or resource.get_resource_type() != "MedicationDispense":
        return outcome(400, "invalid-resource", "MedicationDispense attendu")
    refs = [r.reference or "" for r in resource.authorizingPrescription or ()]
    line = prescription.line(refs[0].removeprefix("MedicationRequest/")) if len(refs) == 1 else None
    if line is None:
        return outcome(422, "unknown-line", "Ligne de prescription inconnue")
    renewal = next(
        (e.valueInteger for e in resource.extension or () if e.url == EXT + "renewal-number"), 0
    )
    codes = [c.code for c in (resource.type.coding if resource.type else None) or ()]
    complete = any(str(code).strip().endswith("C") for code in codes)
    quantity = int(resource.quantity.value) if resource.quantity and resource.quantity.value else 0
    item = _Incoming(line, renewal or 0, quantity, complete, resource.status, raw)
    if _other_patient(prescription, resource.subject):
        return outcome(409, "patient-mismatch", "Le patient ne correspond pas à l'ordonnance")
    if resource.status == "declined":
        return item
    if resource.status != "completed":
        return outcome(400, "invalid-resource", "Statut de délivrance inattendu")
    if item.renewal > line.renewals and not _exceptional(resource):
        return outcome(422, "renewal-out-of-range", "Renouvellement au-delà du prescrit")
    if prescription.served(line, item.renewal):
        return outcome(409, "renewal-already-dispensed", "Cette délivrance est déjà enregistrée")
    cips = [
        c.code for c in resource.medicationCodeableConcept.coding or () if c.system == CIP_SYSTEM
    ]
    if len(cips) != 1 or not _cip13_ok(str(cips[0])):
        return outcome(422, "product-unknown", "Produit inconnu de la base")
    return item


def _extension(resource: Any, name: str) -> Any:
    for ext in resource.extension or ():
        if ext.url == EXT + name:
            return ext.valueCode or ext.valueString
    return None


def _exceptional(resource: Any) -> bool:
    """A dispensed exceptional renewal (intervention modified, exceptional-renewal reason)."""
    return (
        resource is not None
        and resource.get_resource_type() == "MedicationDispense"
        and resource.status == "completed"
        and _extension(resource, "intervention") == "modified"
        and _extension(resource, "intervention-reason") == EXCEPTIONAL_RENEWAL_REASON
    )


def _other_patient(prescription: Prescription, subject: Any) -> bool:
    """True when the dispense names a patient (by INS) other than the prescription's."""
    identifier = subject.identifier if subject is not None else None
    known = prescription.patient.get("ins")
    if identifier is None or not identifier.value or not known:
        return False
    return bool(identifier.value != known)


def _cip13_ok(code: str) -> bool:
    if not re.fullmatch(r"\d{13}", code):
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(code[:12]))
    return (10 - total % 10) % 10 == int(code[12])


# ---------------------------------------------------------------- controls (/_sim/eprescription)


@control.get("/prescriptions")
async def list_prescriptions(sim: SimDep) -> list[dict[str, Any]]:
    """Ids and states only (a technician's view; no patient data)."""
    today = sim.clock.today()
    rows = []
    for prescription in store_of(sim).prescriptions.values():
        statuses = [
            _request_status(prescription, line, today)["status"] for line in prescription.lines
        ]
        rows.append(
            {
                "id": prescription.prescription_id,
                "lines": statuses,
                "dispenses": len(prescription.dispenses),
            }
        )
    return rows
