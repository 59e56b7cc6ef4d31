"""FastAPI dependencies shared by every router (``Annotated`` aliases)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import DispensingPart
from lgo.core.errors import PharmacistSessionRequired, Unauthorized
from lgo.core.settings import Settings
from lgo.national.apcv import ApcvClient
from lgo.services.counter_tokens import CounterTokens
from lgo.services.counters import CounterInfo
from lgo.services.cps import CpsService
from lgo.services.dispensation_intake import DispensationIntake
from lgo.services.dispensing import DispensingService
from lgo.services.documents import DeliveryQueue, DmpConsultation, DocumentService
from lgo.services.hardware import HardwareService
from lgo.services.identity import IdentityService
from lgo.services.prescriber_check import PrescriberChecker
from lgo.services.prescription_reading import PrescriptionReader
from lgo.services.psc_login import PscLogin
from lgo.services.scans import ScanService
from lgo.services.sessions import ProfessionalSession, SessionRegistry
from lgo.services.stats import StatsService
from lgo.services.trod import TrodService
from lgo.services.vaccinations import VaccinationService
from lgo.store.db import Database

P = ParamSpec("P")
T = TypeVar("T")


class DatabaseThreads:
    """Threads that run a route's blocking work (the services' database calls) off the event loop.

    One thread per database connection (``database.pool_size``): a call never waits in its thread
    for a connection. Cheaper than Starlette's ``run_in_threadpool`` (no capacity limiter, run
    variable or cancel scope per call), which each request paid up to four times.

    A call that has started is never interrupted: if the awaiting request is cancelled (the daemon
    stopping, the client gone), the call still runs to its end in its thread, so a dispensation
    commits whole and its answer is stored under its Idempotency-Key. A call not yet started when its request is cancelled
    never runs. :meth:`shutdown` (the app's lifespan) waits for the running calls.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:  # started on first need (and again after a shutdown)
            self._executor = ThreadPoolExecutor(self._size, thread_name_prefix="lgo-db")
        # The caller's context (the request id bound for the logs) goes with the call.
        call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def shutdown(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown)  # waits for the running calls


def db_threads(request: Request) -> DatabaseThreads:
    """The app's :class:`DatabaseThreads` (a plain call: a route takes ``request: Request``)."""
    threads: DatabaseThreads = request.app.state.db_threads
    return threads


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_container(request: Request) -> Container:
    return _container(request)


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_settings(request: Request) -> Settings:
    return _container(request).settings


async def get_db(request: Request) -> Database:
    return _container(request).db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]


# One alias per service of the composition root (lgo/bootstrap/container.py): a router names what it uses.
# Each reads the container from the request itself rather than through ContainerDep: one
# dependency fewer for FastAPI to solve on every request.
async def get_dispensing_part(request: Request) -> DispensingPart:
    return _container(request).dispensing


async def get_dispensing(request: Request) -> DispensingService:
    return _container(request).dispensing.service


async def get_dispensation_intake(request: Request) -> DispensationIntake:
    return _container(request).dispensation_intake


async def get_prescriber_check(request: Request) -> PrescriberChecker:
    return _container(request).psc.prescribers


async def get_prescriptions(request: Request) -> PrescriptionReader:
    return _container(request).prescriptions


async def get_psc_login(request: Request) -> PscLogin:
    return _container(request).psc.login


async def get_identity(request: Request) -> IdentityService:
    return _container(request).identity.service


async def get_documents(request: Request) -> DocumentService:
    return _container(request).documents.service


async def get_deliveries(request: Request) -> DeliveryQueue:
    return _container(request).documents.deliveries


async def get_dmp_consultation(request: Request) -> DmpConsultation:
    return _container(request).documents.consultation


async def get_vaccinations(request: Request) -> VaccinationService:
    return _container(request).missions.vaccinations


async def get_trod(request: Request) -> TrodService:
    return _container(request).missions.trod


