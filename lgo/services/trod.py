"""Rapid tests (TROD) at the counter: record the test once, produce its BIO-TROD document, and,
after a positive angine or cystite test within the national protocol, dispense the antibiotic with
the pharmacist as prescriber; outside the protocol, a referral letter to a doctor.

The protocol dispensation goes through the dispensing service like any other (one transaction:
dispensation, lines, ordonnancier entries): a prescription of source ``protocole`` whose prescriber
is the pharmacist of the session, quantities from the protocol's regimen. Its idempotency key is
derived from the test (``trod-<id>``) and ``UNIQUE(trod_tests.dispensation_id)``: one antibiotic per
test, whatever the retries or counters.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select, update

from lgo.core.errors import Conflict, InvalidInput
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.documents.models import (
    TrodAnalyte,
    TrodKind,
    TrodKit,
    TrodOutcome,
    TrodReading,
    TrodResult,
)
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.prescription import Prescription, PrescriptionLine, PrescriptionSource
from lgo.domain.trod import (
    ANALYTES,
    Allergy,
    Exclusion,
    MacIsaac,
    ProtocolDecision,
    ProtocolInput,
    Reading,
    Regimen,
    TrodTest,
    assess_protocol,
    conclusive,
    positive,
    protocol_applies,
)
from lgo.domain.vaccination import age_range
from lgo.services.dispensing import (
    DispensationInput,
    DispensationResult,
    LineInput,
    ProfessionalContext,
    request_fingerprint,
)
from lgo.services.dispensing_errors import IdempotencyKeyReused
from lgo.services.local_time import PHARMACY_TZ, local_date
from lgo.services.missions_common import (
    ActNotFound,
    Actor,
    ActStore,
    CodedReason,
    DocumentProducer,
    MissionRefused,
    dumps,
    first_problem,
    not_future,
    patient_facts,
    performer,
    publish,
)
from lgo.services.prescriptions import ProductCatalog
from lgo.services.trod_referral import render_referral
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, IdempotencyKey
from lgo.store.models.missions import TrodTestRow

log = get_logger(__name__)
PROTOCOL_TEXT = "arrêté du 17 juin 2024"
_STRENGTH = re.compile(r"(\d+(?:[.,]\d+)?)\s*(mg|g)\b", re.IGNORECASE)


class TrodKitExpired(InvalidInput):
    slug = "trod-kit-expired"
    title = "Test périmé : le résultat n'est pas valable"


class ProtocolNotApplicable(MissionRefused):
    slug = "trod-protocol-refused"
    title = "Délivrance sans ordonnance impossible : hors du protocole"


class ProtocolAlreadyDispensed(Conflict):
    slug = "trod-already-dispensed"
    title = "Un antibiotique a déjà été délivré pour ce test"


class Dispenser(Protocol):
    """The dispensing service, as the protocol dispensation uses it."""

    def dispense(
        self, key: str, data: DispensationInput, ctx: ProfessionalContext, *, degraded: bool
    ) -> DispensationResult: ...


@dataclass(frozen=True)
class Kit:
    manufacturer: str
    reference: str
    lot: str
    expiry: date | None = None


@dataclass(frozen=True)
class Criteria:
    """The questionnaire before the test (what the protocol's criteria are evaluated on)."""

    temperature_c: Decimal | None = None
    no_cough: bool = False
    tender_nodes: bool = False
    tonsil_swelling: bool = False
    exclusions: frozenset[Exclusion] = frozenset()
    previous_episodes_12_months: int = 0
    allergy: Allergy = Allergy.NONE
    weight_kg: Decimal | None = None


@dataclass(frozen=True)
class TrodInput:
    patient_id: str
    test: TrodTest
    kit: Kit
    readings: dict[str, Reading]
    performed_at: datetime | None = None  # now (the service's clock)
    criteria: Criteria = Criteria()
    to_dmp: bool = True
    mss_recipient: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class ProtocolDispenseInput:
    regimen: str
    cip13: str
    unit_mg: Decimal | None = None  # strength of one unit; read from the product name otherwise
    patient_address: str = ""  # for the ordonnancier (R.5132-10)


@dataclass(frozen=True)
class TrodKitView:
    manufacturer: str
    reference: str
    lot: str
    expiry: str | None


@dataclass(frozen=True)
class CriteriaView:
    """The criteria as recorded, with the patient's age range and the score computed."""

    temperature_c: str | None
    no_cough: bool
    tender_nodes: bool
    tonsil_swelling: bool
    exclusions: tuple[str, ...]
    previous_episodes_12_months: int
    allergy: str
    weight_kg: str | None
    age_min: int
    age_max: int
    sex: str | None
    score: int | None  # Mac Isaac (angine, 15 years and over)


@dataclass(frozen=True)
class RegimenView:
    code: str
    label: str
    first_line: bool


@dataclass(frozen=True)
class ProtocolView:
    applies: bool  # the test opens a dispensation under the protocol
    within: bool  # the patient meets the protocol's criteria
    score: int | None
    refusals: tuple[CodedReason, ...]
    regimens: tuple[RegimenView, ...]
    next: str  # none, dispensed, refer, dispense


@dataclass(frozen=True)
class TrodProfessional:
    rpps: str
    national_id: str
    name: str
    session_id: str
    counter: str | None


@dataclass(frozen=True)
class TrodView:
    """A rapid test as recorded (times in ISO 8601)."""

    id: str
    patient_id: str
    test: str
    performed_at: str
    created_at: str
    kit: TrodKitView
    readings: dict[str, str]  # reading per analyte
    positive: bool
    criteria: CriteriaView
    protocol: ProtocolView
    professional: TrodProfessional
    document_id: str | None
    document_skipped: str | None
    dispensation_id: str | None
    document_problem: dict[str, Any] | None = None  # why no document (this answer only)


class TrodService:
    def __init__(
        self,
        db: Database,
        catalog: ProductCatalog,
        documents: Callable[[], DocumentProducer],
        dispenser: Callable[[], Dispenser],
        *,
        events: EventBus | None = None,
        clock: Callable[[], datetime] = utcnow,
        pharmacy: tuple[str, str] = ("", ""),  # name, address: on the referral letter
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._documents = documents
        self._dispenser = dispenser
        self._events = events
        self._clock = clock
        self.pharmacy = pharmacy
        self._store = ActStore(
            db, TrodTestRow, TrodTestRow.performed_at, TrodTestRow.test, _view, "Test introuvable."
        )

    # ------------------------------------------------------------ the test

    def record(self, key: str, data: TrodInput, actor: Actor) -> tuple[int, TrodView, bool]:
        if data.mss_recipient:  # before anything is written
            self._documents().require_mss(data.mss_recipient)
        replay = self._store.replay(key, data.fingerprint)
        if replay is not None:
            return 201, replay, True
        row = self._checked_row(key, data, actor)
        replay = self._store.insert(row)
        if replay is not None:  # the same key committed meanwhile by another request
            return 201, replay, True
        log.info("trod_recorded", trod_id=row.id)
        problems: list[dict[str, Any]] = []
        if data.to_dmp or data.mss_recipient:
            result = to_document_result(row, actor)
            self._store.link_document(
                row.id,
                lambda: self._documents().trod_result(
                    row.patient_id,
                    result,
                    actor.author,
                    to_dmp=data.to_dmp,
                    mss_recipient=data.mss_recipient,
                ),
                problems,
            )
        body = replace(self.get(row.id), document_problem=first_problem(problems))
        # Ids only on the bus: a test and its result are health data.
        publish(self._events, "trod.recorded", {"id": row.id, "document_id": body.document_id})
        return 201, body, False

    def _checked_row(self, key: str, data: TrodInput, actor: Actor) -> TrodTestRow:
        now = self._clock()
        performed_at = data.performed_at or now
        not_future(performed_at, now)
        on = local_date(performed_at)
        if data.kit.expiry is not None and data.kit.expiry < on:
            raise TrodKitExpired(f"Péremption le {data.kit.expiry:%d/%m/%Y}, lot {data.kit.lot}.")
        expected = set(ANALYTES[data.test])
        if set(data.readings) != expected:
            raise InvalidInput(f"Lectures attendues pour ce test : {', '.join(sorted(expected))}.")
        with self._db.uow(readonly=True) as uow:
            facts = patient_facts(uow.session, data.patient_id)
        ages = age_range(facts.birth_date_raw, on)
        if ages is None:
            raise InvalidInput("Date de naissance du patient illisible : âge inconnu.")
        decision = assess_protocol(_protocol_input(data.test, ages, facts.sex, data.criteria))
        criteria = {
            **_criteria_json(data.criteria),
            "age_min": ages[0],
            "age_max": ages[1],
            "sex": facts.sex,
            "score": decision.score,
        }
        return TrodTestRow(
            id=str(uuid.uuid4()),
            idempotency_key=key,
            request_hash=data.fingerprint,
            created_at=now,
            performed_at=performed_at,
            patient_id=data.patient_id,
            test=data.test.value,
            kit_manufacturer=data.kit.manufacturer,
            kit_reference=data.kit.reference,
            kit_lot=data.kit.lot,
            kit_expiry=data.kit.expiry,
            readings=dumps({k: v.value for k, v in data.readings.items()}),
            positive=positive(data.test, data.readings),
            criteria=dumps(criteria),
            within_protocol=decision.within,
            refusals=dumps([asdict(c) for c in decision.refusals]),
            pharmacist_rpps=actor.rpps,
            pharmacist_national_id=actor.author.national_id,
            pharmacist_name=actor.name[:200],
            session_id=actor.session_id,
            counter_name=actor.counter_name,
        )

    def document(
        self, trod_id: str, actor: Actor, *, to_dmp: bool = True, mss_recipient: str | None = None
    ) -> TrodView:
        """The BIO-TROD document of a test recorded without one (INS qualified since, a crash)."""
        if mss_recipient:
            self._documents().require_mss(mss_recipient)
        problems: list[dict[str, Any]] = []
        self._store.produce_later(
            trod_id,
            lambda row: self._documents().trod_result(
                row.patient_id,
                to_document_result(row, actor),
                actor.author,
                to_dmp=to_dmp,
                mss_recipient=mss_recipient,
            ),
            problems,
        )
        return replace(self.get(trod_id), document_problem=first_problem(problems))

    # ------------------------------------------------------------ the protocol dispensation

    def dispense(
        self, trod_id: str, data: ProtocolDispenseInput, actor: Actor, ctx: ProfessionalContext
    ) -> DispensationResult:
        """The antibiotic under the protocol, once per test (same answer on a retry)."""
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(TrodTestRow, trod_id)
            if row is None:
                raise ActNotFound("Test introuvable.")
            uow.session.expunge(row)  # keeps its loaded values after the read transaction
        body = {
            "trod_id": trod_id,
            "regimen": data.regimen,
            "cip13": data.cip13,
            "unit_mg": str(data.unit_mg) if data.unit_mg else None,
            "patient_address": data.patient_address,
        }
        key, fingerprint = f"trod-{trod_id}", request_fingerprint(body)
        earlier = self._earlier(prescription_id_of(trod_id), fingerprint)
        if earlier is not None:
            return earlier
        regimen = _regimen_for(row, _stored_decision(row), data.regimen)
        prescription = self._prescription(row, regimen, data, actor)
        request = LineRequest(
            1, InterventionKind.UNCHANGED, regimen.days, pack=self._catalog.pack(data.cip13)
        )
        dispensation = DispensationInput(
            patient_id=row.patient_id,
            prescription_id=prescription.prescription_id,
            lines=(LineInput(request, cip13=data.cip13),),
            paper=prescription,
            patient_address=data.patient_address.strip(),
            fingerprint=fingerprint,
        )
        try:
            result = self._dispenser().dispense(key, dispensation, ctx, degraded=False)
        except IdempotencyKeyReused:  # another regimen or box already dispensed for this test
            raise ProtocolAlreadyDispensed() from None
        self._link(trod_id, str(result.body["id"]))
        if not result.replayed:
            log.info("trod_protocol_dispensed", trod_id=trod_id, dispensation_id=result.body["id"])
            publish(
                self._events,
                "trod.dispensed",
                {"id": trod_id, "dispensation_id": result.body["id"]},
            )
        return result

    def _earlier(self, prescription_id: str, fingerprint: str) -> DispensationResult | None:
        """The answer of the test's protocol dispensation when there is one (whatever counter
        made it): the same request gets it again; another one (regimen, box) is refused."""
        with self._db.uow(readonly=True) as uow:
            key = uow.session.execute(
                select(DispensationRow.idempotency_key).where(
                    DispensationRow.prescription_id == prescription_id
                )
            ).scalar_one_or_none()
            claimed = uow.session.get(IdempotencyKey, key) if key else None
            if claimed is None:
                return None
            if claimed.request_hash != fingerprint:
                raise ProtocolAlreadyDispensed()
            return DispensationResult(
                claimed.status_code, json.loads(claimed.response), replayed=True
            )

    def _prescription(
        self, row: TrodTestRow, regimen: Regimen, data: ProtocolDispenseInput, actor: Actor
    ) -> Prescription:
        product = self._catalog.product(data.cip13)
        if product is None or self._catalog.pack(data.cip13) is None:
            raise InvalidInput("Antibiotique absent du catalogue : scanner une boîte connue.")
        substance = _plain(f"{product.molecule or ''} {product.name}")
        if regimen.molecule not in substance:
            raise InvalidInput(f"Ce produit n'est pas de la {regimen.molecule} du protocole.")
        unit_mg = data.unit_mg or strength_mg(product.name)
        if unit_mg is None or unit_mg <= 0:
            raise InvalidInput("Dosage par unité illisible : préciser unit_mg (mg par unité).")
        criteria = json.loads(row.criteria)
        weight = Decimal(criteria["weight_kg"]) if criteria.get("weight_kg") else None
        try:
            dose = regimen.dose_mg(int(criteria["age_min"]), weight)
        except ValueError:
            raise InvalidInput("Poids du patient requis pour la dose d'un enfant.") from None
        per_intake = regimen.units_per_intake(dose, unit_mg)
        line = PrescriptionLine(1, product, per_intake * regimen.intakes_per_day, regimen.days)
        prescriber = (
            f"{actor.name} - pharmacien prescripteur (protocole TROD {row.test}, {PROTOCOL_TEXT})"
        )
        prescription = Prescription(
            prescription_id=prescription_id_of(row.id),
            source=PrescriptionSource.PROTOCOL,
            prescribed_on=local_date(self._clock()),
            prescriber_rpps=actor.rpps,
            lines=(line,),
            patient_id=row.patient_id,
            # The pharmacist prescribes at the pharmacy: its address is the prescriber's.
            extra={
                "prescriber_name": prescriber[:200],
                "protocol": regimen.code,
                "prescriber_address": ", ".join(p for p in self.pharmacy if p)[:300],
                "trod_id": row.id,
                "posology": regimen.label,
            },
        )
        return prescription

    def _link(self, trod_id: str, dispensation_id: str) -> None:
        """Note the dispensation on the test (first one only: a replay changes nothing)."""
        with self._db.uow() as uow:
            uow.session.execute(
                update(TrodTestRow)
                .where(TrodTestRow.id == trod_id, TrodTestRow.dispensation_id.is_(None))
                .values(dispensation_id=dispensation_id)
            )
            uow.commit()

    # ------------------------------------------------------------ reads

    def get(self, trod_id: str) -> TrodView:
        return self._store.get(trod_id)

    def search(
        self,
        *,
        patient_id: str | None = None,
        start: date | None = None,
        end: date | None = None,
        test: TrodTest | None = None,
        limit: int = 200,
    ) -> list[TrodView]:
        return self._store.search(
            patient_id=patient_id,
            start=start,
            end=end,
            kind=test.value if test else None,
            limit=limit,
        )

    def referral(self, trod_id: str) -> str:
        """The letter to a doctor, printed for the patient (HTML): the test, the patient's name
        and birth date, the pharmacy."""
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(TrodTestRow, trod_id)
            if row is None:
                raise ActNotFound("Test introuvable.")
            facts = patient_facts(uow.session, row.patient_id)
            view = _view(row)
        return render_referral(view, facts.display_name, facts.birth_date_raw, self.pharmacy)


# ---------------------------------------------------------------- helpers


def prescription_id_of(trod_id: str) -> str:
    """The protocol prescription's id: one per test, so a second dispensation of the same test
    finds the first (and its rules see the treatment as already delivered)."""
    return "TROD" + uuid.UUID(trod_id).hex[:20].upper()


def strength_mg(name: str) -> Decimal | None:
    """The strength per unit in a product name ("AMOXICILLINE X 1 g, comprimé" → 1000)."""
    match = _STRENGTH.search(name)
    if match is None:
        return None
    value = Decimal(match.group(1).replace(",", "."))
    return value * 1000 if match.group(2).lower() == "g" else value


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _protocol_input(
    test: TrodTest, ages: tuple[int, int], sex: str | None, criteria: Criteria
) -> ProtocolInput:
    return ProtocolInput(
        test,
        ages[0],
        ages[1],
        sex,
        criteria.temperature_c,
        MacIsaac(criteria.no_cough, criteria.tender_nodes, criteria.tonsil_swelling),
        criteria.exclusions,
        criteria.previous_episodes_12_months,
        criteria.allergy,
        criteria.weight_kg,
    )


def _criteria_json(criteria: Criteria) -> dict[str, Any]:
    return {
        "temperature_c": str(criteria.temperature_c) if criteria.temperature_c else None,
        "no_cough": criteria.no_cough,
        "tender_nodes": criteria.tender_nodes,
        "tonsil_swelling": criteria.tonsil_swelling,
        "exclusions": sorted(e.value for e in criteria.exclusions),
        "previous_episodes_12_months": criteria.previous_episodes_12_months,
        "allergy": criteria.allergy.value,
        "weight_kg": str(criteria.weight_kg) if criteria.weight_kg else None,
    }


def _criteria_from_json(data: dict[str, Any]) -> Criteria:
    return Criteria(
        temperature_c=Decimal(data["temperature_c"]) if data.get("temperature_c") else None,
        no_cough=data["no_cough"],
        tender_nodes=data["tender_nodes"],
        tonsil_swelling=data["tonsil_swelling"],
        exclusions=frozenset(Exclusion(e) for e in data["exclusions"]),
        previous_episodes_12_months=data["previous_episodes_12_months"],
        allergy=Allergy(data["allergy"]),
        weight_kg=Decimal(data["weight_kg"]) if data.get("weight_kg") else None,
    )


def _stored_decision(row: TrodTestRow) -> ProtocolDecision:
    """The protocol decision as it was at the test (ages and sex of that day)."""
    data = json.loads(row.criteria)
    ages = (int(data["age_min"]), int(data["age_max"]))
    return assess_protocol(
        _protocol_input(TrodTest(row.test), ages, data.get("sex"), _criteria_from_json(data))
    )


def _regimen_for(row: TrodTestRow, decision: ProtocolDecision, code: str) -> Regimen:
    readings = {k: Reading(v) for k, v in json.loads(row.readings).items()}
    refusals = [{"code": c.code, "message": c.message} for c in decision.refusals]
    if not protocol_applies(TrodTest(row.test)) or not decision.within:
        raise ProtocolNotApplicable(
            "Patient hors des critères du protocole : orienter vers un médecin.", refusals=refusals
        )
    if not row.positive:
        raise ProtocolNotApplicable("Test négatif : pas d'antibiotique.", refusals=refusals)
    if not conclusive(readings):
        raise ProtocolNotApplicable("Résultat ininterprétable : refaire le test ou orienter.")
    allowed = {r.code: r for r in decision.regimens}
    if code not in allowed:
        raise InvalidInput(
            f"Traitement hors protocole pour ce patient ; possibles : {', '.join(allowed)}."
        )
    return allowed[code]


def next_step(row: TrodTestRow, readings: dict[str, str]) -> str:
    """What the counter does after the test: dispense, refer, or nothing (advice only)."""
    if not protocol_applies(TrodTest(row.test)):
        return "none"
    if row.dispensation_id:
        return "dispensed"
    if not row.within_protocol or not conclusive({k: Reading(v) for k, v in readings.items()}):
        return "refer"
    return "dispense" if row.positive else "none"


def to_document_result(row: TrodTestRow, actor: Actor) -> TrodResult:
    """The documents part's input model for one recorded test (the adapter to BIO-TROD)."""
    readings = tuple(
        TrodReading(TrodAnalyte(analyte), TrodOutcome(outcome))
        for analyte, outcome in sorted(json.loads(row.readings).items())
    )
    return TrodResult(
        test=TrodKind(row.test),
        performed_at=row.performed_at.astimezone(PHARMACY_TZ),
        readings=readings,
        kit=TrodKit(row.kit_manufacturer, row.kit_reference, row.kit_lot, row.kit_expiry),
        performer=performer(actor, row.pharmacist_national_id),
    )


def _view(row: TrodTestRow) -> TrodView:
    criteria = json.loads(row.criteria)
    readings: dict[str, str] = json.loads(row.readings)
    regimens: tuple[RegimenView, ...] = ()
    if row.within_protocol:
        regimens = tuple(
            RegimenView(r.code, r.label, r.first_line) for r in _stored_decision(row).regimens
        )
    return TrodView(
        id=row.id,
        patient_id=row.patient_id,
        test=row.test,
        performed_at=row.performed_at.isoformat(),
        created_at=row.created_at.isoformat(),
        kit=TrodKitView(
            manufacturer=row.kit_manufacturer,
            reference=row.kit_reference,
            lot=row.kit_lot,
            expiry=row.kit_expiry.isoformat() if row.kit_expiry else None,
        ),
        readings=readings,
        positive=row.positive,
        criteria=CriteriaView(**{**criteria, "exclusions": tuple(criteria["exclusions"])}),
        protocol=ProtocolView(
            applies=protocol_applies(TrodTest(row.test)),
            within=row.within_protocol,
            score=criteria.get("score"),
            refusals=tuple(CodedReason(**r) for r in json.loads(row.refusals)),
            regimens=regimens,
            next=next_step(row, readings),
        ),
        professional=TrodProfessional(
            rpps=row.pharmacist_rpps,
            national_id=row.pharmacist_national_id,
            name=row.pharmacist_name,
            session_id=row.session_id,
            counter=row.counter_name,
        ),
        document_id=row.document_id,
        document_skipped=row.document_skipped,
        dispensation_id=row.dispensation_id,
    )
