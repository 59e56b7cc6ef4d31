"""The INSi simulator refuses a DTD however the request is encoded (it parses lgo's SOAP)."""

from __future__ import annotations

import pytest

from hwsim.national.insi import BadRequestXml, _parse

ENTITIES = '<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">'
HOSTILE = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [{ENTITIES}]><r>&b;</r>'


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_dtd_hidden_in_a_wide_encoding_is_refused_before_parsing(encoding: str) -> None:
    body = HOSTILE.replace("UTF-16", encoding.upper()).encode(encoding)
    assert b"<!DOCTYPE" not in body  # the byte scan alone would miss it
    with pytest.raises(BadRequestXml, match="request refused"):
        _parse(body)


def test_plain_utf8_request_still_parses() -> None:
    root = _parse('<?xml version="1.0" encoding="UTF-8"?><r>é</r>'.encode())
    assert root.text == "é"
