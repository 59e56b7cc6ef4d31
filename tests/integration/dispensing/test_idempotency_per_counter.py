"""Idempotency keys belong to the counter that sent them (issue #17 item 9): the same key from
another counter is another request, never a replay of the first counter's answer. The migration
(branch ``idempotency_scope``) scopes existing keys and round-trips on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import Settings
from lgo.services.counters import add_counter
from lgo.store import migrate
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, IdempotencyKey
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PRESCRIBER_RPPS,
    make_patient,
    open_pharmacist_session,
)

pytestmark = pytest.mark.integration
CIP = LIST_I_PRODUCT.packs[0].cip13


def body(patient: str, address: str) -> dict[str, Any]:
    # The address makes each body (hence its local paper prescription id) distinct.
    return {
        "patient_id": patient,
        "patient_address": address,
        "prescriber_acknowledged": True,
        "paper": {
            "prescribed_on": datetime.now(UTC).date().isoformat(),
            "prescriber_rpps": PRESCRIBER_RPPS,
            "prescriber_name": "DOCTEUR FICTIF",
            "prescriber_address": "2 avenue du Test, 75011 Paris",
            "lines": [
                {
                    "designation": "FICTIVOL 10 mg cp",
                    "cip13": CIP,
                    "regulatory_list": "list_i",
                    "units_per_day": "1",
                    "duration_days": 30,
                }
            ],
        },
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": 30, "cip13": CIP}],
    }


@pytest.fixture
def two_counters(settings: Settings) -> Iterator[tuple[TestClient, TestClient, Container]]:
    container = Container(settings)
    migrate.upgrade(container.db)
    part_of(container).catalog.add(LIST_I_PRODUCT)
    _, first = add_counter(container.db, "comptoir-1")
    _, second = add_counter(container.db, "comptoir-2")
    app = create_app(settings, container)
    base = f"http://127.0.0.1:{settings.api.port}"
    with (
        TestClient(app, base_url=base, headers={"Authorization": f"Bearer {first}"}) as one,
        TestClient(app, base_url=base, headers={"Authorization": f"Bearer {second}"}) as two,
    ):
        open_pharmacist_session(container)
        yield one, two, container


def test_same_key_on_another_counter_is_another_request(
    two_counters: tuple[TestClient, TestClient, Container],
) -> None:
    one, two, container = two_counters
    patient = make_patient(container.db)
    key = {"Idempotency-Key": "shared-key-0001"}
    first = one.post("/v1/dispensations", json=body(patient, "1 rue Fictive"), headers=key)
    assert first.status_code == 201, first.text
    # Another counter, same key, the first counter's very body: evaluated as a new request, never
    # the first counter's answer (the same paper prescription is fully served now: refused).
    copied = two.post("/v1/dispensations", json=body(patient, "1 rue Fictive"), headers=key)
    assert copied.status_code in (409, 422), copied.text
    assert "Idempotent-Replayed" not in copied.headers
    assert copied.json()["type"] != "urn:lgo:problem:idempotency-key-reused"
    # Another counter, same key, another body: its own dispensation.
    other = two.post("/v1/dispensations", json=body(patient, "2 rue Fictive"), headers=key)
    assert other.status_code == 201, other.text
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    assert other.json()["professional"]["counter"] == "comptoir-2"
    # Each counter replays its own answer, and its own key with another body is still refused.
    replay_one = one.post("/v1/dispensations", json=body(patient, "1 rue Fictive"), headers=key)
    replay_two = two.post("/v1/dispensations", json=body(patient, "2 rue Fictive"), headers=key)
    assert replay_one.headers["Idempotent-Replayed"] == "true"
    assert replay_two.headers["Idempotent-Replayed"] == "true"
    assert (replay_one.json(), replay_two.json()) == (first.json(), other.json())
    reused = one.post("/v1/dispensations", json=body(patient, "2 rue Fictive"), headers=key)
    assert reused.status_code == 409
    assert reused.json()["type"] == "urn:lgo:problem:idempotency-key-reused"
    with container.db.uow(readonly=True) as uow:
        keys = set(uow.session.execute(select(IdempotencyKey.key)).scalars())
    assert {"comptoir-1:shared-key-0001", "comptoir-2:shared-key-0001"} <= keys


def _downgrade_to_unscoped(db: Database) -> None:
    migrate.downgrade(db, "idempotency_scope@-1")


def test_migration_scopes_existing_keys_and_round_trips(any_db: Database) -> None:
    _downgrade_to_unscoped(any_db)
    patient = make_patient(any_db)
    now = datetime.now(UTC)
    dispensation = str(uuid.uuid4())
    with any_db.uow() as uow:
        uow.session.execute(
            text(
                "INSERT INTO idempotency_keys (key, scope, request_hash, status_code, response, "
                "created_at) VALUES ('old-key-0001', 'dispensation', 'h', 201, '{}', :now)"
            ),
            {"now": now},
        )
        uow.session.execute(
            text(
                "INSERT INTO dispensations (id, created_at, business_date, patient_id, "
                "prescription_id, prescription_source, sync_status, degraded, "
                "pharmacist_national_id, pharmacist_rpps, session_kind, session_id, counter_name, "
                "idempotency_key) VALUES (:id, :now, :day, :patient, 'P1', 'paper', 'local_only', "
                ":no, '810000000009', '10000000009', 'cps', 's1', 'comptoir-9', 'old-key-0001')"
            ),
            {"id": dispensation, "now": now, "day": now.date(), "patient": patient, "no": False},
        )
        uow.commit()
    migrate.upgrade(any_db)
    migrate.check(any_db)
    with any_db.uow(readonly=True) as uow:
        assert uow.session.execute(select(IdempotencyKey.key)).scalars().all() == [
            "comptoir-9:old-key-0001"
        ]
        row = uow.session.get(DispensationRow, dispensation)
        assert row is not None and row.idempotency_key == "comptoir-9:old-key-0001"
    long_key = "c" * 64 + ":" + "k" * 128  # the longest scoped key fits (PostgreSQL checks it)
    with any_db.uow() as uow:
        uow.session.add(
            IdempotencyKey(
                key=long_key,
                scope="dispensation",
                request_hash="h",
                status_code=0,
                response="{}",
                created_at=now,
            )
        )
        uow.commit()
    with any_db.uow() as uow:  # the long key cannot go back to 128 characters: drop it first
        uow.session.execute(text("DELETE FROM idempotency_keys WHERE key = :k"), {"k": long_key})
        uow.commit()
    _downgrade_to_unscoped(any_db)
    with any_db.uow(readonly=True) as uow:
        keys = uow.session.execute(text("SELECT key FROM idempotency_keys")).scalars().all()
        assert keys == ["old-key-0001"]
