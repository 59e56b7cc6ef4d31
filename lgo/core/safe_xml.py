"""The one hardened XML parser for everything lgo reads from outside (SOAP, CDA, XDS replies).

Rules (reference anchors.md §4.5), applied in this order so hostile input costs little:

1. size cap on the raw bytes *before* parsing (use :func:`read_capped` / :func:`aread_capped` to
   stop reading a body as soon as it passes the cap, instead of buffering a huge reply first);
2. only ASCII-compatible encodings (UTF-8 in practice): a UTF-16/32 body would hide a DOCTYPE from
   the byte scan below, so it is refused;
3. any ``<!DOCTYPE`` or ``<!ENTITY`` is refused outright: the services we talk to never send a DTD,
   so there is no internal subset to expand (billion laughs, quadratic blow-up) or to fetch (XXE);
4. lxml parser with ``resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False``
   (libxml2 then also keeps its own depth and text-size limits);
5. nesting depth limited (default 64) after parsing.

Every refusal raises :class:`XmlRejectedError` with a ``reason`` among :data:`REASONS`.
A DOCTYPE appearing inside a CDATA section is also refused: we fail closed.

Usage::

    from lgo.core.safe_xml import parse_xml, aread_capped
    body = await aread_capped(response.aiter_bytes(), max_bytes=2_000_000)
    root = parse_xml(body, max_bytes=2_000_000)
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Final, Literal

from lxml import etree

from lgo.core.errors import LgoError

DEFAULT_MAX_BYTES: Final = 2 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 64

Reason = Literal["oversize", "encoding", "doctype", "malformed", "too_deep"]
REASONS: Final[tuple[Reason, ...]] = ("oversize", "encoding", "doctype", "malformed", "too_deep")

_FORBIDDEN_MARKUP: Final = (b"<!DOCTYPE", b"<!ENTITY")
_WIDE_BOMS: Final = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM: Final = b"\xef\xbb\xbf"


class XmlRejectedError(LgoError):
    """XML from outside refused before or while parsing; nothing of it was used."""

    slug = "xml-rejected"
    status = 502
    title = "Réponse XML refusée"

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        super().__init__(detail or f"Document XML refusé ({reason}).")


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe to share.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_pis=True,
    )


def _check_bytes(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise XmlRejectedError("oversize", f"Document XML trop volumineux (> {max_bytes} octets).")
    head = data[:4]
    if any(head.startswith(bom) for bom in _WIDE_BOMS) or b"\x00" in data:
        raise XmlRejectedError("encoding", "Encodage XML non pris en charge (UTF-8 attendu).")
    body = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    if not body.lstrip().startswith(b"<"):
        raise XmlRejectedError("malformed", "Le contenu reçu n'est pas un document XML.")
    if any(marker in data for marker in _FORBIDDEN_MARKUP):
        raise XmlRejectedError("doctype", "Document XML avec DTD ou entité refusé.")


def _depth(root: etree._Element) -> int:
    deepest = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in element)
    return deepest


def parse_xml(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> etree._Element:
    """Parse untrusted XML bytes into an element, or raise :class:`XmlRejectedError`."""
    _check_bytes(data, max_bytes)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        reason: Reason = "too_deep" if "depth" in str(exc).lower() else "malformed"
        raise XmlRejectedError(reason, "Document XML mal formé.") from exc
    doctype: str = root.getroottree().docinfo.doctype  # type: ignore[union-attr]
    if doctype:
        raise XmlRejectedError("doctype", "Document XML avec DTD refusé.")
    if _depth(root) > max_depth:
        raise XmlRejectedError("too_deep", "Document XML trop profondément imbriqué.")
    return root


def read_capped(chunks: Iterable[bytes], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Join body chunks, stopping with ``oversize`` as soon as the cap is passed."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > max_bytes:
            raise XmlRejectedError("oversize", f"Réponse trop volumineuse (> {max_bytes} octets).")
    return bytes(buffer)


async def aread_capped(chunks: AsyncIterable[bytes], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Async twin of :func:`read_capped` (e.g. ``response.aiter_bytes()`` of httpx)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > max_bytes:
            raise XmlRejectedError("oversize", f"Réponse trop volumineuse (> {max_bytes} octets).")
    return bytes(buffer)
