"""The counter page in Debian's Chromium (Playwright) against the real daemon.

One ``python -m lgo serve`` subprocess on a free 127.0.0.1 port (migrated SQLite, a counter token)
talks to hw-sim's private pcscd (virtual Vitale and CPS cards, serial scanner), OpenSC's PKCS#11
module (driving the virtual CPS) and the national simulator on 127.0.0.1. The page is driven like a pharmacist would: the
tests only act on the simulator or the page, and wait on what the page shows (Playwright's
``expect`` waits for the DOM; no sleeps). The tests of this module run in order on one page and one
daemon, like one working day at the counter: token → patient → CPS session → prescription →
commit → degraded mode → CPS pulled. Screenshots of the main screens go to the test's temporary
folder, or to docs/screenshots/ with ``LGO_UPDATE_SCREENSHOTS=1`` (tests/e2e/screenshots.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hwsim.fixtures.people import load_people
from hwsim.national.apcv import issue_token
from hwsim.national.faults import FaultKind, FaultSpec
from tests.e2e.browser import chromium_context
from tests.e2e.screenshots import screenshot_dir
from tests.fixtures.secrets import without_random_ids

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

VIEWPORT = {"width": 1366, "height": 768}
PEOPLE = load_people()
PHARMACIST = PEOPLE.professionals["pharmacien"]
LISTED_RX = "01S2TBPZ2JCNZZYGHZ"  # amoxicilline, list I: goes to the ordonnancier
SIMPLE_RX = "EPTEST0000000000000042"  # paracetamol, not listed
LATE_RX = "EPTEST0000000000000043"  # three lines, two on list I
CHILD_RX = "EPTEST0000000000000045"  # two non-substitutable lines (EFG, CIF)
PSC_PHARMACIST = "10999999997"  # the PSC simulator approves this one's CIBA requests
STARTUP_S = 30.0
UI_TIMEOUT_MS = 15_000


@dataclass
class Daemon:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.get(self.url + path, headers=headers, timeout=5.0)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.post(self.url + path, json=body, headers=headers, timeout=10.0)
        response.raise_for_status()
        return response.json()


# Patients the pharmacy already knows (typed in an earlier visit): the prescriptions' patients who
# have no card in hw-sim. Only fictitious people, as in the national simulator's fixtures.
KNOWN_PATIENTS = {
    "testpatient": {
        "birth_name": "TESTPATIENT",
        "given_names": "DOMINIQUE JEAN",
        "birth_date": "19850314",
        "sex": "M",
    },
    "testenfant": {
        "birth_name": "TESTENFANT",
        "given_names": "NOA",
        "birth_date": "20240602",
        "sex": "M",
    },
}


def register_known_patients(daemon: Daemon) -> None:
    for body in KNOWN_PATIENTS.values():
        daemon.post("/v1/patients", {**body, "source": "manual"})


def type_code(page: Any, code: str) -> None:
    """Typed in the scan field and sent with Enter (POST /v1/scans from the page)."""
    scan = page.locator("#scan-input")
    scan.fill(code)
    scan.press("Enter")


def read_family_card(page: Any, hwsim_bench: Any, key: str) -> None:
    """The family card goes in; the number key chooses among its two beneficiaries."""
    hwsim_bench.client.insert("vitale", "famille-testnom", reader=0)
    expect(page.locator("#beneficiary-list li")).to_have_count(2)
    page.keyboard.press(key)


def give_record_mentions(page: Any) -> None:
    """What the ordonnancier needs and the prescription does not give (R.5132-10): the patient's
    address, and the prescriber's when the prescription has none."""
    page.locator("#patient-address").fill("3 rue des Essais, 75001 Paris")
    if page.locator("#prescriber-address").count():
        page.locator("#prescriber-address").fill("1 place du Cabinet, 75002 Paris")


def give_asked_posologies(page: Any, units_per_day: str, days: str) -> None:
    """Lines whose dosage gives no figure ("si besoin", "selon le poids"): the pharmacist says
    how much a day and for how long."""
    for field in page.locator("[id$='-upd']").all():
        field.fill(units_per_day)
    for field in page.locator("[id^='line-'][id$='-duration']").all():
        field.fill(days)


