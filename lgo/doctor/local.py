"""``lgo doctor``: the checks of this installation itself (mode, database, readers, PKCS#11, clock,
state folder, CI-SIS kit).

Checks are small functions registered in ``CHECKS``; each returns a ``CheckResult`` and must finish
quickly (every network or device call has its own short timeout). Parts add their checks with
``register``. The doctor only reads: it creates no folder, no database, no file (an absent SQLite
database is reported, never opened). Every red line says what to run or change; what a bench
cannot have (systemd units) is shown as information, not as a failure.
"""

from __future__ import annotations

import ctypes
import os
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

from lgo.core.errors import DatabaseNotMigrated
from lgo.core.settings import Settings
from lgo.doctor.checks import CheckList, CheckResult
from lgo.store import migrate
from lgo.store.db import Database

CHECKS = CheckList()


@CHECKS.add
def check_mode(settings: Settings) -> CheckResult:
    from lgo.core.production import production_problems

    name = "mode"
    if settings.mode == "bench":
        return CheckResult(name, True, "banc de test (simulateur hw-sim) : jamais au comptoir")
    problems = production_problems(settings)
    if problems:
        return CheckResult(
            name,
            False,
            "production, mais lgo serve refusera ces réglages du banc de test : "
            + " ; ".join(problems)
            + " (corrigez lgo.toml)",
        )
    return CheckResult(name, True, "production")


def _sqlite_file(settings: Settings) -> str | None:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


@CHECKS.add
def check_database(settings: Settings) -> CheckResult:
    name = "base de données"
    sqlite_file = _sqlite_file(settings)
    if sqlite_file is not None and not os.path.exists(sqlite_file):
        # Opening it would create it: report it instead.
        return CheckResult(name, False, f"{sqlite_file} absente : lancez `lgo migrate`")
    db = Database(settings.database_url, busy_timeout_ms=2000)
    try:
        db.ping()
        migrate.check(db)
    except DatabaseNotMigrated as exc:
        if (exc.detail or "").endswith(": -"):  # nothing missing: the schema is newer than lgo
            return CheckResult(
                name,
                False,
                "la base est plus récente que ce lgo : installez la version des autres postes",
            )
        return CheckResult(name, False, f"{exc.detail} : lancez `lgo migrate`")
    except Exception:
        return CheckResult(
            name,
            False,
            f"{db.dialect} injoignable (connexion impossible) : vérifiez "
            "database.url et que le serveur de base de données tourne",
        )
    finally:
        db.dispose()
    return CheckResult(name, True, f"{db.dialect}, migrations à jour")


@CHECKS.add
def check_pcscd(settings: Settings) -> CheckResult:
    name = "pcscd et lecteurs"
    if not settings.hardware.pcsc_enabled:
        return CheckResult(name, True, "PC/SC désactivé par la configuration")
    from smartcard.scard import (
        SCARD_S_SUCCESS,
        SCARD_SCOPE_USER,
        SCardEstablishContext,
        SCardListReaders,
        SCardReleaseContext,
    )

    rc, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if rc != SCARD_S_SUCCESS:
        return CheckResult(
            name,
            False,
            f"pcscd injoignable (code {rc:#x}) : lancez `systemctl start pcscd.socket` "
            "(sur un banc : `hwsim up`)",
        )
    try:
        rc, readers = SCardListReaders(context, [])
    finally:
        SCardReleaseContext(context)
    if rc != SCARD_S_SUCCESS or not readers:
        return CheckResult(
            name,
            False,
            "pcscd répond mais aucun lecteur n'est branché : branchez les lecteurs "
            "(sur un banc : `hwsim status`)",
        )
    return CheckResult(name, True, f"{len(readers)} lecteur(s) : " + ", ".join(readers))


@CHECKS.add
def check_pkcs11(settings: Settings) -> CheckResult:
    name = "module PKCS#11 (CPS)"
    module = settings.hardware.pkcs11_module
    if module is None:
        return CheckResult(
            name,
            False,
            "aucun module : mettez hardware.pkcs11_module (module Cryptolib CPS) dans lgo.toml",
        )
    if not module.is_file():
        return CheckResult(
            name,
            False,
            f"{module} absent : installez le middleware Cryptolib CPS ou corrigez "
            "hardware.pkcs11_module",
        )
    try:
        ctypes.CDLL(str(module))
    except OSError:
        return CheckResult(
            name, False, f"{module} ne se charge pas : réinstallez le middleware Cryptolib CPS"
        )
    return CheckResult(name, True, str(module))


@CHECKS.add
def check_clock(settings: Settings) -> CheckResult:  # noqa: ARG001
    name = "horloge système"
    now = datetime.now(UTC)
    if not 2024 <= now.year <= 2100:
        return CheckResult(
            name,
            False,
            f"date improbable ({now.isoformat()}) : réglez l'horloge (`timedatectl set-ntp true`)",
        )
    return CheckResult(name, True, now.astimezone().isoformat(timespec="seconds"))


@CHECKS.add
def check_state_dir(settings: Settings) -> CheckResult:
    name = "dossier d'état"
    path = settings.state_dir
    if not path.exists():
        return CheckResult(name, False, f"{path} n'existe pas : lancez `lgo migrate`")
    if not os.access(path, os.W_OK):
        return CheckResult(
            name,
            False,
            f"{path} n'est pas accessible en écriture : `chown lgo:lgo {path}` ou "
            "lancez lgo en tant qu'utilisateur du service (`sudo lgo …`)",
        )
    return CheckResult(name, True, str(path))


@CHECKS.add
def check_cisis_kit(settings: Settings) -> CheckResult:
    from lgo.documents.conformance import kit_problem

    name = "kit CI-SIS (documents DMP)"
    kit_dir = settings.documents.cisis_kit_dir
    if kit_dir is None:
        return CheckResult(
            name,
            True,
            "non configuré : documents vérifiés par le schéma de lgo seulement "
            "(réglez documents.cisis_kit_dir pour les schématrons des volets)",
            info=True,
        )
    problem = kit_problem(kit_dir)
    if problem:
        return CheckResult(
            name,
            False,
            f"{problem} : aucun document n'est envoyé tant que "
            "documents.cisis_kit_dir est invalide (corrigez lgo.toml)",
        )
    return CheckResult(name, True, f"{kit_dir} : schéma normatif et schématrons des volets")
