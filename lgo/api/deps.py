"""FastAPI dependencies shared by every router (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

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


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_settings(container: ContainerDep) -> Settings:
    return container.settings


def get_db(container: ContainerDep) -> Database:
    return container.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]


# One alias per service of the composition root (lgo/bootstrap/container.py): a router names what it uses.
def get_dispensing_part(container: ContainerDep) -> DispensingPart:
    return container.dispensing


def get_dispensing(container: ContainerDep) -> DispensingService:
    return container.dispensing.service


def get_dispensation_intake(container: ContainerDep) -> DispensationIntake:
    return container.dispensation_intake


def get_prescriber_check(container: ContainerDep) -> PrescriberChecker:
    return container.psc.prescribers


def get_prescriptions(container: ContainerDep) -> PrescriptionReader:
    return container.prescriptions


def get_psc_login(container: ContainerDep) -> PscLogin:
    return container.psc.login


def get_identity(container: ContainerDep) -> IdentityService:
    return container.identity.service


def get_documents(container: ContainerDep) -> DocumentService:
    return container.documents.service


def get_deliveries(container: ContainerDep) -> DeliveryQueue:
    return container.documents.deliveries


def get_dmp_consultation(container: ContainerDep) -> DmpConsultation:
    return container.documents.consultation


def get_vaccinations(container: ContainerDep) -> VaccinationService:
    return container.missions.vaccinations


def get_trod(container: ContainerDep) -> TrodService:
    return container.missions.trod


def get_sessions(container: ContainerDep) -> SessionRegistry:
    return container.sessions


def get_hardware(container: ContainerDep) -> HardwareService:
    return container.hardware.hardware


def get_scans(container: ContainerDep) -> ScanService:
    return container.hardware.scans


def get_cps(container: ContainerDep) -> CpsService:
    return container.hardware.cps


def get_apcv(container: ContainerDep) -> ApcvClient:
    return container.national.apcv


def get_stats(container: ContainerDep) -> StatsService:
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


def current_session(container: ContainerDep) -> ProfessionalSession | None:
    return container.sessions.current()


def require_pharmacist(container: ContainerDep) -> ProfessionalSession:
    """An open CPS/e-CPS session of a pharmacist, for acts reserved to pharmacists; 403 otherwise."""
    session = container.sessions.current()
    if session is None:
        raise PharmacistSessionRequired()
    if not session.identity.is_pharmacist:
        raise PharmacistSessionRequired("la session ouverte n'est pas celle d'un pharmacien")
    return session


SessionDep = Annotated[ProfessionalSession | None, Depends(current_session)]
PharmacistDep = Annotated[ProfessionalSession, Depends(require_pharmacist)]
