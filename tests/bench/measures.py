"""The measurements of the benchmark runner (tests/bench/run.py), each next to its physical floor.

Every function returns a list of :class:`Figure`: the measured value, the floor measured in the same
run on the same machine, and their ratio. Nothing here passes or fails on time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    floor_name: str = ""
    floor: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor == 0:
            return None
        return self.value / self.floor

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Callable[[], object], n: int) -> list[float]:
    """Durations in ms of ``n`` calls."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


# ---------------------------------------------------------------- outbox


def _clone_prescriptions(sim: Any, source: str, count: int, run: str) -> list[str]:
    import copy

    from hwsim.national.eprescription import store_of

    store = store_of(sim.state)
    template = store.prescriptions[source]
    ids = []
    for i in range(count):
        pid = f"01{run}{i:08d}"[:18].ljust(18, "0")
        clone = copy.deepcopy(template)
        clone.prescription_id = pid
        for n, line in enumerate(clone.lines, start=1):
            line.line_id = f"{pid}-{n}"
        store.prescriptions[pid] = clone
        ids.append(pid)
    return ids


class _Recording:
    """The real client, keeping the bundles it sends (to replay them raw)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def fetch(self, prescription_id: str, *, author_rpps: str) -> Any:
        return self.client.fetch(prescription_id, author_rpps=author_rpps)

    def record_execution(self, report: Any) -> Any:
        from lgo.national.eprescription import execution_bundle

        self.sent.append((report.idempotency_key, report.pharmacist_rpps, execution_bundle(report)))
        return self.client.record_execution(report)


def outbox_drain(sim: Any, tmp: Path, messages: int) -> list[Figure]:
    """Queued execution reports delivered by the outbox worker vs raw POSTs of the same bundles."""
    import httpx

    from hwsim.national.eprescription import store_of
    from lgo.core.events import EventBus
    from lgo.domain.dispensing import InterventionKind, LineRequest
    from lgo.national.eprescription import EPrescriptionClient
    from lgo.services.dispensing import DispensingService, LineInput
    from lgo.services.outbox import OutboxPolicy, OutboxWorker
    from lgo.services.prescriptions import InMemoryCatalog
    from lgo.store import migrate
    from lgo.store.db import Database
    from tests.fixtures.dispensing import dispensation_input, make_patient_for, pharmacist

    sim.reset()
    run = uuid.uuid4().hex[:6].upper().replace("0", "A")
    ids = _clone_prescriptions(sim, "01S2TBPZ2JCNZZYGHZ", messages, run)
    db = Database(f"sqlite:///{tmp / 'outbox.sqlite3'}")
    migrate.upgrade(db)
    client = EPrescriptionClient(sim.url("/eprescription/fhir"), timeout_s=5)
    sender = _Recording(client)
    service = DispensingService(db, EventBus(), InMemoryCatalog(), eprescription=client)
    patient = make_patient_for(db, "01S2TBPZ2JCNZZYGHZ")  # the clones' patient
    who = pharmacist()
    line = LineInput(LineRequest(1, InterventionKind.UNCHANGED, 6), cip13="3400999999014", boxes=2)
    for i, pid in enumerate(ids):
        view = service.load_prescription(pid, author_rpps=who.rpps)
        data = dispensation_input(patient, view.prescription, line)
        service.dispense(f"outbox-{run}-{i}", data, who, degraded=False)
    worker = OutboxWorker(db, EventBus(), sender, policy=OutboxPolicy(batch=50))
    start = time.perf_counter()
    while worker.run_once():
        pass
    drained = time.perf_counter() - start
    delivered = store_of(sim.state).executions()
    # Raw floor: the same bundles, fresh store (same ids), plain httpx on one connection.
    sim.reset()
    _clone_prescriptions(sim, "01S2TBPZ2JCNZZYGHZ", messages, run)
    url = sim.url("/eprescription/fhir/")
    with httpx.Client(timeout=5) as raw:
        start = time.perf_counter()
        for key, _rpps, bundle in sender.sent:
            response = raw.post(
                url,
                json=bundle,
                headers={"Idempotency-Key": key, "Content-Type": "application/fhir+json"},
            )
            response.raise_for_status()
        raw_s = time.perf_counter() - start
    client.close()
    db.dispose()
    ours_rate, raw_rate = delivered / drained, len(sender.sent) / raw_s
    return [
        Figure(
            "Outbox drain (claim, report, POST, receipt, mark delivered)",
            1000 / ours_rate,
            "ms/message",
            "raw httpx POST of the same bundles to the simulator",
            1000 / raw_rate,
            f"{ours_rate:.0f} msg/s vs raw {raw_rate:.0f} msg/s; {delivered}/{messages} delivered",
            {"drain_per_s": ours_rate, "raw_per_s": raw_rate, "delivered": float(delivered)},
        )
    ]
