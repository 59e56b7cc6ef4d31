"""``GET /v1/health``: ok or degraded, with one entry per component."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from lgo import __version__
from lgo.api.deps import ContainerDep, CounterDep

router = APIRouter(tags=["health"])


class ComponentState(BaseModel):
    ok: bool
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    counter: str
    components: dict[str, ComponentState]


@router.get("/v1/health", response_model=Health, summary="État du service et de ses composants")
def health(container: ContainerDep, counter: CounterDep) -> Health:
    components = {
        name: ComponentState(ok=state.ok, detail=state.detail)
        for name, state in container.health().items()
    }
    status: Literal["ok", "degraded"] = (
        "ok" if all(c.ok for c in components.values()) else "degraded"
    )
    return Health(status=status, version=__version__, counter=counter.name, components=components)
