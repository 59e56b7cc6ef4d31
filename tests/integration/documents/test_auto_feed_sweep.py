"""The auto-feed sweep recovers dispensing summaries lost to a crash (events live in memory).

Real container wiring (``DocumentsPart`` on the real identity service), real dispensing service,
SQLite and PostgreSQL. Dispensations are committed through the dispensing service with no event
delivered to the documents part: exactly the state a crash before the handler leaves behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from lgo.bootstrap.container import Container
from lgo.bootstrap.documents import DocumentsPart, part_of
from lgo.core.settings import load_settings
from lgo.domain.identity import IdentityStatus
from lgo.services.documents import DocumentAlreadyProduced
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow
from lgo.store.models.documents import DocumentDelivery, DocumentRow
from tests.fixtures.dispensing import PHARMACIST_RPPS, open_pharmacist_session
from tests.integration.documents.test_document_flow import add_patient, dispense

pytestmark = pytest.mark.integration


@pytest.fixture
def container(tmp_path: Path, any_db: Database) -> Iterator[Container]:
    settings = load_settings(state_dir=tmp_path / "state", hardware={"pcsc_enabled": False})
    container = Container(settings, db=any_db)  # never started: no event reaches the feed
    yield container
    part_of(container).dmp.close()


@pytest.fixture
def part(container: Container) -> DocumentsPart:
    return part_of(container)


def counts(db: Database, dispensation_id: str) -> tuple[int, int]:
    """(documents, deliveries) of one dispensation."""
    with db.uow(readonly=True) as uow:
        documents = uow.session.execute(
            select(func.count())
            .select_from(DocumentRow)
            .where(DocumentRow.dispensation_id == dispensation_id)
        ).scalar_one()
        deliveries = uow.session.execute(
            select(func.count())
            .select_from(DocumentDelivery)
            .join(DocumentRow, DocumentRow.id == DocumentDelivery.document_id)
            .where(DocumentRow.dispensation_id == dispensation_id)
        ).scalar_one()
        return documents, deliveries


def test_lost_event_is_recovered_once_by_the_sweep(
    part: DocumentsPart, any_db: Database, catalog: InMemoryCatalog
) -> None:
    patient_id = add_patient(any_db, IdentityStatus.QUAL)
    dispensation_id = dispense(any_db, catalog, patient_id)
    assert counts(any_db, dispensation_id) == (0, 0)  # the "crash": handler never ran

    assert part.sweep() == {"produced": 1, "skipped": 0, "failed": 0}
    assert counts(any_db, dispensation_id) == (1, 1)
    [document] = part.service.for_patient(patient_id)
    assert document.deliveries[0].status == "pending"

    assert part.sweep() == {"produced": 0, "skipped": 0, "failed": 0}
    assert counts(any_db, dispensation_id) == (1, 1)


def test_event_path_and_sweep_racing_produce_one_document(
    part: DocumentsPart, container: Container, any_db: Database, catalog: InMemoryCatalog
) -> None:
    open_pharmacist_session(container)
    patient_id = add_patient(any_db, IdentityStatus.QUAL)
    dispensation_id = dispense(any_db, catalog, patient_id)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def run(name: str, action: object) -> None:
        try:
            barrier.wait(timeout=10)
            results[name] = action()  # type: ignore[operator]
        except BaseException as exc:  # surfaced by the asserts below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("event", lambda: part.auto_summary(dispensation_id))),
        threading.Thread(target=run, args=("sweep", part.sweep)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert counts(any_db, dispensation_id) == (1, 1)
    # Exactly one side produced it; the other saw it done (skipped) or did not find it missing.
    event_won = results["event"] is None
    sweep = results["sweep"]
    assert isinstance(sweep, dict)
    assert sweep["failed"] == 0
    assert sweep["produced"] == (0 if event_won else 1)
    if not event_won:
        assert results["event"] == DocumentAlreadyProduced.slug


def test_unqualified_patient_gets_nothing_and_no_error(
    part: DocumentsPart, any_db: Database, catalog: InMemoryCatalog
) -> None:
    patient_id = add_patient(any_db, IdentityStatus.PROV)
    dispensation_id = dispense(any_db, catalog, patient_id)

    assert part.sweep() == {"produced": 0, "skipped": 1, "failed": 0}
    assert counts(any_db, dispensation_id) == (0, 0)


def test_dispensation_outside_the_look_back_is_ignored(
    part: DocumentsPart, container: Container, any_db: Database, catalog: InMemoryCatalog
) -> None:
    patient_id = add_patient(any_db, IdentityStatus.QUAL)
    old = dispense(any_db, catalog, patient_id)
    recent = dispense(any_db, catalog, patient_id)
    days = container.settings.national.dmp.auto_feed_lookback_days
    with any_db.uow() as uow:
        uow.session.execute(
            update(DispensationRow)
            .where(DispensationRow.id == old)
            .values(created_at=datetime.now(UTC) - timedelta(days=days, hours=1))
        )
        uow.commit()

    assert part.sweep() == {"produced": 1, "skipped": 0, "failed": 0}
    assert counts(any_db, old) == (0, 0)
    assert counts(any_db, recent) == (1, 1)


def test_without_a_session_the_author_is_the_dispensing_pharmacist_by_id(
    part: DocumentsPart, any_db: Database, catalog: InMemoryCatalog
) -> None:
    patient_id = add_patient(any_db, IdentityStatus.QUAL)
    dispense(any_db, catalog, patient_id)

    part.sweep()
    [document] = part.service.for_patient(patient_id)
    with any_db.uow(readonly=True) as uow:
        row = uow.session.get(DocumentRow, document.id)
        assert row is not None
        assert row.author_rpps == PHARMACIST_RPPS


def test_a_stopping_daemon_ends_the_sweep_and_the_next_start_resumes_it(
    part: DocumentsPart, any_db: Database, catalog: InMemoryCatalog
) -> None:
    patient_id = add_patient(any_db, IdentityStatus.QUAL)
    dispensation_id = dispense(any_db, catalog, patient_id)
    part.stopping.set()
    assert part.sweep() == {"produced": 0, "skipped": 0, "failed": 0}
    assert counts(any_db, dispensation_id) == (0, 0)

    part.stopping.clear()
    assert part.sweep()["produced"] == 1
