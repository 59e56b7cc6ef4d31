"""Answers of /v1/dispensations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from lgo.api.schemas import View


class Refusal(View):
    """A rule that refuses (or limits) an intervention."""

    code: str = Field(description="Code stable du refus.")
    line_no: int | None
    message: str = Field(description="Message en français.")
    overridable: bool = Field(description="Le pharmacien peut passer outre avec un motif.")
    article: str | None = Field(description="Article du code de la santé publique.")
    max_days: int | None


class MissingDatum(View):
    """A mention the ordonnancier entry would lack (R.5132-10)."""

    datum: str
    label: str
    article: str


class CheckedLine(View):
    line_no: int
    intervention: str
    days: int
    units: int
    completeness: str | None
    warnings: list[str]
    mentions: list[str]
    overridden: list[str] = Field(description="Codes des refus levés par le pharmacien.")


class DispensationCheck(View):
    allowed: bool
    refusals: list[Refusal]
    record_missing: list[MissingDatum] = Field(description="À compléter avant l'enregistrement.")
    lines: list[CheckedLine]


class Professional(View):
    national_id: str
    rpps: str
    structure_id: str | None
    session_kind: str = Field(description="cps ou ecps.")
    session_id: str
    counter: str | None


class LineOverride(View):
    code: str
    reason: str | None
    pharmacist_rpps: str | None


class DispensedLine(View):
    line_no: int
    intervention: str
    days: int
    units: int
    boxes: int
    delivered_cip13: str | None
    designation: str
    regulatory_list: str
    completeness: str | None
    exceptional: bool
    unit_dispensing: bool
    lot: str | None
    substituted_form: str | None
    reason: str | None
    override: LineOverride | None
    mentions: list[str]
    period_start: str | None
    period_end: str | None
    ordonnancier_number: int | None


class OutboxRef(View):
    id: int
    status: str


class Dispensation(View):
    id: str
    created_at: str
    business_date: str
    patient_id: str
    prescription_id: str
    prescription_source: str = Field(description="eprescription, paper ou protocole.")
    sync_status: str = Field(description="pending_sync, synced ou local_only.")
    degraded: bool
    professional: Professional
    lines: list[DispensedLine]
    outbox: list[OutboxRef]


class FhirBundle(View):
    """A FHIR R4 ``Bundle`` (collection): the Patient and one MedicationDispense per line.

    Resources follow FHIR R4 (hl7.org/fhir/R4); a FHIR client library reads them.
    """

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    type: Literal["collection"]
    identifier: dict[str, Any]
    timestamp: str
    entry: list[dict[str, Any]]
