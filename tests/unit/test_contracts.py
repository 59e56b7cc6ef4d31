"""Client and simulator hold the national contracts written once in ``contracts/`` (docs/contracts.md).

hw-sim never imports lgo, so each side keeps its own constants; two copies that agree prove nothing
by themselves. Here both are held to the reviewed file, ``contracts/<service>/profile.json``: a
misunderstanding must be written into the contract, where its "kind" (invented, restricted,
public) and what the real specification would supply are visible, before both sides can share it.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
SERVICES = ("annuaire", "apcv", "dmp", "eprescription", "insi", "mss", "psc")
INVENTED_PREFIXES = ("https://lgo.invalid/", "urn:lgo:")


def profile(service: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONTRACTS / service / "profile.json").read_text("utf-8"))
    return data


def entries(service: str) -> list[dict[str, Any]]:
    data = profile(service)
    return [*data["placeholders"], *data["public"]]


def side_value(reference: str) -> object:
    module, _, name = reference.partition(":")
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def test_every_service_has_a_profile_and_a_readme() -> None:
    assert sorted(p.name for p in CONTRACTS.iterdir() if p.is_dir()) == sorted(SERVICES)
    for service in SERVICES:
        data = profile(service)
        assert data["service"] == service
        assert (CONTRACTS / service / "README.md").is_file()
        for entry in entries(service):
            assert entry["kind"] in {"invented", "restricted", "public"}, entry
            assert entry["real"], f"{service}/{entry['name']}: say what the specification supplies"


@pytest.mark.parametrize("service", SERVICES)
def test_client_and_simulator_hold_the_contract_values(service: str) -> None:
    checked = 0
    for entry in entries(service):
        for side in ("lgo", "hwsim"):
            if side in entry:
                assert side_value(entry[side]) == entry["value"], f"{entry[side]} ≠ {entry['name']}"
                checked += 1
    if entries(service):
        assert checked > 0


def _literals(folder: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value.startswith(INVENTED_PREFIXES):
                found.append((str(path.relative_to(ROOT)), value))
    return found


def test_no_invented_identifier_lives_outside_the_contract() -> None:
    """Every invented URL or URN in the national code of either side is one the contract lists."""
    registered = [
        e["value"]
        for s in SERVICES
        for e in entries(s)
        if e["kind"] == "invented" and isinstance(e["value"], str)
    ]
    literals = _literals(ROOT / "lgo" / "national") + _literals(
        ROOT / "hw-sim" / "hwsim" / "national"
    )
    assert literals, "the scan found nothing: the prefixes or folders changed"
    unregistered = [(path, value) for path, value in literals if value not in registered]
    assert unregistered == []


def test_lgo_writes_invented_identifiers_only_in_its_profile_modules() -> None:
    outside = [
        (path, value)
        for path, value in _literals(ROOT / "lgo" / "national")
        if not path.startswith("lgo/national/profiles/")
    ]
    assert outside == []
    for service in SERVICES:
        for entry in profile(service)["placeholders"]:
            if "lgo" in entry and isinstance(entry["value"], str) and entry["kind"] == "invented":
                assert entry["lgo"].startswith("lgo.national.profiles."), entry["name"]


def test_the_docs_list_every_placeholder() -> None:
    docs = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    for service in SERVICES:
        for entry in profile(service)["placeholders"]:
            shown = entry["value"] if isinstance(entry["value"], str) else entry["name"]
            assert str(shown) in docs, f"{service}: {entry['name']} missing from docs/contracts.md"


def test_the_clients_refusal_codes_are_the_contracts() -> None:
    from lgo.national import apcv, eprescription, insi

    def listed(service: str, name: str) -> list[str]:
        return sorted(next(e for e in entries(service) if e["name"] == name)["value"])

    assert sorted(apcv._REFUSALS) == listed("apcv", "error_codes")
    assert sorted(eprescription._OUTCOME_ERRORS) == listed("eprescription", "error_codes")
    assert sorted(insi.FAULT_TYPES) == listed("insi", "fault_codes")
