"""Typed errors of the dispensing part (rendered as RFC 9457 problems, French titles)."""

from __future__ import annotations

from lgo.core.errors import BadRequest, Conflict, InvalidInput, NotFound, Unavailable


class DispensingRefused(InvalidInput):
    """The rules refuse the dispensation; ``refusals`` lists each typed reason per line."""

    slug = "dispensing-refused"
    title = "Dispensation refusée par les règles de délivrance"


class IdempotencyKeyMissing(BadRequest):
    slug = "idempotency-key-missing"
    title = "En-tête Idempotency-Key obligatoire pour enregistrer une dispensation"


class IdempotencyKeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Cette clé Idempotency-Key a déjà servi pour une autre dispensation"


class LineAlreadyDispensed(Conflict):
    slug = "line-already-dispensed"
    title = "Ligne déjà traitée par un autre poste : recharger l'ordonnance"


class DispensationNotFound(NotFound):
    slug = "dispensation-not-found"
    title = "Dispensation introuvable"


class PatientNotFound(NotFound):
    slug = "patient-not-found"
    title = "Patient introuvable"


class PrescriptionNotLoaded(NotFound):
    slug = "prescription-not-loaded"
    title = "Ordonnance non chargée : la scanner ou la saisir (papier)"


class EPrescriptionDown(Unavailable):
    slug = "eprescription-unavailable"
    title = (
        "Service de l'ordonnance numérique indisponible : saisir l'ordonnance papier "
        "(mode dégradé, l'exécution sera transmise au retour du service)"
    )


class OutboxMessageNotFound(NotFound):
    slug = "outbox-message-not-found"
    title = "Message d'envoi introuvable"


class OutboxRetryRefused(Conflict):
    slug = "outbox-retry-refused"
    title = "Seul un message en échec peut être relancé"
