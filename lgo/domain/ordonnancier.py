"""Ordonnancier hash chain (pure).

Each entry's hash covers the previous entry's hash and a canonical JSON form of its own fields, so
altering, removing or reordering any validated entry breaks the chain from that entry on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

GENESIS_HASH = "0" * 64

# The fields the chain covers, in a fixed order (the database row has these columns).
CHAINED_FIELDS: tuple[str, ...] = (
    "number",
    "recorded_at",
    "dispensation_id",
    "line_no",
    "prescription_id",
    "prescriber_rpps",
    "prescriber_name",
    "patient_id",
    "patient_name",
    "patient_address",
    "product_code",
    "designation",
    "regulatory_list",
    "quantity_units",
    "pharmacist_rpps",
)
# Added by the legal-record migration (R.5132-10 prescriber address, R.5132-35 bearer): covered
# when present, so entries written before them keep their hash.
OPTIONAL_CHAINED_FIELDS: tuple[str, ...] = ("prescriber_address", "bearer_name", "bearer_address")


def _text_of(value: object) -> str:
    """How a non-JSON value enters the canonical form: ``str()`` of it, as the first entries were
    hashed (a datetime as ``2026-12-03 08:00:00.123456+00:00``). Only the types a row can hold:
    a new type must not silently change the form of the chain (pinned by a known-answer test)."""
    if isinstance(value, datetime | date | Decimal | UUID):
        return str(value)
    raise TypeError(f"ordonnancier field of type {type(value).__name__} has no canonical form")


def canonical(fields: Mapping[str, object]) -> bytes:
    payload = {name: fields.get(name) for name in CHAINED_FIELDS}
    payload.update(
        {name: fields[name] for name in OPTIONAL_CHAINED_FIELDS if fields.get(name) is not None}
    )
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_text_of).encode()


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(fields)).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    number: int
    prev_hash: str
    hash: str
    fields: Mapping[str, object]


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken: int | None = None
    problem: str | None = None


def verify_chain(entries: Iterable[ChainEntry]) -> ChainReport:
    """Walk entries in number order; report the first gap, link or content break."""
    expected_prev = GENESIS_HASH
    expected_number = 1
    checked = 0
    for entry in entries:
        if entry.number != expected_number:
            return ChainReport(False, checked, expected_number, "gap_in_numbers")
        if entry.prev_hash != expected_prev:
            return ChainReport(False, checked, entry.number, "broken_link")
        if entry_hash(entry.prev_hash, entry.fields) != entry.hash:
            return ChainReport(False, checked, entry.number, "content_altered")
        expected_prev = entry.hash
        expected_number += 1
        checked += 1
    return ChainReport(True, checked)
