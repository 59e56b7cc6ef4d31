"""Annuaire Santé simulator: FHIR R4 Practitioner / PractitionerRole / Organization.

Mounted under ``/annuaire``; the FHIR base is ``/annuaire/fhir``. Search a practitioner by
national identifier (``identifier=urn:oid:1.2.250.1.71.4.2.1|8<RPPS>`` or
``identifier=http://rpps.fr|<RPPS>``),
with ``_revinclude=PractitionerRole:practitioner`` to get the roles and
``_include:iterate=PractitionerRole:organization`` to get the organisations in the same Bundle,
as the ANS FHIR Annuaire does. Fixture practitioners are active, inactive, or active without any
current activity; an RPPS absent from the fixture gives an empty searchset (unknown).
``GET /annuaire/_sim/calls`` counts the searches (tests check the daemon's cache with it).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

FIXTURE_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "national" / "annuaire.json"
IDNAT_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "http://rpps.fr"
NOS = "https://mos.esante.gouv.fr/NOS"
PROFESSION_SYSTEM = f"{NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
SPECIALTY_SYSTEM = f"{NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
FINESS_SYSTEM = "http://finess.sante.gouv.fr"
FHIR_JSON = "application/fhir+json"


class Directory:
    """Fixture practitioners as FHIR resources, and a count of searches (thread-safe)."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.organizations = {o["id"]: o for o in fixture["organizations"]}
        self.practitioners = {p["rpps"]: p for p in fixture["practitioners"]}
        self._lock = threading.Lock()
        self.searches = 0

    @classmethod
    def from_file(cls, path: Path = FIXTURE_PATH) -> Directory:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def reset(self) -> None:
        with self._lock:
            self.searches = 0

    def count_search(self) -> None:
        with self._lock:
            self.searches += 1

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


directory = Directory.from_file()
router = APIRouter(tags=["annuaire"])


def install(new_directory: Directory) -> None:
    """Replace the module directory (tests with another fixture)."""
    global directory
    directory = new_directory


@router.get("/fhir/Practitioner", name="annuaire_search")
def search_practitioner(request: Request) -> JSONResponse:
    params = request.query_params
    identifier = params.get("identifier")
    if not identifier:
        return _outcome(400, "required", "identifier is required")
    directory.count_search()
    revinclude = params.getlist("_revinclude")
    include = params.getlist("_include:iterate") + params.getlist("_include")
    base = str(request.url_for("annuaire_search")).removesuffix("/Practitioner")
    bundle = directory.search_bundle(
        base,
        identifier,
        with_roles="PractitionerRole:practitioner" in revinclude,
        with_orgs="PractitionerRole:organization" in include,
    )
    return JSONResponse(bundle, media_type=FHIR_JSON)


@router.get("/fhir/Practitioner/{practitioner_id}")
def read_practitioner(practitioner_id: str) -> JSONResponse:
    for p in directory.practitioners.values():
        if p["id"] == practitioner_id:
            return JSONResponse(practitioner_resource(p), media_type=FHIR_JSON)
    return _outcome(404, "not-found", "no such Practitioner")


@router.get("/_sim/calls")
def sim_calls() -> dict[str, int]:
    return {"searches": directory.searches}


@router.post("/_sim/reset")
def sim_reset() -> dict[str, bool]:
    directory.reset()
    return {"reset": True}
