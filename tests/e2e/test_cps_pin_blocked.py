"""A CPS card whose PIN is blocked, on the counter page in Chromium (issue #21).

Same stack as test_counter_page.py (its ``daemon`` fixture: ``lgo serve``, hw-sim's private pcscd,
OpenSC's PKCS#11 module driving the virtual CPS, which counts the tries itself). Three wrong PINs
typed on the page block the card; the page then says so in French and what to do, and the card
stays blocked when it is pulled and put back, even with the right PIN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hwsim.fixtures.people import load_people
from tests.e2e.browser import chromium_context
from tests.e2e.test_counter_page import UI_TIMEOUT_MS, VIEWPORT, Daemon, daemon

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
__all__ = ["daemon"]  # fixture shared with the counter-page module (one daemon per module)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ADJOINT_PROFILE = "pharmacien-adjoint"
ADJOINT = load_people().professionals[ADJOINT_PROFILE]
BLOCKED = "Carte CPS bloquée"
WHAT_TO_DO = ("code de déblocage", "nouvelle carte", "e-CPS")


@pytest.fixture(scope="module")
def page(daemon: Daemon) -> Iterator[Any]:
    with chromium_context(
        prefix="lgo-e2e-pin-blocked-", viewport=VIEWPORT, timeout_ms=UI_TIMEOUT_MS
    ) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{daemon.url}/#token={daemon.token}")
        yield page
    assert errors == []


def _type_pin(page: Any, pin: str) -> None:
    field = page.locator("#pin-input")
    expect(field).to_be_visible()
    field.fill(pin)
    field.press("Enter")


def test_three_wrong_pins_block_the_card_and_the_page_says_what_to_do(
    page: Any, hwsim_bench: Any
) -> None:
    assert ADJOINT.pin != "0000"
    hwsim_bench.client.insert("cps", ADJOINT_PROFILE, reader=1)
    message = page.locator("#pin-message")
    _type_pin(page, "0000")
    expect(message).to_contain_text("Essais restants : 2")
    _type_pin(page, "0000")
    expect(message).to_contain_text("Essais restants : 1")
    _type_pin(page, "0000")
    expect(page.locator("#pin-confirm-row")).to_be_visible()
    page.locator("#pin-confirm").check()
    _type_pin(page, "0000")
    expect(message).to_contain_text(BLOCKED)
    for advice in WHAT_TO_DO:
        expect(message).to_contain_text(advice)
    expect(page.locator("#session-panel")).not_to_have_attribute("data-session", "open")


def test_the_card_stays_blocked_out_and_back_in_even_with_the_right_pin(
    page: Any, hwsim_bench: Any
) -> None:
    hwsim_bench.client.remove(1)
    expect(page.locator("#pin-form")).to_be_hidden()
    hwsim_bench.client.insert("cps", ADJOINT_PROFILE, reader=1)
    _type_pin(page, ADJOINT.pin)  # the card refuses it: the counter is on the card
    expect(page.locator("#pin-message")).to_contain_text(BLOCKED)
    expect(page.locator("#session-panel")).not_to_have_attribute("data-session", "open")
