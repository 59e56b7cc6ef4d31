"""Answers of /v1/outbox."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import View

OutboxStatus = Literal["pending", "processing", "delivered", "failed"]


class OutboxMessage(View):
    id: int
    kind: str = Field(description="Type de message (eprescription.execution, …).")
    dispensation_id: str | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: str = Field(description="Prochain essai (ISO 8601, UTC).")
    last_error: str | None
    delivered_at: str | None = Field(description="Livraison (ISO 8601, UTC), si livré.")
    created_at: str


class OutboxList(View):
    degraded: bool = Field(description="Le service national est injoignable (mode dégradé).")
    messages: list[OutboxMessage]
