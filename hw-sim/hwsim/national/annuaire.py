"""Annuaire Santé simulator: FHIR R4 Practitioner / PractitionerRole / Organization.

Mounted under ``/annuaire``; the FHIR base is ``/annuaire/fhir``. Search a practitioner by
national identifier (``identifier=urn:oid:1.2.250.1.71.4.2.1|8<RPPS>`` or
``identifier=http://rpps.fr|<RPPS>``),
with ``_revinclude=PractitionerRole:practitioner`` to get the roles and
``_include:iterate=PractitionerRole:organization`` to get the organisations in the same Bundle,
as the ANS FHIR Annuaire does. Fixture practitioners are active, inactive, or active without any
current activity; an RPPS absent from the fixture gives an empty searchset (unknown).
Fixture: ``fixtures/national/annuaire.json``. Calls are counted by the simulator's recorder
(``GET /_sim/recorder?service=annuaire``), which is how tests see the daemon's cache at work.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hwsim.national.context import ServiceMount, SimDep, SimState

IDNAT_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "http://rpps.fr"
NOS = "https://mos.esante.gouv.fr/NOS"
PROFESSION_SYSTEM = f"{NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
SPECIALTY_SYSTEM = f"{NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
FINESS_SYSTEM = "http://finess.sante.gouv.fr"
FHIR_JSON = "application/fhir+json"


class Directory:
    """Fixture practitioners, served as FHIR resources (read-only after setup)."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.organizations = {o["id"]: o for o in fixture["organizations"]}
        self.practitioners = {p["rpps"]: p for p in fixture["practitioners"]}

    def find(self, identifier: str) -> dict[str, Any] | None:
        system, _, value = identifier.rpartition("|")
        if system == IDNAT_SYSTEM and value.startswith("8"):
            return self.practitioners.get(value[1:])
        if system in (RPPS_SYSTEM, ""):
            return self.practitioners.get(value)
        return None

    def search_bundle(
        self, base: str, identifier: str, with_roles: bool, with_orgs: bool
    ) -> dict[str, Any]:
        found = self.find(identifier)
        entries: list[dict[str, Any]] = []
        if found is not None:
            entries.append(_entry(base, practitioner_resource(found), "match"))
            roles = [role_resource(found, i, r) for i, r in enumerate(found["roles"])]
            if with_roles:
                entries += [_entry(base, r, "include") for r in roles]
            if with_roles and with_orgs:
                org_ids = sorted({r["organization"] for r in found["roles"]})
                entries += [
                    _entry(base, organization_resource(self.organizations[o]), "include")
                    for o in org_ids
                ]
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 1 if found is not None else 0,
            "entry": entries,
        }


def practitioner_resource(p: dict[str, Any]) -> dict[str, Any]:
    name: dict[str, Any] = {"family": p["family_name"], "given": [p["given_name"]]}
    if p.get("prefix"):
        name["prefix"] = [p["prefix"]]
    return {
        "resourceType": "Practitioner",
        "id": p["id"],
        "identifier": [
            {"system": IDNAT_SYSTEM, "value": "8" + p["rpps"]},
            {"system": RPPS_SYSTEM, "value": p["rpps"]},
        ],
        "active": p["active"],
        "name": [name],
    }


def role_resource(p: dict[str, Any], index: int, role: dict[str, Any]) -> dict[str, Any]:
    codes = [{"coding": [{"system": PROFESSION_SYSTEM, "code": role["profession"]}]}]
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": f"{p['id']}-role-{index}",
        "active": role["active"],
        "practitioner": {"reference": f"Practitioner/{p['id']}"},
        "organization": {"reference": f"Organization/{role['organization']}"},
        "code": codes,
        "period": {"start": role["start"], **({"end": role["end"]} if role.get("end") else {})},
    }
    if role.get("specialty"):
        coding = {"system": SPECIALTY_SYSTEM, "code": role["specialty"]}
        resource["specialty"] = [{"coding": [coding]}]
    return resource


def organization_resource(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": o["id"],
        "identifier": [{"system": FINESS_SYSTEM, "value": o["finess"]}],
        "active": o["active"],
        "name": o["name"],
    }


def _entry(base: str, resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _outcome(status: int, code: str, text: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


NAME = "annuaire"
FIXTURE_FILE = "annuaire.json"

router = APIRouter(tags=["Annuaire Santé"])


def setup(sim: SimState) -> None:
    fixture = json.loads((sim.fixtures_dir / FIXTURE_FILE).read_text(encoding="utf-8"))
    sim.stores[NAME] = Directory(fixture)


def directory_of(sim: SimState) -> Directory:
    directory: Directory = sim.stores[NAME]
    return directory


@router.get("/fhir/Practitioner", name="annuaire_search")
def search_practitioner(sim: SimDep, request: Request) -> JSONResponse:
    params = request.query_params
    identifier = params.get("identifier")
    if not identifier:
        return _outcome(400, "required", "identifier is required")
    revinclude = params.getlist("_revinclude")
    include = params.getlist("_include:iterate") + params.getlist("_include")
    base = str(request.url_for("annuaire_search")).removesuffix("/Practitioner")
    bundle = directory_of(sim).search_bundle(
        base,
        identifier,
        with_roles="PractitionerRole:practitioner" in revinclude,
        with_orgs="PractitionerRole:organization" in include,
    )
    return JSONResponse(bundle, media_type=FHIR_JSON)


@router.get("/fhir/Practitioner/{practitioner_id}")
def read_practitioner(sim: SimDep, practitioner_id: str) -> JSONResponse:
    for p in directory_of(sim).practitioners.values():
        if p["id"] == practitioner_id:
            return JSONResponse(practitioner_resource(p), media_type=FHIR_JSON)
    return _outcome(404, "not-found", "no such Practitioner")


mount = ServiceMount(NAME, "/annuaire", router, setup)
