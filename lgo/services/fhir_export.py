"""Data portability: each dispensation as a FHIR R4 Bundle of MedicationDispense resources.

Validated with ``fhir.resources.R4B`` (wire-compatible with R4 for these resources; the package's
top level is R5). Only a qualified INS goes into the document (domain.md §9 item 2): the identity
service answers through :class:`QualifiedInsProvider`; otherwise the patient is referenced by the
local id only.
"""

from __future__ import annotations

from typing import Any, Protocol

from lgo.national.eprescription import (
    ACT_CODE_SYSTEM,
    CIP_SYSTEM,
    PRESCRIPTION_ID_SYSTEM,
    RPPS_SYSTEM,
    SUBSTITUTION_TYPE_SYSTEM,
)

LOCAL_PATIENT_SYSTEM = "urn:lgo:patient"
LOCAL_DISPENSATION_SYSTEM = "urn:lgo:dispensation"


class QualifiedInsProvider(Protocol):
    def qualified_ins(self, patient_id: str) -> tuple[str, str] | None:
        """(INS value, OID) when the patient's identity is qualified, else None."""
        ...


def _patient(body: dict[str, Any], ins: tuple[str, str] | None) -> dict[str, Any]:
    identifiers = [{"system": LOCAL_PATIENT_SYSTEM, "value": body["patient_id"]}]
    if ins is not None:
        identifiers.append({"system": f"urn:oid:{ins[1]}", "value": ins[0]})
    return {"resourceType": "Patient", "id": "patient", "identifier": identifiers}


def _dispense(body: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    dispensed = line["intervention"] != "not_dispensed"
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": f"line-{line['line_no']}",
        "identifier": [
            {"system": LOCAL_DISPENSATION_SYSTEM, "value": f"{body['id']}/{line['line_no']}"}
        ],
        "status": "completed" if dispensed else "declined",
        "subject": {"reference": "Patient/patient"},
        "performer": [
            {
                "actor": {
                    "identifier": {"system": RPPS_SYSTEM, "value": body["professional"]["rpps"]}
                }
            }
        ],
        "authorizingPrescription": [
            {"identifier": {"system": PRESCRIPTION_ID_SYSTEM, "value": body["prescription_id"]}}
        ],
        "quantity": {"value": line["boxes"], "unit": "boîte"},
        "whenHandedOver": body["created_at"],
        "substitution": {"wasSubstituted": line["intervention"] == "substituted"},
    }
    if line["delivered_cip13"]:
        resource["medicationCodeableConcept"] = {
            "coding": [{"system": CIP_SYSTEM, "code": line["delivered_cip13"]}],
            "text": line["designation"],
        }
    else:
        resource["medicationCodeableConcept"] = {"text": line["designation"]}
    if line["completeness"]:
        resource["type"] = {"coding": [{"system": ACT_CODE_SYSTEM, "code": line["completeness"]}]}
    if resource["substitution"]["wasSubstituted"]:
        resource["substitution"]["type"] = {
            "coding": [{"system": SUBSTITUTION_TYPE_SYSTEM, "code": "G"}]
        }
    if not dispensed and line["reason"]:
        resource["statusReasonCodeableConcept"] = {"text": line["reason"]}
    return resource


def dispensation_bundle(
    body: dict[str, Any], identity: QualifiedInsProvider | None = None
) -> dict[str, Any]:
    """A collection Bundle: the Patient and one MedicationDispense per line, validated."""
    from fhir.resources.R4B.bundle import Bundle

    ins = identity.qualified_ins(body["patient_id"]) if identity is not None else None
    resources = [_patient(body, ins), *(_dispense(body, line) for line in body["lines"])]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "identifier": {"system": LOCAL_DISPENSATION_SYSTEM, "value": body["id"]},
        "timestamp": body["created_at"],
        "entry": [
            {"fullUrl": f"urn:lgo:{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
    validated = Bundle.model_validate(bundle)
    result: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return result
