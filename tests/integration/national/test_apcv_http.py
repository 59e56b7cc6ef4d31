"""apCV token exchange against the simulator over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from lgo.national.apcv import ApcvClient
from lgo.national.errors import ApcvTokenExpired, ApcvTokenUnknown, ApcvTokenUsed
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration

RPPS = "10999999997"


@pytest.fixture
def client(national_sim: NationalSim) -> Iterator[ApcvClient]:
    with ApcvClient(national_sim.url("/apcv"), timeout_s=2.0) as c:
        yield c


def issue(sim: NationalSim, identity: str = "camille", ttl_s: float | None = None) -> str:
    response = httpx.post(sim.url("/_sim/apcv/tokens"), json={"identity": identity, "ttl_s": ttl_s})
    assert response.status_code == 200
    token: str = response.json()["token"]
    return token


def test_token_works_once(national_sim: NationalSim, client: ApcvClient) -> None:
    token = issue(national_sim)
    identity = client.exchange(token, author_rpps=RPPS)

    names = [(b.family_name, b.given_name, b.birth_date) for b in identity.beneficiaries]
    assert names == [("TESTNOM", "CAMILLE", "19991231"), ("TESTNOM", "LOU", "20100615")]
    assert identity.beneficiaries[0].nir == "299127505699943"
    assert identity.coverage is not None and identity.coverage.caisse == "751"
    with pytest.raises(ApcvTokenUsed):
        client.exchange(token, author_rpps=RPPS)


def test_lunar_birth_date_is_kept_raw(national_sim: NationalSim, client: ApcvClient) -> None:
    identity = client.exchange(issue(national_sim, "lunar"), author_rpps=RPPS)
    assert identity.beneficiaries[0].birth_date == "19800000"
    assert identity.beneficiaries[0].ins is None


def test_expired_and_unknown_tokens_are_refused(
    national_sim: NationalSim, client: ApcvClient
) -> None:
    token = issue(national_sim, ttl_s=120)
    national_sim.state.clock.advance(121)
    with pytest.raises(ApcvTokenExpired):
        client.exchange(token, author_rpps=RPPS)
    with pytest.raises(ApcvTokenUnknown):
        client.exchange("APCVTEST-" + "f" * 32, author_rpps=RPPS)


def test_the_token_is_never_recorded(national_sim: NationalSim, client: ApcvClient) -> None:
    token = issue(national_sim)
    client.exchange(token, author_rpps=RPPS)
    recorded = httpx.get(national_sim.url("/_sim/recorder"), params={"service": "apcv"}).json()
    assert len(recorded) == 1 and recorded[0]["status"] == 200
    assert token not in json.dumps(recorded)
