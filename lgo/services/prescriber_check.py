"""Is the prescriber of a prescription a real, practising professional? (Annuaire Santé)

The check never blocks dispensing by itself: an unknown, inactive or unverifiable prescriber gives
a warning that the pharmacist must acknowledge before the dispensation is recorded
(:func:`require_acknowledgement`). An RPPS with a wrong key is caught locally, without a call.

The dispensing service calls :meth:`PrescriberChecker.check` when a prescription is opened and
:func:`require_acknowledgement` when it is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Protocol

from lgo.core.errors import Conflict
from lgo.core.logs import get_logger
from lgo.domain.professionals import is_valid_rpps
from lgo.national.annuaire import PractitionerDirectory, PractitionerRecord
from lgo.national.errors import NationalServiceError

log = get_logger(__name__)


class PrescriberStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"  # listed, but not (or no longer) practising
    UNKNOWN = "unknown"  # valid RPPS, absent from the directory
    INVALID_NUMBER = "invalid_number"  # not 11 digits with a good Luhn key
    UNVERIFIED = "unverified"  # the directory could not be reached


WARNINGS_FR: dict[PrescriberStatus, str] = {
    PrescriberStatus.INACTIVE: (
        "Prescripteur sans activité en cours dans l'Annuaire Santé : vérifier l'ordonnance "
        "avant de délivrer."
    ),
    PrescriberStatus.UNKNOWN: (
        "Prescripteur introuvable dans l'Annuaire Santé : vérifier l'identité du prescripteur."
    ),
    PrescriberStatus.INVALID_NUMBER: (
        "Numéro RPPS du prescripteur invalide (clé de contrôle fausse) : vérifier l'ordonnance."
    ),
    PrescriberStatus.UNVERIFIED: (
        "Annuaire Santé injoignable : le prescripteur n'a pas pu être vérifié."
    ),
}


@dataclass(frozen=True)
class RoleSummary:
    profession_code: str | None
    specialty_code: str | None
    current: bool
    organization_name: str | None
    organization_finess: str | None


@dataclass(frozen=True)
class PractitionerSummary:
    """The Annuaire's record as the counter shows it (a prescriber's professional identity is not
    health data)."""

    national_id: str
    prefix: str | None
    family_name: str
    given_name: str
    active: bool
    profession_codes: list[str]
    roles: list[RoleSummary]


@dataclass(frozen=True)
class PrescriberCheckView:
    rpps: str
    status: str
    checked_on: str
    requires_acknowledgement: bool
    warning: str | None
    practitioner: PractitionerSummary | None


@dataclass(frozen=True)
class PrescriberCheck:
    rpps: str
    status: PrescriberStatus
    checked_on: date
    practitioner: PractitionerRecord | None = None

    @property
    def requires_acknowledgement(self) -> bool:
        return self.status is not PrescriberStatus.ACTIVE

    @property
    def warning(self) -> str | None:
        return WARNINGS_FR.get(self.status)

    def view(self) -> PrescriberCheckView:
        """What the counter shows."""
        return PrescriberCheckView(
            rpps=self.rpps,
            status=self.status.value,
            checked_on=self.checked_on.isoformat(),
            requires_acknowledgement=self.requires_acknowledgement,
            warning=self.warning,
            practitioner=_summary(self.practitioner, self.checked_on),
        )

    def public(self) -> dict[str, Any]:
        """:meth:`view` as JSON data."""
        return asdict(self.view())


def _summary(p: PractitionerRecord | None, today: date) -> PractitionerSummary | None:
    if p is None:
        return None
    roles = [
        RoleSummary(
            r.profession_code,
            r.specialty_code,
            r.current(today),
            r.organization_name,
            r.organization_finess,
        )
        for r in p.roles
    ]
    return PractitionerSummary(
        p.national_id,
        p.prefix,
        p.family_name,
        p.given_name,
        p.active,
        list(p.profession_codes),
        roles,
    )


class PrescriberCheckPort(Protocol):
    """What a use case needs of the Annuaire check (:class:`PrescriberChecker`, or a fake)."""

    def check(self, rpps: str, *, author_rpps: str | None = None) -> PrescriberCheck: ...


class PrescriberNotAcknowledged(Conflict):
    slug = "prescriber-warning-not-acknowledged"
    status = 409
    title = "Avertissement sur le prescripteur à confirmer par le pharmacien avant de délivrer"


class PrescriberChecker:
    def __init__(
        self, directory: PractitionerDirectory, today: Callable[[], date] = date.today
    ) -> None:
        self._directory = directory
        self._today = today

    def check(self, rpps: str, *, author_rpps: str | None = None) -> PrescriberCheck:
        today = self._today()
        rpps = rpps.strip()
        if not is_valid_rpps(rpps):
            return PrescriberCheck(rpps, PrescriberStatus.INVALID_NUMBER, today)
        try:
            record = self._directory.practitioner(rpps, author_rpps=author_rpps)
        except NationalServiceError as exc:
            log.warning("prescriber_unverified", rpps=rpps, error=exc.slug)
            return PrescriberCheck(rpps, PrescriberStatus.UNVERIFIED, today)
        if record is None:
            status = PrescriberStatus.UNKNOWN
        elif record.practising(today):
            status = PrescriberStatus.ACTIVE
        else:
            status = PrescriberStatus.INACTIVE
        log.info("prescriber_checked", rpps=rpps, status=status.value)
        return PrescriberCheck(rpps, status, today, record)


def require_acknowledgement(check: PrescriberCheck, acknowledged: bool) -> None:
    """Refuse to go on while a prescriber warning has not been acknowledged by the pharmacist."""
    if check.requires_acknowledgement and not acknowledged:
        raise PrescriberNotAcknowledged(check.warning, prescriber_status=check.status.value)
