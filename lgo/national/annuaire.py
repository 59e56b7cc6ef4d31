"""Annuaire Santé client (FHIR R4): who a practitioner is, what they do, whether they practise.

One search per lookup: ``Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|8<RPPS>`` with the
practitioner's roles (``_revinclude``) and their organisations (``_include:iterate``) in the same
Bundle. The answer is parsed with small pydantic models of the few FHIR elements we use
(``extra="ignore"``: the directory may add elements without breaking us) rather than the full
``fhir.resources`` tree, whose validation of a whole directory Bundle costs more than the check it
serves.

The shapes are those of the ANS FHIR package ``ans.fhir.fr.annuaire`` (profiles ``as-dr-*`` /
``as-dp-*``): the profession (TRE_G15, slice ``exercicePro``) and the ordinal specialty (TRE_R38,
slice ``savoirFaire``) are qualifications of the *practitioner*, not codes of a situation
d'exercice (PractitionerRole.specialty is forbidden there); each role record carries them.
See docs/contracts.md.

:class:`CachedAnnuaire` keeps answers in memory for a bounded time: found practitioners for
``ttl``, unknown ones for ``negative_ttl`` (shorter: a newly registered prescriber must not stay
"unknown" for a day). An expired entry is never served; when the directory is down the caller
gets the typed error and decides (the prescriber check turns it into a warning).
Why memory rather than a table: this is public directory data that one call refetches; the hot
set (the prescribers of the pharmacy's patients) is small; a restart only costs one call per
prescriber. A shared table would add a migration on two databases for no safety gain.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from lgo.domain.professionals import idnat_from_rpps
from lgo.national.errors import MalformedResponse, RequestRejected
from lgo.national.transport import NationalHttpClient, decode_json

# identifier systems of the public FHIR package (slices idNatPs, rpps and finess)
IDNAT_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"
PROFESSION_SYSTEM_MARK = "TRE_G15"
SPECIALTY_SYSTEM_MARK = "TRE_R38"
# The Annuaire Santé FHIR API gateway (Gravitee) reads the pharmacy's key from this header.
API_KEY_HEADER = "ESANTE-API-KEY"


# -- the FHIR subset we read ------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Identifier(_Model):
    system: str | None = None
    value: str | None = None


class _Coding(_Model):
    system: str | None = None
    code: str | None = None


class _Concept(_Model):
    coding: list[_Coding] = []


class _Reference(_Model):
    reference: str | None = None


class _Period(_Model):
    start: date | None = None
    end: date | None = None


class _HumanName(_Model):
    family: str | None = None
    given: list[str] = []
    prefix: list[str] = []


class _Qualification(_Model):
    code: _Concept | None = None


class _Practitioner(_Model):
    resourceType: Literal["Practitioner"]
    id: str
    identifier: list[_Identifier] = []
    active: bool | None = None
    name: list[_HumanName] = []
    qualification: list[_Qualification] = []


class _PractitionerRole(_Model):
    resourceType: Literal["PractitionerRole"]
    id: str | None = None
    active: bool | None = None
    practitioner: _Reference | None = None
    organization: _Reference | None = None
    period: _Period | None = None


class _Organization(_Model):
    resourceType: Literal["Organization"]
    id: str
    identifier: list[_Identifier] = []
    name: str | None = None


class _Entry(_Model):
    resource: dict[str, Any]


class _Bundle(_Model):
    resourceType: Literal["Bundle"]
    type: str
    entry: list[_Entry] = []


# -- what callers get -------------------------------------------------------------------------


@dataclass(frozen=True)
class PractitionerRoleRecord:
    profession_code: str | None
    specialty_code: str | None
    active: bool
    start: date | None
    end: date | None
    organization_name: str | None
    organization_finess: str | None

    def current(self, today: date) -> bool:
        """Active, started, and not ended before ``today``."""
        if not self.active:
            return False
        if self.start is not None and self.start > today:
            return False
        return self.end is None or self.end >= today


@dataclass(frozen=True)
class PractitionerRecord:
    rpps: str
    national_id: str
    active: bool
    family_name: str
    given_name: str
    prefix: str | None
    roles: tuple[PractitionerRoleRecord, ...]

    def practising(self, today: date) -> bool:
        """Listed as active with at least one current role."""
        return self.active and any(role.current(today) for role in self.roles)

    @property
    def profession_codes(self) -> tuple[str, ...]:
        codes = (r.profession_code for r in self.roles if r.profession_code)
        return tuple(dict.fromkeys(codes))


class PractitionerDirectory(Protocol):
    """What the prescriber check needs: a practitioner by RPPS, ``None`` when unknown."""

    def practitioner(
        self, rpps: str, *, author_rpps: str | None = None
    ) -> PractitionerRecord | None: ...


# -- client -----------------------------------------------------------------------------------


class AnnuaireClient:
    """FHIR client of the Annuaire Santé (reads only: every call is idempotent)."""

    def __init__(self, http: NationalHttpClient, api_key: str = "") -> None:
        self._http = http
        self._headers = {"Accept": "application/fhir+json"}
        if api_key:  # the FHIR API's gateway refuses a call without the pharmacy's key
            self._headers[API_KEY_HEADER] = api_key

    def practitioner(
        self, rpps: str, *, author_rpps: str | None = None
    ) -> PractitionerRecord | None:
        params = {
            "identifier": f"{IDNAT_SYSTEM}|{idnat_from_rpps(rpps)}",
            "_revinclude": "PractitionerRole:practitioner",
            "_include:iterate": "PractitionerRole:organization",
        }
        response = self._http.request(
            "annuaire_practitioner",
            "GET",
            "/fhir/Practitioner",
            author_rpps=author_rpps,
            idempotent=True,
            params=params,
            headers=self._headers,
        )
        if response.status_code != 200:
            raise RequestRejected(f"annuaire: HTTP {response.status_code}")
        return parse_search(decode_json(response, "annuaire"), rpps)


def parse_search(body: object, rpps: str) -> PractitionerRecord | None:
    """The practitioner with this RPPS in a searchset Bundle; ``None`` if the Bundle has none."""
    try:
        bundle = _Bundle.model_validate(body)
        resources = [entry.resource for entry in bundle.entry]
        practitioners = [
            _Practitioner.model_validate(r)
            for r in resources
            if r.get("resourceType") == "Practitioner"
        ]
        roles = [
            _PractitionerRole.model_validate(r)
            for r in resources
            if r.get("resourceType") == "PractitionerRole"
        ]
        organizations = {
            o.id: o
            for o in (
                _Organization.model_validate(r)
                for r in resources
                if r.get("resourceType") == "Organization"
            )
        }
    except ValidationError as exc:
        raise MalformedResponse(f"annuaire: unexpected FHIR ({exc.error_count()} errors)") from None
    if bundle.type != "searchset":
        raise MalformedResponse("annuaire: searchset Bundle expected")
    match = next((p for p in practitioners if _has_rpps(p, rpps)), None)
    if match is None:
        return None
    reference = f"Practitioner/{match.id}"
    own = [r for r in roles if r.practitioner and r.practitioner.reference == reference]
    return _record(match, rpps, own, organizations)


def _has_rpps(practitioner: _Practitioner, rpps: str) -> bool:
    wanted = {(IDNAT_SYSTEM, "8" + rpps), (RPPS_SYSTEM, rpps)}
    return any((i.system, i.value) in wanted for i in practitioner.identifier)


def _record(
    practitioner: _Practitioner,
    rpps: str,
    roles: list[_PractitionerRole],
    organizations: dict[str, _Organization],
) -> PractitionerRecord:
    name = practitioner.name[0] if practitioner.name else _HumanName()
    concepts = [q.code for q in practitioner.qualification if q.code is not None]
    profession = _code(concepts, PROFESSION_SYSTEM_MARK)
    specialty = _code(concepts, SPECIALTY_SYSTEM_MARK)
    return PractitionerRecord(
        rpps=rpps,
        national_id="8" + rpps,
        active=practitioner.active is not False,  # FHIR: absent means active
        family_name=name.family or "",
        given_name=" ".join(name.given),
        prefix=name.prefix[0] if name.prefix else None,
        roles=tuple(_role(r, organizations, profession, specialty) for r in roles),
    )


def _role(
    role: _PractitionerRole,
    organizations: dict[str, _Organization],
    profession: str | None,
    specialty: str | None,
) -> PractitionerRoleRecord:
    reference = role.organization.reference if role.organization else None
    org = organizations.get((reference or "").removeprefix("Organization/"))
    finess = None
    if org is not None:
        finess = next((i.value for i in org.identifier if i.system == FINESS_SYSTEM), None)
    return PractitionerRoleRecord(
        profession_code=profession,
        specialty_code=specialty,
        active=role.active is not False,
        start=role.period.start if role.period else None,
        end=role.period.end if role.period else None,
        organization_name=org.name if org else None,
        organization_finess=finess,
    )


def _code(concepts: list[_Concept], system_mark: str) -> str | None:
    for concept in concepts:
        for coding in concept.coding:
            if coding.code and system_mark in (coding.system or ""):
                return coding.code
    return None


# -- cache ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CacheEntry:
    record: PractitionerRecord | None
    expires_at: float


class CachedAnnuaire:
    """A :class:`PractitionerDirectory` that remembers answers until they expire (thread-safe)."""

    def __init__(
        self,
        directory: PractitionerDirectory,
        *,
        ttl_s: float = 24 * 3600,
        negative_ttl_s: float = 3600,
        max_entries: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _CacheEntry] = OrderedDict()

    def practitioner(
        self, rpps: str, *, author_rpps: str | None = None
    ) -> PractitionerRecord | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(rpps)
            if entry is not None and now < entry.expires_at:
                self._entries.move_to_end(rpps)
                return entry.record
        record = self._directory.practitioner(rpps, author_rpps=author_rpps)
        ttl = self.ttl_s if record is not None else self.negative_ttl_s
        with self._lock:
            self._entries[rpps] = _CacheEntry(record, self._clock() + ttl)
            self._entries.move_to_end(rpps)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # least recently used
        return record

    def forget(self, rpps: str | None = None) -> None:
        """Drop one entry, or all of them."""
        with self._lock:
            if rpps is None:
                self._entries.clear()
            else:
                self._entries.pop(rpps, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
