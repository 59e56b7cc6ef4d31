"""The CPS signer the identity part hands to the INSi client (fakes for the CPS service)."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from drivers.errors import NotLoggedIn, TokenRemoved
from lgo.bootstrap.identity import cps_assertion_signer
from lgo.core.errors import LgoError, PharmacistSessionRequired
from lgo.national.xmldsig import DSIG
from tests.fixtures.signing import SoftwareCard


class FailingCard(SoftwareCard):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def sign_authentication(self, data: bytes) -> bytes:
        raise self.error


class Cps:
    def __init__(self, card: SoftwareCard | None) -> None:
        self.card = card

    def signer(self) -> SoftwareCard | None:
        return self.card


def _sign(extras: dict[str, Any]) -> etree._Element | None:
    cps = extras.get("cps")
    assertion = etree.Element("{urn:x}AssertionPS", Id="a-1")
    return cps_assertion_signer(cps.signer if cps is not None else lambda: None)(assertion)


def test_signs_with_the_open_card() -> None:
    signed = _sign({"cps": Cps(SoftwareCard())})
    assert signed is not None and signed[-1].tag == f"{{{DSIG}}}Signature"


def test_no_hardware_or_no_card_means_no_signature() -> None:
    assert _sign({}) is None
    assert _sign({"cps": Cps(None)}) is None


def test_card_pulled_while_signing_is_card_removed() -> None:
    with pytest.raises(LgoError) as pulled:
        _sign({"cps": Cps(FailingCard(TokenRemoved("token went away during signing")))})
    assert pulled.value.slug == "card-removed" and "signature" in pulled.value.title
    with pytest.raises(PharmacistSessionRequired):
        _sign({"cps": Cps(FailingCard(NotLoggedIn("closed")))})
