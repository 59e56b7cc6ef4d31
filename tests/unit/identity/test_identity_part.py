"""The CPS signer the identity part hands to the INSi client (fakes for the CPS service)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from drivers.errors import DriverError
from lgo.errors import PharmacistSessionRequired
from lgo.services.identity_part import cps_assertion_signer


class Card:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def sign(self, data: bytes) -> bytes:
        if self.fail:
            raise DriverError("token went away during signing")
        return b"sig:" + data


class Cps:
    def __init__(self, card: Card | None) -> None:
        self.card = card

    def signer(self) -> Card | None:
        return self.card


def _sign(extras: dict[str, Any], data: bytes = b"x") -> bytes | None:
    container: Any = SimpleNamespace(extras=extras)
    return cps_assertion_signer(container)(data)


def test_signs_with_the_open_card() -> None:
    assert _sign({"cps": Cps(Card())}, b"abc") == b"sig:abc"


def test_no_hardware_or_no_card_means_unsigned() -> None:
    assert _sign({}) is None
    assert _sign({"cps": Cps(None)}) is None


def test_card_gone_while_signing_is_a_typed_error() -> None:
    with pytest.raises(PharmacistSessionRequired):
        _sign({"cps": Cps(Card(fail=True))})
