"""``/v1/stats``: the services-socles dashboard (per day or month), as JSON or CSV.

Periods are local days of the pharmacy (Europe/Paris), ``from`` and ``to`` inclusive. Without them,
the current month up to today.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from lgo.api.contract import answers
from lgo.api.deps import StatsDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas.stats import StatsReport
from lgo.core.errors import InvalidInput
from lgo.services.stats import Granularity, Report, StatsService, report_csv, today_local

router = APIRouter(
    prefix="/v1/stats",
    tags=["stats"],
    dependencies=[Depends(require_counter)],
    route_class=CounterRoute,
)

FromQuery = Annotated[date | None, Query(alias="from", description="Premier jour (AAAA-MM-JJ)")]
ToQuery = Annotated[date | None, Query(alias="to", description="Dernier jour inclus (AAAA-MM-JJ)")]
ByQuery = Annotated[Granularity, Query(description="Regroupement : day ou month")]


def _report(service: StatsService, start: date | None, end: date | None, by: Granularity) -> Report:
    last = end or today_local()
    first = start or last.replace(day=1)
    return service.report(first, last, by)


@router.get(
    "",
    summary="Tableau de bord des services socles (par jour ou par mois)",
    **answers(StatsReport, InvalidInput),
)
def stats(
    stats: StatsDep, start: FromQuery = None, end: ToQuery = None, by: ByQuery = "day"
) -> dict[str, Any]:
    return _report(stats, start, end, by).as_json()


@router.get(
    "/export.csv",
    summary="Export CSV du tableau de bord",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def stats_csv(
    stats: StatsDep, start: FromQuery = None, end: ToQuery = None, by: ByQuery = "day"
) -> Response:
    report = _report(stats, start, end, by)
    filename = f"lgo-stats-{report.period.start}-{report.period.end}-{by}.csv"
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
