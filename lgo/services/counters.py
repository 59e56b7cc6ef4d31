"""Counter front-ends and their bearer tokens.

A token is 32 random bytes (URL-safe), shown once at creation. Only its SHA-256 is stored: with that
much entropy a slow hash adds nothing, and a lookup by hash keeps authentication to one indexed read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lgo.core.errors import Conflict, InvalidInput, NotFound
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models import Counter

TOKEN_PREFIX = "lgo_"  # noqa: S105 (a marker, not a secret)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class CounterInfo:
    id: int
    name: str
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: Counter) -> CounterInfo:
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
            info = _info(row)
            uow.commit()
    except IntegrityError:
        raise CounterNameTaken(f"le poste {name!r} existe déjà") from None
    return info, token


def list_counters(db: Database) -> list[CounterInfo]:
    with db.uow(readonly=True) as uow:
        rows = uow.session.scalars(select(Counter).order_by(Counter.id)).all()
        return [_info(r) for r in rows]


def revoke_counter(db: Database, name: str) -> CounterInfo:
    with db.uow() as uow:
        row = uow.session.scalars(select(Counter).where(Counter.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"aucun poste nommé {name!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        info = _info(row)
        uow.commit()
    return info


def authenticate(db: Database, token: str) -> CounterInfo | None:
    """The active counter owning this token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    with db.uow(readonly=True) as uow:
        row = uow.session.scalars(
            select(Counter).where(Counter.token_hash == hash_token(token))
        ).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        return _info(row)
