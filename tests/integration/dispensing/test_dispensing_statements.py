"""What one dispensation sends to the database (issue #20): each row written once, nothing read
twice, and the ordonnancier head locked last, on SQLite and PostgreSQL.

The statements are captured at the driver, below SQLAlchemy (the commit's hot statements run on
the DB-API cursor, ``lgo.store.db.execute_on_driver``, which SQLAlchemy's events never see): on
SQLite every statement the library really runs (``sqlite3``'s trace callback), on PostgreSQL every
statement handed to a psycopg cursor. They are reduced to "verb table" so the assertion is about
behaviour (which rows, in which order), not about SQL text. A statement added to the commit path
fails here: update the list only with a reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from structlog.testing import capture_logs

from lgo.bootstrap.container import Container
from lgo.bootstrap.documents import part_of as documents_part_of
from lgo.core.events import EventBus
from lgo.core.plain import plain
from lgo.core.settings import Settings
from lgo.domain.prescription import PrescriptionLine
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.services import ordonnancier
from lgo.services.dispensing import DispensationInput, DispensingService
from lgo.services.dispensing_errors import DispensingRefused
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models import Patient
from lgo.store.models.dispensing import DispensationLineRow, OrdonnancierEntry
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PHARMACIST_RPPS,
    PLAIN_PRODUCT,
    cip13,
    dispensation_input,
    make_patient,
    paper,
    pharmacist,
    unchanged,
)
from tests.fixtures.statements import captured, captured_messages

pytestmark = pytest.mark.integration


def _lock(db: Database) -> str:
    """PostgreSQL takes row locks; SQLite holds the writer lock from BEGIN IMMEDIATE."""
    return " LOCK" if db.dialect == "postgresql" else ""


def _numbered_tail(db: Database) -> list[str]:
    """What follows the ordonnancier head's lock. PostgreSQL (ordoappend_0001): one function, first
    in the COMMIT's message, locks the head, numbers, chains and inserts the entries and moves the
    head; the lines and the stored answer read the numbers it gave. SQLite: Python numbers."""
    if db.dialect == "postgresql":
        return [
            "SELECT ordonnancier_append()",  # from here the other counters wait
            "INSERT dispensation_lines",  # with its ordonnancier number: no insert-then-update
            "UPDATE idempotency_keys",  # the answer, which shows the numbers
        ]
    return [
        "SELECT ordonnancier_head",  # from here the other counters wait
        "INSERT dispensation_lines",  # with its ordonnancier number: no insert-then-update
        "INSERT ordonnancier_entries",
        "UPDATE idempotency_keys",  # the answer, which shows the numbers
        "UPDATE ordonnancier_head",  # the last write before the commit
    ]


def _before_head(db: Database) -> list[str]:
    """The writes that need no ordonnancier number. PostgreSQL: the outbox message is sent at once
    (the answer shows its id); the dispensation's insert needs no answer, so it leaves first in
    the COMMIT's message, before the head's lock (one round trip less)."""
    outbox = "INSERT outbox_messages"  # the execution report (an e-prescription typed in)
    if db.dialect == "postgresql":
        return [outbox, "INSERT dispensations"]
    return ["INSERT dispensations", outbox]


def _service(db: Database, woken: list[int]) -> DispensingService:
    return DispensingService(
        db,
        EventBus(),
        InMemoryCatalog([LIST_I_PRODUCT, PLAIN_PRODUCT]),
        pharmacy_finess="750000000",
        on_commit=lambda: woken.append(1),
    )


def test_first_dispensation_writes_each_row_once_and_locks_the_head_last(any_db: Database) -> None:
    woken: list[int] = []
    service = _service(any_db, woken)
    patient = make_patient(any_db)
    data = dispensation_input(patient, paper("STMT00000001", eprescription=True))
    with captured(any_db) as statements:
        result = service.dispense("stmt-key-0001", data, pharmacist(), degraded=False)
    assert result.status_code == 201
    assert statements == [
        # Claimed first, in one statement (ON CONFLICT DO NOTHING: no read before): a same-key
        # request waits on it.
        "INSERT idempotency_keys",
        # The typed copy, written once in one statement; its new row is held by the insert: one
        # commit per prescription at a time.
        "INSERT prescriptions",
        # The patient and the history (rules, seq and renewal number) in one read, once the
        # prescription is held.
        "SELECT patients",
        *_before_head(any_db),
        *_numbered_tail(any_db),
    ]
    assert woken == [1]  # a message was queued: the outbox worker is woken


def test_head_is_taken_after_every_write_that_needs_no_number(any_db: Database) -> None:
    service = _service(any_db, [])
    patient = make_patient(any_db)
    data = dispensation_input(patient, paper("STMT00000002", eprescription=True))
    with captured(any_db) as statements:
        service.dispense("stmt-key-0002", data, pharmacist(), degraded=False)
    tail = _numbered_tail(any_db)
    head = statements.index(tail[0])
    # Only the numbered rows follow the lock (SQLite: moving the head is the very last statement;
    # PostgreSQL: the server moves it inside the first statement of the COMMIT's message).
    assert statements[head:] == tail
    before = statements[:head]
    assert {"INSERT dispensations", "INSERT outbox_messages", "INSERT prescriptions"} <= set(before)


def test_replay_finds_the_key_taken_and_reads_its_answer(any_db: Database) -> None:
    """The key's insert finds it taken (nothing inserted), then its stored answer is read: two
    statements for a replay, so that a first request needs one. PostgreSQL: the typed copy's
    insert and the commit's read left in the claim's pipeline (a first request's round trip
    saved); the replay's transaction rolls them back."""
    woken: list[int] = []
    service = _service(any_db, woken)
    patient = make_patient(any_db)
    data = dispensation_input(patient, paper("STMT00000003", eprescription=True))
    first = service.dispense("stmt-key-0003", data, pharmacist(), degraded=False)
    with captured(any_db) as statements:
        again = service.dispense("stmt-key-0003", data, pharmacist(), degraded=False)
    assert again.replayed and again.body == first.body
    with_claim = (
        ["INSERT prescriptions", "SELECT patients"] if any_db.dialect == "postgresql" else []
    )
    assert statements == ["INSERT idempotency_keys", *with_claim, "SELECT idempotency_keys"]
    assert woken == [1]  # the replay queued nothing and woke nobody


