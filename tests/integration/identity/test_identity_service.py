"""Identity service on real databases (SQLite, PostgreSQL): INS retrieval and verification,
status history, work list, duplicate INS, and the guard that keeps unqualified INS inside."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from lgo.core.events import EventBus
from lgo.domain.identity import IdentityStatus, Ins, InsOid, RawBirthDate, Traits, with_key
from lgo.national.insi import InsiIdentity, InsiNotFound, InsiUnavailable, VitaleQuery
from lgo.services.identity import (
    DuplicateIns,
    IdentityInvalid,
    IdentityNotQualified,
    IdentityOnWorkList,
    IdentityService,
    InsMissing,
    NewPatient,
    PatientUnknown,
)
from lgo.store.db import Database
from lgo.store.models import IdentityWorkItem, Patient, PatientIdentityCheck

from .conftest import InsiSim

pytestmark = pytest.mark.integration

NIR = with_key("1620175112034")
RPPS = "10999999998"
DOMINIQUE = NewPatient("Testseul", "Dominique", "19620101", sex="M", nir=NIR)


def _identity(
    nir13: str = "1620175112034", names: tuple[str, ...] = ("DOMINIQUE",)
) -> InsiIdentity:
    return InsiIdentity(
        ins=Ins.of(with_key(nir13), InsOid.TEST),
        birth_name="TESTSEUL",
        given_names=names,
        sex="M",
        birth_date=RawBirthDate.parse("19620101"),
        birthplace="75112",
    )


@dataclass
class FakeInsi:
    """Unit-level stand-in: answers (or raises) what the test scripted, records the calls."""

    answers: list[InsiIdentity | Exception] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def _next(self, kind: str) -> InsiIdentity:
        self.calls.append(kind)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def search_by_traits(self, traits: Traits, *, author_rpps: str | None) -> InsiIdentity:
        return self._next("traits")

    def search_by_vitale(self, query: VitaleQuery, *, author_rpps: str | None) -> InsiIdentity:
        return self._next("vitale")


def _service(
    db: Database, insi: FakeInsi | object, events: EventBus | None = None
) -> IdentityService:
    return IdentityService(db, insi, events=events)  # type: ignore[arg-type]


def test_full_path_to_qualified_then_ko_blocks_ins(any_db: Database) -> None:
    events = EventBus()
    insi = FakeInsi([_identity(), InsiNotFound()])
    service = _service(any_db, insi, events)
    patient = service.create_patient(DOMINIQUE, source="vitale")
    assert patient.status is IdentityStatus.PROV
    with pytest.raises(IdentityNotQualified):
        service.require_qualified_ins(patient.id)

    recovered = service.retrieve_ins(patient.id, author_rpps=RPPS)
    assert recovered.status is IdentityStatus.RECUP
    assert recovered.ins == Ins.of(NIR, InsOid.TEST)
    assert recovered.birthplace == "75112"  # INSi's reference traits replace the local ones
    with pytest.raises(IdentityNotQualified):  # RECUP is not enough
        service.require_qualified_ins(patient.id)
    assert service.qualified_ins(patient.id) is None

    qualified = service.record_document_check(patient.id, "cni", author_rpps=RPPS)
    assert qualified.status is IdentityStatus.QUAL and qualified.ins_usable
    assert service.require_qualified_ins(patient.id) == Ins.of(NIR, InsOid.TEST)
    assert service.qualified_ins(patient.id) == (NIR, InsOid.TEST.value)

    after_ko = service.verify_ins(patient.id, author_rpps=RPPS)
    assert after_ko.status is IdentityStatus.VALI
    assert after_ko.on_work_list and not after_ko.ins_usable
    with pytest.raises(IdentityOnWorkList):
        service.require_qualified_ins(patient.id)
    assert [w.reason for w in service.work_list()] == ["verification_not_found"]
    assert [
        (c.kind, c.outcome, c.status_before, c.status_after) for c in service.checks(patient.id)
    ] == [
        ("insi_traits", "found", "provisional", "recovered"),
        ("document", "checked", "recovered", "qualified"),
        ("insi_verify", "not_found", "qualified", "validated"),
    ]
    changes = [e.data for e in events.recent() if e.type == "patient.identity_changed"]
    assert [c["status"] for c in changes] == ["recovered", "qualified", "validated"]
    assert set(changes[-1]) == {"patient_id", "status", "on_work_list"}  # ids only


def test_successful_reverification_resolves_the_work_list(sqlite_db: Database) -> None:
    insi = FakeInsi([_identity(), InsiNotFound(), _identity()])
    service = _service(sqlite_db, insi)
    patient = service.create_patient(DOMINIQUE)
    service.retrieve_ins(patient.id, author_rpps=RPPS)
    service.record_document_check(patient.id, "passeport", author_rpps=RPPS)
    service.verify_ins(patient.id, author_rpps=RPPS)
    assert service.work_list()
    resolved = service.retrieve_ins(patient.id, author_rpps=RPPS)  # VALI + INSi ok -> QUAL
    assert resolved.status is IdentityStatus.QUAL and not resolved.on_work_list
    assert service.work_list() == []
    assert service.require_qualified_ins(patient.id).matricule == NIR


def test_reverification_with_another_ins_is_a_mismatch(sqlite_db: Database) -> None:
    service = _service(sqlite_db, FakeInsi([_identity(), _identity("1620175112999")]))
    patient = service.create_patient(DOMINIQUE)
    service.retrieve_ins(patient.id, author_rpps=RPPS)
    after = service.verify_ins(patient.id, author_rpps=RPPS)
    assert after.status is IdentityStatus.PROV and after.on_work_list
    assert after.ins == Ins.of(NIR, InsOid.TEST)  # kept for the record, but blocked
    assert [w.reason for w in service.work_list()] == ["verification_mismatch"]


def test_reverification_follows_the_ins_history(sqlite_db: Database) -> None:
    newer = InsiIdentity(
        ins=Ins.of(with_key("1620175112999"), InsOid.TEST),
        birth_name="TESTSEUL",
        given_names=("DOMINIQUE",),
        sex="M",
        birth_date=RawBirthDate.parse("19620101"),
        birthplace="75112",
        history=(_history_entry(NIR),),
    )
    service = _service(sqlite_db, FakeInsi([_identity(), newer]))
    patient = service.create_patient(DOMINIQUE)
    service.retrieve_ins(patient.id, author_rpps=RPPS)
    after = service.verify_ins(patient.id, author_rpps=RPPS)
    assert not after.on_work_list
    assert after.ins is not None and after.ins.matricule == with_key("1620175112999")


def _history_entry(nir: str) -> object:
    from lgo.national.insi import HistoricIns

    return HistoricIns(Ins.of(nir, InsOid.TEST), None, "2020-01-01")


def test_insi_fault_changes_nothing_but_is_in_the_history(sqlite_db: Database) -> None:
    service = _service(sqlite_db, FakeInsi([InsiUnavailable("siram_40", None, "indisponible")]))
    patient = service.create_patient(DOMINIQUE)
    with pytest.raises(InsiUnavailable):
        service.retrieve_ins(patient.id, author_rpps=RPPS)
    assert service.get(patient.id).status is IdentityStatus.PROV
    [check] = service.checks(patient.id)
    assert (check.outcome, check.error_slug) == ("error", "insi-unavailable")


def test_same_ins_on_two_patients_is_refused_and_listed(any_db: Database) -> None:
    service = _service(any_db, FakeInsi([_identity(), _identity()]))
    first = service.create_patient(DOMINIQUE)
    second = service.create_patient(NewPatient("Testseul", "Dominique Jean", "19620101", sex="M"))
    service.retrieve_ins(first.id, author_rpps=RPPS)
    with pytest.raises(DuplicateIns):
        service.retrieve_ins(second.id, author_rpps=RPPS)
    after = service.get(second.id)
    assert after.ins is None and after.status is IdentityStatus.PROV and after.on_work_list
    assert [(w.patient_id, w.reason) for w in service.work_list()] == [(second.id, "duplicate_ins")]


def test_concurrent_status_change_is_detected(sqlite_db: Database) -> None:
    service = _service(sqlite_db, FakeInsi([_identity()]))
    patient = service.create_patient(DOMINIQUE)

    class Racing(FakeInsi):
        def search_by_traits(self, traits: Traits, *, author_rpps: str | None) -> InsiIdentity:
            # Another counter records a document check while INSi is being asked.
            service.record_document_check(patient.id, "cni", author_rpps=RPPS)
            return _identity()

    racing = _service(sqlite_db, Racing())
    with pytest.raises(Exception) as info:
        racing.retrieve_ins(patient.id, author_rpps=RPPS)
    assert getattr(info.value, "slug", "") == "identity-concurrent-change"
    assert service.get(patient.id).status is IdentityStatus.VALI


def test_document_check_rules(sqlite_db: Database) -> None:
    service = _service(sqlite_db, FakeInsi())
    patient = service.create_patient(DOMINIQUE)
    with pytest.raises(IdentityInvalid):
        service.record_document_check(patient.id, "carte_vitale", author_rpps=RPPS)
    assert service.get(patient.id).status is IdentityStatus.PROV
    checked = service.record_document_check(patient.id, "cni", author_rpps=RPPS)
    assert checked.status is IdentityStatus.VALI and checked.document_checked_at is not None
    again = service.record_document_check(patient.id, "passeport", author_rpps=RPPS)
    assert again.status is IdentityStatus.VALI
    with pytest.raises(InsMissing):  # nothing to re-verify without an INS
        service.verify_ins(patient.id, author_rpps=RPPS)
    with pytest.raises(IdentityNotQualified):
        service.require_qualified_ins(patient.id)


def test_invalid_input_stores_nothing(sqlite_db: Database) -> None:
    service = _service(sqlite_db, FakeInsi())
    for bad in (
        NewPatient("Test0", "A", "19620101"),
        NewPatient("TEST", "A", "1962-13"),
        NewPatient("TEST", "A", "19620101", nir=NIR[:-2] + "00"),
        NewPatient("TEST", "", "19620101"),
    ):
        with pytest.raises(IdentityInvalid):
            service.create_patient(bad)
    with sqlite_db.uow(readonly=True) as uow:
        assert uow.session.scalars(select(Patient)).all() == []
    with pytest.raises(PatientUnknown):
        service.require_qualified_ins("nope")


def test_lunar_date_and_corsican_nir_round_trip(any_db: Database) -> None:
    service = _service(any_db, FakeInsi())
    nir = with_key("180052A123456")
    created = service.create_patient(NewPatient("Testlune", "Sacha", "19800000", sex="M", nir=nir))
    again = service.get(created.id)
    assert again.birth_date == "19800000" and again.nir == nir
    assert [p.id for p in service.search(name="testl", birth_date="1980-00-00")] == [created.id]
    assert [p.id for p in service.search(nir=nir.lower())] == [created.id]


def test_card_read_does_not_duplicate_a_known_patient(sqlite_db: Database) -> None:
    service = _service(sqlite_db, FakeInsi())
    first = service.create_from_card(DOMINIQUE, source="vitale")
    second = service.create_from_card(DOMINIQUE, source="vitale")
    twin = service.create_from_card(
        NewPatient("Testseul", "Camille", "19620101", sex="F", nir=NIR, rank=2), source="apcv"
    )
    assert first.id == second.id != twin.id
    with pytest.raises(IdentityInvalid):
        service.create_from_card(NewPatient("Testseul", "Camille", "19620101"), source="vitale")


def test_two_counters_reading_the_same_card_create_one_patient(any_db: Database) -> None:
    service = _service(any_db, FakeInsi())
    barrier = threading.Barrier(4)

    def read() -> str:
        barrier.wait(timeout=10)
        return service.create_from_card(DOMINIQUE, source="vitale").id

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: read(), range(4)))
    assert len(set(ids)) == 1
    with any_db.uow(readonly=True) as uow:
        assert len(uow.session.scalars(select(Patient.id)).all()) == 1


def test_against_the_simulator_over_http(sqlite_db: Database, insi_sim: InsiSim) -> None:
    with insi_sim.client() as client:
        service = IdentityService(sqlite_db, client)
        lea = service.create_from_card(
            NewPatient(
                "Testcorse", "Léa", "20150901", sex="F", nir=with_key("215092B033102"), rank=2
            ),
            source="vitale",
        )
        mother = with_key("278072B033012")
        by_card = service.retrieve_ins(
            lea.id,
            author_rpps=RPPS,
            vitale=VitaleQuery(
                "TESTCORSE", RawBirthDate.parse("20150901"), insured_nir=mother, rank=2
            ),
        )
        assert by_card.status is IdentityStatus.RECUP
        assert by_card.ins is not None and by_card.ins.matricule == with_key("215092B033102")
        verified = service.verify_ins(lea.id, author_rpps=RPPS)
        assert verified.status is IdentityStatus.RECUP and not verified.on_work_list

        # A local trait edited wrongly: INSi no longer finds the person -> work list.
        with sqlite_db.uow() as uow:
            uow.session.execute(
                update(Patient).where(Patient.id == lea.id).values(birth_name="TESTCORS")
            )
            uow.commit()
        blocked = service.verify_ins(lea.id, author_rpps=RPPS)
        assert blocked.status is IdentityStatus.PROV and blocked.on_work_list
    with sqlite_db.uow(readonly=True) as uow:
        reasons = uow.session.scalars(select(IdentityWorkItem.reason)).all()
        checks = uow.session.scalars(select(PatientIdentityCheck.outcome)).all()
        opened = uow.session.scalars(select(IdentityWorkItem.opened_at)).all()
    assert reasons == ["verification_not_found"]
    assert checks == ["found", "found", "not_found"]
    assert datetime.now(UTC) >= opened[0]
