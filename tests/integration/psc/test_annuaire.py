"""Prescriber lookups over real HTTP against the Annuaire Santé simulator, with the cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from hwsim.national.faults import FaultKind, FaultSpec
from lgo.national.annuaire import AnnuaireClient, CachedAnnuaire
from lgo.national.errors import ServiceUnavailable
from lgo.national.transport import NationalHttpClient, RetryPolicy
from lgo.services.prescriber_check import (
    PrescriberChecker,
    PrescriberNotAcknowledged,
    PrescriberStatus,
    require_acknowledgement,
)
from tests.integration.psc.conftest import LiveSim

pytestmark = pytest.mark.integration

TODAY = date(2026, 1, 15)
ACTIVE_GP = "10999990012"
INACTIVE_GP = "10999990020"
DENTIST = "10999990038"
NO_CURRENT_ROLE = "10999990046"
UNKNOWN = "10999990053"  # valid Luhn key, absent from the directory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def annuaire_client(live_sim: LiveSim) -> Iterator[AnnuaireClient]:
    http = NationalHttpClient(
        "annuaire",
        live_sim.base_url + "/annuaire",
        timeout_s=2.0,
        retry=RetryPolicy(attempts=2, backoff_s=0.0),
        sleep=lambda _: None,
    )
    yield AnnuaireClient(http)
    http.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cached(annuaire_client: AnnuaireClient, clock: Clock) -> CachedAnnuaire:
    return CachedAnnuaire(annuaire_client, ttl_s=600, negative_ttl_s=60, clock=clock)


@pytest.fixture
def checker(cached: CachedAnnuaire) -> PrescriberChecker:
    return PrescriberChecker(cached, today=lambda: TODAY)


def searches(live_sim: LiveSim) -> int:
    return len([r for r in live_sim.recorded("annuaire") if r.method == "GET"])


def test_active_practitioner_with_roles_profession_and_organisation(
    annuaire_client: AnnuaireClient,
) -> None:
    record = annuaire_client.practitioner(ACTIVE_GP)
    assert record is not None
    assert record.national_id == "8" + ACTIVE_GP
    assert record.active and record.practising(TODAY)
    assert record.profession_codes == ("10",)
    (role,) = record.roles
    assert role.specialty_code == "SM54"
    assert role.organization_finess == "750999991"
    assert role.organization_name == "CABINET MEDICAL DU TEST"


@pytest.mark.parametrize(
    ("rpps", "status"),
    [
        (ACTIVE_GP, PrescriberStatus.ACTIVE),
        (DENTIST, PrescriberStatus.ACTIVE),
        (INACTIVE_GP, PrescriberStatus.INACTIVE),
        (NO_CURRENT_ROLE, PrescriberStatus.INACTIVE),
        (UNKNOWN, PrescriberStatus.UNKNOWN),
    ],
)
def test_prescriber_status(checker: PrescriberChecker, rpps: str, status: PrescriberStatus) -> None:
    check = checker.check(rpps)
    assert check.status is status
    assert check.requires_acknowledgement is (status is not PrescriberStatus.ACTIVE)
    assert (check.warning is None) is (status is PrescriberStatus.ACTIVE)


def test_inactive_or_unknown_prescriber_needs_the_pharmacists_acknowledgement(
    checker: PrescriberChecker,
) -> None:
    for rpps in (INACTIVE_GP, UNKNOWN):
        check = checker.check(rpps)
        with pytest.raises(PrescriberNotAcknowledged):
            require_acknowledgement(check, acknowledged=False)
        require_acknowledgement(check, acknowledged=True)
    require_acknowledgement(checker.check(ACTIVE_GP), acknowledged=False)


def test_bad_rpps_key_is_caught_without_a_call(
    live_sim: LiveSim, checker: PrescriberChecker
) -> None:
    check = checker.check("10999990013")
    assert check.status is PrescriberStatus.INVALID_NUMBER
    assert searches(live_sim) == 0


def test_cache_serves_until_expiry_then_asks_again(
    live_sim: LiveSim, checker: PrescriberChecker, clock: Clock
) -> None:
    checker.check(ACTIVE_GP)
    checker.check(ACTIVE_GP)
    assert searches(live_sim) == 1

    clock.now += 599
    checker.check(ACTIVE_GP)
    assert searches(live_sim) == 1

    clock.now += 1  # ttl reached: the entry is expired, never served
    assert checker.check(ACTIVE_GP).status is PrescriberStatus.ACTIVE
    assert searches(live_sim) == 2


def test_unknown_answers_expire_sooner(
    live_sim: LiveSim, checker: PrescriberChecker, clock: Clock
) -> None:
    checker.check(UNKNOWN)
    checker.check(UNKNOWN)
    assert searches(live_sim) == 1
    clock.now += 60
    checker.check(UNKNOWN)
    assert searches(live_sim) == 2


def test_directory_outage_gives_unverified_and_is_not_cached(
    live_sim: LiveSim, checker: PrescriberChecker
) -> None:
    live_sim.sim.faults.arm(FaultSpec(service="annuaire", kind=FaultKind.ERROR, times=None))
    check = checker.check(ACTIVE_GP)
    assert check.status is PrescriberStatus.UNVERIFIED
    assert check.requires_acknowledgement

    live_sim.sim.faults.clear("annuaire")
    assert checker.check(ACTIVE_GP).status is PrescriberStatus.ACTIVE


def test_malformed_directory_answer_is_unverified(
    live_sim: LiveSim, checker: PrescriberChecker
) -> None:
    live_sim.sim.faults.arm(FaultSpec(service="annuaire", kind=FaultKind.MALFORMED, times=None))
    assert checker.check(ACTIVE_GP).status is PrescriberStatus.UNVERIFIED


def test_client_raises_typed_error_on_outage(
    live_sim: LiveSim, annuaire_client: AnnuaireClient
) -> None:
    live_sim.sim.faults.arm(FaultSpec(service="annuaire", kind=FaultKind.ERROR, times=None))
    with pytest.raises(ServiceUnavailable):
        annuaire_client.practitioner(ACTIVE_GP)
