"""Scanned codes: classify every payload (scanner or typed), keep the recent ones, publish events.

``scan.received`` and every API answer carry the kind and only fields that are not personal data:
product codes (GTIN/CIP13/batch/serial/expiry) and the e-prescription id. apCV tokens (single-use
credentials) and INS DataMatrix contents (INS, names, birth date) never leave the daemon: the
counter names the scan by id (``POST /v1/apcv/exchange {scan_id}``) and the daemon uses the token.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.scanners import Classification, Classifier, ClassifierConfig, ScanKind
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.services.scan_reasons import reason_fr

log = get_logger(__name__)
PARIS = ZoneInfo("Europe/Paris")
RECENT = 50
_PUBLIC_FIELDS: dict[ScanKind, frozenset[str]] = {
    ScanKind.EPRESCRIPTION: frozenset({"prescription_id"}),
    ScanKind.GS1: frozenset({"gtin", "cip13", "expiry", "expired", "batch", "serial"}),
    ScanKind.EAN13_CIP: frozenset({"cip13", "cip7"}),
    ScanKind.TWO_D_DOC: frozenset({"version", "ca_id", "cert_id", "doc_type"}),
}


@dataclass(frozen=True)
class ScanRecord:
    id: str
    at: datetime
    source: str
    classification: Classification

    def public_fields(self) -> dict[str, str]:
        allowed = _PUBLIC_FIELDS.get(self.classification.kind, frozenset())
        return {k: v for k, v in self.classification.fields.items() if k in allowed}

    def event_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.classification.kind.value,
            "aim_id": self.classification.aim_id,
            "reason": self.classification.reason,
            "reason_label": reason_fr(self.classification.reason),
            "fields": self.public_fields(),
        }

    def api_data(self) -> dict[str, Any]:
        """What the counter API shows: the event data and the time, never the private fields."""
        return {**self.event_data(), "at": self.at.isoformat()}


class ScanService:
    def __init__(
        self,
        events: EventBus,
        config: ClassifierConfig | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._events = events
        self._classifier = Classifier(config)
        self._today = today or (lambda: datetime.now(PARIS).date())
        self._recent: deque[ScanRecord] = deque(maxlen=RECENT)
        self._lock = threading.Lock()

    def submit(self, payload: bytes | str, source: str) -> ScanRecord:
        """Classify ``payload`` (never raises for bad input), remember it and publish it."""
        classification = self._classifier.classify(payload, self._today())
        record = ScanRecord(str(uuid.uuid4()), datetime.now(UTC), source, classification)
        with self._lock:
            self._recent.append(record)
        log.info(
            "scan_received",
            scan_id=record.id,
            kind=classification.kind.value,
            reason=classification.reason,
            source=source,
        )
        self._events.publish("scan.received", record.event_data())
        return record

    def recent(self) -> list[ScanRecord]:
        with self._lock:
            return list(reversed(self._recent))

    def get(self, scan_id: str) -> ScanRecord | None:
        with self._lock:
            return next((r for r in self._recent if r.id == scan_id), None)
