"""Crash tests: the process is SIGKILLed at each step of a dispensation and of an outbox delivery,
then restarted. Nothing acknowledged is lost; nothing is recorded or reported twice.

Children are real processes from a multiprocessing forkserver that preloaded lgo once: killing
one is a real SIGKILL of a process holding a database transaction or an HTTP exchange.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hwsim.national.eprescription import store_of
from lgo.services import ordonnancier
from lgo.store.db import Database
from lgo.store.models import Patient
from lgo.store.models.dispensing import DispensationRow, OrdonnancierEntry, OutboxMessage
from tests.fixtures.national import NationalSim
from tests.integration.dispensing import crash_child

pytestmark = pytest.mark.integration

DISPENSATION_STEPS = [
    ("dispensation.after_key_claim", False),
    ("dispensation.after_lines", False),
    ("dispensation.after_ordonnancier", False),
    ("dispensation.before_commit", False),
    ("dispensation.after_commit", True),  # committed, never acknowledged
]
OUTBOX_STEPS = [
    ("outbox.after_claim", 1),  # the restart sends it: one POST in all
    ("outbox.after_remote_call", 2),  # remote recorded it; the restart re-sends, remote replays
    ("outbox.after_mark_delivered", 1),  # done; the restart finds nothing to send
]


@pytest.fixture(scope="module")
def spawner() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.integration.dispensing.crash_child"])
    return ctx


def child(
    ctx: Any, tmp_path: Path, mode: str, *args: str, fault: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    """Run one step in a child process; (exit code, acknowledgement or None)."""
    ack = tmp_path / f"ack-{mode}-{fault or 'none'}.json"
    ack.unlink(missing_ok=True)
    process = ctx.Process(target=crash_child.run, args=(mode, args, fault, str(ack)))
    process.start()
    process.join(120)
    answer = json.loads(ack.read_text()) if ack.exists() else None
    return process.exitcode, answer


def counts(db: Database) -> tuple[int, int, int]:
    with db.uow(readonly=True) as uow:
        return tuple(  # type: ignore[return-value]
            int(uow.session.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (DispensationRow, OrdonnancierEntry, OutboxMessage)
        )


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    now = datetime.now(UTC)
    with sqlite_db.uow() as uow:
        uow.session.add(
            Patient(
                id=crash_child.PATIENT_ID,
                created_at=now,
                updated_at=now,
                birth_name="FICTIF",
                given_names="ALEX",
                birth_date_raw="19900101",
                source="typed",
            )
        )
        uow.commit()
    return sqlite_db


@pytest.mark.parametrize(("point", "committed"), DISPENSATION_STEPS)
def test_dispensation_killed_at_each_step(
    db: Database, spawner: Any, tmp_path: Path, point: str, committed: bool
) -> None:
    code, answer = child(spawner, tmp_path, "dispense", db.url, "crash-key-0001", fault=point)
    assert (code, answer) == (-signal.SIGKILL, None)
    assert counts(db) == ((1, 1, 1) if committed else (0, 0, 0))
    # the counter retries with the same key once the daemon is back
    code, answer = child(spawner, tmp_path, "dispense", db.url, "crash-key-0001")
    assert code == 0 and answer is not None
    assert answer["status"] == 201
    assert answer["body"]["lines"][0]["ordonnancier_number"] == 1
    assert counts(db) == (1, 1, 1)
    # and once more: the same answer, nothing new
    assert child(spawner, tmp_path, "dispense", db.url, "crash-key-0001") == (0, answer)
    assert counts(db) == (1, 1, 1)
    assert ordonnancier.verify(db).ok


@pytest.mark.parametrize(("point", "posts"), OUTBOX_STEPS)
def test_outbox_delivery_killed_at_each_step(
    db: Database, national_sim: NationalSim, spawner: Any, tmp_path: Path, point: str, posts: int
) -> None:
    assert child(spawner, tmp_path, "dispense", db.url, "crash-key-0002")[0] == 0
    sim_url = national_sim.url("/eprescription/fhir")
    code, answer = child(spawner, tmp_path, "deliver", db.url, sim_url, "0", fault=point)
    assert (code, answer) == (-signal.SIGKILL, None)
    # restarted later: the dead worker's lease has expired
    code, answer = child(spawner, tmp_path, "deliver", db.url, sim_url, "120")
    assert code == 0 and answer is not None
    with db.uow(readonly=True) as uow:
        assert list(uow.session.execute(select(OutboxMessage.status)).scalars()) == ["delivered"]
    assert store_of(national_sim.state).executions() == 1
    sent = [e for e in national_sim.recorder.entries("eprescription") if e.method == "POST"]
    assert len(sent) == posts
    assert len({e.headers.get("idempotency-key") for e in sent}) == 1
