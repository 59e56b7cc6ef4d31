"""Vaccination at the counter: record the act once, produce its note (VAC-NOTE) for the DMP and, on
request, the patient's doctor (MSSanté); search the register of acts.

Recording checks, before anything is written: the dose scanned from its GS1 DataMatrix (CIP, lot,
expiry: an expired dose is refused), the patient's eligibility for pharmacist vaccination
(:mod:`lgo.domain.vaccination`). The act is committed in its own transaction, once per
``Idempotency-Key``; the note is produced after it, through the documents part (which refuses an
unqualified INS: the act then stays recorded with ``document_skipped = "ins-not-qualified"``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any, Final, Protocol

from drivers.errors import CodeFormatError
from drivers.scanners import gs1
from drivers.scanners.classify import normalise
from lgo.core.errors import InvalidInput
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.documents.models import Vaccination, VaccinationAct, VaccinationRoute, VaccinationSite
from lgo.domain.vaccination import RULES, EligibilityInput, Vaccine, assess
from lgo.services.local_time import PHARMACY_TZ, local_date
from lgo.services.missions_common import (
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
from lgo.services.scans import ScanRecord
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models.missions import VaccinationRow

log = get_logger(__name__)


class VaccineExpired(InvalidInput):
    slug = "vaccine-expired"
    title = "Dose périmée : elle ne doit pas être administrée"


class VaccineCodeInvalid(InvalidInput):
    slug = "vaccine-code-invalid"
    title = "DataMatrix du vaccin illisible ou incomplet"


class VaccinationNotEligible(MissionRefused):
    slug = "vaccination-not-eligible"
    title = "Vaccination hors du champ du pharmacien"


@dataclass(frozen=True)
class VaccineCode:
    """What the dose's GS1 DataMatrix says."""

    gtin: str
    cip13: str
    expiry: date
    lot: str
    serial: str | None = None


def vaccine_code(datamatrix: str) -> VaccineCode:
    """Parse the DataMatrix as scanned (AIM prefix, GS separators); typed error when incomplete."""
    _, text = normalise(datamatrix)
    try:
        data = gs1.parse_gs1(text)
    except CodeFormatError as exc:
        raise VaccineCodeInvalid(f"Code GS1 non conforme : {_gs1_french(str(exc))}.") from None
    return _complete(data.gtin, data.cip13, data.expiry, data.batch, data.serial)


# The GS1 parser's (English, fixed) reasons, as the pharmacist reads them.
_GS1_REASONS: Final = {
    "expiry is not YYMMDD": "date de péremption (AI 17) pas au format AAMMJJ",
    "expiry month out of range": "mois de péremption invalide",
    "expiry day out of range": "jour de péremption invalide",
    "unknown application identifier": "identifiant d'application (AI) inconnu",
    "empty element string": "code vide",
    "control characters in element string": "caractères de contrôle dans le code",
    "repeated application identifier": "identifiant d'application (AI) répété",
    "no GTIN (AI 01)": "pas de code produit (GTIN, AI 01)",
    "GTIN check digit is wrong": "clé de contrôle du code produit (GTIN) fausse",
}
_GS1_AI_REASON: Final = re.compile(r"AI (\d+) (is too short|has a bad length)")


def _gs1_french(reason: str) -> str:
    if reason in _GS1_REASONS:
        return _GS1_REASONS[reason]
    match = _GS1_AI_REASON.fullmatch(reason)
    if match:
        return f"champ AI {match[1]} " + (
            "trop court" if match[2] == "is too short" else "de longueur invalide"
        )
    return "code illisible"


def vaccine_code_from_scan(fields: Mapping[str, str]) -> VaccineCode:
    """From the public fields of a GS1 scan kept by the scan service (``/v1/scans``)."""
    expiry = date.fromisoformat(fields["expiry"]) if "expiry" in fields else None
    return _complete(
        fields.get("gtin", ""),
        fields.get("cip13"),
        expiry,
        fields.get("batch"),
        fields.get("serial"),
    )


