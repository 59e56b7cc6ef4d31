"""``/v1/documents``: produce a shared document, follow its deliveries, open it; the patient's DMP.

- ``POST /v1/documents``: a dispensing summary (from a dispensation) or a vaccination note, queued
  for the DMP and/or an MSSanté recipient. Pharmacist session required (the author).
- ``GET /v1/documents/{id}``: the document and the state of each delivery.
- ``GET /v1/documents/{id}/cda``: the CDA itself, the exact bytes stored and sent
  (``application/xml``), for an integrator.
- ``GET /v1/documents/{id}/html``: the document rendered as sanitised HTML (from those bytes).
- ``POST /v1/documents/{id}/deliveries``: send it once more (DMP, or MSSanté to a recipient).
- ``GET /v1/documents/deliveries``: deliveries waiting, delivered or failed (``status`` filter).
- ``POST /v1/documents/deliveries/{delivery_id}/retry``: re-queue a failed delivery.
- ``GET /v1/patients/{id}/documents``: documents produced here for the patient.
- ``GET /v1/patients/{id}/dmp``: the patient's DMP list; ``GET /v1/patients/{id}/dmp/document``
  opens one of them (sanitised HTML). Professional session required.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from lgo.api.contract import NATIONAL_ERRORS, answers, problem_responses
from lgo.api.deps import (
    DeliveriesDep,
    DmpConsultationDep,
    DocumentsDep,
    PharmacistDep,
    require_counter,
)
from lgo.api.direct import CounterRoute
from lgo.api.schemas import view_of
from lgo.api.schemas.documents import DeliveryList, DmpDocumentEntry, DocumentView, RetryQueued
from lgo.core.errors import Conflict, InvalidInput, LgoError
from lgo.documents.errors import (
    CdaInvalidError,
    CdaNonConformantError,
    CisisKitUnusable,
    DocumentInputError,
    DocumentNotFoundError,
    InsNotQualifiedError,
)
from lgo.documents.models import Vaccination, VaccinationAct, VaccinationRoute, VaccinationSite
from lgo.national.dmp import (
    DmpAbsent,
    DmpAccessRefused,
    DmpAuthenticationFailed,
    DmpDocumentUnknown,
)
from lgo.services.documents import (
    DocumentAlreadyProduced,
    MssNotConfigured,
    MssRecipientInvalid,
    author_from_session,
)
from lgo.services.identity import PatientUnknown

router = APIRouter(
    tags=["documents"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)

# The rendered document is data, never code: no script, no remote resource, no framing elsewhere.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


DeliveryStatus = Literal["pending", "processing", "delivered", "failed"]


class NoteVaccinationIn(BaseModel):
    administered_at: datetime
    product_code: str = Field(pattern=r"^\d{13}$", description="CIP 13 du vaccin")
    product_label: str = Field(min_length=1, max_length=200)
    lot_number: str = Field(min_length=1, max_length=40)
    dose_label: str = Field("", max_length=80)
    cis_code: str = Field(pattern=r"^\d{8}$", description="Code CIS du vaccin (VAC-NOTE)")
    atc_code: str = Field(pattern=r"^J07[A-Z0-9]{1,4}$", description="Classe ATC du vaccin")
    atc_label: str = Field("", max_length=200)
    expiry: date | None = None
    dose_number: int | None = Field(None, ge=1, le=20, description="Rang de la vaccination")
    act: VaccinationAct = VaccinationAct.UNSPECIFIED
    route: VaccinationRoute = VaccinationRoute.INTRAMUSCULAR
    site: VaccinationSite | None = None
    comment: str = Field("", max_length=500)


class DocumentRequest(BaseModel):
    kind: Literal["dispensing-summary", "vaccination-note"]
    dispensation_id: str | None = Field(None, description="Pour un résumé de dispensation")
    patient_id: str | None = Field(None, description="Pour une note de vaccination")
    vaccinations: list[NoteVaccinationIn] = Field(
        default_factory=list, max_length=1, description="Une note documente une vaccination"
    )
    to_dmp: bool = True
    mss_recipient: str | None = Field(None, max_length=254)


class DeliveryIn(BaseModel):
    channel: Literal["dmp", "mss"]
    recipient: str | None = Field(None, max_length=254)


# Reading the patient's DMP (consultation) may end in these.
_DMP_ERRORS: tuple[type[LgoError], ...] = (
    DmpAbsent,
    DmpAccessRefused,
    DmpAuthenticationFailed,
    InsNotQualifiedError,
    PatientUnknown,
    *NATIONAL_ERRORS,
)


@router.post(
    "/v1/documents",
    status_code=201,
    summary="Produire un document et l'envoyer",
    **answers(
        DocumentView,
        InvalidInput,
        DocumentInputError,
        DocumentNotFoundError,
        PatientUnknown,
        DocumentAlreadyProduced,
        InsNotQualifiedError,
        CdaInvalidError,
        CdaNonConformantError,
        CisisKitUnusable,
        MssNotConfigured,
        MssRecipientInvalid,
    ),
)
def produce(body: DocumentRequest, documents: DocumentsDep, session: PharmacistDep) -> DocumentView:
    author = author_from_session(session.identity)
    if body.kind == "dispensing-summary":
        if not body.dispensation_id:
            raise InvalidInput("dispensation_id requis pour un résumé de dispensation.")
        summary = documents.dispensing_summary(
            body.dispensation_id, author, to_dmp=body.to_dmp, mss_recipient=body.mss_recipient
        )
        return view_of(DocumentView, summary)
    if not body.patient_id or not body.vaccinations:
        raise InvalidInput("patient_id et au moins une vaccination sont requis.")
    if any(v.administered_at.tzinfo is None for v in body.vaccinations):
        raise InvalidInput("Dates de vaccination avec fuseau horaire attendues.")
    vaccinations = [Vaccination(**v.model_dump()) for v in body.vaccinations]
    note = documents.vaccination_note(
        body.patient_id,
        vaccinations,
        author,
        to_dmp=body.to_dmp,
        mss_recipient=body.mss_recipient,
    )
    return view_of(DocumentView, note)


@router.get(
    "/v1/documents/deliveries",
    summary="Envois de documents (DMP, MSSanté)",
    **answers(DeliveryList),
)
def deliveries(
    queue: DeliveriesDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DeliveryList:
    return view_of(DeliveryList, queue.list(status, limit))


@router.get(
    "/v1/documents/{document_id}",
    summary="Un document et l'état de ses envois",
    **answers(DocumentView, DocumentNotFoundError),
)
def read(document_id: str, documents: DocumentsDep) -> DocumentView:
    return view_of(DocumentView, documents.get(document_id))


@router.get(
    "/v1/documents/{document_id}/cda",
    response_class=Response,
    summary="Le document CDA tel qu'envoyé",
    responses={
        200: {"content": {"application/xml": {}}},
        **problem_responses(DocumentNotFoundError),
    },
)
def cda(document_id: str, documents: DocumentsDep) -> Response:
    content = documents.content(document_id)
    return Response(
        content,
        media_type="application/xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/v1/documents/{document_id}/html",
    response_class=HTMLResponse,
    summary="Afficher un document",
    responses=problem_responses(DocumentNotFoundError),
)
def html(document_id: str, documents: DocumentsDep) -> HTMLResponse:
    return HTMLResponse(documents.html(document_id), headers=HTML_HEADERS)


@router.post(
    "/v1/documents/{document_id}/deliveries",
    summary="Envoyer un document",
    **answers(DocumentView, DocumentNotFoundError, MssNotConfigured, MssRecipientInvalid),
)
def send(
    document_id: str, body: DeliveryIn, documents: DocumentsDep, session: PharmacistDep
) -> DocumentView:
    sent = documents.send(
        document_id, body.channel, author_rpps=session.identity.rpps, recipient=body.recipient
    )
    return view_of(DocumentView, sent)


@router.post(
    "/v1/documents/deliveries/{delivery_id}/retry",
    summary="Relancer un envoi en échec",
    **answers(RetryQueued, DocumentNotFoundError, Conflict),
)
def retry(
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],  # beyond a 64-bit key: a 422, not a 500
    queue: DeliveriesDep,
    _session: PharmacistDep,
) -> RetryQueued:
    queue.retry(delivery_id)
    return RetryQueued(queued=True)


@router.get(
    "/v1/patients/{patient_id}/documents",
    summary="Documents produits pour le patient",
    **answers(list[DocumentView]),
)
def patient_documents(patient_id: str, documents: DocumentsDep) -> list[DocumentView]:
    return [view_of(DocumentView, document) for document in documents.for_patient(patient_id)]


@router.get(
    "/v1/patients/{patient_id}/dmp",
    summary="Documents du DMP du patient",
    **answers(list[DmpDocumentEntry], *_DMP_ERRORS),
)
def dmp_list(
    patient_id: str, dmp: DmpConsultationDep, session: PharmacistDep
) -> list[DmpDocumentEntry]:
    entries = dmp.list(patient_id, author_rpps=session.identity.rpps)
    return [DmpDocumentEntry.model_validate(entry, from_attributes=True) for entry in entries]


@router.get(
    "/v1/patients/{patient_id}/dmp/document",
    response_class=HTMLResponse,
    summary="Ouvrir un document du DMP",
    responses=problem_responses(DmpDocumentUnknown, *_DMP_ERRORS),
)
def dmp_open(
    patient_id: str,
    dmp: DmpConsultationDep,
    session: PharmacistDep,
    repository_id: Annotated[str, Query(pattern=r"^[0-9.]{1,64}$")],
    unique_id: Annotated[str, Query(pattern=r"^[0-9.^A-Za-z-]{1,128}$")],
) -> HTMLResponse:
    content = dmp.open(patient_id, repository_id, unique_id, author_rpps=session.identity.rpps)
    return HTMLResponse(content, headers=HTML_HEADERS)
