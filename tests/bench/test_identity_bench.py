"""Figures (never pass/fail on time): INSi searches over real HTTP, hardened XML parsing and
refusal of hostile XML.

Run: .venv/bin/pytest tests/bench/test_identity_bench.py -q -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest

from lgo.core.safe_xml import XmlRejectedError, parse_xml
from lgo.domain.identity import Traits
from lgo.national.insi import InsiConfig, InsiNotFound, build_insi_client
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration

ROUNDS = 40
REPLY = (
    b'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope '
    b'xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
    b'<RESULTAT xmlns="http://www.cnamts.fr/INSiResultat"><CR><CodeCR>00</CodeCR></CR>'
    + b"<INDIVIDU><TIQ><NomNaissance>TESTSEUL</NomNaissance></TIQ></INDIVIDU>" * 20
    + b"</RESULTAT></soap:Body></soap:Envelope>"
)


def figures(name: str, call: Callable[[], object], rounds: int = ROUNDS) -> None:
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p95 = durations[max(0, int(len(durations) * 0.95) - 1)]
    print(f"\n{name}: median {statistics.median(durations):.3f} ms, p95 {p95:.3f} ms, n={rounds}")


def _refused(payload: bytes) -> Callable[[], object]:
    def call() -> object:
        try:
            parse_xml(payload)
        except XmlRejectedError as exc:
            return exc.reason
        raise AssertionError("accepted")

    return call


def test_identity_figures(national_sim: NationalSim) -> None:
    client = build_insi_client(national_sim.url("/insi"), InsiConfig(idam="LGO-SIM-0001"))
    found = Traits.of("TESTSEUL", "DOMINIQUE", "M", "19620101")
    missing = Traits.of("TESTSEUL", "PIERRE PAUL", "M", "19620101")

    def not_found() -> None:
        try:
            client.search_by_traits(missing, author_rpps=None)
        except InsiNotFound:
            return
        raise AssertionError("found")

    with client:
        figures(
            "INSi search by traits, CR 00 (1 call)",
            lambda: client.search_by_traits(found, author_rpps=None),
        )
        figures("INSi search by traits, CR 01 after 3 calls (PIERRE, PAUL, both)", not_found)
    figures(f"parse_xml of a {len(REPLY)} B INSi-like reply", lambda: parse_xml(REPLY), 400)
    laughs = (
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' + b"<!ENTITY b '&a;&a;'>" * 10 + b"]><r>&b;</r>"
    )
    figures("refusal of billion laughs", _refused(laughs), 400)
    figures("refusal of a 3 MiB body", _refused(b"<r>" + b"a" * 3 * 1024 * 1024 + b"</r>"), 100)
    figures("refusal of 10 000-deep nesting", _refused(b"<a>" * 10_000 + b"</a>" * 10_000), 100)
