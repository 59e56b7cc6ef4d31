"""The DMP caller's authentication assertion, XML-DSig signed by the CPS card.

lgo's stand-in for the DMP's VIHF (a SAML assertion the real DMP wants signed): a ``vihf:Assertion``
in a ``wsse:Security`` SOAP header naming the professional (``IdNat``, the card holder), the
structure and the message it authenticates (``MessageID``), signed enveloped by the card's
authentication key (:func:`lgo.national.xmldsig.sign_enveloped`).

Without a card key (a background delivery after the pharmacist left, an e-CPS session) the call
goes without it, as an "indirect" call authenticated by the structure (the ``ctx:DmpContext``
header, and on a real installation the structure's TLS certificate).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Protocol

from lxml import etree

from lgo.core.safe_xml import parse_xml
from lgo.national import xds
from lgo.national.profiles import dmp as profile
from lgo.national.xmldsig import CardKey, sign_enveloped

VIHF: Final = profile.VIHF  # invented: contracts/dmp/profile.json
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
MAX_ENVELOPE_BYTES: Final = 64 * 1024 * 1024  # our own request, with a document of a few MB inside

DmpAuthenticator = Callable[[str], etree._Element | None]
"""Given the message id, the signed assertion for it, or ``None`` (no card key: indirect call)."""


class IdentifiedCard(CardKey, Protocol):
    @property
    def identity(self) -> _Identity: ...


class _Identity(Protocol):
    @property
    def national_id(self) -> str: ...


def assertion(idnat: str, structure_idnat: str, message_id: str, now: datetime) -> etree._Element:
    element = etree.Element(
        xds.q(VIHF, "Assertion"), nsmap={"vihf": VIHF}, Id=f"vihf-{uuid.uuid4()}"
    )
    for tag, text in (
        ("IdNat", idnat),
        ("Structure", structure_idnat),
        ("MessageID", message_id),
        ("Emission", now.astimezone(UTC).isoformat(timespec="seconds")),
    ):
        xds.sub(element, VIHF, tag, text)
    return element


def card_authenticator(
    card: Callable[[], IdentifiedCard | None], structure_idnat: str
) -> DmpAuthenticator:
    """Signs with the card ``card()`` returns at call time (the open CPS session), if any."""

    def authenticate(message_id: str) -> etree._Element | None:
        held = card()
        if held is None:
            return None
        unsigned = assertion(
            held.identity.national_id, structure_idnat, message_id, datetime.now(UTC)
        )
        return sign_enveloped(unsigned, held)

    return authenticate


def with_assertion(envelope: bytes, authenticate: DmpAuthenticator) -> bytes:
    """``envelope`` with the signed assertion for its ``wsa:MessageID`` in the SOAP header."""
    root = parse_xml(envelope, max_bytes=MAX_ENVELOPE_BYTES)
    header = root.find("soap:Header", xds.NSMAP)
    message_id = root.findtext("soap:Header/wsa:MessageID", default="", namespaces=xds.NSMAP)
    if header is None or not message_id:
        return envelope
    signed = authenticate(message_id)
    if signed is None:
        return envelope
    security = etree.SubElement(header, xds.q(WSSE, "Security"), nsmap={"wsse": WSSE})
    security.append(signed)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
