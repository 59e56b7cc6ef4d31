"""Registre des stupéfiants (CSP R5132-36; domain.md §6.3, §9 item 18) (pure).

Every entry and withdrawal in dosage units; a monthly balance per product; an annual inventory whose
discrepancy is recorded as an adjustment line (never by changing past lines: the register is
immutable after validation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Movement(StrEnum):
    RECEIPT = "receipt"  # entry: delivered by the wholesaler
    DISPENSING = "dispensing"  # withdrawal: handed over on a prescription
    DESTRUCTION = "destruction"  # withdrawal: expired or damaged units destroyed
    INVENTORY_ADJUSTMENT = "inventory_adjustment"  # counted minus expected, with a note


WITHDRAWALS = frozenset({Movement.DISPENSING, Movement.DESTRUCTION})


@dataclass(frozen=True)
class RegisterLine:
    on: date
    product_code: str
    movement: Movement
    units: int  # signed: + entry, - withdrawal, ± adjustment

    def __post_init__(self) -> None:
        if self.movement is Movement.RECEIPT and self.units <= 0:
            raise ValueError("a receipt adds units")
        if self.movement in WITHDRAWALS and self.units >= 0:
            raise ValueError("a withdrawal removes units")


def signed_units(movement: Movement, units: int) -> int:
    """Units as the register stores them, from a positive quantity (adjustments keep their sign)."""
    if movement is Movement.INVENTORY_ADJUSTMENT:
        return units
    if units <= 0:
        raise ValueError("quantity must be positive")
    return -units if movement in WITHDRAWALS else units


@dataclass(frozen=True)
class MonthlyBalance:
    product_code: str
    year: int
    month: int
    opening: int
    received: int
    withdrawn: int
    adjusted: int

    @property
    def closing(self) -> int:
        return self.opening + self.received - self.withdrawn + self.adjusted


def monthly_balance(
    lines: Iterable[RegisterLine], product_code: str, year: int, month: int
) -> MonthlyBalance:
    start = date(year, month, 1)
    end = date(year + month // 12, month % 12 + 1, 1)
    opening = received = withdrawn = adjusted = 0
    for line in lines:
        if line.product_code != product_code or line.on >= end:
            continue
        if line.on < start:
            opening += line.units
        elif line.movement is Movement.RECEIPT:
            received += line.units
        elif line.movement in WITHDRAWALS:
            withdrawn -= line.units
        else:
            adjusted += line.units
    return MonthlyBalance(product_code, year, month, opening, received, withdrawn, adjusted)


@dataclass(frozen=True)
class InventoryResult:
    product_code: str
    on: date
    expected: int
    counted: int

    @property
    def discrepancy(self) -> int:
        return self.counted - self.expected


def inventory(
    lines: Iterable[RegisterLine], product_code: str, counted: int, on: date
) -> InventoryResult:
    """Compare the count with the register's stock at the end of ``on``."""
    if counted < 0:
        raise ValueError("a count cannot be negative")
    expected = sum(ln.units for ln in lines if ln.product_code == product_code and ln.on <= on)
    return InventoryResult(product_code, on, expected, counted)
