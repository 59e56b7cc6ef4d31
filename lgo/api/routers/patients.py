"""``/v1/patients``: search, read and create patients; retrieve or verify their INS with INSi;
record the check of an identity document; the identity work list.

Identity status (``identity_status``): ``provisional``, ``recovered``, ``validated``,
``qualified`` (FR Core codes PROV, RECUP, VALI, QUAL in ``identity_status_code``). ``ins_usable``
is true only for a qualified identity that is not on the work list: only then does the INS go out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from lgo.api.contract import NATIONAL_ERRORS, answers
from lgo.api.deps import IdentityDep, SessionDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas.patients import PatientDetail, PatientSearch, PatientView, WorkList
from lgo.domain.birth_dates import check_birth_date
from lgo.domain.identity import IdentityRuleError, RawBirthDate, check_nir
from lgo.national.insi import InsiError
from lgo.services.identity import (
    DuplicateIns,
    IdentityConcurrentChange,
    IdentityInvalid,
    IdentityTransitionRefused,
    InsMissing,
    NewPatient,
    PatientUnknown,
    VitaleQuery,
)
from lgo.services.local_time import pharmacy_today

router = APIRouter(
    prefix="/v1/patients",
    tags=["patients"],
    dependencies=[Depends(require_counter)],
    route_class=CounterRoute,
)

NIR = Annotated[str, Field(min_length=13, max_length=21, description="NIR/NIA, 15 caractères")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_In):
    # Before birth_date: its validator needs to know whether a card gave the date.
    source: Literal["manual", "vitale", "apcv"] = "manual"
    birth_name: str = Field(min_length=1, max_length=100)
    given_names: str = Field(min_length=1, max_length=200, description="Prénoms de naissance")
    birth_date: str = Field(
        pattern=r"^\d{4}-?\d{2}-?\d{2}$",
        description="AAAAMMJJ : une date réelle, pas dans le futur ; jour/mois 00 (lunaire) "
        "seulement tel que lu sur une carte (source vitale ou apcv)",
    )
    sex: Literal["F", "M"] | None = None
    birthplace: str | None = Field(None, pattern=r"^(\d{5}|2[ABab]\d{3})$", description="COG")
    used_name: str | None = Field(None, max_length=100)
    nir: NIR | None = None
    rank: int = Field(1, ge=1, le=9, description="Rang de naissance lu sur la carte (jumeaux)")

    # Before the pattern: "31/12/1999" gets the expected format named, not "format invalide".
    @field_validator("birth_date", mode="before")
    @classmethod
    def _real_birth_date(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value  # pydantic's own "texte attendu"
        lunar = info.data.get("source", "manual") != "manual"
        return check_birth_date(value, pharmacy_today(), lunar_allowed=lunar)


class VitaleIn(_In):
    insured_nir: NIR | None = Field(None, description="NIR de l'assuré (ouvrant droit) de la carte")
    individual_nir: NIR | None = Field(None, description="NIR propre du bénéficiaire, s'il est lu")
    rank: int = Field(1, ge=1, le=9, description="Rang de naissance (jumeaux)")


class InsRequest(_In):
    mode: Literal["retrieve", "verify"] = "retrieve"
    vitale: VitaleIn | None = Field(None, description="Recherche par les données de la carte")


class IdentityDocumentIn(_In):
    document: str = Field(description="cni, passeport, titre_sejour, ...")


def _author(session: Any) -> str | None:
    return session.identity.rpps if session is not None else None


@router.get("", summary="Rechercher des patients", **answers(PatientSearch, IdentityInvalid))
def search_patients(
    service: IdentityDep,
    name: Annotated[str | None, Query(max_length=100)] = None,
    birth_date: Annotated[str | None, Query(max_length=10)] = None,
    nir: Annotated[str | None, Query(max_length=21)] = None,
    ins: Annotated[str | None, Query(max_length=21)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    found = service.search(name=name, birth_date=birth_date, nir=nir, ins=ins, limit=limit)
    return {"patients": [p.public() for p in found]}


@router.get("/work-list", summary="Identités à résoudre (liste de travail)", **answers(WorkList))
def work_list(service: IdentityDep) -> dict[str, Any]:
    items = service.work_list()
    return {
        "items": [
            {
                "id": i.id,
                "patient_id": i.patient_id,
                "reason": i.reason,
                "opened_at": i.opened_at.isoformat(),
            }
            for i in items
        ]
    }


@router.post(
    "",
    status_code=201,
    summary="Créer un patient (saisie, carte Vitale ou apCV)",
    **answers(PatientView, IdentityInvalid, DuplicateIns),
)
def create_patient(body: PatientIn, service: IdentityDep) -> JSONResponse:
    data = NewPatient(
        birth_name=body.birth_name,
        given_names=body.given_names,
        birth_date=body.birth_date,
        sex=body.sex,
        birthplace=body.birthplace,
        used_name=body.used_name,
        nir=body.nir,
        rank=body.rank,
    )
    if body.source == "manual":
        view = service.create_patient(data, source="manual")
    else:
        view = service.create_from_card(data, source=body.source)
    return JSONResponse(view.public(), status_code=201)


@router.get(
    "/{patient_id}",
    summary="Lire un patient et l'historique de ses contrôles d'identité",
    **answers(PatientDetail, PatientUnknown),
)
def read_patient(patient_id: str, service: IdentityDep) -> dict[str, Any]:
    view = service.get(patient_id)
    checks = [
        {
            "at": c.at.isoformat(),
            "kind": c.kind,
            "outcome": c.outcome,
            "status_before": c.status_before,
            "status_after": c.status_after,
            "author_rpps": c.author_rpps,
            "error": c.error_slug,
        }
        for c in service.checks(patient_id)
    ]
    return {**view.public(), "checks": checks}


# What a change of identity status may refuse.
_INS_ERRORS = (
    PatientUnknown,
    IdentityInvalid,
    IdentityTransitionRefused,
    IdentityConcurrentChange,
    DuplicateIns,
    InsMissing,
)


@router.post(
    "/{patient_id}/ins",
    summary="Récupérer (retrieve) ou vérifier (verify) l'INS avec le téléservice INSi",
    description=(
        "`retrieve` : recherche par traits (chaque prénom seul puis tous) ou par les données de la "
        "carte Vitale (`vitale`). `verify` : nouvelle recherche avec les traits enregistrés ; un "
        "échec met l'identité en liste de travail et bloque l'INS."
    ),
    **answers(PatientView, *_INS_ERRORS, InsiError, *NATIONAL_ERRORS),
)
def ins(
    patient_id: str, body: InsRequest, service: IdentityDep, session: SessionDep
) -> dict[str, Any]:
    author = _author(session)
    if body.mode == "verify":
        return service.verify_ins(patient_id, author_rpps=author).public()
    vitale = _vitale_query(
        service.get(patient_id).birth_name, service.get(patient_id).birth_date, body
    )
    return service.retrieve_ins(patient_id, author_rpps=author, vitale=vitale).public()


def _vitale_query(birth_name: str, birth_date: str, body: InsRequest) -> VitaleQuery | None:
    if body.vitale is None:
        return None
    if not (body.vitale.insured_nir or body.vitale.individual_nir):
        raise IdentityInvalid("Recherche par carte : NIR de l'assuré ou du bénéficiaire requis.")
    try:
        return VitaleQuery(
            birth_name=birth_name,
            birth_date=RawBirthDate.parse(birth_date),
            individual_nir=check_nir(body.vitale.individual_nir)
            if body.vitale.individual_nir
            else None,
            insured_nir=check_nir(body.vitale.insured_nir) if body.vitale.insured_nir else None,
            rank=body.vitale.rank,
        )
    except IdentityRuleError as exc:
        raise IdentityInvalid(str(exc)) from None


@router.post(
    "/{patient_id}/identity-documents",
    summary="Enregistrer le contrôle d'une pièce d'identité",
    **answers(PatientView, *_INS_ERRORS),
)
def document_checked(
    patient_id: str, body: IdentityDocumentIn, service: IdentityDep, session: SessionDep
) -> dict[str, Any]:
    return service.record_document_check(
        patient_id, body.document, author_rpps=_author(session)
    ).public()
