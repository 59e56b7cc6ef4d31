"""lgo's CRL store against the national simulator's publication point over HTTP: verified, cached in
memory and on disk until nextUpdate, used past it only within the grace, and the policy on top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from hwsim.fixtures.people import load_people
from hwsim.national.faults import FaultKind, FaultSpec
from hwsim.pki import TestPki
from lgo.core.events import EventBus
from lgo.national.crl import CrlStore, cache_path, crl_urls
from lgo.national.transport import NationalHttpClient, RetryPolicy
from lgo.services.cps_revocation import (
    CpsCertificateUntrusted,
    CpsRevocationCheck,
    CpsRevocationUnknown,
    CpsRevoked,
)
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
PEOPLE = load_people().professionals
GRACE = timedelta(hours=72)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _store(pki: TestPki, folder: Path, clock: Clock, max_bytes: int = 1 << 20) -> CrlStore:
    http = NationalHttpClient(
        "pki", "", timeout_s=2.0, retry=RetryPolicy(attempts=1), max_body_bytes=max_bytes
    )
    return CrlStore([pki.root.cert, pki.ca.cert], folder, http, grace=GRACE, clock=clock)


def _crl_calls(sim: NationalSim) -> int:
    return len(sim.recorder.entries("pki", "GET"))


@pytest.fixture
def pki(national_sim: NationalSim) -> TestPki:
    return TestPki(base_url=national_sim.base_url)


def test_good_and_revoked_cards_with_a_fresh_then_cached_crl(
    national_sim: NationalSim, pki: TestPki, tmp_path: Path
) -> None:
    clock = Clock()
    store = _store(pki, tmp_path, clock)
    good = pki.credentials(PEOPLE["pharmacien"]).auth.cert
    assert store.check(good).status == "good"
    assert store.check(good).reason == "cached_crl"  # no second download before nextUpdate
    assert _crl_calls(national_sim) == 1
    on_disk = cache_path(tmp_path, crl_urls(good)[0])
    assert on_disk.stat().st_mode & 0o777 == 0o600
    x509.load_der_x509_crl(on_disk.read_bytes())
    revoked = store.check(pki.credentials(PEOPLE["pharmacien-revoque"]).signature.cert)
    assert (revoked.status, revoked.reason) == ("revoked", "cached_crl")
    clock.now += timedelta(hours=25)  # past nextUpdate: downloaded again
    assert store.check(good).reason == "fresh_crl"
    assert _crl_calls(national_sim) == 2


def test_outage_uses_the_last_crl_within_the_grace_only(
    national_sim: NationalSim, pki: TestPki, tmp_path: Path
) -> None:
    clock = Clock()
    good = pki.credentials(PEOPLE["pharmacien"]).auth.cert
    assert _store(pki, tmp_path, clock).check(good).reason == "fresh_crl"
    national_sim.faults.arm(FaultSpec(service="pki", kind=FaultKind.OUTAGE, duration_s=600))
    restarted = _store(pki, tmp_path, clock)  # a new process: the disk copy serves
    assert restarted.check(good).reason == "cached_crl"
    clock.now += timedelta(hours=24 + 70)
    assert (restarted.check(good).status, restarted.check(good).reason) == ("good", "stale_crl")
    clock.now += timedelta(hours=3)  # beyond nextUpdate + 72 h
    assert (restarted.check(good).status, restarted.check(good).reason) == (
        "unknown",
        "crl_unavailable",
    )


def test_unusable_answers_are_never_taken_as_a_crl(
    national_sim: NationalSim, pki: TestPki, tmp_path: Path
) -> None:
    good = pki.credentials(PEOPLE["pharmacien"]).auth.cert
    national_sim.faults.arm(FaultSpec(service="pki", kind=FaultKind.MALFORMED))
    assert _store(pki, tmp_path / "a", Clock()).check(good).status == "unknown"
    assert _store(pki, tmp_path / "b", Clock(), max_bytes=200).check(good).status == "unknown"
    # A CRL signed by another key (a look-alike CA) is refused: its certificate is not trusted.
    other = TestPki(tmp_path / "other", base_url=national_sim.base_url)
    forged = other.credentials(PEOPLE["pharmacien"]).auth.cert
    assert _store(pki, tmp_path / "c", Clock()).check(forged).status == "untrusted"


def test_the_policy_refuses_in_french_and_soft_fails_with_an_event(
    national_sim: NationalSim, pki: TestPki, tmp_path: Path
) -> None:
    revoked = pki.credentials(PEOPLE["pharmacien-revoque"]).auth.cert_der
    good = pki.credentials(PEOPLE["pharmacien"]).auth.cert_der
    check = CpsRevocationCheck(_store(pki, tmp_path, Clock()), "soft-fail")
    with pytest.raises(CpsRevoked) as refused:
        check.check(lambda: revoked, "lecteur")
    assert refused.value.slug == "cps-revoked" and "révoquée" in refused.value.title
    other = TestPki(tmp_path / "other", base_url=national_sim.base_url)
    with pytest.raises(CpsCertificateUntrusted):
        check.check(lambda: other.credentials(PEOPLE["pharmacien"]).auth.cert_der, "lecteur")

    national_sim.faults.arm(FaultSpec(service="pki", kind=FaultKind.OUTAGE, duration_s=600))
    events = EventBus()
    seen: list[tuple[str, object]] = []
    events.publish = lambda t, d=None: seen.append((t, d))  # type: ignore[method-assign, assignment, misc, func-returns-value]
    soft = CpsRevocationCheck(_store(pki, tmp_path / "empty", Clock()), "soft-fail", events)
    assert soft.check(lambda: good, "lecteur").status == "unknown"  # type: ignore[union-attr]
    assert seen == [("cps.revocation_unknown", {"reader": "lecteur", "reason": "crl_unavailable"})]
    hard = CpsRevocationCheck(_store(pki, tmp_path / "empty2", Clock()), "hard-fail")
    with pytest.raises(CpsRevocationUnknown):
        hard.check(lambda: good, "lecteur")
    assert CpsRevocationCheck(None, "off").check(lambda: good, "lecteur") is None
