"""Every router of the API. A part adds its router module to ``ROUTERS`` (one line)."""

from fastapi import APIRouter

from lgo.api.routers import (
    apcv,
    cps_session,
    dispensations,
    documents,
    events,
    health,
    metrics,
    narcotics,
    ordonnancier,
    outbox,
    patients,
    prescribers,
    prescriptions,
    psc,
    readers,
    scans,
    stats,
    trod,
    vaccinations,
)

ROUTERS: list[APIRouter] = [
    health.router,
    events.router,
    metrics.router,
    dispensations.router,
    prescriptions.router,
    ordonnancier.router,
    outbox.router,
    narcotics.router,
    psc.router,
    prescribers.router,
    patients.router,
    readers.router,
    scans.router,
    cps_session.router,
    documents.router,
    stats.router,
    apcv.router,
    vaccinations.router,
    trod.router,
]
