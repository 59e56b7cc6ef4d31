"""Only a qualified INS reaches an outgoing document: the dispensing FHIR export asks the identity
service (``QualifiedInsProvider``) and gets the INS only for a qualified identity off the work list."""

from __future__ import annotations

from typing import Any

import pytest

from lgo.domain.identity import Ins, InsOid, RawBirthDate, with_key
from lgo.national.insi import InsiIdentity, InsiNotFound
from lgo.services.fhir_export import dispensation_bundle
from lgo.services.identity import (
    IdentityNotQualified,
    IdentityOnWorkList,
    IdentityService,
    NewPatient,
)
from lgo.store.db import Database

from .test_identity_service import RPPS, FakeInsi

pytestmark = pytest.mark.integration

NIR = with_key("2991275056999")


def _found() -> InsiIdentity:
    return InsiIdentity(
        ins=Ins.of(NIR, InsOid.TEST),
        birth_name="TESTNOM",
        given_names=("CAMILLE",),
        sex="F",
        birth_date=RawBirthDate.parse("19991231"),
        birthplace="75056",
    )


def _body(patient_id: str) -> dict[str, Any]:
    return {
        "id": "d-1",
        "patient_id": patient_id,
        "created_at": "2026-01-01T10:00:00+00:00",
        "prescription_id": "ABCDEFGHIJ",
        "professional": {"rpps": RPPS},
        "lines": [],
    }


def _ins_identifiers(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    patient = bundle["entry"][0]["resource"]
    return [i for i in patient["identifier"] if i["system"].startswith("urn:oid:")]


def test_fhir_export_carries_the_ins_only_when_qualified(sqlite_db: Database) -> None:
    service = IdentityService(sqlite_db, FakeInsi([_found(), InsiNotFound()]))  # type: ignore[arg-type]
    patient = service.create_patient(NewPatient("Testnom", "Camille", "19991231", sex="F"))

    assert _ins_identifiers(dispensation_bundle(_body(patient.id), service)) == []  # provisional
    service.retrieve_ins(patient.id, author_rpps=RPPS)
    assert _ins_identifiers(dispensation_bundle(_body(patient.id), service)) == []  # recovered
    with pytest.raises(IdentityNotQualified):
        service.require_qualified_ins(patient.id)

    service.record_document_check(patient.id, "cni", author_rpps=RPPS)
    assert _ins_identifiers(dispensation_bundle(_body(patient.id), service)) == [
        {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": NIR}
    ]

    service.verify_ins(patient.id, author_rpps=RPPS)  # KO: work list, INS blocked
    assert _ins_identifiers(dispensation_bundle(_body(patient.id), service)) == []
    with pytest.raises(IdentityOnWorkList):
        service.require_qualified_ins(patient.id)
