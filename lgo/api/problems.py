"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lgo.core.errors import PROBLEM_TYPE_PREFIX, InvalidInput, LgoError
from lgo.core.logs import get_logger
from lgo.core.validation_fr import french_message

log = get_logger(__name__)
PROBLEM_JSON = "application/problem+json"

_HTTP_SLUGS = {
    400: ("bad-request", "Requête invalide"),
    401: ("unauthorized", "Poste de comptoir non authentifié"),
    403: ("forbidden", "Action refusée"),
    404: ("not-found", "Ressource introuvable"),
    405: ("method-not-allowed", "Méthode non permise"),
    406: ("not-acceptable", "Format de réponse non disponible"),
    409: ("conflict", "Conflit avec l'état actuel"),
    413: ("payload-too-large", "Requête trop volumineuse"),
    415: ("unsupported-media-type", "Type de contenu non pris en charge (JSON attendu)"),
    422: ("invalid-input", "Données invalides"),
    429: ("too-many-requests", "Trop de requêtes"),
}


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=int(body["status"]), media_type=PROBLEM_JSON, headers=headers
    )


def problem_for_error(error: LgoError, instance: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return problem_response(error.problem(instance), headers)


async def _lgo_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LgoError)
    if exc.status >= 500:
        log.warning("request_failed", problem=exc.slug, status=exc.status)
    return problem_for_error(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": french_message(e),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    error = InvalidInput("la requête ne respecte pas le schéma", errors=errors)
    return problem_for_error(error, request.url.path)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "Erreur HTTP"))
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": exc.status_code,
        "instance": request.url.path,
    }
    if isinstance(exc.detail, str) and exc.detail and exc.detail != title:
        body["detail"] = exc.detail
    return problem_response(body, dict(exc.headers) if exc.headers else None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The exception text may hold data; log the type and the trace, return a generic problem.
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_for_error(LgoError(), request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LgoError, _lgo_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
