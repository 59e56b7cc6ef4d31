"""Medicinal products, their packs and the most economical pack set (pure).

CIP13 codes are EAN-13 numbers starting with ``3400`` (formats.md §6); medicines use ``34009``.
The pack proposer implements "le conditionnement le plus économique compatible avec les mentions
figurant sur l'ordonnance" (domain.md §6.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from stdnum import ean

MTE_MOLECULES: frozenset[str] = frozenset(
    {
        # Narrow therapeutic margin, closed list (arrêtés du 12 nov. 2019 and 20 juillet 2022).
        "lamotrigine",
        "pregabaline",
        "zonisamide",
        "levetiracetam",
        "topiramate",
        "valproate",
        "levothyroxine",
        "mycophenolate",
        "buprenorphine",
        "azathioprine",
        "ciclosporine",
        "everolimus",
        "lacosamide",
        "oxcarbazepine",
    }
)


class RegulatoryList(StrEnum):
    """Poisonous-substance list of a medicine (CSP R5132-*)."""

    NONE = "none"
    LIST_I = "list_i"
    LIST_II = "list_ii"
    STUPEFIANT = "stupefiant"
    # Follows (part of) the narcotics rules: secure prescription, duration limit (e.g. tramadol).
    ASSIMILE = "assimile"

    @property
    def is_controlled(self) -> bool:
        return self in (RegulatoryList.STUPEFIANT, RegulatoryList.ASSIMILE)

    @property
    def goes_to_ordonnancier(self) -> bool:
        return self is not RegulatoryList.NONE


class PackForm(StrEnum):
    BLISTER = "blister"
    SACHET_DOSE = "sachet_dose"
    BOTTLE = "bottle"
    TUBE = "tube"
    OTHER = "other"


def ean13_check_digit(first12: str) -> int:
    """EAN-13 check digit: weights 1,3,1,3… from the left on 12 digits."""
    if len(first12) != 12 or not first12.isascii() or not first12.isdigit():
        raise ValueError("twelve digits expected")
    return int(ean.calc_check_digit(first12))


def is_valid_cip13(code: str) -> bool:
    """A CIP13 is a 13-digit EAN-13 starting with 3400 with a correct check digit."""
    if len(code) != 13 or not code.isdigit() or not code.startswith("3400"):
        return False
    return ean13_check_digit(code[:12]) == int(code[12])


def normalise_molecule(name: str) -> str:
    """Lower-case, unaccented molecule name used to look the MTE list up."""
    table = str.maketrans("éèêëàâäîïôöûüç", "eeeeaaaiioouuc")
    return name.strip().lower().translate(table)


def is_mte(molecule: str | None) -> bool:
    if molecule is None:
        return False
    base = normalise_molecule(molecule)
    return any(base == m or base.startswith(m + " ") for m in MTE_MOLECULES)


@dataclass(frozen=True)
class Pack:
    """One marketed pack (presentation) of a product."""

    cip13: str
    units: int
    price_cents: int
    form: PackForm = PackForm.BLISTER
    label: str = ""

    def __post_init__(self) -> None:
        if not is_valid_cip13(self.cip13):
            raise ValueError("invalid CIP13")
        if self.units <= 0 or self.price_cents < 0:
            raise ValueError("pack units must be positive and price non-negative")


@dataclass(frozen=True)
class Product:
    """A medicine as the rules see it: list, molecule, generic group, own limits."""

    code: str
    name: str
    regulatory_list: RegulatoryList = RegulatoryList.NONE
    molecule: str | None = None
    generic_group: str | None = None
    atc: str | None = None
    contraceptive: bool = False
    # Own maximum duration for controlled drugs (28 days by default, 14 or 7 by arrêté).
    max_duration_days: int | None = None
    # Fractionnement imposed by arrêté: maximum days per delivery.
    fraction_days: int | None = None
    # Psychotropics with a limited prescription duration (excluded from exceptional dispensation).
    limited_duration_psychotropic: bool = False
    packs: tuple[Pack, ...] = field(default_factory=tuple)

    @property
    def unit_dispensing_allowed(self) -> bool:
        """DAU: ATC J01 antibacterials in blister or sachet-dose packs (L5123-8)."""
        if self.atc is None or not self.atc.upper().startswith("J01"):
            return False
        return any(p.form in (PackForm.BLISTER, PackForm.SACHET_DOSE) for p in self.packs)


@dataclass(frozen=True)
class PackLine:
    pack: Pack
    count: int


@dataclass(frozen=True)
class PackProposal:
    lines: tuple[PackLine, ...]
    units: int
    price_cents: int

    @property
    def boxes(self) -> int:
        return sum(line.count for line in self.lines)


def cheapest_pack_set(packs: Sequence[Pack], units_needed: int) -> PackProposal:
    """Cheapest multiset of packs covering at least ``units_needed`` units.

    Ties are broken by fewer surplus units, then fewer boxes, so that the patient gets what the
    prescription says and no more when prices are equal. Unbounded knapsack over totals up to
    ``units_needed + largest pack``; beyond that, a set always contains a removable pack.
    """
    if units_needed <= 0:
        raise ValueError("units_needed must be positive")
    if not packs:
        raise ValueError("no pack to choose from")
    limit = units_needed + max(p.units for p in packs)
    # best[t] = (price, boxes, counts) reaching exactly t units
    best: list[tuple[int, int, tuple[int, ...]] | None] = [None] * (limit + 1)
    best[0] = (0, 0, tuple(0 for _ in packs))
    for total in range(1, limit + 1):
        for i, pack in enumerate(packs):
            prev = best[total - pack.units] if total >= pack.units else None
            if prev is None:
                continue
            counts = tuple(c + 1 if j == i else c for j, c in enumerate(prev[2]))
            candidate = (prev[0] + pack.price_cents, prev[1] + 1, counts)
            current = best[total]
            if current is None or candidate[:2] < current[:2]:
                best[total] = candidate
    choices = [
        (entry[0], total - units_needed, entry[1], total, entry[2])
        for total, entry in enumerate(best)
        if entry is not None and total >= units_needed
    ]
    price, _surplus, _boxes, total, counts = min(choices)
    lines = tuple(PackLine(pack, c) for pack, c in zip(packs, counts, strict=True) if c)
    return PackProposal(lines=lines, units=total, price_cents=price)