def choose_patient_by_search(page: Any, name: str) -> None:
    """F3, type the name, take the only answer (the scan field gets the keyboard back)."""
    page.keyboard.press("F3")
    page.locator("#ps-name").fill(name)
    page.locator("#ps-name").press("Enter")
    found = page.locator("#patient-results li")
    expect(found).to_have_count(1)
    found.first.get_by_role("button").click()
    expect(page.locator("#patient-card")).to_contain_text(name.upper())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{command[3:]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def _wait_healthy(daemon: Daemon) -> None:
    # The daemon has no readiness signal on a TCP port: poll /v1/health until it answers.
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise RuntimeError(f"daemon exited: {daemon.log.read_text()[-2000:]}")
        try:
            daemon.get("/v1/health")
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"daemon not up: {daemon.log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def daemon(
    hwsim_bench: Any, opensc_module: Any, national_sim_server: Any, tmp_path_factory: Any
) -> Iterator[Daemon]:
    national_sim_server.reset()  # other modules may have dispensed its prescriptions already
    state = tmp_path_factory.mktemp("lgo-e2e")
    port = _free_port()
    env = {
        **os.environ,
        "LGO_STATE_DIR": str(state),
        "LGO_API__PORT": str(port),
        "LGO_NATIONAL__BASE_URL": national_sim_server.base_url,
        "LGO_HARDWARE__PCSC_ENABLED": "true",
        # OpenSC's module drives the virtual CPS card (PIN counter, keys, signature on the card).
        "LGO_HARDWARE__PKCS11_MODULE": str(opensc_module),
        "LGO_HARDWARE__SCANNER_SERIAL_PORTS": json.dumps([str(hwsim_bench.serial_scanner)]),
        # Every prescription asks the Annuaire again, so an injected directory outage is seen.
        "LGO_NATIONAL__ANNUAIRE__CACHE_TTL_S": "0",
    }
    lgo = [sys.executable, "-m", "lgo"]
    _run([*lgo, "migrate"], env)
    token = _run([*lgo, "counters", "add", "comptoir-e2e"], env).strip().splitlines()[-1]
    log = state / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*lgo, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Daemon(f"http://127.0.0.1:{port}", token, process, log)
    try:
        _wait_healthy(running)
        register_known_patients(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        hwsim_bench.client.reset()


@pytest.fixture(scope="module")
def page(daemon: Daemon) -> Iterator[Any]:
    with chromium_context(
        prefix="lgo-e2e-chromium-", viewport=VIEWPORT, timeout_ms=UI_TIMEOUT_MS
    ) as context:
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Console errors too (CSP refusals...), but not the HTTP errors the tests provoke.
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )
        page.lgo_requests = requests
        page.lgo_errors = errors
        yield page


CONTRAST_JS = """() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (node) => {
    for (let el = node; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.offsetParent === null || el.disabled) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const fg = lum(rgb(style.color).slice(0, 3));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${el.id || el.className || el.tagName}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, button')]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                    && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map((el) => el.id || el.outerHTML.slice(0, 60))"""


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def _shot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / name))


def test_token_from_fragment_is_stored_and_stripped(page: Any, daemon: Daemon) -> None:
    page.goto(f"{daemon.url}/#token={daemon.token}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    assert "token" not in page.url
    assert page.evaluate("localStorage.getItem('lgo.counterToken')") == daemon.token
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page.locator("#scan-input")).to_be_focused()
    expect(page.locator("#readers li")).to_have_count(2)
    # Every request the page made went to the daemon's own origin.
    assert all(url.startswith(daemon.url + "/") for url in page.lgo_requests)


def test_vitale_insert_shows_the_patient_without_reload(
    page: Any, daemon: Daemon, hwsim_bench: Any, shots: Path
) -> None:
    page.evaluate("window.__sameDocument = true")
    hwsim_bench.client.insert("vitale", "seul", reader=0)
    card = page.locator("#patient-card")
    expect(card).to_contain_text("TESTSEUL DOMINIQUE")
    expect(card).to_contain_text("01/01/1962")
    expect(page.locator("#identity-status")).to_have_attribute("data-status", "provisional")
    expect(page.locator("#readers li").first).to_contain_text("Carte Vitale")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    _shot(page, shots, "counter-patient.png")


