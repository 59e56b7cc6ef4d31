"""The ordonnancier: append, verify, query and export (CSV and print-ready HTML).

Appending happens inside the dispensation's transaction: the single ``ordonnancier_head`` row is
read ``FOR UPDATE`` (PostgreSQL row lock; SQLite holds the writer lock from BEGIN IMMEDIATE), so
numbers are gapless and each entry chains onto the previous hash. Every counter waits on that row,
so the dispensation takes it last (:func:`lock_head`), after everything that does not need a
number, and moves it as its very last write (:func:`move_head`). UPDATE and DELETE are refused
by triggers; ``verify`` proves the chain and names the first broken entry.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    Integer,
    Text,
    Update,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from lgo.domain.ordonnancier import (
    CHAINED_FIELDS,
    OPTIONAL_CHAINED_FIELDS,
    ChainEntry,
    ChainReport,
    canonical,
    entry_hash,
    verify_chain,
)
from lgo.store.base import Base
from lgo.store.db import Database, after_commit, execute_on_driver, write_with_commit
from lgo.store.models.dispensing import OrdonnancierEntry, OrdonnancierHead

HEAD_ID = 1
# Built once on the Core tables: the dispensation runs them on every commit.
_HEAD = Base.metadata.tables["ordonnancier_head"]
_ENTRIES = Base.metadata.tables["ordonnancier_entries"]
_LOCK_HEAD = (
    select(_HEAD.c.last_number, _HEAD.c.last_hash).where(_HEAD.c.id == HEAD_ID).with_for_update()
)
_INSERT_ENTRIES = insert(_ENTRIES).inline()
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(last_number=bindparam("number"), last_hash=bindparam("digest"))
)
# PostgreSQL: the server-side append (migration ordoappend_0001), first in the commit's message.
_APPEND = sql_text(
    "SELECT ordonnancier_append(CAST(:entries AS jsonb), CAST(:prefixes AS text[]),"
    " CAST(:suffixes AS text[]))"
)
# Stands for a number until the server gives it: NUL cannot be stored in a PostgreSQL text, so no
# stored value holds it; JSON writes it escaped (\u0000).
_MARK = "\x00ordonnancier {}\x00"
_MARKS = re.compile(r'"\\u0000ordonnancier (\d+)\\u0000"')
EXPORT_COLUMNS: tuple[str, ...] = (
    "number",
    "recorded_at",
    "patient_name",
    "patient_address",
    "prescriber_name",
    "prescriber_address",
    "prescriber_rpps",
    "prescription_id",
    "product_code",
    "designation",
    "regulatory_list",
    "quantity_units",
    "bearer_name",
    "bearer_address",
    "pharmacist_rpps",
)
HEADERS_FR = {
    "number": "N°",
    "recorded_at": "Date",
    "patient_name": "Patient",
    "patient_address": "Adresse du patient",
    "prescriber_name": "Prescripteur",
    "prescriber_address": "Adresse du prescripteur",
    "prescriber_rpps": "RPPS prescripteur",
    "prescription_id": "Ordonnance",
    "product_code": "Code produit",
    "designation": "Désignation",
    "regulatory_list": "Liste",
    "quantity_units": "Quantité (unités)",
    "bearer_name": "Porteur (si autre que le patient)",
    "bearer_address": "Adresse du porteur",
    "pharmacist_rpps": "RPPS pharmacien",
}


class ExportOrder(StrEnum):
    CHRONOLOGICAL = "chronological"
    PATIENT = "patient"
    MEDICINE = "medicine"


@dataclass(frozen=True)
class Head:
    """The chain's end: the last number given and its hash."""

    number: int
    hash: str


def lock_head(conn: Connection) -> Head:
    """Read the head and hold it (PostgreSQL row lock) until the transaction ends: every other
    writer of the ordonnancier waits from here, so call it as late as possible."""
    ((number, digest),) = execute_on_driver(conn, _LOCK_HEAD, {}).rows
    return Head(number, digest)


def chain(head: Head, entries: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], Head]:
    """Number and hash ``entries`` (fields without ``number``) after ``head``: the rows to insert
    and the new head. Pure: nothing is written."""
    rows: list[dict[str, Any]] = []
    for fields in entries:
        values = {**fields, "number": head.number + 1}
        digest = entry_hash(head.hash, values)
        row = {name: values[name] for name in CHAINED_FIELDS}
        row.update({name: values.get(name) for name in OPTIONAL_CHAINED_FIELDS})
        rows.append({**row, "prev_hash": head.hash, "hash": digest})
        head = Head(values["number"], digest)
    return rows, head


