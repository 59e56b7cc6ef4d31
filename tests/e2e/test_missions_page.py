"""The vaccination and TROD forms of the counter page in Debian's Chromium (Playwright), against the
daemon's app served by uvicorn on 127.0.0.1, the national simulator (DMP) and SQLite. The patient is
found with the page's search and chosen like a pharmacist would; the pharmacist's CPS session is open.
Screenshots go to the test's temporary folder, or to docs/screenshots/ with LGO_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import part_of as dispensing_of
from lgo.bootstrap.documents import part_of as documents_of
from lgo.core.settings import load_settings
from lgo.documents.errors import CdaNonConformantError
from lgo.domain.identity import IdentityStatus
from lgo.services.counters import add_counter
from lgo.services.documents import DocumentService
from lgo.store import migrate
from lgo.store.models.missions import TrodTestRow, VaccinationRow
from tests.e2e.browser import chromium_context
from tests.e2e.screenshots import screenshot_dir
from tests.fixtures.api import served_on_socket
from tests.fixtures.dispensing import open_pharmacist_session
from tests.fixtures.missions import AMOXICILLIN, FOSFOMYCIN, VACCINE, add_patient, datamatrix
from tests.fixtures.national import NationalSim

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
NEXT_YEAR = date.today() + timedelta(days=365)


@dataclass
class Served:
    url: str
    token: str
    container: Container
    patient_id: str


@pytest.fixture
def served(tmp_path: Path, national_sim: NationalSim) -> Iterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = load_settings(
        mode="bench",
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        api={"port": port},
        national={"base_url": national_sim.base_url, "timeout_s": 2.0, "dmp": {"auto_feed": False}},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-missions")
    for product in (VACCINE, AMOXICILLIN, FOSFOMYCIN):
        dispensing_of(container).catalog.add(product)
    patient_id = add_patient(container.db, IdentityStatus.QUAL)
    with served_on_socket(container, sock):
        open_pharmacist_session(container)
        yield Served(f"http://127.0.0.1:{port}", token, container, patient_id)


@pytest.fixture
def page(served: Served) -> Iterator[Any]:
    with chromium_context(
        prefix="lgo-missions-chromium-", viewport={"width": 1366, "height": 768}, timeout_ms=15_000
    ) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.lgo_errors = errors
        page.goto(f"{served.url}/#token={served.token}")
        # The pharmacist finds the patient with the page's search and chooses her.
        page.locator("#ps-name").fill("FICTIF")
        page.locator("#patient-search button[type=submit]").click()
        page.locator("#patient-results button").first.click()
        expect(page.locator("#patient-panel")).to_have_attribute("data-patient", served.patient_id)
        page.locator("#missions > summary").click()
        yield page


def _count(served: Served, table: type[Any]) -> int:
    with served.container.db.uow(readonly=True) as uow:
        return len(uow.session.query(table).all())


def test_vaccination_form(page: Any, served: Served, tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    expect(page.locator("#vacc-vaccine option")).not_to_have_count(0)
    page.locator("#vacc-vaccine").select_option("grippe")
    page.locator("#vacc-check").click()
    expect(page.locator("#vacc-result")).to_contain_text("Éligible à la vaccination")

    # An expired dose: refused with the API's French problem, nothing written.
    expired = datamatrix(VACCINE.packs[0].cip13, date.today() - timedelta(days=3))
    page.locator("#vacc-dm").fill(expired)
    page.locator("#vacc-record").click()
    expect(page.get_by_test_id("m-error-title")).to_have_text(
        "Dose périmée : elle ne doit pas être administrée"
    )
    assert _count(served, VaccinationRow) == 0

    page.locator("#vacc-dm").fill(datamatrix(VACCINE.packs[0].cip13, NEXT_YEAR))
    page.locator("#vacc-site").select_option("deltoide-gauche")
    page.locator("#vacc-record").click()
    expect(page.get_by_test_id("vacc-recorded")).to_contain_text(
        f"lot LOTV42 (péremption {NEXT_YEAR:%d/%m/%Y})"
    )
    expect(page.locator("#vacc-result")).to_contain_text(
        "Note de vaccination mise en file pour le DMP"
    )
    page.locator("#missions").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "missions-vaccination.png"))
    [act] = served.container.missions.vaccinations.search(patient_id=served.patient_id)
    assert act.site == "deltoide-gauche" and act.document_id
    assert documents_of(served.container).service.get(act.document_id).kind == ("vaccination-note")

    page.locator("#lang-toggle").click()
    expect(page.locator("#missions > summary h2")).to_have_text(
        "Vaccination and rapid tests (TROD)"
    )
    assert page.lgo_errors == []


def _fill_angine(page: Any, *, temperature: str) -> None:
    page.locator("#missions-tab-trod").click()
    page.locator("#trod-test").select_option("angine")
    page.locator("#trod-maker").fill("FICTILAB")
    page.locator("#trod-ref").fill("STREP-A-10")
    page.locator("#trod-lot").fill("K2026A")
    page.locator("#trod-expiry").fill(f"{NEXT_YEAR:%d/%m/%Y}")  # typed the French way
    page.locator("#trod-r-streptocoque-a").select_option("positif")
    page.locator("#trod-temp").fill(temperature)
    page.locator("#trod-no-cough").check()
    page.locator("#trod-nodes").check()


def test_trod_positive_angine_dispensed_then_outside_criteria_referred(
    page: Any, served: Served, tmp_path: Path
) -> None:
    shots = screenshot_dir(tmp_path)
    _fill_angine(page, temperature="38.6")
    page.locator("#trod-record").click()
    expect(page.get_by_test_id("trod-next")).to_have_attribute("data-next", "dispense")
    expect(page.locator("#trod-result")).to_contain_text("Score de Mac Isaac : 3")
    page.locator("#trod-box").fill(AMOXICILLIN.packs[0].cip13)
    page.locator("#trod-address").fill("3 rue de l'Exemple, 75011 Paris")
    page.locator("#trod-dispense-submit").click()
    expect(page.get_by_test_id("trod-dispensed")).to_contain_text("12 unité(s), 1 boîte(s)")
    page.locator("#missions").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "missions-trod-dispensed.png"))
    [test] = served.container.missions.trod.search(patient_id=served.patient_id)
    assert test.dispensation_id
    assert test.kit.expiry == NEXT_YEAR.isoformat()

    # Same patient with a fever above 39.5 °C: outside the protocol, the referral letter.
    page.locator("#trod-temp").fill("39.8")
    page.locator("#trod-record").click()
    expect(page.get_by_test_id("trod-next")).to_have_attribute("data-next", "refer")
    expect(page.locator("#trod-result")).to_contain_text("Fièvre supérieure à 39,5 °C")
    page.screenshot(path=str(shots / "missions-trod-referral.png"))
    with page.context.expect_page() as letter_info:
        page.locator("#trod-referral").click()
    letter = letter_info.value
    expect(letter.locator("h1")).to_have_text("Lettre d'orientation vers un médecin")
    expect(letter.locator("body")).to_contain_text("Aucun antibiotique n'a été délivré")
    letter.set_viewport_size({"width": 900, "height": 700})
    letter.screenshot(path=str(shots / "missions-referral-letter.png"))
    assert _count(served, TrodTestRow) == 2
    assert page.lgo_errors == []


def test_a_note_the_kit_refuses_shows_its_failed_rules(
    page: Any, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vaccination is recorded (it was given); its note is neither stored nor sent, and the
    counter reads why: the API's French problem and each failed CI-SIS rule."""
    rule = "[E_Vaccination_VAC-Note] Erreur de conformité : le code ATC du vaccin est obligatoire."

    def refused(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise CdaNonConformantError(volet="VAC-NOTE_2023.01", failed_rules=[rule], failed_count=1)

    monkeypatch.setattr(DocumentService, "vaccination_note", refused)
    page.locator("#vacc-vaccine").select_option("grippe")
    page.locator("#vacc-dm").fill(datamatrix(VACCINE.packs[0].cip13, NEXT_YEAR))
    page.locator("#vacc-record").click()
    expect(page.get_by_test_id("vacc-recorded")).to_contain_text("lot LOTV42")
    expect(page.locator("#vacc-result")).to_contain_text(
        "Pas de note de vaccination : Document non conforme au volet CI-SIS : envoi bloqué."
    )
    expect(page.get_by_test_id("m-failed-rules")).to_have_text(rule)
    [act] = served.container.missions.vaccinations.search(patient_id=served.patient_id)
    assert act.document_id is None and act.document_skipped == "cda-non-conformant"
    assert page.lgo_errors == []


def test_a_vaccine_outside_the_catalogue_is_typed_at_the_counter(page: Any, served: Served) -> None:
    """A dose whose CIP is not in the imported BDPM: the pharmacist types its name and CIS code."""
    page.locator("#vacc-vaccine").select_option("grippe")
    page.locator("#vacc-dm").fill(datamatrix("3400930000014", NEXT_YEAR, lot="LOTHORS"))
    page.locator("#vacc-record").click()
    expect(page.locator("#vacc-result")).to_contain_text("saisir son nom et son code CIS")
    assert _count(served, VaccinationRow) == 0
    page.locator("#vacc-label").fill("VACCIN GRIPPAL HORS CATALOGUE FICTIF")
    page.locator("#vacc-cis").fill("60990099")
    page.locator("#vacc-record").click()
    expect(page.get_by_test_id("vacc-recorded")).to_contain_text("lot LOTHORS")
    [act] = served.container.missions.vaccinations.search(patient_id=served.patient_id)
    assert act.product.cis == "60990099"
    assert act.product.label == "VACCIN GRIPPAL HORS CATALOGUE FICTIF"
    assert page.lgo_errors == []