def test_line_outside_the_ordonnancier_never_touches_the_head(any_db: Database) -> None:
    """A plain medicine: no entry, so no head lock at all; a paper prescription reports nothing,
    so the outbox worker is not woken."""
    woken: list[int] = []
    service = _service(any_db, woken)
    patient = make_patient(any_db)
    rx = paper("STMT00000004", PrescriptionLine(1, PLAIN_PRODUCT, Decimal(1), 30))
    data = dispensation_input(patient, rx, unchanged(cip=PLAIN_PRODUCT.packs[0].cip13))
    with captured(any_db) as statements:
        result = service.dispense("stmt-key-0004", data, pharmacist(), degraded=False)
    assert result.status_code == 201
    assert statements == [
        "INSERT idempotency_keys",
        "INSERT prescriptions",
        "SELECT patients",
        "INSERT dispensations",
        "INSERT dispensation_lines",
        "UPDATE idempotency_keys",
    ]
    assert woken == []


MORPHINE = Product(
    cip13("4000099"),
    "MORPHINE TEST LP 10 mg",
    RegulatoryList.STUPEFIANT,
    molecule="morphine-test",
    packs=(Pack(cip13("4000099"), 14, 900),),
)


def test_covered_periods_come_with_the_patient_read(any_db: Database) -> None:
    """A stupéfiant line: the periods the patient has covered by other prescriptions for the same
    substance are part of the commit's one read (no query of their own), and still block an
    overlapping delivery (chevauchement)."""
    service = DispensingService(any_db, EventBus(), InMemoryCatalog([MORPHINE]))
    patient = make_patient(any_db)
    box = MORPHINE.packs[0].cip13

    def morphine(prescription_id: str) -> DispensationInput:
        rx = paper(prescription_id, PrescriptionLine(1, MORPHINE, Decimal(1), 7))
        return dispensation_input(patient, rx, unchanged(days=7, cip=box))

    with captured(any_db) as statements:
        first = service.dispense(
            "stmt-key-m1", morphine("STMTM0000001"), pharmacist(), degraded=False
        )
    assert first.status_code == 201, first.body
    assert statements[:3] == ["INSERT idempotency_keys", "INSERT prescriptions", "SELECT patients"]
    assert "SELECT dispensation_lines" not in statements
    with pytest.raises(DispensingRefused) as refused:
        service.dispense("stmt-key-m2", morphine("STMTM0000002"), pharmacist(), degraded=False)
    assert [r["code"] for r in refused.value.extra["refusals"]] == ["overlap"]


