"""Registre des stupéfiants: withdrawals written with the dispensation (same transaction),
receipts and destructions, monthly balance, annual inventory with its discrepancy recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from lgo.core.errors import InvalidInput
from lgo.domain.narcotics import (
    Movement,
    RegisterLine,
    inventory,
    monthly_balance,
    signed_units,
)
from lgo.services.local_time import local_date
from lgo.store.base import Base
from lgo.store.db import Database, write_with_commit
from lgo.store.models.dispensing import NarcoticsRegisterLine

REGISTERED_LISTS = frozenset({"stupefiant"})
_REGISTER = Base.metadata.tables["narcotics_register"]
# Built once (its cache key too); no RETURNING: the withdrawals' ids are not needed.
_INSERT_WITHDRAWALS = insert(_REGISTER).inline()


def record_withdrawals(
    conn: Connection, lines: Sequence[Mapping[str, Any]], rpps: str, now: datetime
) -> int:
    """One withdrawal per stupéfiant line handed over (``lines``: the dispensation_lines values,
    written inside the dispensation's :class:`~lgo.store.db.Transaction`; PostgreSQL: with its
    COMMIT, see ``write_with_commit``)."""
    withdrawals = [
        {
            "recorded_at": now,
            "business_date": local_date(now),
            "product_code": line["delivered_cip13"] or line["molecule"] or "",
            "designation": line["designation"],
            "movement": Movement.DISPENSING.value,
            "units": -line["units"],
            "dispensation_id": line["dispensation_id"],
            "reference": None,
            "pharmacist_rpps": rpps,
        }
        for line in lines
        if line["regulatory_list"] in REGISTERED_LISTS and line["units"] > 0
    ]
    # A hot statement of the dispensation's commit, whose answer is not needed.
    write_with_commit(conn, _INSERT_WITHDRAWALS, withdrawals)
    return len(withdrawals)


def _lines(session: Session, product_code: str) -> list[RegisterLine]:
    rows = (
        session.execute(
            select(NarcoticsRegisterLine)
            .where(NarcoticsRegisterLine.product_code == product_code)
            .order_by(NarcoticsRegisterLine.id)
        )
        .scalars()
        .all()
    )
    return [
        RegisterLine(r.business_date, r.product_code, Movement(r.movement), r.units) for r in rows
    ]


def record(
    db: Database,
    *,
    product_code: str,
    designation: str,
    movement: Movement,
    units: int,
    reference: str | None,
    rpps: str,
    now: datetime,
) -> dict[str, Any]:
    """A receipt or a destruction (positive quantity of dosage units)."""
    if movement not in (Movement.RECEIPT, Movement.DESTRUCTION):
        raise InvalidInput("mouvement manuel : réception ou destruction")
    try:
        signed = signed_units(movement, units)
    except ValueError:
        raise InvalidInput("quantité en unités de prise, strictement positive") from None
    with db.uow() as uow:
        row = NarcoticsRegisterLine(
            recorded_at=now,
            business_date=local_date(now),
            product_code=product_code,
            designation=designation,
            movement=movement.value,
            units=signed,
            dispensation_id=None,
            reference=reference,
            pharmacist_rpps=rpps,
        )
        uow.session.add(row)
        uow.commit()
        return _public(row)


def take_inventory(
    db: Database,
    *,
    product_code: str,
    designation: str,
    counted: int,
    note: str,
    rpps: str,
    now: datetime,
) -> dict[str, Any]:
    """Count the stock; a discrepancy becomes an adjustment line carrying the note."""
    with db.uow() as uow:
        result = inventory(
            _lines(uow.session, product_code), product_code, counted, local_date(now)
        )
        if result.discrepancy:
            uow.session.add(
                NarcoticsRegisterLine(
                    recorded_at=now,
                    business_date=local_date(now),
                    product_code=product_code,
                    designation=designation,
                    movement=Movement.INVENTORY_ADJUSTMENT.value,
                    units=result.discrepancy,
                    dispensation_id=None,
                    reference=f"inventaire : {note}"[:200],
                    pharmacist_rpps=rpps,
                )
            )
        uow.commit()
    return {
        "product_code": product_code,
        "on": result.on.isoformat(),
        "expected": result.expected,
        "counted": result.counted,
        "discrepancy": result.discrepancy,
    }


def balance(db: Database, product_code: str, year: int, month: int) -> dict[str, Any]:
    with db.uow(readonly=True) as uow:
        b = monthly_balance(_lines(uow.session, product_code), product_code, year, month)
    return {
        "product_code": product_code,
        "month": f"{year:04d}-{month:02d}",
        "opening": b.opening,
        "received": b.received,
        "withdrawn": b.withdrawn,
        "adjusted": b.adjusted,
        "closing": b.closing,
    }


def register(
    db: Database, product_code: str | None = None, day_from: date | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    stmt = select(NarcoticsRegisterLine).order_by(NarcoticsRegisterLine.id).limit(limit)
    if product_code:
        stmt = stmt.where(NarcoticsRegisterLine.product_code == product_code)
    if day_from:
        stmt = stmt.where(NarcoticsRegisterLine.business_date >= day_from)
    with db.uow(readonly=True) as uow:
        return [_public(r) for r in uow.session.execute(stmt).scalars().all()]


def _public(row: NarcoticsRegisterLine) -> dict[str, Any]:
    return {
        "id": row.id,
        "recorded_at": row.recorded_at.isoformat(),
        "business_date": row.business_date.isoformat(),
        "product_code": row.product_code,
        "designation": row.designation,
        "movement": row.movement,
        "units": row.units,
        "dispensation_id": row.dispensation_id,
        "reference": row.reference,
        "pharmacist_rpps": row.pharmacist_rpps,
    }
