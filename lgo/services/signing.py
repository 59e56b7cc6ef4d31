"""What the counter is told when the CPS card fails while it signs (an assertion for INSi or the DMP).

A card pulled in the middle of the signature is ``card-removed`` (it is not a slow or mute card); a
session that was closed meanwhile asks for a new login; anything else is the hardware part's usual
translation.
"""

from __future__ import annotations

from drivers import errors as drv
from lgo.core.errors import LgoError, PharmacistSessionRequired
from lgo.services import hardware_errors as hw


class CardRemovedDuringSignature(hw.CardRemovedDuringRead):
    title = "La carte CPS a été retirée pendant la signature : réinsérez-la et reconnectez-vous"


def card_signature_error(error: drv.DriverError) -> LgoError:
    code = {"driver_code": error.code}
    if isinstance(error, drv.TokenRemoved | drv.CardRemoved | drv.NoCard | drv.CardReset):
        return CardRemovedDuringSignature(**code)
    if isinstance(error, drv.NotLoggedIn):
        return PharmacistSessionRequired(
            "Session CPS fermée : reconnectez-vous avec la carte.", **code
        )
    return hw.translate(error)
