"""A daemon-like child process for the crash tests: one dispensation or one outbox pass.

Started by :func:`run` in a fresh process (multiprocessing forkserver: modules preloaded once, each
child a clean single-threaded fork). With ``fault`` set, the child SIGKILLs itself at that step
(``LGO_FAULT_POINT``). It writes its acknowledgement (the answer a counter would get) to
``ack_path`` only once the step finished.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lgo.core.events import EventBus
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.prescription import PrescriptionLine
from lgo.domain.products import Product, RegulatoryList
from lgo.services.dispensing import DispensingService, LineInput
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from tests.fixtures.dispensing import dispensation_input, paper, pharmacist

RX_ID = "01S2TBPZ2JCNZZYGHZ"
AMOXICILLINE = "3400999999014"
PATIENT_ID = "00000000-0000-4000-8000-00000000c0de"
SESSION_ID = "00000000-0000-4000-8000-000000005e55"


def typed_copy() -> object:
    line = PrescriptionLine(
        1, Product(AMOXICILLINE, "AMOXICILLINE TEST 1 g", RegulatoryList.LIST_I), Decimal(2), 6
    )
    return paper(RX_ID, line, prescribed_on=date(2026, 1, 5), eprescription=True)


def dispense(db_url: str, key: str) -> None:
    db = Database(db_url)
    service = DispensingService(
        db, EventBus(), InMemoryCatalog(), clock=lambda: datetime(2026, 1, 5, 10, tzinfo=UTC)
    )
    line = LineInput(LineRequest(1, InterventionKind.UNCHANGED, 6), cip13=AMOXICILLINE, boxes=2)
    data = dispensation_input(PATIENT_ID, typed_copy(), line)  # type: ignore[arg-type]
    ctx = pharmacist()
    ctx = type(ctx)(**{**ctx.__dict__, "session_id": SESSION_ID})
    result = service.dispense(key, data, ctx, degraded=True)
    print(json.dumps({"status": result.status_code, "body": result.body}))


def deliver(db_url: str, sim_url: str, offset_s: float) -> None:
    from lgo.national.eprescription import EPrescriptionClient
    from lgo.national.transport import RetryPolicy
    from lgo.services.outbox import OutboxWorker

    client = EPrescriptionClient(sim_url, timeout_s=5, retry=RetryPolicy(attempts=1))
    clock = lambda: datetime.now(UTC) + timedelta(seconds=offset_s)  # noqa: E731
    worker = OutboxWorker(Database(db_url), EventBus(), client, clock=clock)
    print(json.dumps({"handled": worker.run_once()}))


def run(mode: str, args: tuple[str, ...], fault: str | None, ack_path: str) -> None:
    """Process target: one step, optionally killed at ``fault``; the ack is written last."""
    if fault:
        os.environ["LGO_FAULT_POINT"] = fault
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if mode == "dispense":
            dispense(args[0], args[1])
        else:
            deliver(args[0], args[1], float(args[2]))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    Path(ack_path).write_text(lines[-1], encoding="utf-8")