def _complete(
    gtin: str, cip13: str | None, expiry: date | None, lot: str | None, serial: str | None
) -> VaccineCode:
    if not cip13:
        raise VaccineCodeInvalid("Le code produit n'est pas un code CIP (GTIN 03400…).")
    if expiry is None:
        raise VaccineCodeInvalid("Date de péremption absente du DataMatrix.")
    if not lot:
        raise VaccineCodeInvalid("Numéro de lot absent du DataMatrix.")
    return VaccineCode(gtin, cip13, expiry, lot, serial)


class ScanLookup(Protocol):
    """The scan service, as a dose given by the id of a scan the daemon received is found."""

    def get(self, scan_id: str) -> ScanRecord | None: ...


@dataclass(frozen=True)
class VaccinationInput:
    """The dose is its DataMatrix as read (``datamatrix``) or the id of a scan (``scan_id``)."""

    patient_id: str
    vaccine: Vaccine
    datamatrix: str | None = None
    scan_id: str | None = None
    administered_at: datetime | None = None  # now (the service's clock)
    act: VaccinationAct = VaccinationAct.UNSPECIFIED
    route: VaccinationRoute = VaccinationRoute.INTRAMUSCULAR
    site: VaccinationSite | None = None
    dose_number: int | None = None
    immunocompromised: bool = False
    severe_reaction_history: bool = False
    product_label: str | None = None
    cis_code: str | None = None
    to_dmp: bool = True
    mss_recipient: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class Eligibility:
    """The checks before the injection (kept with the act)."""

    vaccine: str
    label: str
    eligible: bool
    age_min: int | None  # youngest possible age that day (None: birth date unreadable)
    age_max: int | None
    refusals: tuple[CodedReason, ...]
    warnings: tuple[CodedReason, ...]

    @classmethod
    def of(cls, vaccine: Vaccine, result: Any) -> Eligibility:
        return cls(
            vaccine.value,
            RULES[vaccine].label,
            result.eligible,
            result.age_min,
            result.age_max,
            tuple(CodedReason(r.code, r.message) for r in result.refusals),
            tuple(CodedReason(r.code, r.message) for r in result.warnings),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Eligibility:
        return cls(
            data["vaccine"],
            data["label"],
            data["eligible"],
            data["age_min"],
            data["age_max"],
            tuple(CodedReason(**r) for r in data["refusals"]),
            tuple(CodedReason(**r) for r in data["warnings"]),
        )


@dataclass(frozen=True)
class VaccineInfo:
    code: str
    label: str
    atc: str
    live: bool  # live attenuated vaccine
    min_age: int
    max_age: int | None


@dataclass(frozen=True)
class VaccineProduct:
    gtin: str
    cip13: str | None
    cis: str | None
    label: str
    lot: str
    expiry: str
    serial: str | None


@dataclass(frozen=True)
class ActProfessional:
    rpps: str
    national_id: str
    session_id: str
    counter: str | None


@dataclass(frozen=True)
class VaccinationView:
    """A vaccination as recorded (times in ISO 8601)."""

    id: str
    patient_id: str
    vaccine: str
    vaccine_label: str
    administered_at: str
    created_at: str
    product: VaccineProduct
    dose_number: int | None
    act: str
    route: str
    site: str | None
    professional: ActProfessional
    eligibility: Eligibility
    document_id: str | None  # the VAC-NOTE produced
    document_skipped: str | None  # why it was not
    document_problem: dict[str, Any] | None = None  # why, as a problem (this answer only)


@dataclass(frozen=True)
class Recorded:
    status_code: int
    body: VaccinationView
    replayed: bool = False


class VaccinationService:
    def __init__(
        self,
        db: Database,
        catalog: ProductCatalog,
        documents: Callable[[], DocumentProducer],
        *,
        scans: ScanLookup | None = None,
        events: EventBus | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._documents = documents
        self._scans = scans
        self._events = events
        self._clock = clock
        self._store = ActStore(
            db,
            VaccinationRow,
            VaccinationRow.administered_at,
            VaccinationRow.vaccine,
            _view,
            "Vaccination introuvable.",
        )

    def eligibility(
        self,
        patient_id: str,
        vaccine: Vaccine,
        on: date | None = None,
        *,
        immunocompromised: bool = False,
        severe_reaction_history: bool = False,
    ) -> Eligibility:
        """The eligibility checks alone (the counter's step before the injection), on ``on``
        (today at the pharmacy by default)."""
        on = on or local_date(self._clock())
        with self._db.uow(readonly=True) as uow:
            facts = patient_facts(uow.session, patient_id)
        result = assess(
            EligibilityInput(
                vaccine, facts.birth_date_raw, on, immunocompromised, severe_reaction_history
            )
        )
        return Eligibility.of(vaccine, result)

    def vaccines(self) -> list[VaccineInfo]:
        """The vaccines a pharmacist may give, with their age bounds."""
        return [
            VaccineInfo(
                rule.vaccine.value, rule.label, rule.atc, rule.live, rule.min_age, rule.max_age
            )
            for rule in RULES.values()
        ]

    def record(self, key: str, data: VaccinationInput, actor: Actor) -> Recorded:
        if data.mss_recipient:  # before anything is written
            self._documents().require_mss(data.mss_recipient)
        code = self._code(data)
        replay = self._store.replay(key, data.fingerprint)
        if replay is not None:
            return Recorded(201, replay, replayed=True)
        row = self._checked_row(key, data, code, actor)
        replay = self._store.insert(row)
        if replay is not None:  # the same key committed meanwhile by another request
            return Recorded(201, replay, replayed=True)
        log.info("vaccination_recorded", vaccination_id=row.id)
        problems: list[dict[str, Any]] = []
        if data.to_dmp or data.mss_recipient:
            vaccination = to_document_vaccination(row, actor)
            self._store.link_document(
                row.id,
                lambda: self._documents().vaccination_note(
                    row.patient_id,
                    [vaccination],
                    actor.author,
                    to_dmp=data.to_dmp,
                    mss_recipient=data.mss_recipient,
                ),
                problems,
            )
        body = replace(self.get(row.id), document_problem=first_problem(problems))
        # Ids only on the bus: which vaccine a patient received is health data.
        publish(
            self._events, "vaccination.recorded", {"id": row.id, "document_id": body.document_id}
        )
        return Recorded(201, body)

    def _code(self, data: VaccinationInput) -> VaccineCode:
        """The dose's code: its DataMatrix as read, or the GS1 scan the daemon kept."""
        if data.datamatrix is not None:
            return vaccine_code(data.datamatrix)
        record = self._scans.get(data.scan_id or "") if self._scans is not None else None
        if record is None:
            raise VaccineCodeInvalid("Scan inconnu (seuls les 50 derniers sont gardés).")
        if record.classification.kind.value != "gs1_datamatrix":
            raise VaccineCodeInvalid("Ce scan n'est pas un DataMatrix de médicament.")
        return vaccine_code_from_scan(record.classification.fields)

    def _checked_row(
        self, key: str, data: VaccinationInput, code: VaccineCode, actor: Actor
    ) -> VaccinationRow:
        """Every check before the write: expiry, product, patient, eligibility."""
        now = self._clock()
        administered_at = data.administered_at or now
        not_future(administered_at, now)
        on = local_date(administered_at)
        if code.expiry < on:
            raise VaccineExpired(
                f"Péremption le {code.expiry:%d/%m/%Y}, lot {code.lot}.",
                expiry=code.expiry.isoformat(),
            )
        label, cis = self._product(data, code)
        with self._db.uow(readonly=True) as uow:
            facts = patient_facts(uow.session, data.patient_id)
        result = assess(
            EligibilityInput(
                data.vaccine,
                facts.birth_date_raw,
                on,
                data.immunocompromised,
                data.severe_reaction_history,
            )
        )
        if not result.eligible:
            raise VaccinationNotEligible(
                "; ".join(r.message for r in result.refusals),
                refusals=[{"code": r.code, "message": r.message} for r in result.refusals],
            )
        return VaccinationRow(
            id=str(uuid.uuid4()),
            idempotency_key=key,
            request_hash=data.fingerprint,
            created_at=now,
            administered_at=administered_at,
            patient_id=data.patient_id,
            vaccine=data.vaccine.value,
            gtin=code.gtin,
            cip13=code.cip13,
            cis_code=cis,
            product_label=label[:200],
            lot_number=code.lot,
            expiry=code.expiry,
            serial=code.serial,
            dose_number=data.dose_number,
            act=data.act.value,
            route=data.route.value,
            site=data.site.value if data.site else None,
            pharmacist_rpps=actor.rpps,
            pharmacist_national_id=actor.author.national_id,
            session_id=actor.session_id,
            counter_name=actor.counter_name,
            eligibility=dumps(asdict(Eligibility.of(data.vaccine, result))),
        )

    def _product(self, data: VaccinationInput, code: VaccineCode) -> tuple[str, str]:
        """Label and CIS code: the catalogue's (BDPM) first, else what the counter typed."""
        product = self._catalog.product(code.cip13)
        label = product.name if product else data.product_label
        cis = product.code if product and product.code.isdigit() else data.cis_code
        if not label or not cis:
            raise InvalidInput("Vaccin absent du catalogue : saisir son nom et son code CIS.")
        return label, cis

    def note(
        self,
        vaccination_id: str,
        actor: Actor,
        *,
        to_dmp: bool = True,
        mss_recipient: str | None = None,
    ) -> VaccinationView:
        """The note of an act recorded without one (INS qualified since, or a crash)."""
        if mss_recipient:
            self._documents().require_mss(mss_recipient)
        problems: list[dict[str, Any]] = []
        self._store.produce_later(
            vaccination_id,
            lambda row: self._documents().vaccination_note(
                row.patient_id,
                [to_document_vaccination(row, actor)],
                actor.author,
                to_dmp=to_dmp,
                mss_recipient=mss_recipient,
            ),
            problems,
        )
        return replace(self.get(vaccination_id), document_problem=first_problem(problems))

    # ------------------------------------------------------------ reads

    def get(self, vaccination_id: str) -> VaccinationView:
        return self._store.get(vaccination_id)

    def search(
        self,
        *,
        patient_id: str | None = None,
        start: date | None = None,
        end: date | None = None,
        vaccine: Vaccine | None = None,
        limit: int = 200,
    ) -> list[VaccinationView]:
        """The register of acts, newest first; dates are local days, inclusive."""
        return self._store.search(
            patient_id=patient_id,
            start=start,
            end=end,
            kind=vaccine.value if vaccine else None,
            limit=limit,
        )


def to_document_vaccination(row: VaccinationRow, actor: Actor) -> Vaccination:
    """The documents part's input model for one recorded act (the adapter to VAC-NOTE)."""
    rule = RULES[Vaccine(row.vaccine)]
    dose = f"Dose n° {row.dose_number}" if row.dose_number else ""
    return Vaccination(
        administered_at=row.administered_at.astimezone(PHARMACY_TZ),
        product_code=row.cip13 or "",
        product_label=row.product_label,
        lot_number=row.lot_number,
        dose_label=dose,
        cis_code=row.cis_code or "",
        atc_code=rule.atc,
        atc_label=rule.atc_label,
        expiry=row.expiry,
        dose_number=row.dose_number,
        act=VaccinationAct(row.act),
        route=VaccinationRoute(row.route),
        site=VaccinationSite(row.site) if row.site else None,
        performer=performer(actor, row.pharmacist_national_id),
    )


def _view(row: VaccinationRow) -> VaccinationView:
    return VaccinationView(
        id=row.id,
        patient_id=row.patient_id,
        vaccine=row.vaccine,
        vaccine_label=RULES[Vaccine(row.vaccine)].label,
        administered_at=row.administered_at.isoformat(),
        created_at=row.created_at.isoformat(),
        product=VaccineProduct(
            gtin=row.gtin,
            cip13=row.cip13,
            cis=row.cis_code,
            label=row.product_label,
            lot=row.lot_number,
            expiry=row.expiry.isoformat(),
            serial=row.serial,
        ),
        dose_number=row.dose_number,
        act=row.act,
        route=row.route,
        site=row.site,
        professional=ActProfessional(
            rpps=row.pharmacist_rpps,
            national_id=row.pharmacist_national_id,
            session_id=row.session_id,
            counter=row.counter_name,
        ),
        eligibility=Eligibility.from_json(json.loads(row.eligibility)),
        document_id=row.document_id,
        document_skipped=row.document_skipped,
    )
