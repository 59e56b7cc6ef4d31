"""The prescription as the counter reads it: the dispensing part's view of the prescription, the
doses already covered for the patient at the counter and the Annuaire Santé's word on the
prescriber, joined in one query (``GET /v1/prescriptions/{id}``)."""

from __future__ import annotations

from typing import Any, Protocol

from lgo.domain.dispensing import LineHistory
from lgo.services.dispensing import DispensingService
from lgo.services.line_view import line_view
from lgo.services.local_time import local_date
from lgo.services.prescriber_check import PrescriberCheck
from lgo.services.prescriptions import patient_view, prescriber_view
from lgo.store.columns import utcnow


class PrescriberCheckPort(Protocol):
    def check(self, rpps: str, *, author_rpps: str | None = None) -> PrescriberCheck: ...


class PrescriptionReader:
    def __init__(self, dispensing: DispensingService, prescribers: PrescriberCheckPort) -> None:
        self._dispensing = dispensing
        self._prescribers = prescribers

    def read(
        self, prescription_id: str, *, author_rpps: str, patient_id: str | None
    ) -> dict[str, Any]:
        view = self._dispensing.load_prescription(prescription_id, author_rpps=author_rpps)
        rx = view.prescription
        today = local_date(utcnow())
        covered = self._dispensing.covered_periods(rx, patient_id)
        # Annuaire Santé: an inactive, unknown or unverifiable prescriber is a warning the
        # pharmacist acknowledges at commit (POST /v1/dispensations, prescriber_acknowledged).
        prescriber = self._prescribers.check(rx.prescriber_rpps, author_rpps=author_rpps)
        return {
            "prescription_id": rx.prescription_id,
            "source": rx.source.value,
            "prescribed_on": rx.prescribed_on.isoformat(),
            "prescriber_rpps": rx.prescriber_rpps,
            "prescriber": prescriber_view(rx, prescriber.public()),
            "patient": patient_view(rx.patient),
            # The commit's own patient rule: the page warns with it, never with a copy of the rule.
            "patient_match": (
                self._dispensing.patient_match(rx, patient_id) if patient_id else None
            ),
            "first_delivery_deadline": rx.first_delivery_deadline.isoformat(),
            "treatment_limit": rx.treatment_limit.isoformat(),
            "degraded": view.degraded,
            "lines": [
                line_view(
                    rx,
                    line,
                    view.histories.get(line.line_no, LineHistory()),
                    today,
                    covered.get(line.line_no, ()),
                )
                for line in rx.lines
            ],
        }
