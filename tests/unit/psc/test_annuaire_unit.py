"""FHIR parsing of Annuaire answers, the TTL/LRU cache, and the prescriber check (fakes only)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from lgo.national.annuaire import (
    IDNAT_SYSTEM,
    CachedAnnuaire,
    PractitionerRecord,
    PractitionerRoleRecord,
    parse_search,
)
from lgo.national.errors import MalformedResponse, ServiceTimeout
from lgo.services.prescriber_check import PrescriberChecker, PrescriberStatus

RPPS = "10999990012"
TODAY = date(2026, 1, 15)


def bundle(*resources: dict[str, Any], kind: str = "searchset") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def practitioner(pid: str = "p1", rpps: str = RPPS, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": IDNAT_SYSTEM, "value": "8" + rpps}],
        "name": [{"family": "TEST", "given": ["JEAN", "PAUL"], "prefix": ["DR"]}],
        # the directory states the profession on the practitioner (slice exercicePro)
        "qualification": [
            {
                "code": {
                    "coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_G15-X", "code": "10"}]
                }
            }
        ],
        **extra,
    }


def role(pid: str = "p1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": f"Practitioner/{pid}"},
        **extra,
    }


def test_absent_active_means_active_and_names_are_joined() -> None:
    record = parse_search(bundle(practitioner(), role()), RPPS)
    assert record is not None
    assert record.active and record.practising(TODAY)
    assert (record.family_name, record.given_name, record.prefix) == ("TEST", "JEAN PAUL", "DR")
    assert record.profession_codes == ("10",)


def test_roles_of_another_practitioner_are_ignored() -> None:
    record = parse_search(bundle(practitioner(), role(pid="someone-else")), RPPS)
    assert record is not None and record.roles == ()
    assert not record.practising(TODAY)  # listed but without activity


def test_role_dates_decide_whether_it_is_current() -> None:
    future = role(period={"start": "2027-01-01"})
    ended = role(period={"start": "2000-01-01", "end": "2026-01-14"})
    ends_today = role(period={"start": "2000-01-01", "end": "2026-01-15"})
    for resource, current in ((future, False), (ended, False), (ends_today, True)):
        record = parse_search(bundle(practitioner(), resource), RPPS)
        assert record is not None
        assert record.practising(TODAY) is current


def test_empty_searchset_is_unknown() -> None:
    assert parse_search(bundle(), RPPS) is None


def test_a_practitioner_with_another_number_is_not_a_match() -> None:
    assert parse_search(bundle(practitioner(rpps="10999990020")), RPPS) is None


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "OperationOutcome"},
        bundle(kind="transaction"),
        bundle({"resourceType": "Practitioner"}),  # no id
        bundle(role(period={"start": "not-a-date"})),
        [],
        "text",
    ],
)
def test_unexpected_answers_are_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_search(body, RPPS)


class FakeDirectory:
    def __init__(self, record: PractitionerRecord | None = None) -> None:
        self.record = record
        self.calls: list[str] = []
        self.error: Exception | None = None

    def practitioner(
        self, rpps: str, *, author_rpps: str | None = None
    ) -> PractitionerRecord | None:
        self.calls.append(rpps)
        if self.error is not None:
            raise self.error
        return self.record


def active_record(rpps: str = RPPS) -> PractitionerRecord:
    current = PractitionerRoleRecord("10", None, True, date(2000, 1, 1), None, None, None)
    return PractitionerRecord(rpps, "8" + rpps, True, "T", "J", None, (current,))


def test_cache_is_bounded_least_recently_used_first() -> None:
    directory = FakeDirectory(active_record())
    cache = CachedAnnuaire(directory, ttl_s=100, max_entries=2, clock=lambda: 0.0)
    for rpps in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        cache.practitioner(rpps)
    assert len(cache) == 2
    cache.practitioner("a")
    cache.practitioner("b")
    assert directory.calls == ["a", "b", "c", "b"]


def test_errors_are_not_cached() -> None:
    directory = FakeDirectory(active_record())
    cache = CachedAnnuaire(directory, clock=lambda: 0.0)
    directory.error = ServiceTimeout("slow")
    with pytest.raises(ServiceTimeout):
        cache.practitioner(RPPS)
    directory.error = None
    assert cache.practitioner(RPPS) is not None
    assert len(directory.calls) == 2


def test_forget_drops_entries() -> None:
    directory = FakeDirectory(None)
    cache = CachedAnnuaire(directory, clock=lambda: 0.0)
    cache.practitioner(RPPS)
    cache.forget(RPPS)
    cache.practitioner(RPPS)
    assert len(directory.calls) == 2


def test_checker_timeout_gives_unverified() -> None:
    directory = FakeDirectory()
    directory.error = ServiceTimeout("slow")
    check = PrescriberChecker(directory, today=lambda: TODAY).check(RPPS)
    assert check.status is PrescriberStatus.UNVERIFIED
    assert check.warning is not None and "injoignable" in check.warning


def test_checker_strips_spaces_and_reports_the_day() -> None:
    directory = FakeDirectory(active_record())
    check = PrescriberChecker(directory, today=lambda: TODAY).check(f" {RPPS} ")
    assert check.status is PrescriberStatus.ACTIVE
    assert directory.calls == [RPPS]
    assert check.public()["checked_on"] == "2026-01-15"
