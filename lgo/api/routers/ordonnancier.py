"""``/v1/ordonnancier``: query, verify, export (CSV or print-ready HTML)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from lgo.api.contract import answers
from lgo.api.deps import ContainerDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas.ordonnancier import ChainVerification, OrdonnancierLine
from lgo.services import ordonnancier
from lgo.services.ordonnancier import ExportOrder

router = APIRouter(
    tags=["ordonnancier"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)


class ExportFormat(StrEnum):
    CSV = "csv"
    HTML = "html"


def _query(
    patient_id: Annotated[str | None, Query(max_length=36)] = None,
    product_code: Annotated[str | None, Query(max_length=13)] = None,
    day_from: Annotated[date | None, Query(alias="from")] = None,
    day_to: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> ordonnancier.Query:
    return ordonnancier.Query(patient_id, product_code, day_from, day_to, limit)


QueryDep = Annotated[ordonnancier.Query, Depends(_query)]


@router.get(
    "/v1/ordonnancier",
    summary="Rechercher dans l'ordonnancier",
    **answers(list[OrdonnancierLine]),
)
def search(
    container: ContainerDep, q: QueryDep, order: ExportOrder = ExportOrder.CHRONOLOGICAL
) -> list[dict[str, Any]]:
    return ordonnancier.query(container.db, q, order)


@router.get(
    "/v1/ordonnancier/verify",
    summary="Vérifier la chaîne d'intégrité",
    **answers(ChainVerification),
)
def verify(container: ContainerDep) -> dict[str, Any]:
    report = ordonnancier.verify(container.db)
    return {
        "ok": report.ok,
        "checked": report.checked,
        "first_broken": report.first_broken,
        "problem": report.problem,
    }


@router.get(
    "/v1/ordonnancier/export",
    summary="Éditer l'ordonnancier (par patient, par médicament, chronologique)",
    response_class=Response,
    responses={
        200: {
            "description": "HTML prêt à imprimer, ou CSV (format=csv)",
            "content": {"text/html": {"schema": {"type": "string"}}, "text/csv": {}},
        }
    },
)
def export(
    container: ContainerDep,
    q: QueryDep,
    order: ExportOrder = ExportOrder.CHRONOLOGICAL,
    format: ExportFormat = ExportFormat.HTML,
) -> Response:
    entries = ordonnancier.query(container.db, q, order)
    if format is ExportFormat.CSV:
        name = f"ordonnancier-{order.value}.csv"
        return Response(
            ordonnancier.to_csv(entries),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    pharmacy = container.settings.pharmacy
    return HTMLResponse(ordonnancier.to_html(entries, pharmacy.name, pharmacy.address, order))