@pytest.mark.postgres
def test_postgresql_sends_two_round_trips_for_a_listed_and_a_narcotic_line(
    pg_db: Database,
) -> None:
    """Round trips, not only statements: the key's claim (with psycopg's BEGIN, in a pipeline)
    runs before anything else, the typed prescription's insert and the read after it in the same
    pipeline (the insert first: the read comes after the row is held); everything else (the
    dispensation, the register, the server-side append, the lines, the stored answer) leaves with
    the COMMIT in one message, the head's lock after the writes that need no number."""
    service = DispensingService(pg_db, EventBus(), InMemoryCatalog([LIST_I_PRODUCT, MORPHINE]))

    def both(tag: str) -> DispensationInput:
        rx = paper(
            f"STMTRT{tag}",
            PrescriptionLine(1, LIST_I_PRODUCT, Decimal(1), 30),
            PrescriptionLine(2, MORPHINE, Decimal(1), 7),
        )
        lines = (unchanged(1), unchanged(2, days=7, cip=MORPHINE.packs[0].cip13))
        return dispensation_input(make_patient(pg_db), rx, *lines)

    service.dispense("stmt-rt-1", both("000001"), pharmacist(), degraded=False)  # prepares
    second = both("000002")
    with captured_messages(pg_db) as messages:
        result = service.dispense("stmt-rt-2", second, pharmacist(), degraded=False)
    assert result.status_code == 201, result.body
    assert messages == [
        ["INSERT idempotency_keys", "INSERT prescriptions", "SELECT patients"],
        [
            "INSERT dispensations",
            "INSERT narcotics_register",
            "SELECT ordonnancier_append()",
            "INSERT dispensation_lines",
            "INSERT dispensation_lines",
            "UPDATE idempotency_keys",
        ],
    ]
    numbers = [line["ordonnancier_number"] for line in result.body["lines"]]
    assert numbers == [3, 4]  # the server's numbers, after the warm-up's 1 and 2
    assert ordonnancier.verify(pg_db).ok


def test_answer_is_the_record_as_read_back(any_db: Database) -> None:
    """The commit answers from the values it wrote; a later read gives the same record."""
    service = _service(any_db, [])
    patient = make_patient(any_db)
    data = dispensation_input(patient, paper("STMT00000005", eprescription=True))
    result = service.dispense("stmt-key-0005", data, pharmacist(), degraded=False)
    assert asdict(service.get(result.body["id"])) == result.body
    assert result.body["lines"][0]["ordonnancier_number"] is not None


def test_answer_has_the_record_s_members_in_its_order(any_db: Database) -> None:
    """The commit builds its body without the record's dataclasses: the same members in the same
    order as the record read back (its JSON is the stored answer and the response), here with a
    stupéfiant's period beside a list I line."""
    service = DispensingService(any_db, EventBus(), InMemoryCatalog([LIST_I_PRODUCT, MORPHINE]))
    rx = paper(
        "STMTORDER001",
        PrescriptionLine(1, LIST_I_PRODUCT, Decimal(1), 30),
        PrescriptionLine(2, MORPHINE, Decimal(1), 7),
    )
    lines = (unchanged(1), unchanged(2, days=7, cip=MORPHINE.packs[0].cip13))
    data = dispensation_input(make_patient(any_db), rx, *lines)
    result = service.dispense("stmt-key-order", data, pharmacist(), degraded=False)
    assert json.dumps(result.body) == json.dumps(plain(service.get(result.body["id"])))
    assert result.body["lines"][1]["period_start"] is not None


def test_renewal_reads_the_history_once_and_numbers_the_next_cycle(any_db: Database) -> None:
    """A second dispensation on the stored prescription: the history read also gives the line's
    seq and the renewal number sent to the national base (no count queries)."""
    service = _service(any_db, [])
    patient = make_patient(any_db)
    rx = paper(
        "STMT00000006",
        PrescriptionLine(1, LIST_I_PRODUCT, Decimal(1), 30, renewals=1),
        eprescription=True,
    )
    service.dispense("stmt-key-0006", dispensation_input(patient, rx), pharmacist(), degraded=False)
    with captured(any_db) as statements:
        second = service.dispense(
            "stmt-key-0007", dispensation_input(patient, rx, tag="2"), pharmacist(), degraded=False
        )
    assert second.status_code == 201, second.body
    # The typed copy finds the stored one (its insert writes nothing), which is read and locked
    # (one commit per prescription at a time); then the patient and the history in one read.
    # PostgreSQL sent a read for the typed copy with its insert (one round trip for a new one):
    # made before the row was held, it is dropped.
    sent_with_insert = ["SELECT patients"] if any_db.dialect == "postgresql" else []
    assert statements[1 : 4 + len(sent_with_insert)] == [
        "INSERT prescriptions",
        *sent_with_insert,
        f"SELECT prescriptions{_lock(any_db)}",
        "SELECT patients",
    ]
    assert "SELECT dispensation_lines" not in statements
    with any_db.uow(readonly=True) as uow:
        seqs = uow.session.execute(
            select(DispensationLineRow.seq).where(
                DispensationLineRow.prescription_id == "STMT00000006"
            )
        ).scalars()
        assert sorted(seqs) == [0, 1]
        assert (
            uow.session.execute(select(func.count()).select_from(OrdonnancierEntry)).scalar() == 2
        )
    assert ordonnancier.verify(any_db).ok


