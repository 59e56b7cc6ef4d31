"""Virtual cards as pure APDU-in/response-out objects (vicc style). See README.md for layouts."""

from hwsim.cards.base import Apdu, Card, SwError
from hwsim.cards.cps import CPS3_ATR, CPS4_ATR, Cps3Card
from hwsim.cards.misc import ErrorCard, MuteCard
from hwsim.cards.vitale import VITALE1_ATR, VITALE2_ATR, Vitale1Card, Vitale2Card

__all__ = [
    "CPS3_ATR",
    "CPS4_ATR",
    "VITALE1_ATR",
    "VITALE2_ATR",
    "Apdu",
    "Card",
    "Cps3Card",
    "ErrorCard",
    "MuteCard",
    "SwError",
    "Vitale1Card",
    "Vitale2Card",
]
