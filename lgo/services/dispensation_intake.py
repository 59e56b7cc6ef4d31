"""The counter's dispensation use case, before the commit: which prescription, which lines.

``POST /v1/dispensations`` and ``POST /v1/dispensations/check`` hand a :class:`DispensationCommand`
(the request as typed data) to :class:`DispensationIntake`, which

1. resolves the prescription: the e-prescription (fetched, or its cached copy in degraded mode),
   the paper copy typed in when the e-prescription service is down, or a paper prescription;
2. for a commit, checks the prescriber (Annuaire Santé) unless the pharmacist acknowledged the
   warning;
3. builds the domain requests from the product catalogue (packs, substituted product, override);
4. hands them to the dispensing service, which commits once or evaluates without writing.

Every dependency is a constructor argument typed by a Protocol: the composition root
(``lgo.bootstrap.container``) passes the real services, unit tests pass fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Protocol

from lgo.core.errors import InvalidInput
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.legal_record import Bearer
from lgo.domain.prescription import (
    NonSubstitutionReason,
    Prescription,
    PrescriptionLine,
    PrescriptionSource,
)
from lgo.domain.products import Product, RegulatoryList
from lgo.domain.refusals import Override, RefusalCode
from lgo.domain.substitution import SubstitutionRecord
from lgo.services.dispensing import (
    CheckOutcome,
    DispensationInput,
    DispensationResult,
    LineInput,
    PrescriptionView,
    ProfessionalContext,
)
from lgo.services.dispensing_errors import EPrescriptionDown
from lgo.services.prescriber_check import PrescriberCheckPort, require_acknowledgement
from lgo.services.prescriptions import ProductCatalog

# ---------------------------------------------------------------- commands (what the counter sends)


@dataclass(frozen=True)
class SubstitutionCommand:
    cip13: str
    name: str
    form: str
    units: int


@dataclass(frozen=True)
class OverrideCommand:
    code: RefusalCode
    reason: str


@dataclass(frozen=True)
class LineCommand:
    """The pharmacist's intervention on one prescription line."""

    line_no: int
    intervention: InterventionKind
    days: int = 0
    cip13: str | None = None
    boxes: int | None = None
    substitution: SubstitutionCommand | None = None
    modification_reason: str | None = None
    prescriber_agreement_on: date | None = None
    not_dispensed_reason: str | None = None
    exceptional: bool = False
    unit_dispensing: bool = False
    lot: str | None = None
    mte_ph: bool = False
    override: OverrideCommand | None = None
    units_per_day: Decimal | None = None


@dataclass(frozen=True)
class PaperLineCommand:
    designation: str
    units_per_day: Decimal
    duration_days: int
    cip13: str | None = None
    molecule: str | None = None
    regulatory_list: RegulatoryList = RegulatoryList.NONE
    renewals: int = 0
    substitutable: bool = True
    non_substitution_reason: NonSubstitutionReason | None = None
    single_delivery: bool = False
    fraction_days: int | None = None
    overlap_mention: bool = False


@dataclass(frozen=True)
class PaperCommand:
    """A prescription typed in: paper, or the paper copy of an e-prescription (degraded mode)."""

    prescribed_on: date
    prescriber_rpps: str
    prescriber_name: str
    lines: tuple[PaperLineCommand, ...]
    prescriber_address: str = ""
    eprescription: bool = False


@dataclass(frozen=True)
class DispensationCommand:
    patient_id: str
    lines: tuple[LineCommand, ...]
    # Canonical hash of the request without its Idempotency-Key: the replay check, and the local
    # id of a paper prescription (a replay then names the same prescription).
    fingerprint: str
    prescription_id: str | None = None
    paper: PaperCommand | None = None
    patient_address: str = ""
    prescriber_address: str = ""
    bearer: Bearer | None = None
    prescriber_acknowledged: bool = False


# ---------------------------------------------------------------- ports


class Dispenser(Protocol):
    """The dispensing service as the intake uses it (``lgo.services.dispensing``)."""

    def load_prescription(
        self, prescription_id: str, *, author_rpps: str, patient_id: str | None = None
    ) -> PrescriptionView: ...

    def dispense(
        self, key: str, data: DispensationInput, ctx: ProfessionalContext, *, degraded: bool
    ) -> DispensationResult: ...

    def check(self, data: DispensationInput) -> CheckOutcome: ...


@dataclass(frozen=True)
class ResolvedPrescription:
    """Which prescription the commit uses."""

    prescription_id: str
    paper: Prescription | None  # the typed copy, None when the stored e-prescription is used
    degraded: bool
    prescriber_rpps: str


# ---------------------------------------------------------------- the use case


