"""``lgo doctor``: every check a technician needs, each green or red with a reason.

Checks are small functions registered in ``CHECKS``; each returns a ``CheckResult`` and must finish
quickly (every network or device call has its own short timeout). Parts add their checks with
``register``.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from lgo.settings import Settings
from lgo.store import migrate
from lgo.store.db import Database

CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


Check = Callable[[Settings], CheckResult]
CHECKS: list[Check] = []


def register(check: Check) -> Check:
    CHECKS.append(check)
    return check


@register
def check_database(settings: Settings) -> CheckResult:
    name = "base de données"
    db = Database(settings.database_url, busy_timeout_ms=2000)
    try:
        db.ping()
        migrate.check(db)
    except Exception as exc:
        return CheckResult(name, False, f"{db.dialect}: {exc}")
    finally:
        db.dispose()
    return CheckResult(name, True, f"{db.dialect}, migrations à jour")


@register
def check_pcscd(settings: Settings) -> CheckResult:
    name = "pcscd et lecteurs"
    if not settings.hardware.pcsc_enabled:
        return CheckResult(name, True, "PC/SC désactivé par la configuration")
    from smartcard.scard import (
        SCARD_S_SUCCESS,
        SCARD_SCOPE_USER,
        SCardEstablishContext,
        SCardGetErrorMessage,
        SCardListReaders,
        SCardReleaseContext,
    )

    rc, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if rc != SCARD_S_SUCCESS:
        return CheckResult(name, False, f"pcscd injoignable : {SCardGetErrorMessage(rc)}")
    try:
        rc, readers = SCardListReaders(context, [])
    finally:
        SCardReleaseContext(context)
    if rc != SCARD_S_SUCCESS or not readers:
        return CheckResult(name, False, "pcscd répond mais aucun lecteur n'est branché")
    return CheckResult(name, True, f"{len(readers)} lecteur(s) : " + ", ".join(readers))


@register
def check_pkcs11(settings: Settings) -> CheckResult:
    name = "module PKCS#11 (CPS)"
    module = settings.hardware.pkcs11_module
    if module is None:
        return CheckResult(name, False, "aucun module configuré (hardware.pkcs11_module)")
    if not module.is_file():
        return CheckResult(name, False, f"fichier absent : {module}")
    try:
        ctypes.CDLL(str(module))
    except OSError as exc:
        return CheckResult(name, False, f"chargement impossible : {exc}")
    return CheckResult(name, True, str(module))


@register
def check_national(settings: Settings) -> CheckResult:
    name = "services nationaux"
    url = settings.national.base_url
    try:
        response = httpx.get(url, timeout=httpx.Timeout(CHECK_TIMEOUT_S, connect=2.0))
    except httpx.HTTPError as exc:
        return CheckResult(name, False, f"{url} injoignable ({type(exc).__name__})")
    return CheckResult(name, True, f"{url} répond (HTTP {response.status_code})")


@register
def check_clock(settings: Settings) -> CheckResult:  # noqa: ARG001
    name = "horloge système"
    now = datetime.now(UTC)
    if not 2024 <= now.year <= 2100:
        return CheckResult(name, False, f"date improbable : {now.isoformat()}")
    return CheckResult(name, True, now.astimezone().isoformat(timespec="seconds"))


@register
def check_state_dir(settings: Settings) -> CheckResult:
    name = "dossier d'état"
    path = settings.state_dir
    if not path.exists():
        return CheckResult(name, False, f"{path} n'existe pas (lancer « lgo migrate »)")
    if not os.access(path, os.W_OK):
        return CheckResult(name, False, f"{path} n'est pas accessible en écriture")
    return CheckResult(name, True, str(path))


def run_checks(settings: Settings) -> list[CheckResult]:
    """Run every check in parallel threads, each bounded by a timeout."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [(check, pool.submit(check, settings)) for check in CHECKS]
        results = []
        for check, future in futures:
            try:
                results.append(future.result(timeout=CHECK_TIMEOUT_S * 2))
            except concurrent.futures.TimeoutError:
                results.append(CheckResult(check.__name__, False, "délai dépassé"))
            except Exception as exc:
                results.append(CheckResult(check.__name__, False, f"erreur : {exc}"))
        return results


# deploy (issue 12): checks of the installed system register themselves on import.
from lgo import doctor_system  # noqa: E402, F401