def test_ins_retrieved_with_insi_from_the_card(page: Any) -> None:
    page.get_by_role("button", name="Récupérer l'INS (INSi)").click()
    expect(page.locator("#identity-status")).to_have_attribute("data-status", "recovered")
    expect(page.locator("#patient-card")).to_contain_text("Téléservice INSi")


def test_cps_pin_is_masked_cleared_and_opens_the_session(page: Any, hwsim_bench: Any) -> None:
    hwsim_bench.client.insert("cps", "pharmacien", reader=1)
    pin = page.locator("#pin-input")
    expect(pin).to_be_visible()
    expect(pin).to_be_focused()  # a CPS card going in takes the keyboard to the PIN
    assert pin.get_attribute("type") == "password"
    pin.fill("0000")
    pin.press("Enter")
    expect(page.locator("#pin-message")).to_contain_text("Essais restants : 2")
    assert pin.input_value() == ""
    pin.fill("0001")
    pin.press("Enter")
    expect(page.locator("#pin-message")).to_contain_text("Essais restants : 1")
    # The last try is never spent without the pharmacist's explicit confirmation.
    pin.fill(PHARMACIST.pin)
    pin.press("Enter")
    expect(page.locator("#pin-confirm-row")).to_be_visible()
    expect(page.locator("#pin-message")).to_contain_text("Dernier essai")
    assert pin.input_value() == ""
    page.locator("#pin-confirm").check()
    pin.fill(PHARMACIST.pin)
    pin.press("Enter")
    expect(page.locator("#session-panel")).to_have_attribute("data-session", "open")
    expect(page.locator("#session-state")).to_contain_text("TESTPHARMA ALEX")
    stored = page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    token = page.evaluate("localStorage.getItem('lgo.counterToken')")
    assert PHARMACIST.pin not in without_random_ids(stored.replace(token, ""))
    expect(page.locator("#scan-input")).to_be_focused()


def test_apcv_scan_gives_the_beneficiaries_to_choose(
    page: Any, hwsim_bench: Any, national_sim_server: Any
) -> None:
    """The patient shows the app carte Vitale QR code; the daemon exchanges the token."""
    token, _ = issue_token(national_sim_server.state, "camille")
    hwsim_bench.client.scan(token)
    choices = page.locator("#beneficiary-list li")
    expect(choices).to_have_count(2)
    expect(page.locator("#beneficiaries")).to_contain_text("apCV lue")
    expect(choices.nth(1).locator("kbd")).to_have_text("2")
    expect(choices.nth(0).locator("button")).to_be_focused()  # the list takes the keys at once
    # A digit typed in the scan field is the start of a prescription number, never a choice.
    page.keyboard.press("F2")
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.press("1")
    expect(page.locator("#scan-input")).to_have_value("1")
    expect(choices).to_have_count(2)
    page.locator("#scan-input").fill("")
    # Out of the text field, the number in front of the beneficiary chooses, no Tab needed.
    choices.nth(0).locator("button").focus()
    page.keyboard.press("1")
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")
    assert page.locator("#scan-input").input_value() == ""  # the key did not go into the field
    expect(page.locator("#beneficiary-list")).to_have_count(0)  # single-use: nothing to keep
    assert token not in page.content()


def test_scanned_eprescription_for_another_patient_is_blocked(
    page: Any, daemon: Daemon, hwsim_bench: Any
) -> None:
    """Camille is at the counter; the prescription is Dominique Testpatient's: a blocking warning
    names both, the commit is off, and the card read has no such beneficiary to switch to."""
    hwsim_bench.client.scan(LISTED_RX)  # through the virtual serial scanner → scan.received
    warning = page.locator("#rx-patient-mismatch")
    expect(warning).to_contain_text("TESTPATIENT DOMINIQUE JEAN")
    expect(warning).to_contain_text("TESTNOM CAMILLE")
    expect(warning).to_contain_text("14/03/1985")
    expect(page.locator("#rx-switch-patient")).to_have_count(0)
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("#commit-why")).to_contain_text("autre patient")
    assert daemon.get("/v1/ordonnancier") == []


