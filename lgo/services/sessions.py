"""The professional session of a counter: who is acting, opened by a CPS card or by e-CPS (PSC).

One daemon serves one counter, so there is at most one open session at a time. Opening a new one
closes the previous one. A session ends when its card is removed (the CPS driver calls ``close``), when
the professional logs out, or when its expiry passes (e-CPS sessions have a shorter life). Listeners
registered with ``on_close`` run synchronously so that, e.g., the PKCS#11 logout happens before the
next request sees no session.

Threading: every method takes the registry's lock; listeners and events run outside it.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from lgo.core.events import EventBus

# RPPS "code profession" of a pharmacist (nomenclature TRE_G15-ProfessionSante).
PHARMACIST_PROFESSION_CODE = "21"


class SessionKind(StrEnum):
    CPS = "cps"
    ECPS = "ecps"


@dataclass(frozen=True)
class ProfessionalIdentity:
    national_id: str  # identifiant national (8 + RPPS for an RPPS professional)
    rpps: str
    family_name: str
    given_name: str
    profession_code: str
    profession_label: str = ""
    structure_id: str | None = None  # FINESS / SIRET of the pharmacy
    structure_name: str | None = None

    @property
    def is_pharmacist(self) -> bool:
        return self.profession_code == PHARMACIST_PROFESSION_CODE


@dataclass(frozen=True)
class ProfessionalSession:
    id: str
    kind: SessionKind
    identity: ProfessionalIdentity
    opened_at: datetime
    expires_at: datetime | None
    source: str | None = None  # reader name or PSC subject; no secret

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, Any]:
        """What the API and events may show: professional identity only, no secret."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "opened_at": self.opened_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "professional": asdict(self.identity),
        }


CloseListener = Callable[[ProfessionalSession, str], None]


class SessionRegistry:
    def __init__(self, events: EventBus, clock: Callable[[], datetime] | None = None) -> None:
        self._events = events
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._current: ProfessionalSession | None = None
        self._listeners: list[CloseListener] = []

    def on_close(self, listener: CloseListener) -> None:
        self._listeners.append(listener)

    def open(
        self,
        kind: SessionKind,
        identity: ProfessionalIdentity,
        *,
        ttl: timedelta | None = None,
        source: str | None = None,
    ) -> ProfessionalSession:
        now = self._clock()
        session = ProfessionalSession(
            id=str(uuid.uuid4()),
            kind=kind,
            identity=identity,
            opened_at=now,
            expires_at=now + ttl if ttl else None,
            source=source,
        )
        with self._lock:
            previous, self._current = self._current, session
        if previous is not None:
            self._closed(previous, "replaced")
        self._events.publish("session.opened", session.public())
        return session

    def close(self, reason: str, *, session_id: str | None = None) -> ProfessionalSession | None:
        """Close the current session (only if it is ``session_id`` when given)."""
        with self._lock:
            session = self._current
            if session is None or (session_id is not None and session.id != session_id):
                return None
            self._current = None
        self._closed(session, reason)
        return session

    def extend(self, session_id: str, expires_at: datetime) -> ProfessionalSession | None:
        """Move the expiry of the current session (e-CPS refresh); same session id, no event storm."""
        with self._lock:
            session = self._current
            if session is None or session.id != session_id:
                return None
            session = dataclasses.replace(session, expires_at=expires_at)
            self._current = session
        self._events.publish(
            "session.extended", {"id": session.id, "expires_at": expires_at.isoformat()}
        )
        return session

    def reap(self) -> None:
        """Close the current session if its expiry has passed (called periodically by the daemon)."""
        self.current()

    def peek(self) -> tuple[ProfessionalSession | None, bool]:
        """The current session and whether it has expired, closing nothing: safe on the event
        loop. An expired one is closed by :meth:`current` (its listeners block: PKCS#11 logout,
        a database write), so a caller that sees ``expired`` calls that, off the loop."""
        with self._lock:
            session = self._current
        if session is not None and session.expired(self._clock()):
            return None, True
        return session, False

    def current(self) -> ProfessionalSession | None:
        with self._lock:
            session = self._current
        if session is not None and session.expired(self._clock()):
            self.close("expired", session_id=session.id)
            return None
        return session

    def _closed(self, session: ProfessionalSession, reason: str) -> None:
        for listener in self._listeners:
            listener(session, reason)
        self._events.publish(
            "session.closed", {"id": session.id, "kind": session.kind.value, "reason": reason}
        )
