"""Routes whose hot requests skip FastAPI's per-request machinery (issue 20).

Two route classes, used by the dispensation routes (lgo/api/routers/dispensations.py):

- :class:`JsonBodyRoute` validates a JSON body model straight from the raw bytes (pydantic's
  ``model_validate_json``: less than half the CPU of FastAPI's ``json.loads`` then
  ``validate_python``). The validated model stands as the request's parsed JSON (Starlette's private
  ``Request._json``, which ``Request.json()`` returns) and FastAPI takes an instance of the model as
  it is. A body that fails goes through FastAPI's own parsing, so its 422 (lgo/api/problems.py) is
  FastAPI's.
- :class:`DirectRoute` serves a request that FastAPI would accept with a hand-written call instead
  of ``solve_dependencies`` and ``run_endpoint_function`` (about a sixth of the daemon's Python per
  dispensation). The endpoint keeps its FastAPI declaration (so ``/v1/openapi.json`` is unchanged)
  and names its direct call with :func:`served_directly`. The direct call runs the same dependencies
  in the same order, then the endpoint; an error they raise goes to the app's exception handlers as
  before (the route handler runs inside Starlette's exception middleware). Everything the direct
  call does not take is handed to FastAPI's own handler, which then answers as it always did:

  * a body that is not ``Content-Type: application/json`` or fails ``model_validate_json``;
  * a request the direct call declines (it returns ``None`` before any dependency ran: e.g. an
    ``Idempotency-Key`` header FastAPI would refuse with a 422 after the dependencies);
  * any request while ``app.dependency_overrides`` is set or FastAPI's telemetry observes it.

  The direct call is used only when the route's effective dependencies (with those of the routers
  it is included through) are exactly the ones it declares it solves: a dependency added to the
  endpoint or to an ``include_router`` turns the shortcut off rather than skip it. Reading the
  effective dependencies uses FastAPI's private ``_effective_route_context_var`` (if it is gone,
  the shortcut is off); ``tests/integration/api/test_direct_routes.py`` compares the answers of both
  ways on the error cases and checks the shortcut is on for the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import fastapi.routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, serialize_response
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
DirectCall = Callable[[Request, Any], Awaitable[Any]]
E = TypeVar("E", bound=Callable[..., Any])


class JsonBodyRoute(APIRoute):
    """FastAPI's route, with its JSON body model validated from the raw bytes (module docstring)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        body_model = self._body_model()
        if body_model is None:
            return handler

        async def handle(request: Request) -> Response:
            # A body that fails (or cannot be read) is read and refused by FastAPI, as before.
            with contextlib.suppress(Exception):
                request._json = body_model.model_validate_json(await request.body())
            return await handler(request)

        return handle

    def _body_model(self) -> type[BaseModel] | None:
        model = self.body_field.field_info.annotation if self.body_field else None
        return model if isinstance(model, type) and issubclass(model, BaseModel) else None


@dataclass(frozen=True)
class _Direct:
    call: DirectCall
    solves: tuple[Callable[..., Any], ...]
    headers: tuple[str, ...]


_DIRECT: dict[Callable[..., Any], _Direct] = {}


def served_directly(
    call: DirectCall, *, solves: tuple[Callable[..., Any], ...], headers: tuple[str, ...] = ()
) -> Callable[[E], E]:
    """Serve the decorated endpoint (under ``@router.post(...)``) by ``call(request, body)``.

    ``solves``: the dependency callables FastAPI solves for the endpoint, in its order (the router's
    first), each taking only the request; ``headers``: the aliases of its header parameters. ``call``
    must run those dependencies in that order and return the endpoint's result, or return ``None``
    before running any of them to hand the request to FastAPI.
    """

    def register(endpoint: E) -> E:
        _DIRECT[endpoint] = _Direct(call, solves, headers)
        return endpoint

    return register


class DirectRoute(JsonBodyRoute):
    """A route whose accepted requests are served by its :func:`served_directly` call."""

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()
        direct = _DIRECT.get(self.endpoint)
        body_model = self._body_model()
        route = self._effective()
        if direct is None or body_model is None or route is None or not _can_serve(route, direct):
            return fastapi_handler

        async def handle(request: Request) -> Response:
            if (
                request.headers.get("content-type") != "application/json"
                or request.app.dependency_overrides
                or request.scope.get("fastapi.telemetry") is not None
            ):
                return await fastapi_handler(request)
            try:
                body = body_model.model_validate_json(await request.body())
            except Exception:  # FastAPI reads it again and answers as it does (422 or 400)
                return await fastapi_handler(request)
            result = await direct.call(request, body)
            if result is None:
                return await fastapi_handler(request)
            return result if isinstance(result, Response) else await _answer(route, result)

        return handle

    def _effective(self) -> Any:
        """The route as FastAPI serves it: with what the routers it is included through add
        (their dependencies, default response class), as ``APIRoute.get_route_handler`` reads it;
        None if FastAPI no longer says (then the shortcut is off)."""
        context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
        if context_var is None:
            return None
        context = context_var.get()
        return context if context is not None and context.original_route is self else self


def _can_serve(route: Any, direct: _Direct) -> bool:
    """Whether FastAPI would solve exactly what the direct call solves (module docstring), and
    answer with its default response class and a response model."""
    dependant = route.dependant
    return (
        isinstance(route.response_class, DefaultPlaceholder)
        and route.response_field is not None
        and isinstance(dependant, Dependant)
        and tuple(d.call for d in dependant.dependencies) == direct.solves
        and all(_takes_only_the_request(d) for d in dependant.dependencies)
        and tuple(p.alias for p in dependant.header_params) == direct.headers
        and not (dependant.query_params or dependant.path_params or dependant.cookie_params)
        and len(dependant.body_params) == 1
        and dependant.background_tasks_param_name is None
        and dependant.response_param_name is None
        and dependant.security_scopes_param_name is None
    )


async def _answer(route: Any, result: Any) -> Response:
    """A result that is not a Response, serialized as FastAPI does with the default response class
    and a response model (``get_request_handler``: ``dump_json``)."""
    content = await serialize_response(
        field=route.response_field,
        response_content=result,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        is_coroutine=True,
        dump_json=True,
    )
    return Response(content, status_code=route.status_code or 200, media_type="application/json")


def _takes_only_the_request(dependant: Dependant) -> bool:
    return not (
        dependant.dependencies
        or dependant.header_params
        or dependant.query_params
        or dependant.path_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.background_tasks_param_name
        or dependant.response_param_name
        or dependant.security_scopes_param_name
    )
