"""Minimal BER-TLV encoding for the card files (1- or 2-byte tags, definite lengths)."""

from __future__ import annotations


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + n.to_bytes(2, "big")


def tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes(2, "big") if tag > 0xFF else bytes([tag])
    return tag_bytes + length(len(value)) + value


def bcd(digits: str) -> bytes:
    """Pack decimal digits (and 'F' fillers) two per byte; pads an odd count with F."""
    text = digits + ("F" if len(digits) % 2 else "")
    return bytes.fromhex(text)
