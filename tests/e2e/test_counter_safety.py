"""The counter page keeps the record safe (issue #17), in Debian's Chromium against the real daemon.

Same stack as test_counter_page.py (its ``daemon`` fixture: ``lgo serve``, hw-sim's
private pcscd with virtual cards, SoftHSM, the national simulator), another daemon and another
day: the page follows the cards (a Vitale swap clears the prescription in progress), a prescription
for another patient is a blocking warning with the switch offered, lines the rules refuse are
blocked before the commit, the paper prescription and the identity document are typed in forms,
and dates are French whatever the browser's locale. Screenshots as in test_counter_page.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hwsim.national.app import reset_state
from hwsim.national.faults import FaultKind, FaultSpec
from tests.e2e.browser import chromium_context
from tests.e2e.screenshots import screenshot_dir
from tests.e2e.test_counter_page import (
    CONTRAST_JS,
    LATE_RX,
    PHARMACIST,
    SIMPLE_RX,
    UI_TIMEOUT_MS,
    UNLABELLED_JS,
    VIEWPORT,
    Daemon,
    choose_patient_by_search,
    daemon,
    give_asked_posologies,
    give_record_mentions,
    read_family_card,
    type_code,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
__all__ = ["daemon"]  # fixture shared with the counter-page module (one daemon per module)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

NARCOTIC_RX = "EPTEST0000000000000046"  # morphine (stupéfiant) and tramadol, Dominique Testpatient
RENEWABLE_RX = (
    "EPTEST0000000000000044"  # Camille's lamotrigine, list I, never loaded by this daemon
)
FRENCH_DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")


@pytest.fixture(scope="module")
def page(daemon: Daemon) -> Iterator[Any]:
    """This day's Chromium speaks American English (--lang=en-US, Accept-Language): the page
    stays French, its dates too (test_dates_are_french_whatever_the_browsers_locale)."""
    with chromium_context(
        prefix="lgo-e2e-en-us-", viewport=VIEWPORT, timeout_ms=UI_TIMEOUT_MS, locale="en-US"
    ) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.lgo_errors = errors
        yield page
    assert errors == []  # no script error during the whole day


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def _shot(page: Any, shots: Path, name: str) -> None:
    # Every screen shown is also one a pharmacist can read: labelled controls, WCAG AA contrast.
    assert page.evaluate(UNLABELLED_JS) == []
    assert page.evaluate(CONTRAST_JS) == []
    page.screenshot(path=str(shots / name))


def _type_paper(page: Any, fields: dict[str, str]) -> None:
    """The paper form filled as the pharmacist would: fields typed, lists chosen."""
    for field_id, value in fields.items():
        target = page.locator(f"#{field_id}")
        if target.evaluate("(e) => e.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)


def test_counter_ready_with_a_pharmacist_session(
    page: Any, daemon: Daemon, hwsim_bench: Any
) -> None:
    page.goto(f"{daemon.url}/#token={daemon.token}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    hwsim_bench.client.insert("cps", "pharmacien", reader=1)
    pin = page.locator("#pin-input")
    expect(pin).to_be_focused()
    pin.fill(PHARMACIST.pin)
    pin.press("Enter")
    expect(page.locator("#session-panel")).to_have_attribute("data-session", "open")


def test_a_vitale_swap_clears_the_prescription_in_progress(page: Any, hwsim_bench: Any) -> None:
    read_family_card(page, hwsim_bench, "1")
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")
    type_code(page, SIMPLE_RX)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
    page.locator("#line-1-days").fill("3")  # a line in progress
    hwsim_bench.client.swap("vitale", "seul", reader=0)
    # The next patient's card: nothing of Camille's prescription is left to commit for them.
    expect(page.locator("#rx-cleared")).to_be_visible()
    expect(page.locator("#rx-lines")).to_have_count(0)
    expect(page.locator("#line-1-days")).to_have_count(0)
    expect(page.locator("#commit-form")).to_be_hidden()
    expect(page.locator("#patient-card")).to_contain_text("TESTSEUL DOMINIQUE")
    expect(page.locator("#patient-card")).not_to_contain_text("CAMILLE")


def test_removing_the_vitale_card_clears_the_prescription_and_its_patient(
    page: Any, hwsim_bench: Any
) -> None:
    type_code(page, SIMPLE_RX)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
    hwsim_bench.client.remove(0)
    expect(page.locator("#rx-cleared")).to_be_visible()
    expect(page.locator("#rx-lines")).to_have_count(0)
    expect(page.locator("#patient-card")).to_have_count(0)  # TESTSEUL came from that card


def test_with_nobody_chosen_the_card_offers_the_prescriptions_patient(
    page: Any, hwsim_bench: Any
) -> None:
    hwsim_bench.client.insert("vitale", "famille-testnom", reader=0)
    expect(page.locator("#beneficiary-list li")).to_have_count(2)
    type_code(page, SIMPLE_RX)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("#commit-why")).to_contain_text("Choisissez d'abord le patient")
    page.locator("#rx-choose-patient").click()
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")
    expect(page.locator("#commit")).to_be_enabled()
    hwsim_bench.client.remove(0)  # the next patient comes with the same card
    expect(page.locator("#patient-card")).to_have_count(0)


def test_a_prescription_for_another_beneficiary_offers_the_switch(
    page: Any, daemon: Daemon, hwsim_bench: Any, shots: Path
) -> None:
    """Lou is chosen from the family card; the prescription is her mother Camille's, who is on
    the same card: a blocking warning names both and offers Camille; no override exists."""
    read_family_card(page, hwsim_bench, "2")
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM LOU")
    type_code(page, SIMPLE_RX)
    warning = page.locator("#rx-patient-mismatch")
    expect(warning).to_contain_text("TESTNOM CAMILLE")
    expect(warning).to_contain_text("TESTNOM LOU")
    expect(warning).to_contain_text("31/12/1999")
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("[id$='-override']")).to_have_count(0)
    _shot(page, shots, "counter-wrong-patient.png")
    assert daemon.get("/v1/ordonnancier") == []
    page.locator("#rx-switch-patient").click()
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")
    expect(warning).to_have_count(0)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
    expect(page.locator("#commit")).to_be_enabled()


def test_the_identity_document_form_validates_the_identity(
    page: Any, daemon: Daemon, shots: Path
) -> None:
    card = page.locator("#patient-card")
    expect(page.locator("#identity-status")).to_have_attribute("data-status", "provisional")
    page.locator("#doc-form button").click()  # nothing chosen: said, nothing sent
    expect(page.locator("#doc-message")).to_contain_text("Choisissez la pièce")
    page.locator("#doc-kind").select_option("passeport")
    page.locator("#doc-form button").click()
    expect(page.locator("#identity-status")).to_have_attribute("data-status", "validated")
    expect(card).to_contain_text("Contrôle enregistré (Passeport)")
    expect(page.locator("#doc-checked")).to_contain_text(datetime.now().strftime("%d/%m/%Y"))
    patient_id = page.locator("#patient-panel").get_attribute("data-patient")
    checks = daemon.get(f"/v1/patients/{patient_id}")["checks"]
    assert [(c["kind"], c["author_rpps"]) for c in checks if c["kind"] == "document"] == [
        ("document", PHARMACIST.rpps)
    ]
    _shot(page, shots, "counter-identity.png")


def test_the_paper_copy_is_typed_when_the_service_is_down(
    page: Any, daemon: Daemon, national_sim_server: Any, shots: Path
) -> None:
    """Degraded mode: the e-prescription cannot be fetched; the pharmacist types the paper copy
    and commits it; the execution waits in the outbox."""
    national_sim_server.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.OUTAGE, duration_s=600)
    )
    try:
        type_code(page, RENEWABLE_RX)
        expect(page.locator("#rx .problem")).to_contain_text("indisponible")
        page.locator("#paper-open-copy").click()
        form = page.locator("#paper-form")
        expect(form).to_contain_text(RENEWABLE_RX)
        expect(page.locator("#commit")).to_be_disabled()  # nothing typed yet
        _type_paper(
            page,
            {
                "paper-date": (datetime.now() - timedelta(days=3)).strftime("%d/%m/%Y"),
                "paper-rpps": "10000000009",
                "paper-prescriber": "TESTMEDECIN DOMINIQUE",
                "paper-prescriber-address": "1 place du Cabinet, 75002 Paris",
                "paper-1-designation": "LAMOTRIGINE TEST 100 mg comprimé B/30",
                "paper-1-cip": "3400999999083",
                "paper-1-list": "list_i",
                "paper-1-upd": "2",
                "paper-1-duration": "30",
                "paper-1-nsr": "MTE",
                "paper-1-boxes": "2",
            },
        )
        expect(page.locator("#commit")).to_be_disabled()
        expect(page.locator("#commit-why")).to_contain_text("Adresse du patient")
        page.locator("#patient-address").fill("3 rue des Essais, 75001 Paris")
        expect(page.locator("#commit")).to_be_enabled()
        page.locator("#paper-form").scroll_into_view_if_needed()
        _shot(page, shots, "counter-paper.png")
        page.locator("#commit").click()
        result = page.locator("#commit-ok")
        expect(result).to_contain_text("Enregistrée en mode dégradé")
        stored = daemon.get(f"/v1/dispensations/{result.get_attribute('data-dispensation')}")
        assert stored["prescription_id"] == RENEWABLE_RX
        assert [(ln["intervention"], ln["days"]) for ln in stored["lines"]] == [("unchanged", 30)]
        entries = daemon.get("/v1/ordonnancier")
        assert len(entries) == 1 and "LAMOTRIGINE" in entries[0]["designation"]
    finally:
        national_sim_server.faults.clear("eprescription")


def test_a_paper_only_prescription_is_typed_and_recorded(page: Any, daemon: Daemon) -> None:
    page.locator("#paper-cancel").click()
    page.locator("#paper-open").click()
    expect(page.locator("#paper-form h3")).to_have_text("Ordonnance papier")
    _type_paper(
        page,
        {
            "paper-date": "31/02/2026",  # not a calendar date
            "paper-rpps": "10000000017",
            "paper-prescriber": "TESTDENTISTE ALIX",
            "paper-prescriber-address": "2 avenue du Sourire, 75003 Paris",
            "paper-1-designation": "AMOXICILLINE TEST 1 g comprimé B/6",
            "paper-1-list": "list_i",
            "paper-1-upd": "2",
            "paper-1-duration": "6",
        },
    )
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("#commit-why")).to_contain_text("Date de prescription")
    page.locator("#paper-date").fill(datetime.now().strftime("%d/%m/%Y"))
    page.locator("#commit").click()
    result = page.locator("#commit-ok")
    expect(result).to_contain_text("Dispensation enregistrée")
    expect(result).to_contain_text("Ordonnancier : n° 2")
    stored = daemon.get(f"/v1/dispensations/{result.get_attribute('data-dispensation')}")
    assert stored["prescription_id"].startswith("P")  # a local number: no e-prescription


def test_an_outbox_failure_gives_its_reason_in_french(
    page: Any, daemon: Daemon, national_sim_server: Any
) -> None:
    """The national service refuses the execution report (HTTP 400): the message fails for good
    and the outbox says why, in French, with the retry button."""
    national_sim_server.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.ERROR, method="POST", status=400)
    )
    try:
        page.locator("#paper-cancel").click()
        type_code(page, SIMPLE_RX)  # Camille's, and Camille is at the counter
        expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
        page.locator("#commit").click()
        expect(page.locator("#commit-ok")).to_contain_text("Dispensation enregistrée")
        failed = page.locator("#outbox li[data-status='failed']")
        expect(failed.first).to_contain_text("le service national a refusé l'envoi")
        expect(failed.first.get_by_role("button", name="Relancer")).to_be_visible()
        reasons = [m["last_error"] for m in daemon.get("/v1/outbox")["messages"]]
        assert "national-service-request-rejected" in reasons
    finally:
        national_sim_server.faults.clear("eprescription")


def test_a_narcotic_asks_who_brings_the_prescription(page: Any, daemon: Daemon) -> None:
    """Morphine (stupéfiant): the ordonnancier records the bearer (R.5132-35); the page asks
    before the commit, and the answer goes with it."""
    choose_patient_by_search(page, "testpatient")
    type_code(page, NARCOTIC_RX)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(2)
    give_asked_posologies(page, "4", "7")  # tramadol "si douleur, maximum quatre par jour"
    give_record_mentions(page)
    bearer = page.locator("#bearer-kind")
    expect(bearer).to_be_visible()
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("#commit-why")).to_contain_text("Porteur de l'ordonnance")
    bearer.select_option("other")
    page.locator("#bearer-name").fill("TESTPORTEUR CLAUDE")
    expect(page.locator("#commit")).to_be_disabled()  # the bearer's address is still missing
    page.locator("#bearer-address").fill("5 impasse du Relais, 75004 Paris")
    with page.expect_request(lambda r: r.url.endswith("/v1/dispensations")) as sent:
        page.locator("#commit").click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["bearer"] == {
        "is_patient": False,
        "name": "TESTPORTEUR CLAUDE",
        "address": "5 impasse du Relais, 75004 Paris",
    }
    assert body["patient_address"] == "3 rue des Essais, 75001 Paris"
    expect(page.locator("#commit-ok")).to_contain_text("Dispensation enregistrée")


def test_lines_the_rules_refuse_are_blocked_before_the_commit(
    page: Any, daemon: Daemon, national_sim_server: Any, shots: Path
) -> None:
    """Prescribed 390 days ago (simulator clock): beyond the 12 months of treatment nobody may
    deliver the list I lines. The page shows the rules' reasons and article, proposes nothing for
    them and keeps them out of the commit."""
    sim = national_sim_server.state
    sim.clock.freeze(datetime.now(UTC) - timedelta(days=390))
    reset_state(sim)  # fixtures are dated from the simulator clock
    try:
        choose_patient_by_search(page, "testpatient")
        type_code(page, LATE_RX)
        rows = page.locator("#rx-lines tbody tr")
        expect(rows).to_have_count(3)
        view = daemon.get(f"/v1/prescriptions/{LATE_RX}")
        blocked = [
            ln
            for ln in view["lines"]
            if not ln["deliverable"]["allowed"] and not ln["deliverable"]["overridable"]
        ]
        assert [ln["line_no"] for ln in blocked][:2] == [1, 2]  # the list I lines at least
        for line in blocked:
            row = page.locator(f"#rx-lines tr[data-line='{line['line_no']}']")
            expect(row).to_have_attribute("data-blocked", "true")
            reason = line["deliverable"]["reasons"][0]
            expect(row).to_contain_text(reason["message"])
            expect(row).to_contain_text(reason["article"])
            expect(row.locator(".proposal")).to_have_count(0)
            expect(page.locator(f"#line-{line['line_no']}-intervention")).to_be_disabled()
            expect(page.locator(f"#line-{line['line_no']}-days")).to_have_count(0)
        page.locator("#rx-lines").scroll_into_view_if_needed()
        _shot(page, shots, "counter-blocked.png")
        before = len(daemon.get("/v1/ordonnancier"))
        if len(blocked) == len(view["lines"]):
            expect(page.locator("#commit")).to_be_disabled()
            expect(page.locator("#commit-why")).to_contain_text("Aucune ligne délivrable")
            return
        refused = {ln["line_no"] for ln in blocked}
        give_asked_posologies(page, "1", "15")  # "si besoin": how much, for how long
        page.locator("#commit").click()
        result = page.locator("#commit-ok")
        expect(result).to_contain_text("Dispensation enregistrée")
        stored = daemon.get(f"/v1/dispensations/{result.get_attribute('data-dispensation')}")
        assert all(
            ln["intervention"] == "not_dispensed"
            for ln in stored["lines"]
            if ln["line_no"] in refused
        )
        assert len(daemon.get("/v1/ordonnancier")) == before  # no list I line was recorded
    finally:
        national_sim_server.reset()


def test_dates_are_french_whatever_the_browsers_locale(page: Any, hwsim_bench: Any) -> None:
    """This module's Chromium runs in American English (see ``page``): the dates stay French."""
    assert page.evaluate("navigator.language") == "en-US"
    hwsim_bench.client.swap("vitale", "seul", reader=0)
    expect(page.locator("#patient-card")).to_contain_text("01/01/1962")
    entries = page.locator("#ordo li[data-number]")
    expect(entries.first).to_be_visible()
    assert FRENCH_DATE.search(entries.first.inner_text()), entries.first.inner_text()
    # No native date field anywhere, dashboard included (it would show mm/dd/yyyy here).
    assert page.locator("input[type='date']").count() == 0
    expect(page.locator("#ordo-from")).to_have_attribute("placeholder", "jj/mm/aaaa")
    times = page.locator("#events time")
    expect(times.first).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2}$"))  # 24 h, no AM/PM