async def get_sessions(request: Request) -> SessionRegistry:
    return _container(request).sessions


async def get_hardware(request: Request) -> HardwareService:
    return _container(request).hardware.hardware


async def get_scans(request: Request) -> ScanService:
    return _container(request).hardware.scans


async def get_cps(request: Request) -> CpsService:
    return _container(request).hardware.cps


async def get_apcv(request: Request) -> ApcvClient:
    return _container(request).national.apcv


async def get_stats(request: Request) -> StatsService:
    return _container(request).stats.service


DispensingPartDep = Annotated[DispensingPart, Depends(get_dispensing_part)]
DispensingDep = Annotated[DispensingService, Depends(get_dispensing)]
DispensationIntakeDep = Annotated[DispensationIntake, Depends(get_dispensation_intake)]
PrescriberCheckDep = Annotated[PrescriberChecker, Depends(get_prescriber_check)]
PrescriptionsDep = Annotated[PrescriptionReader, Depends(get_prescriptions)]
PscLoginDep = Annotated[PscLogin, Depends(get_psc_login)]
IdentityDep = Annotated[IdentityService, Depends(get_identity)]
DocumentsDep = Annotated[DocumentService, Depends(get_documents)]
DeliveriesDep = Annotated[DeliveryQueue, Depends(get_deliveries)]
DmpConsultationDep = Annotated[DmpConsultation, Depends(get_dmp_consultation)]
VaccinationsDep = Annotated[VaccinationService, Depends(get_vaccinations)]
TrodDep = Annotated[TrodService, Depends(get_trod)]
SessionsDep = Annotated[SessionRegistry, Depends(get_sessions)]
HardwareDep = Annotated[HardwareService, Depends(get_hardware)]
ScansDep = Annotated[ScanService, Depends(get_scans)]
CpsDep = Annotated[CpsService, Depends(get_cps)]
ApcvDep = Annotated[ApcvClient, Depends(get_apcv)]
StatsDep = Annotated[StatsService, Depends(get_stats)]


def _authorization(request: Request) -> str:
    """The first ``Authorization`` header, as ``request.headers.get`` reads it (ASGI servers give
    header names in lower case), without building Starlette's ``Headers`` for one look-up."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


async def require_counter(request: Request) -> CounterInfo:
    """The calling counter, from ``Authorization: Bearer <token>``; 401 otherwise."""
    scheme, _, token = _authorization(request).partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("en-tête Authorization: Bearer <jeton du poste> attendu")
    tokens: CounterTokens = request.app.state.tokens  # lgo/services/counter_tokens.py
    token = token.strip()
    # From memory when it can answer (no thread hop, no database); otherwise the database, off
    # the event loop.
    counter = tokens.cached(token) or await run_in_threadpool(tokens.authenticate, token)
    if counter is None:
        raise Unauthorized("jeton inconnu ou révoqué")
    return counter


CounterDep = Annotated[CounterInfo, Depends(require_counter)]


async def current_session(request: Request) -> ProfessionalSession | None:
    sessions = _container(request).sessions
    session, expired = sessions.peek()  # a read under a lock: no thread hop for the usual case
    if expired:
        # In a thread: closing an expired session runs its close listeners, which block (PKCS#11
        # logout, the stats part's database write).
        return await db_threads(request).run(sessions.current)
    return session


async def require_pharmacist(request: Request) -> ProfessionalSession:
    """An open CPS/e-CPS session of a pharmacist, for acts reserved to pharmacists; 403 otherwise."""
    session = await current_session(request)
    if session is None:
        raise PharmacistSessionRequired()
    if not session.identity.is_pharmacist:
        raise PharmacistSessionRequired("la session ouverte n'est pas celle d'un pharmacien")
    return session


SessionDep = Annotated[ProfessionalSession | None, Depends(current_session)]
PharmacistDep = Annotated[ProfessionalSession, Depends(require_pharmacist)]
