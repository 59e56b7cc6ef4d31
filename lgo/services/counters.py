"""Counter front-ends and their bearer tokens.

A token is 32 random bytes (URL-safe), shown once at creation. Only its SHA-256 is stored: with that
much entropy a slow hash adds nothing. The daemon keeps the active counters' hashes in memory
(:class:`lgo.services.token_cache.CounterTokens`) and reloads them when the counters change; a
revocation signals that change in its own transaction (docs/api.md, "Authentification").
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from lgo.core.errors import Conflict, InvalidInput, NotFound
from lgo.core.logs import get_logger
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models import Counter

TOKEN_PREFIX = "lgo_"  # noqa: S105 (a marker, not a secret)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# PostgreSQL: a revocation NOTIFYs CHANGED_CHANNEL in its transaction; each daemon's listener
# (application_name LISTENER_NAME) answers on ACK_CHANNEL once its cache is invalidated.
CHANGED_CHANNEL = "lgo_counters"
ACK_CHANNEL = "lgo_counters_ack"
LISTENER_NAME = "lgo-counters-listener"
ACK_WAIT_S = 5.0

log = get_logger(__name__)


@dataclass(frozen=True)
class CounterInfo:
    id: int
    name: str
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Revocation:
    counter: CounterInfo
    unconfirmed: int  # PostgreSQL daemons that did not acknowledge within ACK_WAIT_S


def well_formed(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) <= 128


def info_of(row: Counter) -> CounterInfo:
    return CounterInfo(row.id, row.name, row.token_prefix, row.created_at, row.revoked_at)


class CounterNameTaken(Conflict):
    slug = "counter-name-taken"
    title = "Ce nom de poste existe déjà"


def add_counter(db: Database, name: str) -> tuple[CounterInfo, str]:
    """Create a counter; return it with its token (the only time the token is visible)."""
    if not NAME_PATTERN.match(name):
        raise InvalidInput("nom de poste : lettres, chiffres, . _ - (64 caractères au plus)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = Counter(
        name=name,
        token_hash=hash_token(token),
        token_prefix=token[:12],
        created_at=utcnow(),
        revoked_at=None,
    )
    try:
        with db.uow() as uow:
            uow.session.add(row)
            uow.session.flush()
            info = info_of(row)
            uow.commit()
    except IntegrityError:
        raise CounterNameTaken(f"le poste {name!r} existe déjà") from None
    return info, token


def list_counters(db: Database) -> list[CounterInfo]:
    with db.uow(readonly=True) as uow:
        rows = uow.session.scalars(select(Counter).order_by(Counter.id)).all()
        return [info_of(r) for r in rows]


def revoke_counter(db: Database, name: str) -> CounterInfo:
    return revoke(db, name).counter


def revoke(db: Database, name: str, *, wait_s: float = ACK_WAIT_S) -> Revocation:
    """Revoke a counter's token. On PostgreSQL, return once every listening daemon has invalidated
    its token cache (or ``wait_s`` has passed: ``unconfirmed`` says how many did not answer)."""
    if db.dialect != "postgresql":
        return Revocation(_revoke(db, name, None), 0)
    with _AckWaiter(db) as acks:
        info = _revoke(db, name, acks.nonce)
        return Revocation(info, acks.wait(wait_s))


def _revoke(db: Database, name: str, nonce: str | None) -> CounterInfo:
    with db.uow() as uow:
        row = uow.session.scalars(select(Counter).where(Counter.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"aucun poste nommé {name!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        info = info_of(row)
        if nonce is not None:  # delivered at commit, and only if the revocation commits
            uow.session.execute(
                text("SELECT pg_notify(:channel, :nonce)"),
                {"channel": CHANGED_CHANNEL, "nonce": nonce},
            )
        uow.commit()
    return info


class _AckWaiter:
    """A connection listening on ACK_CHANNEL before the revocation commits, so no answer is lost."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.nonce = secrets.token_hex(8)
        self._acked: set[int] = set()

    def __enter__(self) -> _AckWaiter:
        self._fairy = self._db.engine.raw_connection()
        conn: Any = self._fairy.driver_connection
        self._conn = conn
        self._conn.rollback()
        self._conn.autocommit = True
        self._conn.execute(f"LISTEN {ACK_CHANNEL}")
        return self

    def __exit__(self, *_: object) -> None:
        self._fairy.detach()  # never hand a LISTENing connection back to the pool
        self._fairy.close()

    def _listeners(self) -> set[int]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (LISTENER_NAME,),
        )
        return {int(row[0]) for row in rows}

    def wait(self, timeout_s: float) -> int:
        """Daemons still listening that have not acknowledged when the time is up (a daemon that
        disappears meanwhile no longer counts: its cache falls back to the database)."""
        deadline = time.monotonic() + timeout_s
        while True:
            pending = self._listeners() - self._acked
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            # Answers received during _listeners() wait in psycopg's backlog: none is lost.
            for notify in self._conn.notifies(timeout=min(0.05, remaining)):
                if notify.payload == self.nonce:
                    self._acked.add(notify.pid)
        if pending:
            log.warning("counter_revoke_unconfirmed", daemons=len(pending))
        return len(pending)


def authenticate(db: Database, token: str) -> CounterInfo | None:
    """The active counter owning this token, or None (one database read; the daemon goes through
    lgo.services.counter_tokens instead)."""
    if not well_formed(token):
        return None
    with db.uow(readonly=True) as uow:
        row = uow.session.scalars(
            select(Counter).where(Counter.token_hash == hash_token(token))
        ).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        return info_of(row)
