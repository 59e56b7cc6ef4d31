"""Known answers for the ordonnancier chain: the canonical form and the hash of a fixed entry are
pinned, byte for byte. A change to either would orphan every chain already written (the register
is never rewritten), so it must fail here first, loudly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lgo.domain.ordonnancier import GENESIS_HASH, canonical, entry_hash

ENTRY: dict[str, object] = {
    "number": 1,
    "recorded_at": "2026-12-03T08:15:30.123456+00:00",  # ISO text, as the dispensing service writes it
    "dispensation_id": "0b7c6a52-1f5e-4c1e-9a55-3d4a3f0e2b11",
    "line_no": 1,
    "prescription_id": "EPTEST0000000000000042",
    "prescriber_rpps": "10999999997",
    "prescriber_name": "Dr Alice TESTMEDECIN",
    "patient_id": "pat-1",
    "patient_name": "TESTNOM Camille",
    "patient_address": "1 rue de l'Exemple, 75000 Paris",
    "product_code": "3400930000013",
    "designation": "PARACÉTAMOL TEST 500 mg",
    "regulatory_list": "I",
    "quantity_units": 30,
    "pharmacist_rpps": "10100000005",
}

CANONICAL = (
    '{"designation":"PARAC\\u00c9TAMOL TEST 500 mg",'
    '"dispensation_id":"0b7c6a52-1f5e-4c1e-9a55-3d4a3f0e2b11","line_no":1,"number":1,'
    '"patient_address":"1 rue de l\'Exemple, 75000 Paris","patient_id":"pat-1",'
    '"patient_name":"TESTNOM Camille","pharmacist_rpps":"10100000005",'
    '"prescriber_name":"Dr Alice TESTMEDECIN","prescriber_rpps":"10999999997",'
    '"prescription_id":"EPTEST0000000000000042","product_code":"3400930000013",'
    '"quantity_units":30,"recorded_at":"2026-12-03T08:15:30.123456+00:00","regulatory_list":"I"}'
)

# printf '%s\n%s' "$GENESIS" "$CANONICAL" | sha256sum, computed outside lgo.
EXPECTED_FIRST_HASH = "83b416d15a52356c27b7a2c0ca05295e8749d1f5bc35395017b65ed2e7092c39"


def test_canonical_form_is_pinned() -> None:
    assert canonical(ENTRY).decode() == CANONICAL


def test_hash_of_a_first_entry_is_pinned() -> None:
    assert entry_hash(GENESIS_HASH, ENTRY) == EXPECTED_FIRST_HASH


def test_optional_legal_fields_are_covered_only_when_present() -> None:
    without = entry_hash(GENESIS_HASH, ENTRY)
    assert entry_hash(GENESIS_HASH, {**ENTRY, "bearer_name": None}) == without
    with_address = {**ENTRY, "prescriber_address": "2 place du Test, 75000 Paris"}
    assert b'"prescriber_address":"2 place du Test, 75000 Paris"' in canonical(with_address)
    assert entry_hash(GENESIS_HASH, with_address) != without


def test_the_previous_hash_is_part_of_the_link() -> None:
    assert entry_hash("1" * 64, ENTRY) != entry_hash(GENESIS_HASH, ENTRY)


def test_a_value_without_canonical_form_is_refused() -> None:
    assert b'"recorded_at":"2026-12-03 08:15:30+00:00"' in canonical(
        {**ENTRY, "recorded_at": datetime(2026, 12, 3, 8, 15, 30, tzinfo=UTC)}
    )
    with pytest.raises(TypeError, match="no canonical form"):
        canonical({**ENTRY, "quantity_units": object()})