def test_scanned_eprescription_shows_its_people_and_the_prescribers_words(
    page: Any, shots: Path
) -> None:
    choose_patient_by_search(page, "testpatient")
    expect(page.locator("#rx-patient-mismatch")).to_have_count(0)
    rows = page.locator("#rx-lines tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("AMOXICILLINE TEST 1 g")
    expect(rows.first).to_contain_text("liste I")
    expect(page.locator("#rx-patient")).to_contain_text("TESTPATIENT DOMINIQUE JEAN")
    prescriber = page.locator("#rx-prescriber")
    expect(prescriber).to_contain_text("TESTDENTISTE ALIX")
    expect(prescriber).to_contain_text("10000000017")
    expect(prescriber).to_contain_text("dentiste")
    # The prescriber's text, verbatim, and no per-day figure worked out from the boxes (2 boxes
    # of 6 for 6 days used to show as "0,33/jour").
    expect(page.locator("#line-1-posology")).to_have_text(
        "1 comprimé matin et soir pendant 6 jours"
    )
    expect(rows.first).not_to_contain_text("0,33")
    expect(page.locator("#line-1-intervention")).to_have_value("unchanged")
    # A list I line goes to the ordonnancier: its mentions are asked before the commit.
    expect(page.locator("#patient-address")).to_be_visible()
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("#commit-why")).to_contain_text("Adresse du patient")
    page.locator("#commit-form").scroll_into_view_if_needed()
    _shot(page, shots, "counter-prescription.png")


def test_decide_and_commit_gives_a_result_and_an_ordonnancier_entry(
    page: Any, daemon: Daemon, shots: Path
) -> None:
    give_record_mentions(page)  # a list I line: the ordonnancier needs the addresses
    # A modification without the prescriber's agreement is refused, in the rules' own words.
    page.locator("#line-1-intervention").select_option("modified")
    expect(page.locator("#line-1-agreement")).to_be_visible()
    page.locator("#commit").click()
    expect(page.locator("#commit-result .problem")).to_contain_text(
        "Modification : accord du prescripteur (date) et motif obligatoires"
    )
    assert daemon.get("/v1/ordonnancier") == []  # nothing recorded
    page.locator("#line-1-intervention").select_option("unchanged")
    page.locator("#line-1-days").fill("6")
    page.locator("#line-1-boxes").fill("2")
    page.keyboard.press("Control+Enter")
    result = page.locator("#commit-ok")
    expect(result).to_contain_text("Dispensation enregistrée")
    expect(result).to_contain_text("Ordonnancier : n° 1")
    dispensation_id = result.get_attribute("data-dispensation")
    entry = page.locator("#ordo li[data-number='1']")
    expect(entry).to_contain_text("AMOXICILLINE TEST 1 g")
    expect(page.locator("#outbox li[data-status='delivered']")).to_have_count(1)
    expect(result).to_contain_text("Exécution transmise au service national")
    with page.context.expect_page() as printable:
        page.locator("#ordo-html").click()
    expect(printable.value.locator("body")).to_contain_text("AMOXICILLINE TEST 1 g")
    printable.value.close()
    with page.expect_download() as download:
        page.locator("#ordo-csv").click()
    assert download.value.suggested_filename == "ordonnancier-chronological.csv"
    assert "AMOXICILLINE TEST 1 g" in Path(download.value.path()).read_text(encoding="utf-8")
    stored = daemon.get(f"/v1/dispensations/{dispensation_id}")
    assert [(ln["intervention"], ln["days"], ln["boxes"]) for ln in stored["lines"]] == [
        ("unchanged", 6, 2)
    ]
    _shot(page, shots, "counter-committed.png")


def test_the_committed_state_fits_the_counter_screen(page: Any) -> None:
    expect(page.locator("#commit-ok")).to_be_visible()
    size = page.evaluate(
        """() => ({ width: document.documentElement.scrollWidth,
                   height: document.documentElement.scrollHeight })"""
    )
    assert size["width"] <= VIEWPORT["width"] and size["height"] <= VIEWPORT["height"], size


def test_a_replayed_commit_says_the_same_as_the_first(page: Any, daemon: Daemon) -> None:
    """The same click again (the answer was lost, say) replays: the same dispensation and
    number, said the same way, and nothing new in the ordonnancier."""
    first = page.locator("#commit-ok")
    dispensation_id = first.get_attribute("data-dispensation")
    page.locator("#commit").click()
    expect(first).to_have_attribute("data-replayed", "true")
    expect(first).to_have_attribute("data-dispensation", dispensation_id or "")
    expect(first).to_contain_text("Dispensation enregistrée")
    expect(first).to_contain_text("Ordonnancier : n° 1")
    expect(page.locator("#commit-replayed")).to_have_text(
        "Délivrance déjà enregistrée (n° 1) : rien de nouveau n'a été inscrit."
    )
    assert [e["number"] for e in daemon.get("/v1/ordonnancier")] == [1]


