"""FastAPI dependencies shared by every router (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lgo.bootstrap import Container
from lgo.errors import PharmacistSessionRequired, Unauthorized
from lgo.services.counters import CounterInfo, authenticate
from lgo.sessions import ProfessionalSession
from lgo.settings import Settings
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
