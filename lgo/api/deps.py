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

    A call that has started is never interrupted: if the awaiting request is cancelled (the client
    went away), the call still runs to its end in its thread, so a dispensation commits whole and its
    answer is stored under its Idempotency-Key. A call not yet started when its request is cancelled
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


async def get_db_threads(request: Request) -> DatabaseThreads:
    threads: DatabaseThreads = request.app.state.db_threads
    return threads


DatabaseThreadsDep = Annotated[DatabaseThreads, Depends(get_db_threads)]


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_settings(container: ContainerDep) -> Settings:
    return container.settings


async def get_db(container: ContainerDep) -> Database:
    return container.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]


# One alias per service of the composition root (lgo/bootstrap/container.py): a router names what it uses.
async def get_dispensing_part(container: ContainerDep) -> DispensingPart:
    return container.dispensing


async def get_dispensing(container: ContainerDep) -> DispensingService:
    return container.dispensing.service


async def get_dispensation_intake(container: ContainerDep) -> DispensationIntake:
    return container.dispensation_intake


async def get_prescriber_check(container: ContainerDep) -> PrescriberChecker:
    return container.psc.prescribers


async def get_prescriptions(container: ContainerDep) -> PrescriptionReader:
    return container.prescriptions


async def get_psc_login(container: ContainerDep) -> PscLogin:
    return container.psc.login


async def get_identity(container: ContainerDep) -> IdentityService:
    return container.identity.service


async def get_documents(container: ContainerDep) -> DocumentService:
    return container.documents.service


async def get_deliveries(container: ContainerDep) -> DeliveryQueue:
    return container.documents.deliveries


async def get_dmp_consultation(container: ContainerDep) -> DmpConsultation:
    return container.documents.consultation


async def get_vaccinations(container: ContainerDep) -> VaccinationService:
    return container.missions.vaccinations


async def get_trod(container: ContainerDep) -> TrodService:
    return container.missions.trod


async def get_sessions(container: ContainerDep) -> SessionRegistry:
    return container.sessions


async def get_hardware(container: ContainerDep) -> HardwareService:
    return container.hardware.hardware


async def get_scans(container: ContainerDep) -> ScanService:
    return container.hardware.scans


async def get_cps(container: ContainerDep) -> CpsService:
    return container.hardware.cps


async def get_apcv(container: ContainerDep) -> ApcvClient:
    return container.national.apcv


async def get_stats(container: ContainerDep) -> StatsService:
    return container.stats.service


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


async def require_counter(request: Request) -> CounterInfo:
    """The calling counter, from ``Authorization: Bearer <token>``; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("en-tête Authorization: Bearer <jeton du poste> attendu")
    tokens: CounterTokens = request.app.state.tokens  # lgo/services/counter_tokens.py
    token = token.strip()
    # From memory when it can answer (no thread hop, no database); otherwise the database, off
    # the event loop.
    counter = tokens.cached(token) or await run_in_threadpool(tokens.authenticate, token)
    if counter is None:
        raise Unauthorized("jeton inconnu ou révoqué")
    request.state.counter = counter
    return counter


CounterDep = Annotated[CounterInfo, Depends(require_counter)]


async def current_session(
    container: ContainerDep, threads: DatabaseThreadsDep
) -> ProfessionalSession | None:
    # In a thread: reading an expired session closes it, and its close listeners block (PKCS#11
    # logout, the stats part's database write).
    return await threads.run(container.sessions.current)


async def require_pharmacist(
    container: ContainerDep, threads: DatabaseThreadsDep
) -> ProfessionalSession:
    """An open CPS/e-CPS session of a pharmacist, for acts reserved to pharmacists; 403 otherwise."""
    session = await threads.run(container.sessions.current)  # in a thread: see current_session
    if session is None:
        raise PharmacistSessionRequired()
    if not session.identity.is_pharmacist:
        raise PharmacistSessionRequired("la session ouverte n'est pas celle d'un pharmacien")
    return session


SessionDep = Annotated[ProfessionalSession | None, Depends(current_session)]
PharmacistDep = Annotated[ProfessionalSession, Depends(require_pharmacist)]
