"""Answers of /v1/stats (services-socles dashboard)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import View


class StatsFigure(View):
    name: str = Field(description="Clé du chiffre dans figures / totals.")
    label: str = Field(description="Libellé français.")


class StatsFailure(View):
    source: str = Field(description="eprescription.outbox, insi, dmp, mss, national…")
    error: str = Field(description="Code du problème (ou service:statut HTTP).")
    count: int


class StatsBucket(View):
    period: str = Field(description="AAAA-MM-JJ ou AAAA-MM.")
    figures: dict[str, int]
    failures: list[StatsFailure]


class StatsBacklog(View):
    queue: str = Field(description="eprescription, dmp ou mss.")
    pending: int
    failed: int
    oldest_pending_at: str | None
    oldest_pending_age_s: int | None


class StatsReport(View):
    start: str = Field(alias="from", description="Premier jour (AAAA-MM-JJ).")
    end: str = Field(alias="to", description="Dernier jour inclus (AAAA-MM-JJ).")
    by: Literal["day", "month"]
    generated_at: str
    figures: list[StatsFigure]
    buckets: list[StatsBucket]
    totals: dict[str, int]
    failures: list[StatsFailure]
    backlog: list[StatsBacklog]
