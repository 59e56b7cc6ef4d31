"""Annuaire Santé simulator: FHIR R4 Practitioner / PractitionerRole / Organization.

Mounted under ``/annuaire``; the FHIR base is ``/annuaire/fhir``. Search a practitioner by
national identifier (``identifier=urn:oid:1.2.250.1.71.4.2.1|8<RPPS>`` or
``identifier=https://rpps.esante.gouv.fr|<RPPS>``),
with ``_revinclude=PractitionerRole:practitioner`` to get the roles and
``_include:iterate=PractitionerRole:organization`` to get the organisations in the same Bundle,
as the ANS FHIR Annuaire does. Fixture practitioners are active, inactive, or active without any
current activity; an RPPS absent from the fixture gives an empty searchset (unknown).
Resources follow the "données restreintes" profiles of the public ANS FHIR package
(``as-dr-practitioner``, ``as-dr-practitionerrole``, ``as-dr-organization``): ``meta.profile``,
typed identifiers, the profession and specialty as practitioner qualifications (``exercicePro``,
``savoirFaire``), the situation d'exercice coded by its activity genre; the directory's own
examples are the reference (tests check the shapes against the package when it is available).
Fixture: ``fixtures/national/annuaire.json``. Calls are counted by the simulator's recorder
(``GET /_sim/recorder?service=annuaire``), which is how tests see the daemon's cache at work.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hwsim.national.context import ServiceMount, SimDep, SimState

IDNAT_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"
NOS = "https://mos.esante.gouv.fr/NOS"
PROFESSION_SYSTEM = f"{NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
CATEGORY_SYSTEM = f"{NOS}/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle"
SPECIALTY_SYSTEM = f"{NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
SKILL_TYPE_SYSTEM = f"{NOS}/TRE_R04-TypeSavoirFaire/FHIR/TRE-R04-TypeSavoirFaire"
GENRE_SYSTEM = f"{NOS}/TRE_R22-GenreActivite/FHIR/TRE-R22-GenreActivite"
ID_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition"
AS_SD = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition"
PACKAGE_VERSION = "1.2.0-snapshot-2"
PROFILES = {
    "Practitioner": [
        f"{FR_CORE}/fr-core-practitioner|2.2.0",
        f"{AS_SD}/as-dr-practitioner|{PACKAGE_VERSION}",
    ],
    "PractitionerRole": [
        f"{FR_CORE}/fr-core-practitioner-role|2.2.0",
        f"{AS_SD}/as-dr-practitionerrole|{PACKAGE_VERSION}",
    ],
    "Organization": [
        f"{FR_CORE}/fr-core-organization|2.2.0",
        f"{AS_SD}/as-dr-organization|{PACKAGE_VERSION}",
    ],
}
SOURCE = "https://annuaire.esante.gouv.fr"
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
    name: dict[str, Any] = {"use": "usual", "family": p["family_name"], "given": [p["given_name"]]}
    if p.get("prefix"):
        name["prefix"] = [p["prefix"]]
    return {
        "resourceType": "Practitioner",
        "id": p["id"],
        "meta": _meta("Practitioner"),
        "identifier": [
            _identifier("IDNPS", IDNAT_SYSTEM, "8" + p["rpps"]),
            _identifier("RPPS", RPPS_SYSTEM, p["rpps"]),
        ],
        "active": p["active"],
        "name": [name],
        "qualification": _qualifications(p["roles"]),
    }


def _meta(resource_type: str) -> dict[str, Any]:
    return {"source": SOURCE, "profile": PROFILES[resource_type]}


def _identifier(type_code: str, system: str, value: str) -> dict[str, Any]:
    kind = {"coding": [{"system": ID_TYPE_SYSTEM, "code": type_code}]}
    return {"use": "official", "type": kind, "system": system, "value": value}


def _qualifications(roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slices exercicePro (profession, civil category) and savoirFaire (ordinal specialty)."""
    found: list[dict[str, Any]] = []
    for profession in dict.fromkeys(r["profession"] for r in roles):
        codings = [
            {"system": PROFESSION_SYSTEM, "code": profession},
            {"system": CATEGORY_SYSTEM, "code": "C"},
        ]
        found.append({"code": {"coding": codings}})
    for specialty in dict.fromkeys(r["specialty"] for r in roles if r.get("specialty")):
        codings = [
            {"system": SKILL_TYPE_SYSTEM, "code": "S"},
            {"system": SPECIALTY_SYSTEM, "code": specialty},
        ]
        found.append({"code": {"coding": codings}})
    return found


def role_resource(p: dict[str, Any], index: int, role: dict[str, Any]) -> dict[str, Any]:
    role_id = f"{p['id']}-role-{index}"
    return {
        "resourceType": "PractitionerRole",
        "id": role_id,
        "meta": _meta("PractitionerRole"),
        "identifier": [{"system": RPPS_SYSTEM, "value": role_id}],  # idSituationExercice
        "active": role["active"],
        "period": {"start": role["start"], **({"end": role["end"]} if role.get("end") else {})},
        "practitioner": {"reference": f"Practitioner/{p['id']}"},
        "organization": {"reference": f"Organization/{role['organization']}"},
        "code": [{"coding": [{"system": GENRE_SYSTEM, "code": "GENR01"}]}],  # soins, pharmacie
    }


def organization_resource(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": o["id"],
        "meta": _meta("Organization"),
        "identifier": [_identifier("FINEG", FINESS_SYSTEM, o["finess"])],
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
# The real FHIR API sits behind a gateway that wants the pharmacy's key in this header. The
# simulator checks it only when given one (sim setting, or this variable for `hwsim up`).
API_KEY_HEADER = "ESANTE-API-KEY"
API_KEY_SETTING = "annuaire_api_key"
API_KEY_ENV = "LGO_HWSIM_ANNUAIRE_API_KEY"

router = APIRouter(tags=["Annuaire Santé"])


def setup(sim: SimState) -> None:
    fixture = json.loads((sim.fixtures_dir / FIXTURE_FILE).read_text(encoding="utf-8"))
    sim.stores[NAME] = Directory(fixture)


def _key_refused(sim: SimState, request: Request) -> JSONResponse | None:
    expected = sim.settings.get(API_KEY_SETTING) or os.environ.get(API_KEY_ENV, "")
    given = request.headers.get(API_KEY_HEADER, "")
    if not expected or hmac.compare_digest(given.encode(), str(expected).encode()):
        return None
    # As the gateway: 401 and a short JSON body, before the FHIR server is reached.
    return JSONResponse({"httpCode": 401, "message": "Unauthorized"}, status_code=401)


def directory_of(sim: SimState) -> Directory:
    directory: Directory = sim.stores[NAME]
    return directory


@router.get("/fhir/Practitioner", name="annuaire_search")
def search_practitioner(sim: SimDep, request: Request) -> JSONResponse:
    if refused := _key_refused(sim, request):
        return refused
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
def read_practitioner(sim: SimDep, request: Request, practitioner_id: str) -> JSONResponse:
    if refused := _key_refused(sim, request):
        return refused
    for p in directory_of(sim).practitioners.values():
        if p["id"] == practitioner_id:
            return JSONResponse(practitioner_resource(p), media_type=FHIR_JSON)
    return _outcome(404, "not-found", "no such Practitioner")


mount = ServiceMount(NAME, "/annuaire", router, setup)
