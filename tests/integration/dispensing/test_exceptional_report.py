"""Exceptional dispensation of an expired renewable e-prescription (domain.md §6.1): committed at
the counter without a prescriber agreement, reported by the outbox, recorded once by the
simulator as a renewal beyond the prescribed count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from hwsim.national.eprescription import store_of
from lgo.core.events import EventBus
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.national.eprescription import (
    EXCEPTIONAL_RENEWAL_REASON,
    EPrescriptionClient,
    ExecutionReport,
    Intervention,
    LineExecution,
)
from lgo.national.errors import NationalServiceError, PrescriptionExpired
from lgo.national.transport import RetryPolicy
from lgo.services.dispensing import DispensingService, LineInput
from lgo.services.outbox import OutboxWorker
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models.dispensing import OutboxMessage
from tests.fixtures.dispensing import dispensation_input, make_patient_for, pharmacist
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
# Simulator fixture: atorvastatine, 30 days × (1 + 11 renewals), authored 400 days ago, valid 365
# days; the prescribed treatment ended 40 days ago (the national base says: expired).
EXPIRED_RX = "EPTEST0000000000000047"
ATORVASTATINE = "3400999999076"
# The counter's day: 25 days after the end of treatment, within the month allowed for a first
# exceptional dispensation.
COUNTER_DAY_SHIFT = timedelta(days=15)


@pytest.fixture
def client(national_sim: NationalSim) -> Iterator[EPrescriptionClient]:
    with EPrescriptionClient(
        national_sim.url("/eprescription/fhir"), timeout_s=2, retry=RetryPolicy(attempts=1)
    ) as c:
        yield c


def exceptional_line() -> LineInput:
    request = LineRequest(1, InterventionKind.MODIFIED, 30, exceptional=True)
    return LineInput(request, cip13=ATORVASTATINE, boxes=1)


def outbox_rows(db: Database) -> list[tuple[str, str | None]]:
    with db.uow(readonly=True) as uow:
        rows = uow.session.execute(select(OutboxMessage.status, OutboxMessage.last_error))
        return [(status, error) for status, error in rows]


def test_exceptional_dispensation_is_reported_and_recorded_once(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient
) -> None:
    events = EventBus()
    counter_now = datetime.now(UTC) - COUNTER_DAY_SHIFT
    service = DispensingService(
        sqlite_db, events, InMemoryCatalog(), eprescription=client, clock=lambda: counter_now
    )
    view = service.load_prescription(EXPIRED_RX, author_rpps=pharmacist().rpps)
    data = dispensation_input(
        make_patient_for(sqlite_db, EXPIRED_RX), view.prescription, exceptional_line()
    )
    body = service.dispense("exceptional-key-1", data, pharmacist(), degraded=False).body
    assert body["lines"][0]["exceptional"] is True
    assert body["lines"][0]["reason"] == EXCEPTIONAL_RENEWAL_REASON

    worker = OutboxWorker(sqlite_db, events, client)
    assert worker.run_once() == 1
    assert outbox_rows(sqlite_db) == [("delivered", None)]
    assert worker.run_once() == 0  # nothing sent twice
    assert OutboxWorker(sqlite_db, events, client).run_once() == 0

    store = store_of(national_sim.state)
    assert store.executions() == 1
    recorded = store.prescriptions[EXPIRED_RX].dispenses[-1]
    # 11 renewals prescribed: the first exceptional delivery is number 12, one box.
    assert (recorded.renewal, recorded.quantity, recorded.status) == (12, 1, "completed")
    extensions = {e["url"].rsplit("/", 1)[-1]: e for e in recorded.resource["extension"]}
    assert extensions["intervention"]["valueCode"] == "modified"
    assert "prescriber-agreement-date" not in extensions
    posts = [e for e in national_sim.recorder.entries("eprescription") if e.method == "POST"]
    assert [p.status for p in posts] == [200]


def report(prescription_id: str, line_id: str, key: str, **line: object) -> ExecutionReport:
    values: dict[str, object] = {
        "line_id": line_id,
        "intervention": Intervention.MODIFIED,
        "cip13": ATORVASTATINE,
        "quantity": 1,
        "complete": True,
        "renewal_number": 12,
    }
    values.update(line)
    return ExecutionReport(
        prescription_id=prescription_id,
        idempotency_key=key,
        dispensed_at=datetime.now(UTC),
        pharmacist_rpps=pharmacist().rpps,
        lines=(LineExecution.model_validate(values),),
    )


def test_only_the_exceptional_motif_goes_beyond_the_prescription(
    national_sim: NationalSim, client: EPrescriptionClient
) -> None:
    line_id = f"{EXPIRED_RX}-1"
    agreed = {"reason": "posologie", "prescriber_agreement_date": datetime.now(UTC).date()}
    with pytest.raises(PrescriptionExpired):  # an ordinary modification of an expired one
        client.record_execution(report(EXPIRED_RX, line_id, "plain-modif-1", **agreed))
    open_rx = "EPTEST0000000000000043"  # atorvastatine on line 2, 5 renewals, still valid
    with pytest.raises(NationalServiceError) as refused:
        client.record_execution(report(open_rx, f"{open_rx}-2", "plain-modif-2", **agreed))
    assert "HTTP 422" in str(refused.value)  # renewal-out-of-range
    receipt = client.record_execution(
        report(open_rx, f"{open_rx}-2", "exceptional-2", reason=EXCEPTIONAL_RENEWAL_REASON)
    )
    assert receipt.dispense_ids and store_of(national_sim.state).executions() == 1