def test_eprescription_service_down_shows_degraded_then_sent(
    page: Any, daemon: Daemon, national_sim_server: Any, shots: Path
) -> None:
    type_code(page, SIMPLE_RX)  # typed: POST /v1/scans from the page
    # Camille's prescription while Dominique is chosen: the apCV read has Camille, the page
    # offers the switch.
    switch = page.locator("#rx-switch-patient")
    expect(switch).to_contain_text("TESTNOM CAMILLE")
    switch.click()
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM CAMILLE")
    expect(page.locator("#rx-patient-mismatch")).to_have_count(0)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(1)
    expect(page.locator("#rx-lines")).to_contain_text("PARACETAMOL TEST 1 g")
    national_sim_server.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.OUTAGE, duration_s=600)
    )
    try:
        page.locator("#commit").click()
        expect(page.locator("#commit-ok")).to_contain_text("Enregistrée en mode dégradé")
        banner = page.locator("#banner-degraded")
        expect(banner).to_be_visible()
        expect(page.locator("#outbox li[data-status='pending']")).to_have_count(1)
        page.locator("#commit-ok").scroll_into_view_if_needed()  # the banner pushed it down
        _shot(page, shots, "counter-degraded.png")
    finally:
        national_sim_server.faults.clear("eprescription")
    expect(page.locator("#banner-degraded")).to_be_hidden(timeout=30_000)
    expect(page.locator("#outbox li[data-status='delivered']")).to_have_count(2, timeout=30_000)
    assert all(m["status"] == "delivered" for m in daemon.get("/v1/outbox")["messages"])


def test_unverified_prescriber_needs_the_pharmacists_acknowledgement(
    page: Any, daemon: Daemon, national_sim_server: Any
) -> None:
    """The Annuaire Santé is down: the prescriber cannot be confirmed, the page says so, the commit is
    refused until the pharmacist ticks the acknowledgement, and then goes through."""
    national_sim_server.faults.arm(
        FaultSpec(service="annuaire", kind=FaultKind.OUTAGE, duration_s=600)
    )
    try:
        choose_patient_by_search(page, "testenfant")
        type_code(page, CHILD_RX)
        expect(page.locator("#rx-lines tbody tr")).to_have_count(2)
        # "selon le poids, si fièvre": no figure in the prescription, the pharmacist gives it.
        expect(page.locator("#line-2-posology")).to_have_text("selon le poids, si fièvre")
        expect(page.locator("#commit")).to_be_disabled()
        expect(page.locator("#commit-why")).to_contain_text("Ligne 2 : unités par jour et durée")
        give_asked_posologies(page, "3", "5")
        give_record_mentions(page)
        warning = page.locator("#prescriber-warning")
        expect(warning).to_be_visible()
        before = len(daemon.get("/v1/ordonnancier"))
        page.locator("#commit").click()
        expect(page.locator("#commit-result .problem")).to_be_visible()
        assert len(daemon.get("/v1/ordonnancier")) == before  # nothing recorded
        page.locator("#prescriber-ack").check()
        with page.expect_request(lambda r: r.url.endswith("/v1/dispensations")) as sent:
            page.locator("#commit").click()
        expect(page.locator("#commit-ok")).to_contain_text("Dispensation enregistrée")
        lines = json.loads(sent.value.post_data or "{}")["lines"]
        assert [(ln.get("units_per_day"), ln["days"]) for ln in lines][1] == (3, 5)
    finally:
        national_sim_server.faults.clear("annuaire")