class DispensationIntake:
    def __init__(
        self, dispensing: Dispenser, catalog: ProductCatalog, prescribers: PrescriberCheckPort
    ) -> None:
        self._dispensing = dispensing
        self._catalog = catalog
        self._prescribers = prescribers

    def commit(
        self, key: str, command: DispensationCommand, ctx: ProfessionalContext
    ) -> DispensationResult:
        """Resolve, check the prescriber, then commit once per ``key`` (see
        :meth:`DispensingService.dispense`)."""
        resolved = self.resolve(command, ctx.rpps)
        self._check_prescriber(resolved.prescriber_rpps, ctx.rpps, command.prescriber_acknowledged)
        # Logged on the commit's own line (dispensation_committed), not on a line of its own.
        acknowledged = resolved.prescriber_rpps if command.prescriber_acknowledged else None
        data = self._input(
            command, resolved, ctx.rpps, fingerprint=command.fingerprint, acknowledged=acknowledged
        )
        return self._dispensing.dispense(key, data, ctx, degraded=resolved.degraded)

    def check(self, command: DispensationCommand, rpps: str) -> CheckOutcome:
        """Evaluate the interventions without recording anything (no prescriber check: the page
        showed its warning when the prescription was opened)."""
        resolved = self.resolve(command, rpps)
        return self._dispensing.check(self._input(command, resolved, rpps, fingerprint=""))

    def resolve(self, command: DispensationCommand, rpps: str) -> ResolvedPrescription:
        paper = command.paper
        if command.prescription_id is None:
            if paper is None or paper.eprescription:
                raise InvalidInput("numéro d'ordonnance numérique ou ordonnance papier attendu")
            # Paper only: a local id derived from the key-independent body keeps replays stable.
            local = "P" + command.fingerprint[:17].upper()
            typed = self._paper(local, paper, command.patient_id)
            return ResolvedPrescription(local, typed, False, typed.prescriber_rpps)
        try:
            view = self._dispensing.load_prescription(
                command.prescription_id, author_rpps=rpps, patient_id=command.patient_id
            )
        except EPrescriptionDown:
            if paper is None:
                raise
            # Never loaded and the service is down: the pharmacist typed the paper copy in.
            copy = self._paper(command.prescription_id, paper, command.patient_id)
            copy = replace(copy, extra={**copy.extra, "eprescription": "true"})
            return ResolvedPrescription(command.prescription_id, copy, True, copy.prescriber_rpps)
        rx = view.prescription
        return ResolvedPrescription(
            command.prescription_id, None, view.degraded, rx.prescriber_rpps
        )

    def _check_prescriber(self, prescriber_rpps: str, rpps: str, acknowledged: bool) -> None:
        """Refuse (409) while a non-active prescriber has not been acknowledged by the pharmacist.
        An acknowledged request needs no Annuaire call: the answer could not change the outcome,
        and the counter must not wait on a directory that is down (the page saw the warning on
        opening). The acknowledgement is logged with the commit (``dispensation_committed``)."""
        if acknowledged:
            return
        require_acknowledgement(self._prescribers.check(prescriber_rpps, author_rpps=rpps), False)

    def _input(
        self,
        command: DispensationCommand,
        resolved: ResolvedPrescription,
        rpps: str,
        *,
        fingerprint: str,
        acknowledged: str | None = None,
    ) -> DispensationInput:
        return DispensationInput(
            patient_id=command.patient_id,
            prescription_id=resolved.prescription_id,
            lines=tuple(self._line(line, rpps) for line in command.lines),
            paper=resolved.paper,
            patient_address=command.patient_address,
            fingerprint=fingerprint,
            prescriber_address=command.prescriber_address,
            bearer=command.bearer,
            acknowledged_prescriber=acknowledged,
        )

    def _line(self, line: LineCommand, rpps: str) -> LineInput:
        catalog = self._catalog
        delivered: Product | None = None
        record: SubstitutionRecord | None = None
        if line.substitution is not None:
            sub = line.substitution
            delivered = catalog.product(sub.cip13) or Product(code=sub.cip13, name=sub.name)
            record = SubstitutionRecord(sub.cip13, sub.name, sub.form, sub.units)
        request = LineRequest(
            line_no=line.line_no,
            kind=line.intervention,
            days=line.days,
            pack=catalog.pack(line.cip13) if line.cip13 else None,
            delivered_product=delivered,
            substitution=record,
            modification_reason=line.modification_reason,
            prescriber_agreement_on=line.prescriber_agreement_on,
            not_dispensed_reason=line.not_dispensed_reason,
            exceptional=line.exceptional,
            unit_dispensing=line.unit_dispensing,
            lots=(line.lot,) if line.lot else (),
            mte_ph=line.mte_ph,
            override=_override(line, rpps),
            units_per_day=line.units_per_day,
        )
        return LineInput(request, cip13=line.cip13, boxes=line.boxes)

    def _paper(self, prescription_id: str, paper: PaperCommand, patient_id: str) -> Prescription:
        lines = tuple(
            PrescriptionLine(
                line_no=i,
                product=self._paper_product(line),
                units_per_day=line.units_per_day,
                duration_days=line.duration_days,
                renewals=line.renewals,
                substitutable=line.substitutable,
                non_substitution_reason=line.non_substitution_reason,
                single_delivery=line.single_delivery,
                fraction_days=line.fraction_days,
                overlap_mention=line.overlap_mention,
            )
            for i, line in enumerate(paper.lines, start=1)
        )
        extra = {"prescriber_name": paper.prescriber_name}
        if paper.prescriber_address.strip():
            extra["prescriber_address"] = paper.prescriber_address.strip()
        if paper.eprescription:
            extra["eprescription"] = "true"
        return Prescription(
            prescription_id=prescription_id,
            source=PrescriptionSource.PAPER,
            prescribed_on=paper.prescribed_on,
            prescriber_rpps=paper.prescriber_rpps,
            lines=lines,
            patient_id=patient_id,
            extra=extra,
        )

    def _paper_product(self, line: PaperLineCommand) -> Product:
        """The catalogue's product when the typed line names its box and the same list; else the
        product as typed (the catalogue still gives its generic group and packs)."""
        known = self._catalog.product(line.cip13) if line.cip13 else None
        if known is not None and known.regulatory_list is line.regulatory_list:
            return known
        return Product(
            code=line.cip13 or "TYPED",
            name=line.designation,
            regulatory_list=line.regulatory_list,
            molecule=line.molecule,
            generic_group=known.generic_group if known else None,
            packs=known.packs if known else (),
        )


def _override(line: LineCommand, rpps: str) -> Override | None:
    if line.override is None:
        return None
    try:
        return Override(line.override.code, line.override.reason, rpps)
    except ValueError as exc:
        raise InvalidInput(f"ligne {line.line_no} : dérogation impossible ({exc})") from None
