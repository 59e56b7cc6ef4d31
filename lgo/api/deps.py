"""FastAPI dependencies shared by every router (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import DispensingPart
from lgo.bootstrap.documents import DocumentsPart
from lgo.bootstrap.missions import MissionsPart
from lgo.core.errors import PharmacistSessionRequired, Unauthorized
from lgo.core.settings import Settings
from lgo.national.apcv import ApcvClient
from lgo.services.counters import CounterInfo, authenticate
from lgo.services.cps import CpsService
from lgo.services.dispensing import DispensingService
from lgo.services.hardware import HardwareService
from lgo.services.identity import IdentityService
from lgo.services.prescriber_check import PrescriberChecker
from lgo.services.prescription_reading import PrescriptionReader
from lgo.services.psc_login import PscLogin
from lgo.services.scans import ScanService
from lgo.services.sessions import ProfessionalSession
from lgo.services.stats import StatsService
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


def get_prescriber_check(container: ContainerDep) -> PrescriberChecker:
    return container.psc.prescribers


def get_prescriptions(container: ContainerDep) -> PrescriptionReader:
    return container.prescriptions


def get_psc_login(container: ContainerDep) -> PscLogin:
    return container.psc.login


def get_identity(container: ContainerDep) -> IdentityService:
    return container.identity.service


def get_documents(container: ContainerDep) -> DocumentsPart:
    return container.documents


def get_missions(container: ContainerDep) -> MissionsPart:
    return container.missions


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
PrescriberCheckDep = Annotated[PrescriberChecker, Depends(get_prescriber_check)]
PrescriptionsDep = Annotated[PrescriptionReader, Depends(get_prescriptions)]
PscLoginDep = Annotated[PscLogin, Depends(get_psc_login)]
IdentityDep = Annotated[IdentityService, Depends(get_identity)]
DocumentsDep = Annotated[DocumentsPart, Depends(get_documents)]
MissionsDep = Annotated[MissionsPart, Depends(get_missions)]
HardwareDep = Annotated[HardwareService, Depends(get_hardware)]
ScansDep = Annotated[ScanService, Depends(get_scans)]
CpsDep = Annotated[CpsService, Depends(get_cps)]
ApcvDep = Annotated[ApcvClient, Depends(get_apcv)]
StatsDep = Annotated[StatsService, Depends(get_stats)]


def require_counter(request: Request, container: ContainerDep) -> CounterInfo:
    """The calling counter, from ``Authorization: Bearer <token>``; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("en-tête Authorization: Bearer <jeton du poste> attendu")
    counter = authenticate(container.db, token.strip())
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
