"""Typed errors of the national-service clients (e-prescription, apCV, and the others' clients).

Every error a counter may show is an :class:`lgo.core.errors.LgoError` with a stable slug and a French
title. The tree::

    NationalServiceError (502)
    ├── ServiceUnavailable (503)      network refused, 5xx, outage window
    │   └── ServiceTimeout (504)      no answer within the configured timeout
    ├── MalformedResponse (502)       the body is not what the contract says
    ├── RequestRejected (502)         a 4xx we did not expect: our request is wrong
    ├── IdempotencyConflict (409)     same Idempotency-Key, different body
    ├── PrescriptionUnknown (404)
    ├── PrescriptionAlreadyDispensed (409)
    ├── PrescriptionExpired (409)
    ├── PrescriptionCancelled (409)
    ├── PatientMismatch (409)         the INS sent is not the prescription's patient
    └── ApcvTokenRefused (422)
        ├── ApcvTokenUnknown, ApcvTokenUsed, ApcvTokenExpired

Details never carry health data, tokens or identities: only ids and statuses.
"""

from __future__ import annotations

from lgo.core.errors import LgoError


class NationalServiceError(LgoError):
    slug = "national-service-error"
    status = 502
    title = "Erreur du service national"


class ServiceUnavailable(NationalServiceError):
    slug = "national-service-unavailable"
    status = 503
    title = "Service national indisponible : réessayer plus tard ou passer en mode dégradé"


class ServiceTimeout(ServiceUnavailable):
    slug = "national-service-timeout"
    status = 504
    title = "Le service national n'a pas répondu à temps"


class MalformedResponse(NationalServiceError):
    slug = "national-service-malformed-response"
    status = 502
    title = "Réponse illisible du service national"


class RequestRejected(NationalServiceError):
    slug = "national-service-request-rejected"
    status = 502
    title = "Le service national a refusé la demande"


class IdempotencyConflict(NationalServiceError):
    slug = "national-idempotency-conflict"
    status = 409
    title = "Cette clé d'envoi a déjà servi pour une autre exécution"


class PrescriptionUnknown(NationalServiceError):
    slug = "prescription-unknown"
    status = 404
    title = "Ordonnance numérique inconnue : vérifier le numéro ou délivrer sur papier"


class PrescriptionAlreadyDispensed(NationalServiceError):
    slug = "prescription-already-dispensed"
    status = 409
    title = "Ordonnance numérique déjà entièrement délivrée"


class PrescriptionExpired(NationalServiceError):
    slug = "prescription-expired"
    status = 409
    title = "Ordonnance numérique expirée"


class PrescriptionCancelled(NationalServiceError):
    slug = "prescription-cancelled"
    status = 409
    title = "Ordonnance numérique annulée par le prescripteur"


class PatientMismatch(NationalServiceError):
    slug = "prescription-patient-mismatch"
    status = 409
    title = "Le patient ne correspond pas à celui de l'ordonnance numérique"


class ApcvTokenRefused(NationalServiceError):
    slug = "apcv-token-refused"
    status = 422
    title = "Code de l'appli carte Vitale refusé : demander au patient d'en afficher un nouveau"


class ApcvTokenUnknown(ApcvTokenRefused):
    slug = "apcv-token-unknown"
    title = "Code de l'appli carte Vitale inconnu : demander au patient d'en afficher un nouveau"


class ApcvTokenUsed(ApcvTokenRefused):
    slug = "apcv-token-used"
    title = "Code de l'appli carte Vitale déjà utilisé : demander au patient d'en afficher un autre"


class ApcvTokenExpired(ApcvTokenRefused):
    slug = "apcv-token-expired"
    title = "Code de l'appli carte Vitale expiré : demander au patient d'en afficher un nouveau"
