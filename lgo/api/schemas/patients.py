"""Answers of /v1/patients (identity, INS)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import View


class InsView(View):
    matricule: str = Field(description="Matricule INS (NIR ou NIA).")
    oid: str
    oid_label: str = Field(description="INS-NIR ou INS-NIA.")


class PatientView(View):
    id: str
    birth_name: str
    used_name: str | None
    given_names: str = Field(description="Prénoms de naissance, séparés par des espaces.")
    sex: str | None
    birth_date: str
    birthplace: str | None
    nir: str | None
    source: str = Field(description="manual, vitale, apcv…")
    identity_status: Literal["provisional", "recovered", "validated", "qualified"]
    identity_status_code: Literal["PROV", "RECUP", "VALI", "QUAL"] = Field(
        description="Code FR Core fr-core-cs-v2-0445."
    )
    identity_status_label: str
    ins: InsView | None
    ins_usable: bool = Field(description="L'INS peut être utilisé et transmis.")
    ins_checked_at: str | None
    document_checked_at: str | None
    on_work_list: bool


class IdentityCheck(View):
    at: str
    kind: str = Field(description="insi_traits, insi_vitale, insi_verify, document…")
    outcome: str
    status_before: str
    status_after: str
    author_rpps: str | None
    error: str | None = Field(description="Code du problème rencontré.")


class PatientDetail(PatientView):
    checks: list[IdentityCheck] = Field(description="Historique des contrôles d'identité.")


class PatientSearch(View):
    patients: list[PatientView]


class WorkItem(View):
    id: int
    patient_id: str
    reason: str
    opened_at: str


class WorkList(View):
    items: list[WorkItem]
