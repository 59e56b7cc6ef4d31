"""The prescription as the counter reads it: the dispensing part's view of the prescription, the
doses already covered for the patient at the counter and the Annuaire Santé's word on the
prescriber, joined in one query (``GET /v1/prescriptions/{id}``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lgo.domain.controlled import Period
from lgo.domain.dispensing import LineHistory
from lgo.domain.patient_match import PatientTraits
from lgo.domain.prescription import Prescription
from lgo.services.dispensing import PrescriptionView
from lgo.services.line_view import LineView, line_view
from lgo.services.local_time import local_date
from lgo.services.prescriber_check import PrescriberCheckPort
from lgo.services.prescription_patient import PatientMatchResult
from lgo.services.prescriptions import (
    PrescriberView,
    PrescriptionPatientView,
    patient_view,
    prescriber_view,
)
from lgo.store.columns import utcnow


class DispensingReads(Protocol):
    """The dispensing service as the counter's reading uses it (``lgo.services.dispensing``)."""

    def load_prescription(
        self, prescription_id: str, *, author_rpps: str, patient_id: str | None = None
    ) -> PrescriptionView: ...

    def covered_periods(
        self, prescription: Prescription, patient_id: str | None
    ) -> dict[int, list[Period]]: ...

    def patient_match(self, prescription: Prescription, patient_id: str) -> PatientMatchResult: ...

    def candidates_match(
        self, prescription_id: str, candidates: Sequence[PatientTraits]
    ) -> list[PatientMatchResult]: ...


@dataclass(frozen=True)
class PrescriptionReading:
    prescription_id: str
    source: str
    prescribed_on: str
    prescriber_rpps: str
    prescriber: PrescriberView
    patient: PrescriptionPatientView | None
    patient_match: PatientMatchResult | None  # with the patient at the counter (``patient_id``)
    first_delivery_deadline: str
    treatment_limit: str
    degraded: bool
    lines: list[LineView]


@dataclass(frozen=True)
class CandidateMatches:
    matches: list[PatientMatchResult]  # in the order of the candidates


class PrescriptionReader:
    def __init__(self, dispensing: DispensingReads, prescribers: PrescriberCheckPort) -> None:
        self._dispensing = dispensing
        self._prescribers = prescribers

    def read(
        self, prescription_id: str, *, author_rpps: str, patient_id: str | None
    ) -> PrescriptionReading:
        view = self._dispensing.load_prescription(prescription_id, author_rpps=author_rpps)
        rx = view.prescription
        today = local_date(utcnow())
        covered = self._dispensing.covered_periods(rx, patient_id)
        # Annuaire Santé: an inactive, unknown or unverifiable prescriber is a warning the
        # pharmacist acknowledges at commit (POST /v1/dispensations, prescriber_acknowledged).
        prescriber = self._prescribers.check(rx.prescriber_rpps, author_rpps=author_rpps)
        return PrescriptionReading(
            prescription_id=rx.prescription_id,
            source=rx.source.value,
            prescribed_on=rx.prescribed_on.isoformat(),
            prescriber_rpps=rx.prescriber_rpps,
            prescriber=prescriber_view(rx, prescriber.view()),
            patient=patient_view(rx.patient),
            # The commit's own patient rule: the page warns with it, never with a copy of the rule.
            patient_match=(self._dispensing.patient_match(rx, patient_id) if patient_id else None),
            first_delivery_deadline=rx.first_delivery_deadline.isoformat(),
            treatment_limit=rx.treatment_limit.isoformat(),
            degraded=view.degraded,
            lines=[
                line_view(
                    rx,
                    line,
                    view.histories.get(line.line_no, LineHistory()),
                    today,
                    covered.get(line.line_no, ()),
                )
                for line in rx.lines
            ],
        )

    def match_candidates(
        self, prescription_id: str, candidates: Sequence[PatientTraits]
    ) -> CandidateMatches:
        """Which of these people (a card's beneficiaries) are the prescription's patient, by the
        commit's rule on the copy the commit checks."""
        return CandidateMatches(self._dispensing.candidates_match(prescription_id, candidates))
