"""The composition root (lgo/bootstrap/container.py): one object per service, linked by constructor
arguments, and a test's own adapters used everywhere the part is needed."""

from __future__ import annotations

from pathlib import Path

from lgo.bootstrap.container import Adapters, Container
from lgo.core.settings import load_settings
from lgo.national.eprescription import EPrescriptionClient


def test_one_eprescription_client_with_the_deadline_and_attempts_settings(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"eprescription": {"deadline_s": 7.5, "attempts": 2}},
    )
    container = Container(settings)
    try:
        client = container.national.eprescription
        assert container.dispensing.service.eprescription is client
        assert container.dispensing.worker.sender is client
        assert client._http.deadline_s == 7.5 and client._http.retry.attempts == 2
    finally:
        container.db.dispose()


def test_a_test_adapter_replaces_the_client_everywhere(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state", hardware={"pcsc_enabled": False})
    fake = EPrescriptionClient("http://127.0.0.1:9/eprescription/fhir", timeout_s=1.0)
    container = Container(settings, adapters=Adapters(eprescription=fake))
    try:
        assert container.national.eprescription is fake
        assert container.dispensing.service.eprescription is fake
        assert container.dispensing.worker.sender is fake
    finally:
        fake.close()
        container.db.dispose()


def test_parts_share_the_identity_and_dispensing_services(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state", hardware={"pcsc_enabled": False})
    container = Container(settings)
    try:
        assert container.dispensing.worker.identity is container.identity.service
        names = [name for name, _ in container.components]
        assert len(names) == len(set(names))  # each background component listed once
        assert list(container.health_checks) == [
            "database",
            "outbox",
            "catalog",
            "pcsc",
            "documents",
        ]
    finally:
        container.db.dispose()