def test_a_longer_delivery_is_lifted_with_a_recorded_reason(page: Any, daemon: Daemon) -> None:
    """Three months of levothyroxine at once: beyond the one-month cap of a delivery the rules
    refuse, the page asks for the reason (the commit waits for it), and the reason and the
    pharmacist's RPPS are recorded with the line."""
    choose_patient_by_search(page, "testpatient")
    type_code(page, LATE_RX)
    expect(page.locator("#rx-lines tbody tr")).to_have_count(3)
    expect(page.locator("#line-1-posology")).to_have_text("1 comprimé le matin à jeun")
    give_asked_posologies(page, "1", "15")  # line 3, "si besoin"
    give_record_mentions(page)
    page.locator("#line-1-days").fill("90")
    page.locator("#line-1-boxes").fill("3")
    page.locator("#commit").click()
    expect(page.locator("#commit-result .problem")).to_contain_text("ligne 1")
    reason = page.locator("#line-1-override")
    expect(reason).to_be_visible()
    expect(page.locator("#commit")).to_be_disabled()
    expect(page.locator("#commit-why")).to_contain_text("motif de la dérogation")
    reason.fill("Traitement chronique stable, départ à l'étranger trois mois")
    page.locator("#commit").click()
    result = page.locator("#commit-ok")
    expect(result).to_contain_text("Dispensation enregistrée")
    stored = daemon.get(f"/v1/dispensations/{result.get_attribute('data-dispensation')}")
    overrides = [ln["override"] for ln in stored["lines"] if ln["override"]]
    assert [(o["code"], o["pharmacist_rpps"]) for o in overrides] == [
        ("per_delivery_cap_exceeded", PHARMACIST.rpps)
    ]


def test_pulling_the_cps_card_closes_the_session_on_screen(page: Any, hwsim_bench: Any) -> None:
    hwsim_bench.client.remove(1)
    expect(page.locator("#session-panel")).to_have_attribute("data-session", "closed")
    expect(page.locator("#session-state")).to_contain_text("carte CPS retirée")
    # Acts reserved to pharmacists are now refused, in French, from the API's problem.
    type_code(page, SIMPLE_RX)
    expect(page.locator("#rx .problem")).to_contain_text("pharmacien")


def test_pcscd_restart_shows_then_clears_the_readers_banner(page: Any, hwsim_bench: Any) -> None:
    # The outage may be short: a MutationObserver notes the banner's appearance as it happens.
    page.evaluate(
        """() => { const b = document.getElementById('banner-hardware');
                  new MutationObserver(() => { if (!b.hidden) window.__hwBanner = true; })
                    .observe(b, { attributes: true }); }"""
    )
    hwsim_bench.client.restart_pcscd()
    page.wait_for_function("window.__hwBanner === true", timeout=20_000)
    expect(page.locator("#banner-hardware")).to_be_hidden(timeout=30_000)
    expect(page.locator("#readers li")).to_have_count(2, timeout=30_000)


def test_a_family_card_lets_the_pharmacist_choose_the_beneficiary(
    page: Any, hwsim_bench: Any
) -> None:
    hwsim_bench.client.swap("vitale", "famille-testnom", reader=0)
    expect(page.locator("#beneficiaries")).to_contain_text("Carte Vitale lue")
    choices = page.locator("#beneficiary-list li")
    expect(choices).to_have_count(2)
    expect(choices.nth(1)).to_contain_text("TESTNOM LOU")
    choices.nth(1).get_by_role("button").click()
    expect(page.locator("#patient-card")).to_contain_text("TESTNOM LOU")
    expect(page.locator("#patient-card")).to_contain_text("15/06/2010")
    hwsim_bench.client.remove(0)
    expect(page.locator("#beneficiaries")).to_contain_text("Carte Vitale retirée")
    expect(page.locator("#beneficiary-list")).to_have_count(0)  # the card's contents go with it


def test_patient_search_from_the_keyboard(page: Any) -> None:
    page.keyboard.press("F3")
    name = page.locator("#ps-name")
    expect(name).to_be_focused()
    name.fill("testse")  # prefix, case and accents ignored by the API
    name.press("Enter")
    found = page.locator("#patient-results li")
    expect(found).to_have_count(1)
    expect(found.first).to_contain_text("TESTSEUL DOMINIQUE")
    found.first.get_by_role("button").click()
    expect(page.locator("#patient-card")).to_contain_text("TESTSEUL DOMINIQUE")
    expect(page.locator("#scan-input")).to_be_focused()
    page.locator("#ps-name").fill("PERSONNEINCONNUE")
    page.locator("#ps-name").press("Enter")
    expect(page.locator("#patient-results")).to_contain_text("Aucun patient trouvé")