def _qualified_patient(db: Database) -> str:
    """A fictitious patient whose identity is qualified, with an INS."""
    pid = make_patient(db)
    with db.uow() as uow:
        uow.session.execute(
            update(Patient)
            .where(Patient.id == pid)
            .values(
                identity_status="qualified",
                ins_matricule="280017510000000",
                ins_oid="1.2.250.1.213.1.4.8",
            )
        )
        uow.commit()
    return pid


@pytest.mark.parametrize(("make", "qualified"), [(make_patient, False), (_qualified_patient, True)])
def test_committed_event_says_whether_the_ins_may_leave(
    sqlite_db: Database, make: Callable[[Database], str], qualified: bool
) -> None:
    """The DMP auto-feed decides from the event: no reads for a patient without a qualified INS."""
    events = EventBus()
    seen: list[dict[str, Any]] = []
    events.publish = lambda kind, data: seen.append({"type": kind, **data})  # type: ignore[method-assign]
    service = DispensingService(sqlite_db, events, InMemoryCatalog([LIST_I_PRODUCT]))
    data = dispensation_input(make(sqlite_db), paper(f"STMTQ{int(qualified):07d}"))
    service.dispense("stmt-key-q", data, pharmacist(), degraded=False)
    assert [(e["type"], e["ins_qualified"]) for e in seen] == [
        ("dispensation.committed", qualified)
    ]


@pytest.mark.parametrize("acknowledged", [False, True])
def test_one_log_line_per_dispensation(sqlite_db: Database, acknowledged: bool) -> None:
    """The commit logs one line (ids and RPPS only); an acknowledged prescriber warning is said on
    it, not on a second line."""
    service = DispensingService(sqlite_db, EventBus(), InMemoryCatalog([LIST_I_PRODUCT]))
    rx = paper(f"STMTL{int(acknowledged):07d}")
    data = dispensation_input(make_patient(sqlite_db), rx)
    if acknowledged:
        data = replace(data, acknowledged_prescriber=rx.prescriber_rpps)
    with capture_logs() as logs:
        result = service.dispense("stmt-key-log", data, pharmacist(), degraded=False)
    assert [e["event"] for e in logs] == ["dispensation_committed"]
    (line,) = logs
    assert line["dispensation_id"] == result.body["id"]
    said = {k: line.get(k) for k in ("prescriber_rpps", "pharmacist_rpps")}
    if acknowledged:
        assert line["prescriber_warning_acknowledged"] is True
        assert said == {"prescriber_rpps": rx.prescriber_rpps, "pharmacist_rpps": PHARMACIST_RPPS}
    else:
        assert "prescriber_warning_acknowledged" not in line and said == dict.fromkeys(said)
    assert set(line) <= {
        "event",
        "log_level",
        "dispensation_id",
        "degraded",
        "prescriber_warning_acknowledged",
        "prescriber_rpps",
        "pharmacist_rpps",
    }  # nothing about the patient or the prescription's contents


def test_dmp_feed_skips_an_unqualified_ins_without_reading(
    settings: Settings, sqlite_db: Database
) -> None:
    """Nothing after the commit that has nothing to do: the auto-feed records why once, from the
    event alone (the dispensation id below is not even in the database)."""
    container = Container(settings, db=sqlite_db)
    part = documents_part_of(container)

    async def feed_once() -> list[tuple[str, dict[str, Any]]]:
        container.events.bind_loop(asyncio.get_running_loop())
        watcher = container.events.open()
        task = asyncio.create_task(part.feed())
        await asyncio.sleep(0)  # the feed subscribes
        with captured(sqlite_db) as statements:
            container.events.publish(
                "dispensation.committed", {"id": "not-in-the-database", "ins_qualified": False}
            )
            seen = []
            while (event := await watcher.next(5)) is not None:
                seen.append((event.type, event.data))
                if event.type == "document.skipped":
                    break
        task.cancel()
        watcher.close()
        assert statements == []
        return seen

    try:
        seen = asyncio.run(feed_once())
    finally:
        part.dmp.close()
    assert seen[-1] == (
        "document.skipped",
        {"dispensation_id": "not-in-the-database", "reason": "ins-not-qualified"},
    )
