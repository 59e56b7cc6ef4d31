"""``lgo doctor``: every check a technician needs, each green or red with what to do about it.

Each check is a small function of the settings that returns a ``CheckResult`` and finishes quickly
(every network or device call has its own short timeout). The checks of this installation
(``local``), of the national services (``national``) and of the installed system (``system``) are
listed here, in that order; a module adds its checks to its own ``CHECKS`` with ``@CHECKS.add``.
The doctor only reads: it creates no folder, no database, no file (an absent SQLite database is
reported, never opened). Every red line says what to run or change; what a bench cannot have
(systemd units) is shown as information, not as a failure.
"""

from __future__ import annotations

import concurrent.futures

from lgo.core.settings import Settings
from lgo.doctor import local, national, system
from lgo.doctor.checks import CHECK_TIMEOUT_S, Check, CheckResult

CHECKS: tuple[Check, ...] = (*local.CHECKS, *national.CHECKS, *system.CHECKS)

__all__ = ["CHECKS", "Check", "CheckResult", "run_checks"]


def _label(check: Check) -> str:
    return check.__name__.removeprefix("check_").replace("_", " ")


def run_checks(settings: Settings) -> list[CheckResult]:
    """Run every check in parallel threads, each bounded by a timeout."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [(check, pool.submit(check, settings)) for check in CHECKS]
        results = []
        for check, future in futures:
            try:
                results.append(future.result(timeout=CHECK_TIMEOUT_S * 2))
            except concurrent.futures.TimeoutError:
                results.append(
                    CheckResult(
                        _label(check),
                        False,
                        "délai dépassé : relancez "
                        "`lgo doctor` ; si cela persiste, le service vérifié "
                        "ne répond pas",
                    )
                )
            except Exception as exc:
                results.append(
                    CheckResult(
                        _label(check),
                        False,
                        f"erreur inattendue ({type(exc).__name__}) : signalez-la",
                    )
                )
        return results
