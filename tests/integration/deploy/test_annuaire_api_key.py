"""The Annuaire Santé FHIR API key (ESANTE-API-KEY): sent by the client and lgo doctor, checked by
the simulator when it has one, required in production, never logged nor printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from hwsim.national.annuaire import API_KEY_SETTING
from lgo.core.production import production_problems
from lgo.core.settings import Settings
from lgo.doctor.national import _annuaire, probe_result
from lgo.national.annuaire import AnnuaireClient
from lgo.national.errors import RequestRejected
from lgo.national.transport import NationalHttpClient
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration

KEY = "cle-annuaire-officine-test"
RPPS = "10999990012"  # a fictitious practitioner of the simulator's directory


@pytest.fixture
def keyed_sim(national_sim: NationalSim) -> Iterator[NationalSim]:
    national_sim.state.settings[API_KEY_SETTING] = KEY
    yield national_sim
    del national_sim.state.settings[API_KEY_SETTING]


def _client(sim: NationalSim, key: str) -> AnnuaireClient:
    return AnnuaireClient(NationalHttpClient("annuaire", sim.url("/annuaire")), api_key=key)


def test_the_client_sends_the_key_and_never_logs_it(keyed_sim: NationalSim) -> None:
    with capture_logs() as logs:
        record = _client(keyed_sim, KEY).practitioner(RPPS)
    assert record is not None and record.rpps == RPPS
    assert logs and KEY not in repr(logs)


@pytest.mark.parametrize("key", ["", "une-autre-cle"])
def test_a_missing_or_wrong_key_is_refused_by_the_simulator(
    keyed_sim: NationalSim, key: str
) -> None:
    with pytest.raises(RequestRejected, match="401"):
        _client(keyed_sim, key).practitioner(RPPS)


def _settings(sim: NationalSim, key: str) -> Settings:
    settings = Settings(mode="bench")
    settings.national.annuaire.url = sim.url("/annuaire")
    settings.national.annuaire.api_key = SecretStr(key)
    return settings


def test_doctor_sends_the_key_and_names_the_setting_when_refused(keyed_sim: NationalSim) -> None:
    good = probe_result(_annuaire(_settings(keyed_sim, KEY).national))
    assert good.ok, good.detail
    bad = probe_result(_annuaire(_settings(keyed_sim, "fausse").national))
    assert not bad.ok and "national.annuaire.api_key" in bad.detail and "fausse" not in bad.detail


def test_production_refuses_an_empty_key_and_never_prints_one(national_sim: NationalSim) -> None:
    empty = [
        p
        for p in production_problems(_settings(national_sim, "  "))
        if p.startswith("national.annuaire.api_key ")
    ]
    assert len(empty) == 1 and "ESANTE-API-KEY" in empty[0]
    given = production_problems(_settings(national_sim, KEY))
    assert not any(p.startswith("national.annuaire.api_key") for p in given)
    assert KEY not in "\n".join(given)
