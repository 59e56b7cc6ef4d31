"""Settings → national clients wiring."""

from __future__ import annotations

from lgo.bootstrap.national import apcv_client, eprescription_client
from lgo.core.settings import Settings


def test_clients_default_to_the_simulator_prefixes() -> None:
    settings = Settings(national={"base_url": "http://127.0.0.1:8765/"})
    ep = eprescription_client(settings)
    apcv = apcv_client(settings)
    assert str(ep._http._client.base_url) == "http://127.0.0.1:8765/eprescription/fhir/"
    assert str(apcv._http._client.base_url) == "http://127.0.0.1:8765/apcv/"
    assert ep._http.retry.attempts == 3


def test_explicit_urls_and_attempts_win() -> None:
    settings = Settings(
        national={
            "eprescription": {"url": "http://127.0.0.1:9000/fhir", "attempts": 5},
            "apcv": {"url": "http://127.0.0.1:9001/x"},
        }
    )
    ep = eprescription_client(settings)
    assert str(ep._http._client.base_url) == "http://127.0.0.1:9000/fhir/"
    assert ep._http.retry.attempts == 5
    assert str(apcv_client(settings)._http._client.base_url) == "http://127.0.0.1:9001/x/"