def insert_entries(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Written with the COMMIT (PostgreSQL; see ``write_with_commit``): no RETURNING, the rows
    carry their own keys."""
    write_with_commit(conn, _INSERT_ENTRIES, rows)


def move_head(conn: Connection, head: Head) -> None:
    """The last write of the transaction: the head row is held from :func:`lock_head` to the
    commit, and nothing else remains to do in between (PostgreSQL: it leaves with the COMMIT)."""
    write_with_commit(conn, _MOVE_HEAD, {"number": head.number, "digest": head.hash})


def _fields(row: OrdonnancierEntry) -> dict[str, Any]:
    return {name: getattr(row, name) for name in (*CHAINED_FIELDS, *OPTIONAL_CHAINED_FIELDS)}


def _chain(session: Session, batch: int = 500) -> Iterator[ChainEntry]:
    last = 0
    while True:
        rows = (
            session.execute(
                select(OrdonnancierEntry)
                .where(OrdonnancierEntry.number > last)
                .order_by(OrdonnancierEntry.number)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield ChainEntry(row.number, row.prev_hash, row.hash, _fields(row))
        last = rows[-1].number


def verify(db: Database) -> ChainReport:
    """Walk the whole chain, then check the head row agrees with the last entry (a truncated
    tail would otherwise go unnoticed)."""
    with db.uow(readonly=True) as uow:
        report = verify_chain(_chain(uow.session))
        if not report.ok:
            return report
        head = uow.session.get(OrdonnancierHead, HEAD_ID)
        last = uow.session.execute(
            select(OrdonnancierEntry).order_by(OrdonnancierEntry.number.desc()).limit(1)
        ).scalar_one_or_none()
        last_number, last_hash = (last.number, last.hash) if last else (0, "0" * 64)
        head_state = (head.last_number, head.last_hash) if head else None
    if head_state != (last_number, last_hash):
        return ChainReport(False, report.checked, last_number + 1, "missing_entries")
    return report


@dataclass(frozen=True)
class Query:
    patient_id: str | None = None
    product_code: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    limit: int = 1000


def _iso_start(day: date) -> str:
    return datetime.combine(day, time.min).isoformat()


def query(
    db: Database, q: Query, order: ExportOrder = ExportOrder.CHRONOLOGICAL
) -> list[dict[str, Any]]:
    stmt = select(OrdonnancierEntry)
    if q.patient_id:
        stmt = stmt.where(OrdonnancierEntry.patient_id == q.patient_id)
    if q.product_code:
        stmt = stmt.where(OrdonnancierEntry.product_code == q.product_code)
    # recorded_at is ISO-8601 UTC text, so lexical order is time order.
    if q.day_from:
        stmt = stmt.where(OrdonnancierEntry.recorded_at >= _iso_start(q.day_from))
    if q.day_to:
        stmt = stmt.where(OrdonnancierEntry.recorded_at < _iso_start(q.day_to + timedelta(1)))
    sort = {
        ExportOrder.CHRONOLOGICAL: (OrdonnancierEntry.number,),
        ExportOrder.PATIENT: (
            OrdonnancierEntry.patient_name,
            OrdonnancierEntry.patient_id,
            OrdonnancierEntry.number,
        ),
        ExportOrder.MEDICINE: (
            OrdonnancierEntry.designation,
            OrdonnancierEntry.product_code,
            OrdonnancierEntry.number,
        ),
    }[order]
    with db.uow(readonly=True) as uow:
        rows = uow.session.execute(stmt.order_by(*sort).limit(q.limit)).scalars().all()
        return [{**_fields(r), "hash": r.hash} for r in rows]


def to_csv(entries: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([HEADERS_FR[c] for c in EXPORT_COLUMNS])
    for entry in entries:
        writer.writerow([entry.get(c) for c in EXPORT_COLUMNS])  # None: an empty cell
    return out.getvalue()


_CSS = """
@page { size: A4 landscape; margin: 12mm; }
body { font-family: sans-serif; font-size: 9pt; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #444; padding: 2px 4px; text-align: left; vertical-align: top; }
thead { display: table-header-group; }  /* header (pharmacy name, address) on every page */
tr { page-break-inside: avoid; }
.pharmacy th { border: none; font-size: 10pt; }
"""

_TITLES = {
    ExportOrder.CHRONOLOGICAL: "chronologique",
    ExportOrder.PATIENT: "par patient",
    ExportOrder.MEDICINE: "par médicament",
}


def to_html(
    entries: Sequence[Mapping[str, Any]],
    pharmacy_name: str,
    pharmacy_address: str,
    order: ExportOrder,
) -> str:
    """Print-ready HTML: the pharmacy's name and address repeat at the top of every page."""
    esc = html.escape
    span = len(EXPORT_COLUMNS)
    title = f"Ordonnancier — édition {_TITLES[order]}"
    head = (
        f'<tr class="pharmacy"><th colspan="{span}">{esc(pharmacy_name)} — '
        f"{esc(pharmacy_address)} — {esc(title)}</th></tr>"
        "<tr>" + "".join(f"<th>{esc(HEADERS_FR[c])}</th>" for c in EXPORT_COLUMNS) + "</tr>"
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td>{esc('' if e.get(c) is None else str(e[c]))}</td>" for c in EXPORT_COLUMNS)
        + "</tr>"
        for e in entries
    )
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<table><thead>{head}</thead><tbody>{body}</tbody></table></body></html>"
    )


# ------------------------------------------------------------ PostgreSQL: numbered on the server


def on_server(conn: Connection) -> bool:
    """PostgreSQL numbers and chains the entries in the commit's message (ordoappend_0001)."""
    return conn.dialect.name == "postgresql"


def around_number(fields: Mapping[str, Any]) -> tuple[str, str]:
    """The entry's canonical text cut where its number goes: ``prefix + str(n) + suffix`` is
    ``canonical({**fields, "number": n})``. ASCII (JSON escapes the rest), so the server's UTF-8
    bytes are Python's."""
    mark = _MARK.format(0)
    text = canonical({**fields, "number": mark}).decode("ascii")
    token = f'"number":{json.dumps(mark)}'
    prefix, found, suffix = text.partition(token)
    if not found or token in suffix:
        raise ValueError("ordonnancier entry: its number's place is not unique")
    return prefix + '"number":', suffix


def append_with_commit(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Queue the server-side append of ``entries`` (fields without ``number``) in the commit's
    message, after the writes that need no number and before those that show one: the head is
    locked, the entries numbered, hashed and inserted and the head moved by PostgreSQL alone. What
    follows in the message reads the numbers through :func:`numbered_insert` and
    :func:`filled_update`."""
    columns = [name for name in (*CHAINED_FIELDS, *OPTIONAL_CHAINED_FIELDS) if name != "number"]
    cut = [around_number(fields) for fields in entries]
    rows = [{name: fields.get(name) for name in columns} for fields in entries]
    write_with_commit(
        conn,
        _APPEND,
        {
            "entries": json.dumps(rows, ensure_ascii=False),
            "prefixes": [prefix for prefix, _ in cut],
            "suffixes": [suffix for _, suffix in cut],
        },
    )


def number_mark(offset: int) -> str:
    """Stands in an answer for the number of entry ``offset`` (0-based) until the commit."""
    return _MARK.format(offset)


def cut_marks(text: str, count: int) -> tuple[list[str], list[int]]:
    """JSON ``text`` cut around the ``count`` number marks it holds: the parts and the entry
    offset of each mark, for ``ordonnancier_fill`` (the server writes the numbers in)."""
    parts: list[str] = []
    offsets: list[int] = []
    start = 0
    for match in _MARKS.finditer(text):
        parts.append(text[start : match.start()])
        offsets.append(int(match.group(1)))
        start = match.end()
    parts.append(text[start:])
    if sorted(offsets) != list(range(count)):
        raise ValueError("answer: the ordonnancier number marks are not each entry's once")
    return parts, offsets


@lru_cache(maxsize=8)
def numbered_insert(statement: Insert, column: str) -> Insert:
    """``statement`` with ``column`` set by the server to the number of the entry given as
    ``ordonnancier_offset`` (NULL for NULL)."""
    offset = bindparam("ordonnancier_offset", type_=Integer)
    return statement.values({column: func.ordonnancier_number(offset)})


@lru_cache(maxsize=8)
def filled_update(statement: Update, column: str) -> Update:
    """``statement`` with ``column`` set to ``ordonnancier_fill(parts, offsets)`` (see
    :func:`cut_marks`)."""
    parts = bindparam("fill_parts", type_=ARRAY(Text))
    offsets = bindparam("fill_offsets", type_=ARRAY(Integer))
    return statement.values({column: func.ordonnancier_fill(parts, offsets)})


def numbers_after_commit(conn: Connection, answers: Sequence[dict[str, Any]]) -> None:
    """Once committed, give ``answers`` (the answer's lines of the entries, in entry order) the
    numbers the server gave (the commit's message returns the first)."""

    def fill(first: Any) -> None:
        for offset, answer in enumerate(answers):
            answer["ordonnancier_number"] = int(first) + offset

    after_commit(conn, fill)


def offset_rows(
    rows: Sequence[Mapping[str, Any]], listed: Sequence[Mapping[str, Any]], column: str
) -> list[dict[str, Any]]:
    """``rows`` for :func:`numbered_insert`: ``column`` left to the server, the entry offset of
    each row of ``listed`` (by identity, in entry order), NULL for the others."""
    offsets = {id(row): offset for offset, row in enumerate(listed)}
    return [
        {
            **{k: v for k, v in row.items() if k != column},
            "ordonnancier_offset": offsets.get(id(row)),
        }
        for row in rows
    ]
