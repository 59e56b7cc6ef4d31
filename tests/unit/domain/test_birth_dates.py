"""Birth dates as real data (issue #17 item 5)."""

from __future__ import annotations

from datetime import date

import pytest

from lgo.domain.birth_dates import BirthDateError, check_birth_date

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("19991231", "19991231"),
        ("1999-12-31", "19991231"),
        ("20240229", "20240229"),
        ("20261203", "20261203"),
    ],
)
def test_real_dates_pass(raw: str, expected: str) -> None:
    assert check_birth_date(raw, TODAY, lunar_allowed=False) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("20230229", "le 29/02/2023 n'existe pas"),
        ("19990431", "le 31/04/1999 n'existe pas"),
        ("20261204", "date de naissance dans le futur"),
        ("20270101", "date de naissance dans le futur"),
        ("18700101", "date de naissance de plus de 150 ans"),
        ("1999/12/31", "date de naissance attendue au format AAAAMMJJ ou AAAA-MM-JJ"),
        ("19800000", "jour ou mois inconnu (00) accepté seulement tel que lu sur la carte"),
        ("19800015", "jour ou mois inconnu (00) accepté seulement tel que lu sur la carte"),
        # A typed month 13 or day 32 is a typo, not an unknown part: said as such.
        ("19801332", "le 32/13/1980 n'existe pas"),
        ("19801315", "le 15/13/1980 n'existe pas"),
    ],
)
def test_typed_dates_must_be_real(raw: str, message: str) -> None:
    with pytest.raises(BirthDateError) as refused:
        check_birth_date(raw, TODAY, lunar_allowed=False)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("raw", ["19800000", "19801332", "19800035", "19800230"])
def test_card_lunar_dates_are_kept_as_given(raw: str) -> None:
    assert check_birth_date(raw, TODAY, lunar_allowed=True) == raw


def test_card_dates_are_not_in_the_future_either() -> None:
    with pytest.raises(BirthDateError):
        check_birth_date("20270000", TODAY, lunar_allowed=True)
    with pytest.raises(BirthDateError):
        check_birth_date("20261231", TODAY, lunar_allowed=True)