def test_the_warning_is_the_daemons_answer(page: Any, hwsim_bench: Any) -> None:
    """The page has no copy of the patient rule: it warns when the view's ``patient_match`` (the
    commit's rule) says so. Camille's own prescription, answered here as if the daemon found a
    difference, is a blocking warning; the real answer is none."""
    hwsim_bench.client.remove(0)  # the previous patient's card goes out, the family's goes in
    expect(page.locator("#patient-card")).to_have_count(0)
    hwsim_bench.client.insert("vitale", "famille-testnom", reader=0)
    expect(page.locator("#beneficiary-list li")).to_have_count(2)
    page.keyboard.press("1")  # the list has the focus: the key chooses
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")

    def flipped(route: Any) -> None:
        if route.request.method != "GET" or "patient_id=" not in route.request.url:
            route.continue_()
            return
        answer = route.fetch()
        view = answer.json()
        assert view["patient_match"]["matches"] is True  # the daemon's real answer
        view["patient_match"] = {"matches": False, "rule": "traits", "differing": ["birth_date"]}
        route.fulfill(response=answer, json=view)

    page.route("**/v1/prescriptions/**", flipped)
    try:
        type_code(page, SIMPLE_RX)
        expect(page.locator("#rx-patient-mismatch")).to_be_visible()
        expect(page.locator("#commit-why")).to_contain_text("autre patient")
    finally:
        page.unroute("**/v1/prescriptions/**")
    type_code(page, SIMPLE_RX)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
    expect(page.locator("#rx-patient-mismatch")).to_have_count(0)
    expect(page.locator("#commit-why")).not_to_contain_text("autre patient")


