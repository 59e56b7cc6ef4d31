"""Answers of /v1/documents (CDA documents and their DMP / MSSanté deliveries)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import View


class DocumentDelivery(View):
    id: int
    kind: str = Field(description="dmp.provide ou mss.send.")
    status: Literal["pending", "processing", "delivered", "failed"]
    attempts: int
    recipient: str | None = Field(description="Adresse MSSanté (envoi mss).")
    last_error: str | None
    next_attempt_at: str
    delivered_at: str | None


class DeliveryWithDocument(DocumentDelivery):
    document_id: str


class DeliveryList(View):
    degraded: bool = Field(description="Un service d'envoi est injoignable.")
    deliveries: list[DeliveryWithDocument]


class DocumentView(View):
    id: str
    kind: str = Field(description="dispensing-summary, vaccination-note, bio-trod…")
    title: str
    patient_id: str
    dispensation_id: str | None
    author_rpps: str
    created_at: str
    size: int = Field(description="Taille du CDA en octets.")
    deliveries: list[DocumentDelivery]


class RetryQueued(View):
    queued: bool


class DmpDocumentEntry(View):
    """A document listed in the patient's DMP (XDS registry entry)."""

    entry_uuid: str
    unique_id: str
    repository_id: str
    title: str
    type_code: str
    type_display: str
    creation_time: str = Field(description="Date XDS (UTC) : AAAAMMJJhhmmss.")
    author: str
    mime_type: str
