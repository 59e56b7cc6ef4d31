"""Faulty cards: a mute card and a card that answers 6F 00 to everything."""

from __future__ import annotations

from hwsim.cards.base import SW_NO_PRECISE_DIAGNOSIS, Apdu, Card, SwError
from hwsim.cards.vitale import VITALE2_ATR


class MuteCard(Card):
    """Answers the ATR (so the reader sees a card) but never answers an APDU.

    The vpcd link honours `mute`: it holds the command for `mute_delay` seconds, then drops the
    connection, which the reader reports as a transmit failure and a removed card.
    """

    kind = "mute"
    mute = True

    def __init__(self, atr: bytes = VITALE2_ATR) -> None:
        super().__init__()
        self.atr = atr


class ErrorCard(Card):
    """Answers `6F 00` (no precise diagnosis) to every command."""

    kind = "error6f00"

    def __init__(self, atr: bytes = VITALE2_ATR) -> None:
        super().__init__()
        self.atr = atr

    def check_cla(self, apdu: Apdu) -> None:
        raise SwError(SW_NO_PRECISE_DIAGNOSIS)
