"""Figures (never pass/fail on time): e-CPS sign-in and prescriber lookups over real HTTP.

Run: .venv/bin/pytest tests/bench/test_psc_bench.py -q -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from lgo.core.events import EventBus
from lgo.national.annuaire import AnnuaireClient, CachedAnnuaire
from lgo.national.psc import PscClient
from lgo.national.transport import NationalHttpClient
from lgo.services.psc_login import PscLogin
from lgo.services.sessions import SessionRegistry
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration

ROUNDS = 40


def figures(name: str, call: Callable[[], object], rounds: int = ROUNDS) -> None:
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p95 = durations[max(0, int(len(durations) * 0.95) - 1)]
    print(f"\n{name}: median {statistics.median(durations):.3f} ms, p95 {p95:.3f} ms, n={rounds}")


def test_psc_and_annuaire_figures(national_sim: NationalSim) -> None:
    national_sim.state.settings["psc_ciba_interval"] = 0
    national_sim.reset()
    psc_http = NationalHttpClient("psc", national_sim.url("/psc"))
    client = PscClient(psc_http, client_id="lgo-officine", client_secret="lgo-officine-sim-secret")
    login = PscLogin(
        client,
        SessionRegistry(EventBus()),
        session_ttl=timedelta(minutes=30),
        redirect_uri="http://127.0.0.1:8700/psc-callback",
    )

    def ciba_sign_in() -> None:
        login_id = login.start_ciba("10999999997").login_id
        while login.poll(login_id) is None:  # pending once, then approved
            pass

    figures("CIBA sign-in (start + 2 polls + ES256 verification + session)", ciba_sign_in)
    provider = national_sim.state.stores["psc"]
    issued = provider.issue_tokens(
        provider.users["810999999997"], "lgo-officine", client.metadata().issuer, "openid", "n", {}
    )
    figures(
        "ID token verification (ES256, claims; keys cached)",
        lambda: client.verify_id_token(issued["id_token"], nonce="n", auth_req_id=None),
        rounds=500,
    )
    login.wait_revocations()  # each sign-in replaced the previous session: its grant is revoked

    annuaire_http = NationalHttpClient("annuaire", national_sim.url("/annuaire"))
    directory = AnnuaireClient(annuaire_http)
    cache = CachedAnnuaire(directory)
    figures(
        "Annuaire lookup, no cache (HTTP + FHIR parse)",
        lambda: directory.practitioner("10999990012"),
    )
    cache.practitioner("10999990012")
    figures("Annuaire lookup, cached", lambda: cache.practitioner("10999990012"), rounds=1000)
    login.close()
    psc_http.close()
    annuaire_http.close()
