"""Registre des stupéfiants: monthly balance and inventory discrepancy (domain.md §9 item 18)."""

from __future__ import annotations

from datetime import date

import pytest

from lgo.domain.narcotics import (
    Movement,
    RegisterLine,
    inventory,
    monthly_balance,
    signed_units,
)

MORPHINE = "3400999999069"


def lines() -> list[RegisterLine]:
    return [
        RegisterLine(date(2026, 1, 20), MORPHINE, Movement.RECEIPT, 140),
        RegisterLine(date(2026, 1, 31), MORPHINE, Movement.DISPENSING, -28),
        RegisterLine(date(2026, 2, 1), MORPHINE, Movement.RECEIPT, 56),
        RegisterLine(date(2026, 2, 14), MORPHINE, Movement.DISPENSING, -14),
        RegisterLine(date(2026, 2, 28), MORPHINE, Movement.DESTRUCTION, -7),
        RegisterLine(date(2026, 2, 28), MORPHINE, Movement.INVENTORY_ADJUSTMENT, -1),
        RegisterLine(date(2026, 3, 1), MORPHINE, Movement.DISPENSING, -28),
        RegisterLine(date(2026, 2, 10), "3400999999090", Movement.RECEIPT, 30),
    ]


def test_monthly_balance_uses_month_boundaries() -> None:
    feb = monthly_balance(lines(), MORPHINE, 2026, 2)
    assert (feb.opening, feb.received, feb.withdrawn, feb.adjusted) == (112, 56, 21, -1)
    assert feb.closing == 146
    jan = monthly_balance(lines(), MORPHINE, 2026, 1)
    assert (jan.opening, jan.closing) == (0, 112)
    dec = monthly_balance(lines(), MORPHINE, 2026, 12)
    assert dec.opening == 118 and dec.closing == 118


def test_inventory_discrepancy_against_the_register() -> None:
    result = inventory(lines(), MORPHINE, counted=144, on=date(2026, 2, 28))
    assert (result.expected, result.discrepancy) == (146, -2)
    with pytest.raises(ValueError):
        inventory(lines(), MORPHINE, counted=-1, on=date(2026, 2, 28))


def test_signs_are_enforced() -> None:
    assert signed_units(Movement.DISPENSING, 28) == -28
    assert signed_units(Movement.RECEIPT, 28) == 28
    assert signed_units(Movement.INVENTORY_ADJUSTMENT, -3) == -3
    with pytest.raises(ValueError):
        signed_units(Movement.RECEIPT, 0)
    with pytest.raises(ValueError):
        RegisterLine(date(2026, 1, 1), MORPHINE, Movement.DISPENSING, 5)
