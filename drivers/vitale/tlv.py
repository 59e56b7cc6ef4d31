"""Minimal BER-TLV decoding for Vitale files (formats.md §1.2-1.3).

Files are zero (or FF) padded at the end: a tag byte 00/FF at top level ends the data. Anything
that does not decode raises :class:`drivers.errors.TlvError`, never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import TlvError

MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        return _constructed(self.tag)

    def find(self, tag: int) -> Tlv | None:
        """First direct child with ``tag``."""
        return next((c for c in self.children if c.tag == tag), None)


def _constructed(tag: int) -> bool:
    """Bit 6 of the tag's first byte."""
    while tag > 0xFF:
        tag >>= 8
    return bool(tag & 0x20)


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        for _ in range(3):  # tags of up to 4 bytes
            if pos >= len(data):
                raise TlvError("truncated tag")
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & 0x80:
                break
        else:
            raise TlvError("tag too long")
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("truncated length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3:
        raise TlvError("unsupported length form")
    if pos + count > len(data):
        raise TlvError("truncated length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse(data: bytes, *, padded: bool = True, depth: int = 0) -> tuple[Tlv, ...]:
    """Decode a sequence of TLVs. ``padded``: a top-level 00/FF tag byte ends the data."""
    if depth > MAX_DEPTH:
        raise TlvError("nesting too deep")
    items: list[Tlv] = []
    pos = 0
    while pos < len(data):
        if padded and data[pos] in (0x00, 0xFF):
            break
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        end = pos + length
        if end > len(data):
            raise TlvError("value overruns the data")
        value = data[pos:end]
        # One object per item (a frozen dataclass is slow to build): children decoded first.
        children = parse(value, padded=False, depth=depth + 1) if _constructed(tag) else ()
        items.append(Tlv(tag, value, children))
        pos = end
    return tuple(items)
