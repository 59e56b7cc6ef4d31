"""The ordonnancier appended by PostgreSQL itself (ordoappend_0001, 0002; issue #20): the entries it
numbers and hashes verify with the Python verifier, whatever their text holds, under concurrency,
and the dispensation's lines and stored answer carry the numbers it gave."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from lgo.domain.ordonnancier import canonical, entry_hash
from lgo.domain.prescription import PrescriptionLine
from lgo.services import ordonnancier
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store import migrate
from lgo.store.db import Database
from lgo.store.migrations.versions.ordoappend_0001_server_append import FUNCTIONS
from lgo.store.models.dispensing import DispensationLineRow, OrdonnancierEntry
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    dispensation_input,
    dispensing_service,
    make_patient,
    paper,
    pharmacist,
    unchanged,
)

pytestmark = pytest.mark.integration
OLD_APPEND = FUNCTIONS[0]  # ordoappend_0001's ordonnancier_append

AWKWARD = [
    "Guillemets \"doubles\" et 'simples'",
    "Barre \\ oblique \\\\ double, \\n pas un saut, \\u0000 pas un NUL",
    "Accents éèêàçÉ ÆŒ æœ ß",
    "Émoji 💊😀 et idéogrammes 薬局",
    "Saut\nde ligne\tet tabulation",
    "%s %(name)s %% :name $1 ? ; COMMIT; --",
    '{"number":1}',
    "",
]


def _entry(i: int, text_value: str, optional: bool) -> dict[str, Any]:
    return {
        "recorded_at": f"2026-12-03T08:00:{i % 60:02d}.123456+00:00",
        "dispensation_id": f"00000000-0000-0000-0000-{i:012d}",
        "line_no": 1 + i % 3,
        "prescription_id": f"SRV{i:011d}",
        "prescriber_rpps": "10000000001",
        "prescriber_name": text_value,
        "patient_id": f"00000000-0000-0000-0001-{i:012d}",
        "patient_name": text_value[::-1],
        "patient_address": f"{i} rue « {text_value} »",
        "product_code": "3400930000001",
        "designation": text_value or "X",
        "regulatory_list": "list_i",
        "quantity_units": 1 + i,
        "pharmacist_rpps": "10000000002",
        "prescriber_address": text_value if optional else None,
        "bearer_name": None if optional else text_value,
        "bearer_address": None,
    }


def _append(db: Database, entries: list[dict[str, Any]]) -> int:
    with db.transaction() as tx:
        ordonnancier.append_with_commit(tx.connection, entries)
        answers: list[dict[str, Any]] = [{} for _ in entries]
        ordonnancier.numbers_after_commit(tx.connection, answers)
        tx.commit()
    got = [answer["ordonnancier_number"] for answer in answers]
    assert got == list(range(got[0], got[0] + len(entries)))
    return int(got[0])


@pytest.fixture
def pg(pg_db: Database) -> Iterator[Database]:
    yield pg_db


@pytest.mark.parametrize("value", AWKWARD)
def test_cut_around_the_number_is_the_canonical_text(value: str) -> None:
    fields = _entry(7, value, optional=True)
    prefix, suffix = ordonnancier.around_number(fields)
    for number in (1, 42, 1234567):
        assert (prefix + str(number) + suffix).encode() == canonical({**fields, "number": number})


def test_awkward_entries_written_by_the_server_verify_in_python(pg: Database) -> None:
    entries = [_entry(i, value, optional=i % 2 == 0) for i, value in enumerate(AWKWARD)]
    first = _append(pg, entries[:3])
    second = _append(pg, entries[3:])
    assert (first, second) == (1, 4)
    report = ordonnancier.verify(pg)
    assert (report.ok, report.checked) == (True, len(AWKWARD))
    with pg.uow(readonly=True) as uow:
        rows = uow.session.execute(select(OrdonnancierEntry).order_by(OrdonnancierEntry.number))
        stored = [
            {name: getattr(row, name) for name in ("number", "prev_hash", "hash", *entries[0])}
            for row in rows.scalars()
        ]
    previous = "0" * 64
    for number, (row, fields) in enumerate(zip(stored, entries, strict=True), start=1):
        assert row["number"] == number
        for name, value in fields.items():
            assert row[name] == value, name  # every character as given
        assert row["prev_hash"] == previous
        assert row["hash"] == entry_hash(previous, {**fields, "number": number})
        previous = row["hash"]


def test_parallel_appends_are_gapless_and_chained(pg: Database) -> None:
    """Eight writers with their own engines (as eight daemons) append at once, many times."""
    writers, rounds = 8, 6
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []
    firsts: list[int] = []

    def writer(w: int) -> None:
        db = Database(pg.url)
        try:
            barrier.wait()
            for r in range(rounds):
                size = 1 + (w + r) % 3
                value = AWKWARD[(w + r) % len(AWKWARD)]
                firsts.append(_append(db, [_entry(w * 100 + r, value, r % 2 == 0)] * size))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(firsts) == len(set(firsts)) == writers * rounds
    total = sum(1 + (w + r) % 3 for w in range(writers) for r in range(rounds))
    report = ordonnancier.verify(pg)
    assert (report.ok, report.checked) == (True, total)


def test_entry_count_mismatch_is_refused_and_writes_nothing(pg: Database) -> None:
    with pytest.raises(Exception, match="differ"), pg.engine.begin() as conn:
        conn.execute(
            text("SELECT ordonnancier_append(CAST(:e AS jsonb), :p, :s)"),
            {"e": json.dumps([_entry(1, "a", True)]), "p": ["a", "b"], "s": ["c", "d"]},
        )
    assert ordonnancier.verify(pg).checked == 0


def _two_lines() -> tuple[PrescriptionLine, ...]:
    return tuple(PrescriptionLine(n, LIST_I_PRODUCT, Decimal(1), 30) for n in (1, 2))


def test_dispensations_in_parallel_answer_the_numbers_they_wrote(
    pg: Database, catalog: InMemoryCatalog
) -> None:
    """Real dispensations from eight services at once, patients with awkward names: the answer's
    numbers are the lines' and the entries', the stored answer replays them, the chain verifies."""
    services = [dispensing_service(Database(pg.url), catalog) for _ in range(8)]
    patients = [
        make_patient(pg, birth_name=AWKWARD[i % 5].upper() or "X", given_names=AWKWARD[(i + 2) % 5])
        for i in range(8)
    ]
    answers: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(services))

    def counter(i: int) -> None:
        try:
            barrier.wait()
            for r in range(3):
                rx = (
                    paper(f"SRVD{i:02d}{r:08d}", *_two_lines())
                    if r == 1
                    else paper(f"SRVD{i:02d}{r:08d}")
                )
                chosen = (unchanged(1), unchanged(2)) if r == 1 else ()
                data = dispensation_input(patients[i], rx, *chosen)
                key = f"srv-{i}-{r}"
                result = services[i].dispense(key, data, pharmacist(f"c{i}"), degraded=False)
                answers[f"c{i}:{key}"] = result.body
                replay = services[i].dispense(key, data, pharmacist(f"c{i}"), degraded=False)
                assert replay.body == result.body
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=counter, args=(i,)) for i in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for service in services:
        service.db.dispose()
    assert not errors, errors
    report = ordonnancier.verify(pg)
    shown = {
        (body["id"], line["line_no"]): line["ordonnancier_number"]
        for body in answers.values()
        for line in body["lines"]
        if line["ordonnancier_number"] is not None
    }
    assert report.ok and report.checked == len(shown) == 8 * 4  # one two-line dispensation each
    assert sorted(shown.values()) == list(range(1, len(shown) + 1))
    with pg.uow(readonly=True) as uow:
        entries = {
            (e.dispensation_id, e.line_no): e.number
            for e in uow.session.execute(select(OrdonnancierEntry)).scalars()
        }
        lines = {
            (x.dispensation_id, x.line_no): x.ordonnancier_number
            for x in uow.session.execute(select(DispensationLineRow)).scalars()
            if x.ordonnancier_number is not None
        }
    assert entries == lines == shown


# ------------------------------------------------- ordoappend_0002: one INSERT, the same rows


def _append_rows(conn: Connection, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """Append ``batches`` with the installed ``ordonnancier_append``, in the caller's
    transaction: what each call returned and set, then every entry as stored and the head."""
    seen: list[Any] = []
    for entries in batches:
        cut = [ordonnancier.around_number(fields) for fields in entries]
        first = conn.execute(
            text("SELECT ordonnancier_append(CAST(:e AS jsonb), :p, :s)"),
            {
                "e": json.dumps(entries, ensure_ascii=False),
                "p": [prefix for prefix, _ in cut],
                "s": [suffix for _, suffix in cut],
            },
        ).scalar_one()
        numbers = conn.execute(
            text("SELECT ordonnancier_fill(ARRAY['', '-', ''], ARRAY[0, :last])"),
            {"last": len(entries) - 1},
        ).scalar_one()
        seen.append((first, numbers))
    seen += conn.execute(text("SELECT * FROM ordonnancier_entries ORDER BY number")).all()
    seen.append(conn.execute(text("SELECT * FROM ordonnancier_head")).one())
    return seen


def _source(conn: Connection) -> str:
    return str(
        conn.execute(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'ordonnancier_append'")
        ).scalar_one()
    )


def test_one_insert_append_writes_the_first_versions_rows(pg: Database) -> None:
    """The same input through the first function (ordoappend_0001, installed for the length of a
    rolled-back transaction) and through the current one: the same numbers, rows and hashes."""
    batches = [
        [_entry(i, value, optional=i % 2 == 0) for i, value in enumerate(AWKWARD[:3])],
        [_entry(10 + i, value, optional=i % 3 == 0) for i, value in enumerate(AWKWARD[3:])],
        [_entry(20, "Seul", optional=False)],
    ]
    with pg.engine.connect() as conn:
        assert "unnest(rows)" in _source(conn)
        conn.execute(text(OLD_APPEND.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)))
        assert "unnest(rows)" not in _source(conn)
        by_first = _append_rows(conn, batches)
        conn.rollback()
    with pg.engine.begin() as conn:
        assert "unnest(rows)" in _source(conn)
        by_current = _append_rows(conn, batches)
    assert by_current == by_first
    assert by_current[:3] == [(1, "1-3"), (4, "4-8"), (9, "9-9")]
    report = ordonnancier.verify(pg)
    assert (report.ok, report.checked) == (True, 9)


def _append_any(db: Database, entries: list[dict[str, Any]]) -> None:
    if db.dialect == "postgresql":
        _append(db, entries)
        return
    with db.transaction() as tx:
        rows, head = ordonnancier.chain(ordonnancier.lock_head(tx.connection), entries)
        ordonnancier.insert_entries(tx.connection, rows)
        ordonnancier.move_head(tx.connection, head)
        tx.commit()


def test_chain_continues_across_the_upgrade_and_back(any_db: Database) -> None:
    """Entries appended before ordoappend_0002, after it and after its downgrade chain onto each
    other; SQLite (numbered in Python) goes through the same steps."""
    entries = [_entry(i, value, optional=i % 2 == 0) for i, value in enumerate(AWKWARD)]
    migrate.downgrade(any_db, "ordonnancier_append@-1")
    _append_any(any_db, entries[:2])
    migrate.upgrade(any_db)
    migrate.check(any_db)
    _append_any(any_db, entries[2:5])
    migrate.downgrade(any_db, "ordonnancier_append@-1")
    _append_any(any_db, entries[5:])
    if any_db.dialect == "postgresql":
        with any_db.engine.connect() as conn:
            assert "unnest(rows)" not in _source(conn)
    migrate.upgrade(any_db)
    report = ordonnancier.verify(any_db)
    assert (report.ok, report.checked) == (True, len(AWKWARD))
