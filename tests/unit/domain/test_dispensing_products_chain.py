"""Pack proposer, CIP13 keys, e-prescription ids and the ordonnancier hash chain."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgo.domain.controlled import presentation_reduction
from lgo.domain.ordonnancier import GENESIS_HASH, ChainEntry, entry_hash, verify_chain
from lgo.domain.prescription import add_months, normalise_prescription_id
from lgo.domain.products import Pack, cheapest_pack_set, is_valid_cip13
from tests.unit.domain.dispensing_factories import cip13


def test_cip13_keys_from_the_reference() -> None:
    assert is_valid_cip13("3400933516390")
    assert is_valid_cip13("3400935955838")
    assert is_valid_cip13("3400999999991")
    assert not is_valid_cip13("3400935955839")
    assert not is_valid_cip13("1234567890128")
    with pytest.raises(ValueError):
        Pack("3400935955839", 30, 100)


def test_cheapest_pack_set_with_two_sizes() -> None:
    small = Pack(cip13("1000030"), 30, 500)
    large = Pack(cip13("1000090"), 90, 1200)
    # 90 units: one large (12.00) beats three small (15.00)
    assert [(ln.pack.units, ln.count) for ln in cheapest_pack_set([small, large], 90).lines] == [
        (90, 1)
    ]
    # 60 units: two small (10.00) beats one large (12.00)
    assert [(ln.pack.units, ln.count) for ln in cheapest_pack_set([small, large], 60).lines] == [
        (30, 2)
    ]
    # 120 units: large + small = 17.00
    proposal = cheapest_pack_set([small, large], 120)
    assert proposal.price_cents == 1700 and proposal.units == 120


def test_equal_price_prefers_less_surplus_then_fewer_boxes() -> None:
    a = Pack(cip13("1000028"), 28, 500)
    b = Pack(cip13("1000030"), 30, 500)
    proposal = cheapest_pack_set([b, a], 28)
    assert proposal.lines[0].pack.units == 28


def test_prescription_id_normalisation() -> None:
    assert normalise_prescription_id("]Q1 01s2tbpz2jcnzzyghz\r\n") == "01S2TBPZ2JCNZZYGHZ"
    with pytest.raises(ValueError):
        normalise_prescription_id("IS01ABC")
    with pytest.raises(ValueError):
        normalise_prescription_id("AB!CDEFGHIJ")


def test_month_arithmetic_clamps_end_of_month() -> None:
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 2, 1), 12) == date(2027, 2, 1)


def test_deliverable_days_helper_for_the_counter() -> None:
    assert presentation_reduction(date(2026, 2, 1), date(2026, 2, 4)) == 0
    assert presentation_reduction(date(2026, 2, 1), date(2026, 2, 5)) == 4


def build_chain(n: int) -> list[ChainEntry]:
    entries = []
    prev = GENESIS_HASH
    for number in range(1, n + 1):
        fields = {"number": number, "designation": f"produit {number}", "quantity_units": 30}
        digest = entry_hash(prev, fields)
        entries.append(ChainEntry(number, prev, digest, fields))
        prev = digest
    return entries


def test_chain_verifies_and_points_at_the_first_altered_entry() -> None:
    entries = build_chain(5)
    assert verify_chain(entries).ok
    altered = list(entries)
    altered[2] = ChainEntry(
        3, entries[2].prev_hash, entries[2].hash, {**entries[2].fields, "quantity_units": 60}
    )
    report = verify_chain(altered)
    assert (report.ok, report.first_broken, report.problem) == (False, 3, "content_altered")


def test_chain_detects_gaps_and_relinking() -> None:
    entries = build_chain(4)
    gap = verify_chain([entries[0], entries[2], entries[3]])
    assert (gap.first_broken, gap.problem) == (2, "gap_in_numbers")
    # an attacker who rewrites entry 2 and recomputes its hash still breaks entry 3's link
    fields = {**entries[1].fields, "quantity_units": 1}
    forged = ChainEntry(2, entries[1].prev_hash, entry_hash(entries[1].prev_hash, fields), fields)
    report = verify_chain([entries[0], forged, entries[2], entries[3]])
    assert (report.first_broken, report.problem) == (3, "broken_link")


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(
        st.tuples(st.integers(1, 40), st.integers(0, 2000)),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    needed=st.integers(1, 120),
)
def test_cheapest_pack_set_matches_brute_force(sizes: list[tuple[int, int]], needed: int) -> None:
    packs = [Pack(cip13(f"7{i:06d}"), units, price) for i, (units, price) in enumerate(sizes)]
    proposal = cheapest_pack_set(packs, needed)
    assert proposal.units >= needed
    assert proposal.units == sum(ln.pack.units * ln.count for ln in proposal.lines)
    best = min(
        sum(c * p.price_cents for c, p in zip(counts, packs, strict=True))
        for counts in itertools.product(*(range(needed // p.units + 2) for p in packs))
        if sum(c * p.units for c, p in zip(counts, packs, strict=True)) >= needed
    )
    assert proposal.price_cents == best
