"""The one exception tree of the daemon.

Every error a front-end may see is an ``LgoError`` subclass with a stable ``slug``; the API renders it
as RFC 9457 ``application/problem+json`` with ``type = "urn:lgo:problem:<slug>"``. Titles are French:
a pharmacist reads them. Each part of lgo defines its own subclasses in its own module::

    LgoError
    ├── BadRequest (400) ── InvalidInput (422)
    ├── Unauthorized (401)
    ├── Forbidden (403) ── ForbiddenOrigin, PharmacistSessionRequired
    ├── NotFound (404)
    ├── Conflict (409)
    └── Unavailable (503) ── DatabaseNotMigrated
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:lgo:problem:"
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class LgoError(Exception):
    slug: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Erreur interne du service"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        clash = RESERVED_MEMBERS.intersection(extra)
        if clash:
            # An extension member must never change what the problem says it is (RFC 9457 §3.1).
            raise TypeError(f"problem extension members clash with reserved ones: {sorted(clash)}")
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type_uri, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(LgoError):
    slug = "bad-request"
    status = 400
    title = "Requête invalide"


class InvalidInput(BadRequest):
    slug = "invalid-input"
    status = 422
    title = "Données invalides"


class ForbiddenHost(BadRequest):
    slug = "forbidden-host"
    title = "Nom d'hôte refusé : le service ne répond qu'en local"


class Unauthorized(LgoError):
    slug = "unauthorized"
    status = 401
    title = "Poste de comptoir non authentifié (jeton absent, invalide ou révoqué)"


class Forbidden(LgoError):
    slug = "forbidden"
    status = 403
    title = "Action refusée"


class ForbiddenOrigin(Forbidden):
    slug = "forbidden-origin"
    title = "Origine refusée : seule la page du service peut l'appeler"


class PharmacistSessionRequired(Forbidden):
    slug = "pharmacist-session-required"
    title = "Acte réservé au pharmacien : insérez la carte CPS ou connectez-vous avec e-CPS"


class NotFound(LgoError):
    slug = "not-found"
    status = 404
    title = "Ressource introuvable"


class Conflict(LgoError):
    slug = "conflict"
    status = 409
    title = "Conflit avec l'état actuel"


class Unavailable(LgoError):
    slug = "unavailable"
    status = 503
    title = "Service momentanément indisponible"


class DatabaseNotMigrated(Unavailable):
    slug = "database-not-migrated"
    title = "Base de données non à jour : lancer « lgo migrate »"
