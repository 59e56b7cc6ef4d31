"""A dispensation body reads the same from its bytes (the direct route, lgo/api/direct.py) as from
FastAPI's ``json.loads`` (a body the direct route hands back): same model, same fingerprint.

The fingerprint is stored with an Idempotency-Key and names a paper prescription: a body that
read ``2.0`` as ``Decimal('2')`` one way and ``Decimal('2.0')`` the other would be a 409 on its own
replay after an upgrade, and another prescription.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from lgo.api.routers.dispensations import DispensationIn, _command, _json_number
from lgo.services.dispensation_intake import (
    DispensationCommand,
    LineCommand,
    OverrideCommand,
    PaperCommand,
    PaperLineCommand,
    SubstitutionCommand,
)
from lgo.services.dispensing import request_fingerprint

CIP = "3400940000301"  # a valid CIP13 (check key)


class _PlainDecimal(BaseModel):
    value: Decimal


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_json_number_is_read_as_pydantic_reads_json_loads_float(number: float) -> None:
    ours = _json_number(number)
    theirs = _PlainDecimal.model_validate({"value": number}).value
    assert isinstance(ours, Decimal)
    assert (str(ours), ours.as_tuple()) == (str(theirs), theirs.as_tuple())


def _number_texts() -> st.SearchStrategy[str]:
    """A JSON number as a client may write it: integer, ``2.0``, ``1e0``, ``1.50``, ``1E-7``."""
    value = st.floats(min_value=1e-9, max_value=150, allow_nan=False)
    return st.one_of(
        st.integers(min_value=-5, max_value=150).map(str),
        value.map(repr),
        st.builds(lambda v, p: f"{v:.{p}f}", value, st.integers(0, 6)),
        st.builds(lambda v, p: f"{v:.{p}e}", value, st.integers(0, 4)),
        st.builds(lambda v, p: f"{v:.{p}E}", value, st.integers(0, 4)),
    )


_TEXT = st.text(alphabet=st.sampled_from("aéèçÀœ €'\"\\/\t\n-ß漢😀0"), min_size=0, max_size=12)
_NUMBER = "__number__"


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A body (valid or not) with number placeholders, and the number texts to put in them."""
    numbers: list[str] = []

    def number() -> str:
        numbers.append(draw(_number_texts()))
        return f"{_NUMBER}{len(numbers) - 1}"

    def maybe(value: Any) -> Any:
        return draw(st.sampled_from([None, value]))

    paper_line = {
        "designation": draw(_TEXT.filter(bool)),
        "cip13": maybe(CIP),
        "molecule": maybe(draw(_TEXT)),
        "regulatory_list": draw(st.sampled_from(["none", "list_i", "list_ii", "stupefiant"])),
        "units_per_day": draw(st.sampled_from([number(), "1.50", "2"])),
        "duration_days": draw(st.integers(1, 366)),
        "renewals": draw(st.integers(0, 12)),
        "substitutable": draw(st.booleans()),
        "single_delivery": draw(st.booleans()),
        "fraction_days": maybe(draw(st.integers(1, 28))),
    }
    line = {
        "line_no": draw(st.integers(1, 3)),
        "intervention": draw(st.sampled_from(["unchanged", "substituted", "modified"])),
        "days": draw(st.integers(0, 366)),
        "cip13": maybe(CIP),
        "boxes": maybe(draw(st.integers(0, 999))),
        "units_per_day": maybe(number()),
        "modification_reason": maybe(draw(_TEXT)),
        "prescriber_agreement_on": maybe(draw(st.dates()).isoformat()),
        "lot": maybe(draw(_TEXT)),
        "substitution": maybe(
            {"cip13": CIP, "name": "GÉNÉRIQUE é", "form": "cp", "units": draw(st.integers(1, 50))}
        ),
        "override": maybe({"code": "quantity_exceeds_remaining", "reason": draw(_TEXT)}),
    }
    body = {
        "patient_id": draw(_TEXT.filter(bool)),
        "patient_address": draw(_TEXT),
        "bearer": maybe({"is_patient": draw(st.booleans()), "name": draw(_TEXT)}),
        "paper": maybe(
            {
                "prescribed_on": draw(st.dates(date(2000, 1, 1), date.today())).isoformat(),
                "prescriber_rpps": "10000000017",
                "prescriber_name": draw(_TEXT.filter(bool)),
                "lines": [paper_line],
            }
        ),
        "lines": [line],
        "prescriber_acknowledged": draw(st.booleans()),
    }
    return body, numbers


def _raw(body: dict[str, Any], numbers: list[str], ensure_ascii: bool) -> bytes:
    text = json.dumps(body, ensure_ascii=ensure_ascii)
    for index in reversed(range(len(numbers))):  # reversed: __number__1 is not __number__10
        text = text.replace(f'"{_NUMBER}{index}"', numbers[index])
    return text.encode()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies(), st.booleans())
def test_a_body_reads_the_same_from_its_bytes_and_from_json_loads(
    drawn: tuple[dict[str, Any], list[str]], ensure_ascii: bool
) -> None:
    raw = _raw(*drawn, ensure_ascii=ensure_ascii)
    try:
        direct = DispensationIn.model_validate_json(raw)
    except ValueError:
        event("refused from its bytes")
        return  # FastAPI reads it (lgo/api/direct.py)
    event("read from its bytes")
    fastapi = DispensationIn.model_validate(json.loads(raw))
    assert direct == fastapi
    dumped = direct.model_dump(mode="json")
    assert dumped == fastapi.model_dump(mode="json")
    assert request_fingerprint(dumped) == request_fingerprint(fastapi.model_dump(mode="json"))
    assert _command(direct) == _command(fastapi) == _command_from_dumps(direct)


def _command_from_dumps(body: DispensationIn) -> DispensationCommand:
    """The command as the router built it with ``model_dump`` (it now reads ``__dict__``)."""

    def line(item: Any) -> LineCommand:
        sub, override = item.substitution, item.override
        return LineCommand(
            **item.model_dump(exclude={"substitution", "override"}),
            substitution=SubstitutionCommand(**sub.model_dump()) if sub else None,
            override=OverrideCommand(**override.model_dump()) if override else None,
        )

    paper = body.paper
    return replace(
        _command(body),
        lines=tuple(line(item) for item in body.lines),
        paper=PaperCommand(
            **paper.model_dump(exclude={"lines"}),
            lines=tuple(PaperLineCommand(**item.model_dump()) for item in paper.lines),
        )
        if paper
        else None,
    )


@pytest.mark.parametrize(
    ("text", "read"),
    [("2.0", "2.0"), ("1e0", "1.0"), ("1.5e1", "15.0"), ("2", "2"), ("1.10", "1.1")],
)
def test_the_quantity_keeps_the_reading_of_json_loads(text: str, read: str) -> None:
    raw = (
        '{"patient_id": "p", "lines": [{"line_no": 1, "intervention": "unchanged", '
        f'"units_per_day": {text}}}]}}'
    ).encode()
    for body in (
        DispensationIn.model_validate_json(raw),
        DispensationIn.model_validate(json.loads(raw)),
    ):
        assert str(body.lines[0].units_per_day) == read
