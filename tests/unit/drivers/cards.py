"""In-process card transports for driver unit tests: hw-sim's pure card objects behind the
same T=0 handling as the real channel, plus fault injection (card pulled after N APDUs)."""

from __future__ import annotations

from drivers.errors import CardRemoved
from drivers.pcsc.card import Response, resolve_t0, split_response
from hwsim.cards.base import Card

SCARD_W_REMOVED_CARD = 0x80100069


class CardTransport:
    """Looks like a CardChannel to the readers; ``pull_after``: APDUs before the card vanishes."""

    def __init__(self, card: Card, pull_after: int | None = None) -> None:
        self.card = card
        self.card.power_on()
        self.pull_after = pull_after
        self.apdu_count = 0
        self.sent: list[bytes] = []

    def transmit_raw(self, apdu: bytes) -> Response:
        if self.pull_after is not None and self.apdu_count >= self.pull_after:
            raise CardRemoved(SCARD_W_REMOVED_CARD, "SCardTransmit")
        self.apdu_count += 1
        self.sent.append(apdu)
        return split_response(self.card.process(apdu))

    def transmit(self, apdu: bytes) -> Response:
        return resolve_t0(self.transmit_raw, apdu)
