"""The INSi ``AssertionPS`` is an XML-DSig made with the CPS card's authentication key, and the INSi
simulator verifies it (signxml, test CA) over real HTTP: valid accepted; tampered, unsigned, another
card's, a revoked card's or a replayed one refused with the authentication fault. (The signature by
the virtual card through OpenSC: tests/integration/drivers/test_cps_signed_assertions.py.)"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from lxml import etree

from lgo.core.errors import PharmacistSessionRequired
from lgo.domain.identity import Traits
from lgo.national.insi import (
    ASSERTION_PS,
    InsiAuthenticationFailed,
    InsiClient,
    InsiConfig,
    build_insi_client,
)
from lgo.national.xmldsig import sign_enveloped
from tests.fixtures.signing import SoftwareCard

from .conftest import SIM_IDAM, InsiSim

pytestmark = pytest.mark.integration
TESTSEUL = Traits.of("Testseul", "Dominique", "M", "19620101")
Signer = Callable[[etree._Element], etree._Element | None]


def _client(insi_sim: InsiSim, signer: Signer) -> InsiClient:
    config = InsiConfig(idam=SIM_IDAM, auth="cps")
    return build_insi_client(f"{insi_sim.base_url}/insi", config, timeout_s=5.0, signer=signer)


def _search(insi_sim: InsiSim, signer: Signer, rpps: str) -> None:
    with _client(insi_sim, signer) as client:
        client.search_by_traits(TESTSEUL, author_rpps=rpps)


def _refused(insi_sim: InsiSim, signer: Signer, rpps: str) -> str:
    with pytest.raises(InsiAuthenticationFailed) as refused:
        _search(insi_sim, signer, rpps)
    assert refused.value.siram == "siram_33"
    reason: str = insi_sim.requests()[-1]["signature_refused"]
    return reason


def test_an_assertion_signed_by_the_card_is_accepted(insi_sim: InsiSim) -> None:
    card = SoftwareCard()
    _search(insi_sim, lambda a: sign_enveloped(a, card), card.rpps)
    [request] = insi_sim.requests()
    assert request["auth"] == "cps" and request["signed"] is True
    assert request["idnat"] == "8" + card.rpps
    assert len(card.signed) == 1 and b"SignedInfo" in card.signed[0]  # the card got SignedInfo


def test_a_tampered_assertion_is_refused(insi_sim: InsiSim) -> None:
    card = SoftwareCard()

    def tamper(assertion: etree._Element) -> etree._Element:
        signed = sign_enveloped(assertion, card)
        signed.find(f"{{{ASSERTION_PS}}}Emission").text = "2020-01-01T00:00:00.000+00:00"  # type: ignore[union-attr]
        return signed

    assert _refused(insi_sim, tamper, card.rpps).startswith("signature_invalid")


def test_a_missing_signature_is_refused_and_lgo_sends_none_without_a_card(
    insi_sim: InsiSim,
) -> None:
    card = SoftwareCard()
    assert _refused(insi_sim, lambda a: a, card.rpps) == "signature_missing"

    def signature_removed(assertion: etree._Element) -> etree._Element:
        signed = sign_enveloped(assertion, card)
        stripped = copy.deepcopy(signed)
        stripped.remove(stripped[-1])
        return stripped

    assert _refused(insi_sim, signature_removed, card.rpps) == "signature_missing"
    before = len(insi_sim.requests())
    with pytest.raises(PharmacistSessionRequired):
        _search(insi_sim, lambda _a: None, card.rpps)  # e-CPS: no card key
    assert len(insi_sim.requests()) == before


def test_another_cards_revoked_cards_and_replayed_assertions_are_refused(
    insi_sim: InsiSim,
) -> None:
    other = SoftwareCard("pharmacien-adjoint")
    claimed = SoftwareCard().rpps
    reason = _refused(insi_sim, lambda a: sign_enveloped(a, other), claimed)
    assert reason == "assertion_not_for_the_certificate_holder"
    revoked = SoftwareCard("pharmacien-revoque")
    reason = _refused(insi_sim, lambda a: sign_enveloped(a, revoked), revoked.rpps)
    assert reason == "certificate_revoked"

    card = SoftwareCard()
    first: list[etree._Element] = []

    def replay(assertion: etree._Element) -> etree._Element:
        if not first:
            first.append(sign_enveloped(assertion, card))
        return copy.deepcopy(first[0])

    _search(insi_sim, replay, card.rpps)
    assert _refused(insi_sim, replay, card.rpps) == "assertion_for_another_message"
