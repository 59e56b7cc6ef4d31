"""The public Annuaire Santé FHIR package is the directory's contract, for the client and the simulator.

The package (``ans.fhir.fr.annuaire``, external and read-only) is named by
``LGO_ANNUAIRE_FHIR_PACKAGE`` (the ``package.tgz``; ``./dev test`` sets it when the conformance
folder exists). Its example Practitioner / PractitionerRole / Organization resources must parse
into lgo's prescriber model, the client's search must be one the server's CapabilityStatement
supports, and the simulator must serve resources of the same profiles (meta.profile, identifier
systems, codings, cardinalities). See docs/contracts.md.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from hwsim.national import annuaire as sim
from hwsim.national.context import DEFAULT_FIXTURES
from lgo.national import annuaire as client
from lgo.national.transport import NationalHttpClient

PACKAGE = Path(os.environ.get("LGO_ANNUAIRE_FHIR_PACKAGE", "/nonexistent"))
pytestmark = pytest.mark.skipif(
    not PACKAGE.is_file(),
    reason="Annuaire FHIR package absent: set LGO_ANNUAIRE_FHIR_PACKAGE to the package.tgz of "
    "ans.fhir.fr.annuaire (./dev test does it when the conformance folder exists)",
)
TODAY = date(2026, 1, 15)
G15 = "TRE_G15-ProfessionSante"


@cache
def package_files() -> dict[str, Any]:
    """Every JSON file of the package, by its path inside ``package/``."""
    found: dict[str, Any] = {}
    with tarfile.open(PACKAGE) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".json"):
                data = tar.extractfile(member)
                assert data is not None
                found[member.name.removeprefix("package/")] = json.load(data)
    return found


def examples(resource_type: str) -> list[dict[str, Any]]:
    return [
        body
        for name, body in sorted(package_files().items())
        if name.startswith("example/") and body.get("resourceType") == resource_type
    ]


def typed_identifier(resource: dict[str, Any], prefix: str) -> str | None:
    """The value of the identifier whose type code starts with ``prefix`` (IDNPS, RPPS, FINE…)."""
    for ident in resource.get("identifier", []):
        codes = [c.get("code", "") for c in ident.get("type", {}).get("coding", [])]
        if any(code.startswith(prefix) for code in codes):
            return str(ident["value"])
    return None


def search_bundle(practitioner: dict[str, Any]) -> dict[str, Any]:
    """The searchset the directory answers for this example practitioner, roles and organisations.

    The package's "DP" examples point to the ids of the other variant (``Practitioner/334081``
    from ``PractitionerRole/1578230DP``): references are read with the variant's suffix.
    """
    suffix = "DP" if practitioner["id"].endswith("DP") else ""
    base_id = practitioner["id"].removesuffix(suffix)
    roles = [
        {
            **r,
            "practitioner": {"reference": f"Practitioner/{practitioner['id']}"},
            "organization": {"reference": r["organization"]["reference"] + suffix},
        }
        for r in examples("PractitionerRole")
        if r["id"].endswith(suffix)
        and (suffix or not r["id"].endswith("DP"))
        and r["practitioner"]["reference"] == f"Practitioner/{base_id}"
    ]
    wanted = {r["organization"]["reference"].removeprefix("Organization/") for r in roles}
    organizations = [o for o in examples("Organization") if o["id"] in wanted]
    entries = [practitioner, *roles, *organizations]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in entries],
    }


def qualification_code(practitioner: dict[str, Any], system_mark: str) -> str | None:
    for qualification in practitioner.get("qualification", []):
        for coding in qualification.get("code", {}).get("coding", []):
            if system_mark in coding.get("system", ""):
                return str(coding["code"])
    return None


# -- the client -----------------------------------------------------------------------------------


def test_every_example_practitioner_parses_into_the_prescriber_model() -> None:
    practitioners = examples("Practitioner")
    assert len(practitioners) >= 4  # the DR and DP variants of two practitioners
    for example in practitioners:
        rpps = typed_identifier(example, "RPPS")
        assert rpps is not None
        bundle = search_bundle(example)
        record = client.parse_search(bundle, rpps)
        assert record is not None, example["id"]
        name = example["name"][0]
        assert record.national_id == typed_identifier(example, "IDNPS")
        assert (record.family_name, record.given_name) == (name["family"], " ".join(name["given"]))
        assert record.prefix == name["prefix"][0]
        roles = [
            e["resource"]
            for e in bundle["entry"][1:]
            if e["resource"]["resourceType"] == "PractitionerRole"
        ]
        assert len(record.roles) == len(roles) >= 1
        assert record.profession_codes == (qualification_code(example, G15),)
        assert record.practising(TODAY)
        by_name = {
            o["name"]: o
            for o in (e["resource"] for e in bundle["entry"])
            if "name" in o and o["resourceType"] == "Organization"
        }
        for role in record.roles:
            assert role.organization_name in by_name
            assert role.organization_finess == typed_identifier(
                by_name[role.organization_name], "FINE"
            )


def test_known_examples_give_the_expected_prescribers() -> None:
    """Anchors read by hand in the package: a physician in two places, a pharmacist."""
    found = {p["id"]: p for p in examples("Practitioner")}
    physician = client.parse_search(search_bundle(found["334081"]), "10003461033")
    pharmacist = client.parse_search(search_bundle(found["3719500DP"]), "10102727017")
    assert physician is not None and pharmacist is not None
    assert physician.profession_codes == ("10",)
    assert sorted((r.organization_name, r.organization_finess) for r in physician.roles) == [
        ("CABINET SAINT ANTOINE", None),
        ("CH EURE-SEINE", "754567860"),
    ]
    assert pharmacist.profession_codes == ("21",)
    assert [r.organization_finess for r in pharmacist.roles] == ["580008803"]


def test_the_clients_identifier_systems_are_the_packages() -> None:
    systems: dict[str, set[str]] = {}
    for resource in examples("Practitioner") + examples("Organization"):
        for ident in resource.get("identifier", []):
            for coding in ident.get("type", {}).get("coding", []):
                systems.setdefault(coding["code"], set()).add(ident["system"])
    assert systems["IDNPS"] == {client.IDNAT_SYSTEM}
    assert systems["RPPS"] == {client.RPPS_SYSTEM}
    assert systems["FINEG"] | systems["FINEJ"] == {client.FINESS_SYSTEM}


def test_the_clients_search_is_one_the_directory_supports() -> None:
    """The package's example RPPS numbers have no valid Luhn key (the client refuses them before
    any call), so the request is made for a fixture prescriber and answered "unknown"."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            200,
            json={"resourceType": "Bundle", "type": "searchset"},
            headers={"content-type": "application/fhir+json"},
        )

    http = NationalHttpClient(
        "annuaire", "http://annuaire.test", transport=httpx.MockTransport(answer)
    )
    assert client.AnnuaireClient(http).practitioner("10999990012") is None
    http.close()
    (request,) = sent
    server = package_files()["CapabilityStatement-AsServerDPCapabilityStatement.json"]
    resources = {r["type"]: r for r in server["rest"][0]["resource"]}
    params = request.url.params
    assert request.url.path.endswith("/Practitioner")
    assert "identifier" in {p["name"] for p in resources["Practitioner"]["searchParam"]}
    assert params["identifier"] == "urn:oid:1.2.250.1.71.4.2.1|810999990012"
    assert params["_revinclude"] in resources["Practitioner"]["searchRevInclude"]
    assert params["_include:iterate"] in resources["PractitionerRole"]["searchInclude"]