def test_the_mentions_asked_are_the_daemons_record_missing(page: Any) -> None:
    """What the page asks for the ordonnancier is what POST /v1/dispensations/check says the
    commit lacks, never the page's guess: for Camille's lamotrigine (liste I) the fields are the
    daemon's ``record_missing``; answered here as if nothing lacked, the page asks nothing."""
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")
    fields = {
        "patient_address": "#patient-address",
        "prescriber_address": "#prescriber-address",
        "bearer": "#bearer-kind",
    }
    with page.expect_response(lambda r: r.url.endswith("/v1/dispensations/check")) as checked:
        type_code(page, RENEWABLE_RX)
    asked = {m["datum"] for m in checked.value.json()["record_missing"]}
    assert "patient_address" in asked  # a liste I line: R.5132-10
    for datum, selector in fields.items():
        expect(page.locator(selector)).to_have_count(1 if datum in asked else 0)

    def nothing_lacks(route: Any) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "record_missing": []})

    page.route("**/v1/dispensations/check", nothing_lacks)
    try:
        page.locator("#line-1-days").fill("1")  # the dispensation changed: checked again
        page.locator("#line-1-days").fill("2")
        expect(page.locator("#patient-address")).to_have_count(0)
        expect(page.locator("#commit-why")).not_to_contain_text("Adresse du patient")
    finally:
        page.unroute("**/v1/dispensations/check")


def test_an_unrecognised_code_is_explained_in_french(page: Any) -> None:
    """A CIP13 with a wrong key and a broken GS1 DataMatrix (typed, no AIM prefix): the events
    panel says why in French, and nothing is opened."""
    type_code(page, "3400935955839")
    events = page.locator("#events")
    expect(events).to_contain_text(
        "Code non reconnu (code-barres EAN-13 à la clé de contrôle fausse (boîte non reconnue))"
    )
    type_code(page, "01034009999999921727123110TESTLOT1")
    expect(events).to_contain_text(
        "Code non reconnu (DataMatrix GS1 invalide : clé de contrôle du GTIN fausse)"
    )
    expect(page.locator("#rx-loading")).to_have_count(0)
