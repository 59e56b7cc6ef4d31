"""Stats part: the two records the dashboard needs that no other part keeps.

- ``stats_sessions``: one row per professional session (CPS or e-CPS), written when it closes.
  Sessions live in memory (``lgo.services.sessions``); without this table, sign-ins of past days are lost.
- ``stats_national_calls``: one row per national call trace line (``lgo.national.transport``): service,
  action, status (HTTP code or typed error slug), attempts. Never a payload, a token or an identity.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lgo.store.base import Base
from lgo.store.columns import UTCDateTime


class StatsSession(Base):
    __tablename__ = "stats_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the session id: written once
    kind: Mapped[str] = mapped_column(String(8))  # cps | ecps
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    close_reason: Mapped[str] = mapped_column(String(32))


class StatsNationalCall(Base):
    __tablename__ = "stats_national_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    service: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(64))  # "200", "404", "service-timeout", ...
    attempts: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