# -- the simulator --------------------------------------------------------------------------------


def served_resources() -> Iterator[dict[str, Any]]:
    fixture = json.loads((DEFAULT_FIXTURES / sim.FIXTURE_FILE).read_text(encoding="utf-8"))
    directory = sim.Directory(fixture)
    for rpps in directory.practitioners:
        bundle = directory.search_bundle(
            "http://sim/fhir", f"{sim.IDNAT_SYSTEM}|8{rpps}", True, True
        )
        yield from (entry["resource"] for entry in bundle["entry"])


def structure_definition(canonical: str) -> dict[str, Any]:
    url, _, version = canonical.partition("|")
    for name, body in package_files().items():
        if body.get("resourceType") == "StructureDefinition" and body["url"] == url:
            assert version == body["version"], f"{name}: {version} is not the package's version"
            return dict(body)
    raise AssertionError(f"{canonical} is not a profile of the package")


def coding_systems(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and "code" in node:
            yield node["system"]
        for value in node.values():
            yield from coding_systems(value)
    elif isinstance(node, list):
        for value in node:
            yield from coding_systems(value)


def test_the_simulator_serves_the_profiles_of_the_package() -> None:
    served = list(served_resources())
    assert {r["resourceType"] for r in served} == {
        "Practitioner",
        "PractitionerRole",
        "Organization",
    }
    for resource in served:
        profiles = [p for p in resource["meta"]["profile"] if "/ig/fhir/annuaire/" in p]
        assert len(profiles) == 1, resource["id"]
        definition = structure_definition(profiles[0])
        assert definition["type"] == resource["resourceType"]
        for element in definition["differential"]["element"]:
            path = element["id"].split(".")
            if len(path) != 2 or ":" in element["id"]:
                continue  # top-level elements only: slices and sub-elements are checked below
            if element.get("max") == "0":
                assert path[1] not in resource, f"{resource['id']}: {path[1]} is forbidden"
            if int(element.get("min", 0)) >= 1:
                assert path[1] in resource, f"{resource['id']}: {path[1]} is required"


def test_the_simulator_uses_the_packages_identifier_and_coding_systems() -> None:
    package_systems: set[str] = set()
    for resource_type in ("Practitioner", "PractitionerRole", "Organization"):
        for example in examples(resource_type):
            package_systems.update(coding_systems(example))
    for resource in served_resources():
        unknown = set(coding_systems(resource)) - package_systems
        assert unknown <= {sim.SPECIALTY_SYSTEM, sim.SKILL_TYPE_SYSTEM}, unknown
    # the ordinal specialty (savoirFaire) has no example in the package: its NOS system is the
    # terminology's published URL, written the way the package writes the other NOS systems
    assert sim.SPECIALTY_SYSTEM.replace("TRE_R38-SpecialiteOrdinale", "X").replace(
        "TRE-R38-SpecialiteOrdinale", "X"
    ) == sim.PROFESSION_SYSTEM.replace("TRE_G15-ProfessionSante", "X").replace(
        "TRE-G15-ProfessionSante", "X"
    )


def test_what_the_simulator_serves_parses_like_the_package() -> None:
    fixture = json.loads((DEFAULT_FIXTURES / sim.FIXTURE_FILE).read_text(encoding="utf-8"))
    directory = sim.Directory(fixture)
    bundle = directory.search_bundle(
        "http://sim/fhir", f"{sim.RPPS_SYSTEM}|10999990012", True, True
    )
    record = client.parse_search(bundle, "10999990012")
    assert record is not None and record.practising(TODAY)
    assert [(r.profession_code, r.specialty_code) for r in record.roles] == [("10", "SM54")]
