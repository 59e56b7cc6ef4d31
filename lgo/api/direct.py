"""Routes whose hot requests skip FastAPI's per-request machinery (issue 20).

- :class:`CounterRoute` (every router behind the counter token, and the base of the two others):
  on a route without a body whose first dependency is ``require_counter``, the handler checks the
  token itself, then hands the request to FastAPI's handler built for the rest of the dependencies
  (FastAPI would have run the check first: route matching, 404 and 405 come before either way).
  That spares FastAPI's solving of the token (about 95 Python calls a request). It leaves the
  dependant FastAPI documents untouched (``/v1/openapi.json`` unchanged).

Two more, used by the dispensation routes (lgo/api/routers/dispensations.py):

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
  the shortcut is off); ``tests/integration/dispensing/test_direct_routes.py`` compares the
  answers of both ways on the error cases and checks the shortcut is on for the app
  (``tests/integration/foundation/test_counter_routes.py`` for CounterRoute).

Those two routes' requests also skip Starlette's stack: :class:`Lane`, which ``RequestGate``
(lgo/api/security.py) hands them, serves them with the same direct call below the exception
middleware, FastAPI's exit stack, the router and ``request_response`` (docs/api.md). It reads
Starlette's private ``wrap_app_handling_exceptions`` (the function FastAPI's ``request_response``
itself applies), and ``test_direct_routes.py`` compares the daemon's answers with and without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import fastapi.routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter, serialize_response
from pydantic import BaseModel
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lgo.api.deps import require_counter
from lgo.services.counters import CounterInfo

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
DirectCall = Callable[[Request, Any], Awaitable[Any]]
E = TypeVar("E", bound=Callable[..., Any])


class CounterRoute(APIRoute):
    """FastAPI's route, with the counter's token checked before FastAPI's handler (module docstring).

    On when the route as served has no body and ``require_counter`` as its first dependency, taking
    only the request, and nothing below it depends on ``require_counter`` (a ``CounterDep``
    parameter of the endpoint excepted): FastAPI would run it first, before anything a request can
    fail on. The handler then runs it itself, and FastAPI solves the rest, with each ``CounterDep``
    parameter reading the checked counter instead of checking the token again (FastAPI's own
    per-request cache would give it the same value). Otherwise, FastAPI's handler as it is.
    """

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        route = _effective(self)
        rest = None if route is None else _after_the_token(route)
        if rest is None:
            return handler
        dependant = route.dependant
        route.dependant = rest  # FastAPI's handler, built for what is left after the token
        try:
            rest_handler = super().get_route_handler()
        finally:
            route.dependant = dependant

        async def handle(request: Request) -> Response:
            if _fastapi_serves_all(request):
                return await handler(request)
            request.scope[_COUNTER] = await require_counter(request)
            return await rest_handler(request)

        return handle


_COUNTER = "lgo.counter"  # the scope key of the counter CounterRoute checked


async def _checked_counter(request: Request) -> CounterInfo:
    """A ``CounterDep`` parameter under :class:`CounterRoute`: the counter its handler checked."""
    counter: CounterInfo = request.scope[_COUNTER]
    return counter


def _after_the_token(route: Any) -> Dependant | None:
    """The route's dependant without its leading token check, or None if CounterRoute cannot
    prove running that check first changes nothing (class docstring)."""
    dependant = route.dependant
    if route.body_field is not None or not isinstance(dependant, Dependant):
        return None
    if not dependant.dependencies:
        return None
    first, *others = dependant.dependencies
    if first.call is not require_counter or not _takes_only_the_request(first):
        return None
    if first.own_oauth_scopes or first.parent_oauth_scopes:
        return None
    rest: list[Dependant] = []
    for sub in others:
        if sub.call is require_counter and _is_plain_counter(sub):
            rest.append(dataclasses.replace(sub, call=_checked_counter))
        elif require_counter in _calls(sub):
            return None
        else:
            rest.append(sub)
    return dataclasses.replace(dependant, dependencies=rest)


def _is_plain_counter(dependant: Dependant) -> bool:
    """A ``CounterDep``: cached per request (FastAPI reuses the first check's answer)."""
    return (
        dependant.use_cache
        and _takes_only_the_request(dependant)
        and not (dependant.own_oauth_scopes or dependant.parent_oauth_scopes)
    )


def _calls(dependant: Dependant) -> set[Callable[..., Any] | None]:
    calls = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _calls(sub)
    return calls


def _fastapi_serves_all(request: Request) -> bool:
    """Requests FastAPI's own handler serves whole: overridden dependencies, observed requests."""
    return bool(request.app.dependency_overrides) or (
        request.scope.get("fastapi.telemetry") is not None
    )


class JsonBodyRoute(CounterRoute):
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
        route = _effective(self)
        if direct is None or body_model is None or route is None or not _can_serve(route, direct):
            return fastapi_handler
        server = _Server(route, direct, body_model)

        async def handle(request: Request) -> Response:
            request.scope[_SERVER] = server  # what the lane learns from (class Lane)
            if not server.takes(request):
                return await fastapi_handler(request)
            try:
                body = server.validated(await request.body())
            except Exception:  # FastAPI reads it again and answers as it does
                body = None
            response = None if body is None else await server.answer(request, body)
            return response if response is not None else await fastapi_handler(request)

        return handle


class _Server:
    """What :class:`DirectRoute`'s handler and the :class:`Lane` share: which requests the direct
    call takes, and its answer."""

    def __init__(self, route: Any, direct: _Direct, body_model: type[BaseModel]) -> None:
        self.route = route
        self.direct = direct
        self.body_model = body_model

    def takes(self, request: Request) -> bool:
        """Whether the request may be served directly, before its body is read."""
        return request.headers.get("content-type") == "application/json" and not (
            _fastapi_serves_all(request)
        )

    def validated(self, body: bytes) -> BaseModel | None:
        """The body model, or None when FastAPI must read the body and answer (422 or 400)."""
        try:
            return self.body_model.model_validate_json(body)
        except Exception:
            return None

    async def answer(self, request: Request, body: BaseModel) -> Response | None:
        """The endpoint's answer, or None when the direct call declines the request."""
        result = await self.direct.call(request, body)
        if result is None or isinstance(result, Response):
            return result
        return await _answer(self.route, result)


def _effective(route: APIRoute) -> Any:
    """The route as FastAPI serves it: with what the routers it is included through add (their
    dependencies, default response class), as ``APIRoute.get_route_handler`` reads it; None if
    FastAPI no longer says (then the shortcuts are off)."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    if context_var is None:
        return None
    context = context_var.get()
    return context if context is not None and context.original_route is route else route


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


_SERVER = "lgo.direct"  # the scope key where DirectRoute's handler names its _Server
# What the stack below the lane sets afresh for every request, never learned: FastAPI's exit
# stacks (the direct call uses none; a request handed back to the app gets its own) and _SERVER.
_PER_REQUEST = frozenset(
    {"fastapi_middleware_astack", "fastapi_inner_astack", "fastapi_function_astack", _SERVER}
)


@dataclass(frozen=True)
class _Learned:
    server: _Server
    scope: tuple[tuple[str, Any], ...]  # what the stack added to the scope before the handler


class Lane:
    """The ASGI app a request to a directly served POST route takes, below Starlette's stack.

    :class:`~lgo.api.security.RequestGate` hands it the ``POST`` requests whose path is one of
    :func:`lane_paths`, inside their own ``RequestContext``. The first request to a path goes to
    the app (``app``: Starlette's exception middleware, FastAPI's exit stack, the router, the
    route); when the router gave it to a :class:`DirectRoute`, the lane learns from the scope what
    the stack added on the way (``app``'s router, the route, the endpoint, the path parameters,
    FastAPI's scope entries, the exception handlers): lgo's app routes on the method and the path
    alone, so every later ``POST`` to that path would take the same way. The lane then serves
    those with the route's direct call in a scope set as the stack would have set it, its
    exceptions handled as the route's handler and the exception middleware handle them (Starlette's
    ``wrap_app_handling_exceptions``, twice, with the app's handlers): an LgoError, a validation
    error or an ``HTTPException`` gets the app's problem+json answer, anything else goes up to
    ``ServerErrorMiddleware`` as before. Whatever the direct call does not take (see
    :class:`DirectRoute`; a ``root_path``, too) goes to the app untouched, its body replayed when the
    lane read it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.learned: dict[str, _Learned] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        learned = self.learned.get(scope["path"])
        if learned is None or scope.get("root_path"):
            await self._through_the_app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        server = learned.server
        if not server.takes(request):
            await self.app(scope, receive, send)
            return
        try:
            raw = await request.body()
        except Exception:  # the client went away: the app meets it as it would
            await self.app(scope, receive, send)
            return
        body = server.validated(raw)
        if body is None or not await _served(request, receive, send, body, learned):
            await self.app(scope, _replay(raw, receive), send)

    async def _through_the_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        before = set(scope)
        await self.app(scope, receive, send)
        server = scope.get(_SERVER)
        if isinstance(server, _Server) and not scope.get("root_path"):
            skipped = before | _PER_REQUEST
            added = tuple((k, v) for k, v in scope.items() if k not in skipped)
            self.learned[scope["path"]] = _Learned(server, added)


async def _served(
    request: Request,
    receive: Receive,
    send: Send,
    body: BaseModel,
    learned: _Learned,
) -> bool:
    """Serve the request directly in its learned scope; False (the scope as it was, nothing sent)
    when the direct call declines it."""
    scope = request.scope
    server = learned.server
    for key, value in learned.scope:  # dicts (path parameters, FastAPI's entries) are per request
        scope[key] = dict(value) if isinstance(value, dict) else value
    declined = False

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal declined
        response = await server.answer(request, body)
        if response is None:
            declined = True
        else:
            await response(scope, receive, send)

    # The route's handler (FastAPI's request_response), then Starlette's exception middleware.
    handled = wrap_app_handling_exceptions(respond, request)
    await wrap_app_handling_exceptions(handled, Request(scope, receive, send))(scope, receive, send)
    if declined:
        for key, _ in learned.scope:
            del scope[key]
    return not declined


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request's channel with the body the lane read given first, whole."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def lane_paths(routers: Iterable[APIRouter]) -> frozenset[str]:
    """The paths of the ``POST`` routes of ``routers`` served directly (the :class:`Lane`'s)."""
    return frozenset(
        route.path
        for router in routers
        for route in router.routes
        if isinstance(route, DirectRoute)
        and route.endpoint in _DIRECT
        and route.methods == {"POST"}
    )
