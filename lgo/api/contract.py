"""The typed contract of ``/v1/openapi.json``: one ``Problem`` schema, the problems of each route.

Front-end developers generate their clients from the schema (docs/api.md), so every error an
operation can answer is documented there: a router lists the ``LgoError`` classes its services
raise with ``answers(Model, NotFound, ...)`` or ``responses=problem_responses(NotFound, ...)``;
``install_contract`` adds, to every operation, what the layers in front of the routes answer
(Host/Origin guard, bearer token, pharmacist session, request validation, body size cap) and puts
``Problem`` in the components.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from lgo.api.deps import require_counter, require_pharmacist
from lgo.api.limits import PayloadTooLarge
from lgo.api.problems import PROBLEM_JSON
from lgo.core.errors import (
    PROBLEM_TYPE_PREFIX,
    ForbiddenHost,
    ForbiddenOrigin,
    InvalidInput,
    LgoError,
    PharmacistSessionRequired,
    Unauthorized,
)
from lgo.national.errors import (
    MalformedResponse,
    RequestRejected,
    ServiceTimeout,
    ServiceUnavailable,
)

PROBLEM_REF = "#/components/schemas/Problem"
# What any call to a national service may end in (lgo/national/errors.py).
NATIONAL_ERRORS: tuple[type[LgoError], ...] = (
    MalformedResponse,
    RequestRejected,
    ServiceUnavailable,
    ServiceTimeout,
)
Responses = dict[int | str, dict[str, Any]]


class ValidationIssue(BaseModel):
    """One field refused by request validation (member ``errors`` of ``invalid-input``)."""

    model_config = ConfigDict(title="ValidationIssue")

    loc: list[str] = Field(description="Chemin du champ refusé (« body », « query », nom…).")
    msg: str = Field(description="Message en français.")
    type: str | None = Field(None, description="Code pydantic de l'erreur.")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``), lgo's extension members included.

    ``type`` is stable (``urn:lgo:problem:<code>``): a client switches on it, never on ``title``.
    Members other than the five of the RFC depend on the type; unknown members must be ignored.
    """

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str = Field(description="Type stable du problème : urn:lgo:problem:<code>.")
    title: str = Field(description="Résumé en français, le même pour chaque occurrence du type.")
    status: int = Field(description="Code HTTP de la réponse.")
    detail: str | None = Field(None, description="Explication propre à cette occurrence.")
    instance: str | None = Field(None, description="Chemin de la requête refusée.")
    errors: list[ValidationIssue] | None = Field(
        None, description="invalid-input : les champs refusés."
    )
    refusals: list[Any] | None = Field(
        None, description="Refus de règles métier (dispensation, vaccination, protocole TROD)."
    )
    missing: list[Any] | None = Field(None, description="Mentions légales manquantes.")
    tries_left: int | None = Field(None, description="Essais de code PIN restants.")
    reason: str | None = Field(None, description="Raison technique (certificat, révocation, INSi).")
    prescriber_status: str | None = Field(None, description="Statut du prescripteur à acquitter.")
    identity_status: str | None = Field(None, description="Statut de l'identité INS du patient.")
    identity_problem: str | None = Field(
        None, description="Pourquoi l'identité n'est pas qualifiée."
    )
    prescription_patient: Any = Field(None, description="Patient de l'ordonnance (discordance).")
    selected_patient: Any = Field(None, description="Patient choisi au comptoir (discordance).")
    differing: list[Any] | None = Field(None, description="Traits d'identité qui diffèrent.")
    readers: list[Any] | None = Field(None, description="Lecteurs de carte en concurrence.")
    expiry: str | None = Field(None, description="Date de péremption du vaccin.")
    violations: list[Any] | None = Field(None, description="Violations du schéma CDA.")
    failed_rules: list[Any] | None = Field(None, description="Règles de conformité en échec.")
    failed_count: int | None = Field(None, description="Nombre de règles en échec.")
    volet: str | None = Field(None, description="Volet CI-SIS contrôlé.")


def problem_responses(*errors: type[LgoError]) -> Responses:
    """``responses=`` for the problems of ``errors``, grouped by status, one example per type."""
    responses: Responses = {}
    for error in errors:
        entry = responses.setdefault(
            error.status,
            {"description": "", "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}},
        )
        examples = entry["content"][PROBLEM_JSON].setdefault("examples", {})
        if error.slug in examples:
            continue
        examples[error.slug] = {
            "summary": error.title,
            "value": {
                "type": PROBLEM_TYPE_PREFIX + error.slug,
                "title": error.title,
                "status": error.status,
            },
        }
        line = f"`{PROBLEM_TYPE_PREFIX + error.slug}` : {error.title}"
        entry["description"] = f"{entry['description']}\n\n{line}".strip()
    return responses


def _merge(into: Responses, extra: Responses) -> None:
    for status, entry in extra.items():
        current = into.get(status)
        content = current.get("content", {}).get(PROBLEM_JSON) if current else None
        if current is None or content is None:
            into[status] = entry
            continue
        examples = content.setdefault("examples", {})
        for slug, example in entry["content"][PROBLEM_JSON]["examples"].items():
            if slug not in examples:
                examples[slug] = example
                current["description"] = f"{current['description']}\n\n" + (
                    f"`{example['value']['type']}` : {example['summary']}"
                )


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def layer_errors(route: APIRoute) -> list[type[LgoError]]:
    """What answers before (or around) the route's own code: guard, token, session, validation."""
    errors: list[type[LgoError]] = [ForbiddenHost, ForbiddenOrigin]
    calls = set(_calls(route.dependant))
    if require_counter in calls:
        errors.append(Unauthorized)
    if require_pharmacist in calls:
        errors.append(PharmacistSessionRequired)
    if route.dependant.body_params:
        errors.append(PayloadTooLarge)
    if route.dependant.body_params or _has_parameters(route.dependant):
        errors.append(InvalidInput)
    return errors


def _has_parameters(dependant: Dependant) -> bool:
    own = dependant.path_params or dependant.query_params or dependant.header_params
    return bool(own) or any(_has_parameters(sub) for sub in dependant.dependencies)


def install_contract(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Document the problems of every operation and serve ``Problem`` in the components."""
    layers = {
        (route.path, method.lower()): layer_errors(route)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(build(), layers)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(
    schema: dict[str, Any], layers: dict[tuple[str, str], list[type[LgoError]]]
) -> dict[str, Any]:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if default_422 is not None:  # FastAPI's own schema, not what lgo answers
                del responses["422"]
            errors = layers.get((path, method), [ForbiddenHost, ForbiddenOrigin])
            _merge(responses, {str(k): v for k, v in problem_responses(*errors).items()})
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    return schema


def answers(model: Any, *errors: type[LgoError]) -> dict[str, Any]:
    """Decorator arguments of an operation: its typed answer and the problems its services raise.

    ``response_model_exclude_unset``: a key a service leaves out stays out (the model documents the
    answer, it does not add members to it).
    """
    return {
        "response_model": model,
        "response_model_exclude_unset": True,
        "responses": problem_responses(*errors),
    }
