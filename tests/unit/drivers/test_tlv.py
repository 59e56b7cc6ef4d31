"""BER-TLV decoding: the Vitale layouts of formats.md §7.1, and arbitrary bytes never crash it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import TlvError
from drivers.vitale import tlv

IDENTITY = bytes.fromhex(
    "651C80075445535 44E4F4D8107434 14D494C4C45820831393939313233 31"
    "651880075445535 44E4F4D81034C4F55820832303130303631 35".replace(" ", "")
) + bytes(16)


def test_identity_file_of_formats_md_decodes_to_two_people() -> None:
    items = tlv.parse(IDENTITY)
    assert [item.tag for item in items] == [0x65, 0x65]
    first = items[0]
    assert first.find(0x80) is not None and first.find(0x80).value == b"TESTNOM"  # type: ignore[union-attr]
    assert first.find(0x81).value == b"CAMILLE"  # type: ignore[union-attr]
    assert first.find(0x82).value == b"19991231"  # type: ignore[union-attr]
    assert items[1].find(0x81).value == b"LOU"  # type: ignore[union-attr]


def test_multibyte_tag_and_long_length() -> None:
    value = bytes(200)
    data = bytes.fromhex("BF8101 81CB 9A81C8") + value  # 3-byte tag; 0x81-form lengths
    items = tlv.parse(data, padded=False)
    assert items[0].tag == 0xBF8101
    assert items[0].children[0].tag == 0x9A
    assert len(items[0].children[0].value) == 200


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("6505800354"),  # value overruns
        bytes.fromhex("9F"),  # truncated tag
        bytes.fromhex("8085"),  # unsupported length form
        bytes.fromhex("9FFFFFFF0100"),  # tag too long
    ],
)
def test_malformed_input_raises_tlv_error(data: bytes) -> None:
    with pytest.raises(TlvError):
        tlv.parse(data)


def test_padding_ends_the_data() -> None:
    assert tlv.parse(bytes.fromhex("800141") + bytes(10) + bytes.fromhex("8001")) == (
        tlv.Tlv(0x80, b"A"),
    )


def test_nesting_is_bounded() -> None:
    data = b"\x01"
    for _ in range(20):
        data = bytes([0x65, len(data)]) + data
    with pytest.raises(TlvError):
        tlv.parse(data)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_items_or_tlv_error(data: bytes) -> None:
    try:
        items = tlv.parse(data)
    except TlvError:
        return
    assert all(isinstance(item, tlv.Tlv) for item in items)


@given(st.lists(st.tuples(st.integers(0x80, 0x9E), st.binary(max_size=300)), max_size=6))
def test_encoded_primitives_round_trip(pairs: list[tuple[int, bytes]]) -> None:
    def length(n: int) -> bytes:
        if n < 0x80:
            return bytes([n])
        return bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])

    data = b"".join(bytes([tag]) + length(len(value)) + value for tag, value in pairs)
    assert [(i.tag, i.value) for i in tlv.parse(data, padded=False)] == pairs
