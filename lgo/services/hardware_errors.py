"""Errors of the hardware part as the counter sees them (French titles), and the translation of
``drivers.errors`` into them. Details never carry a PIN, a NIR or a name."""

from __future__ import annotations

from drivers import errors as drv
from lgo.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    LgoError,
    NotFound,
    Unavailable,
)


class CardUnsupported(BadRequest):
    slug = "card-unsupported"
    status = 422
    title = "Carte non prise en charge (carte Vitale 1 ou carte inconnue)"


class CardReadFailed(Unavailable):
    slug = "card-read-failed"
    title = "Lecture de la carte impossible : vérifiez qu'elle est bien insérée et recommencez"


class CardRemovedDuringRead(Conflict):
    slug = "card-removed"
    title = "La carte a été retirée pendant la lecture : réinsérez-la"


class HardwareUnavailable(Unavailable):
    slug = "hardware-unavailable"
    title = "Lecteurs de cartes indisponibles (service PC/SC arrêté ou redémarrage en cours)"


class HardwareTimeout(Unavailable):
    slug = "hardware-timeout"
    title = "Le lecteur ou la carte ne répond pas"


class ReaderNotFound(NotFound):
    slug = "reader-not-found"
    title = "Lecteur ou lecture de carte introuvable"


class CpsCardMissing(NotFound):
    slug = "cps-card-missing"
    title = "Aucune carte CPS n'est insérée"


class CpsReaderAmbiguous(InvalidInput):
    slug = "cps-reader-ambiguous"
    title = "Plusieurs cartes CPS sont insérées : précisez le lecteur"


class CpsMiddlewareUnavailable(Unavailable):
    slug = "cps-middleware-unavailable"
    title = "Module PKCS#11 de la carte CPS non configuré ou introuvable"


class CpsPinFormat(InvalidInput):
    slug = "cps-pin-format"
    title = "Le code porteur doit comporter 4 à 8 chiffres"


class CpsPinIncorrect(Forbidden):
    slug = "cps-pin-incorrect"
    title = "Code porteur incorrect"


class CpsPinFinalTry(Conflict):
    slug = "cps-pin-final-try"
    title = "Dernier essai avant blocage de la carte CPS : confirmez pour tenter le code porteur"


class CpsPinLocked(Forbidden):
    slug = "cps-pin-locked"
    title = (
        "Carte CPS bloquée (code porteur faux trois fois) : débloquez-la avec son code de "
        "déblocage (reçu avec la carte) dans l'outil de gestion de la carte CPS, ou demandez "
        "une nouvelle carte à l'ANS. En attendant, connectez-vous avec e-CPS"
    )


class CpsLoginFailed(Unavailable):
    slug = "cps-login-failed"
    title = "Connexion avec la carte CPS impossible"


class CpsSessionClosed(Conflict):
    slug = "cps-session-closed"
    title = "La session CPS est fermée (carte retirée ?)"


def translate(error: drv.DriverError) -> LgoError:
    """The counter-facing error for a driver error (its code goes in ``driver_code``)."""
    code = {"driver_code": error.code}
    if isinstance(error, drv.PinIncorrect):
        tries = error.tries_left
        detail = f"{tries} essai(s) restant(s)" if tries is not None else None
        return CpsPinIncorrect(detail, tries_left=tries, **code)
    mapping: list[tuple[type[drv.DriverError], type[LgoError]]] = [
        (drv.PinFinalTry, CpsPinFinalTry),
        (drv.PinLocked, CpsPinLocked),
        (drv.PinFormatError, CpsPinFormat),
        (drv.TokenNotFound, CpsCardMissing),
        (drv.TokenRemoved, CpsSessionClosed),
        (drv.NotLoggedIn, CpsSessionClosed),
        (drv.Pkcs11ModuleError, CpsMiddlewareUnavailable),
        (drv.CpsError, CpsLoginFailed),
        (drv.UnsupportedCard, CardUnsupported),
        (drv.CardRemoved, CardRemovedDuringRead),
        (drv.NoCard, CardRemovedDuringRead),
        (drv.CardReset, CardRemovedDuringRead),
        (drv.ServiceUnavailable, HardwareUnavailable),
        (drv.ReaderUnavailable, ReaderNotFound),
        (drv.DeadlineExceeded, HardwareTimeout),
        (drv.PcscTimeout, HardwareTimeout),
    ]
    for driver_type, lgo_type in mapping:
        if isinstance(error, driver_type):
            return lgo_type(**code)
    return CardReadFailed(**code)