def test_ecps_sign_in_then_close(page: Any) -> None:
    """e-CPS by Pro Santé Connect (CIBA): the simulator's pharmacist approves on the 'phone'."""
    hint = page.locator("#psc-hint")
    hint.fill(PSC_PHARMACIST)
    hint.press("Enter")
    expect(page.locator("#session-panel")).to_have_attribute("data-session", "open")
    expect(page.locator("#session-state")).to_contain_text("Session e-CPS ouverte")
    page.locator("#session-close").click()
    expect(page.locator("#session-panel")).to_have_attribute("data-session", "closed")
    expect(page.locator("#session-state")).to_contain_text("déconnexion")


def test_english_toggle_and_shortcuts(page: Any) -> None:
    missing = page.evaluate(
        """() => {
          const fr = Object.keys(LGO_I18N.fr), en = Object.keys(LGO_I18N.en);
          const used = [...document.querySelectorAll('[data-i18n]')].map((e) => e.dataset.i18n);
          return [...fr.filter((k) => !en.includes(k)), ...en.filter((k) => !fr.includes(k)),
                  ...used.filter((k) => !fr.includes(k))];
        }"""
    )
    assert missing == []  # every text exists in both languages
    # Every key the script writes with t("…") exists in both languages too.
    unknown = page.evaluate(
        """async () => {
          const source = await (await fetch('/app.js')).text();
          const keys = [...source.matchAll(/\\bt\\("([^"]+)"/g)].map((m) => m[1]);
          return keys.length > 50 ? keys.filter((k) => !(k in LGO_I18N.fr) || !(k in LGO_I18N.en))
                                  : ['too few keys found: ' + keys.length];
        }"""
    )
    assert unknown == []
    page.locator("#lang-toggle").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    untranslated = page.evaluate(
        """() => [...document.querySelectorAll('[data-i18n]')]
            .filter((e) => e.textContent !== LGO_I18N.en[e.dataset.i18n])
            .map((e) => e.dataset.i18n)"""
    )
    assert untranslated == []  # every marked text on the page is now the English one
    expect(page.locator("#outbox-title")).to_have_text("Outbox")
    expect(page.locator("#session-state")).to_contain_text("No session open")
    page.keyboard.press("F3")
    expect(page.locator("#ps-name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#scan-input")).to_be_focused()
    page.locator("#lang-toggle").click()
    expect(page.locator("#outbox-title")).to_have_text("File d'envoi")
    assert page.lgo_errors == []  # no script error during the whole day


def test_a_bad_token_brings_the_token_form(page: Any, daemon: Daemon) -> None:
    page.evaluate("localStorage.setItem('lgo.counterToken', 'not-a-token')")
    page.reload()
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-error")).to_be_visible()
    assert page.evaluate("localStorage.getItem('lgo.counterToken')") is None
    page.locator("#token-input").fill(daemon.token)
    page.locator("#token-input").press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")


def test_every_control_has_a_label_and_events_are_announced(page: Any) -> None:
    unlabelled = page.evaluate(UNLABELLED_JS)
    assert unlabelled == []
    # WCAG AA: every visible text has a contrast ratio of at least 4.5:1 (3:1 when large).
    low = page.evaluate(CONTRAST_JS)
    assert low == []
    assert page.locator("#events").get_attribute("aria-live") == "polite"
    assert page.locator("#banner-degraded").get_attribute("role") == "alert"


def test_event_stream_reconnects_with_last_event_id(page: Any, daemon: Daemon) -> None:
    """The stream ends (proxy, daemon restart): the page reconnects and resumes after the last id."""
    second = page.context.new_page()
    frames = (
        ": connected\r\n\r\n"
        'id: 41\r\nevent: reader.added\r\ndata: {"id":41,"type":"reader.added",'
        '"at":"2026-01-01T10:00:00+00:00",\r\ndata: "data":{"reader":"LECTEUR TEST 9"}}\r\n\r\n'
    )
    second.route(
        "**/v1/events",
        lambda route: route.fulfill(
            status=200, body=frames, headers={"Content-Type": "text/event-stream"}
        ),
    )
    try:
        with second.expect_request(
            lambda r: r.url.endswith("/v1/events") and r.headers.get("last-event-id") == "41"
        ):
            second.goto(f"{daemon.url}/")
        # The multi-line data field was joined and dispatched: the event reached the log.
        expect(second.locator("#events")).to_contain_text("LECTEUR TEST 9")
    finally:
        second.close()
