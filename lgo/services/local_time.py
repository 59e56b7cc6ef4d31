"""The pharmacy's calendar day. Rules count calendar days in local time (the 3-day rule, the
3-month and 12-month limits): a dispensation at 00:30 in Paris is on that day, not on the UTC day
before. Timestamps stay UTC in the database."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

# Metropolitan France; overseas departments would need their own zone (not configured yet).
PHARMACY_TZ = ZoneInfo("Europe/Paris")


def local_date(at: datetime) -> date:
    if at.tzinfo is None:
        raise ValueError("aware datetime expected")
    return at.astimezone(PHARMACY_TZ).date()


def pharmacy_today() -> date:
    return local_date(datetime.now(PHARMACY_TZ))
