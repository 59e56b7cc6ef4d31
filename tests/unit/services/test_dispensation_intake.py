"""The dispensation use case before the commit (lgo/services/dispensation_intake.py), on fakes.

No database, no simulator: the dispensing service and the Annuaire check are fakes handed to the
constructor, as the composition root hands the real ones. What the fake dispensing service receives
is what the real commit would receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from lgo.core.errors import InvalidInput
from lgo.domain.dispensing import InterventionKind
from lgo.domain.legal_record import Bearer
from lgo.domain.prescription import Prescription, PrescriptionLine, PrescriptionSource
from lgo.domain.products import Product, RegulatoryList
from lgo.domain.refusals import RefusalCode
from lgo.services.dispensation_intake import (
    DispensationCommand,
    DispensationIntake,
    LineCommand,
    OverrideCommand,
    PaperCommand,
    PaperLineCommand,
    SubstitutionCommand,
)
from lgo.services.dispensing import (
    CheckOutcome,
    DispensationInput,
    DispensationResult,
    PrescriptionView,
    ProfessionalContext,
)
from lgo.services.dispensing_errors import EPrescriptionDown
from lgo.services.prescriber_check import (
    PrescriberCheck,
    PrescriberNotAcknowledged,
    PrescriberStatus,
)
from lgo.services.prescriptions import InMemoryCatalog
from tests.fixtures.dispensing import LIST_I_PRODUCT, PLAIN_PRODUCT, pharmacist

RX_ID = "EPTEST0000000000000042"
PRESCRIBER = "10000000007"
FINGERPRINT = "ab" * 32
LIST_I_CIP = LIST_I_PRODUCT.packs[0].cip13
PLAIN_CIP = PLAIN_PRODUCT.packs[0].cip13


def eprescription() -> Prescription:
    line = PrescriptionLine(1, PLAIN_PRODUCT, Decimal(1), 30)
    return Prescription(
        RX_ID, PrescriptionSource.EPRESCRIPTION, date(2026, 1, 2), PRESCRIBER, (line,)
    )


@dataclass
class FakeDispensing:
    """Records what the use case hands to the dispensing service."""

    view: PrescriptionView | None = None  # None: the e-prescription service is down, no copy
    dispensed: list[tuple[str, DispensationInput, bool]] = field(default_factory=list)
    checked: list[DispensationInput] = field(default_factory=list)
    loaded: list[tuple[str, str, str | None]] = field(default_factory=list)

    def load_prescription(
        self, prescription_id: str, *, author_rpps: str, patient_id: str | None = None
    ) -> PrescriptionView:
        self.loaded.append((prescription_id, author_rpps, patient_id))
        if self.view is None:
            raise EPrescriptionDown("jamais chargée")
        return self.view

    def dispense(
        self, key: str, data: DispensationInput, ctx: ProfessionalContext, *, degraded: bool
    ) -> DispensationResult:
        self.dispensed.append((key, data, degraded))
        return DispensationResult(201, {"id": "d-1"})

    def check(self, data: DispensationInput) -> CheckOutcome:
        self.checked.append(data)
        return CheckOutcome(allowed=True, refusals=[], record_missing=[], lines=[])


@dataclass
class FakeAnnuaire:
    status: PrescriberStatus = PrescriberStatus.ACTIVE
    asked: list[tuple[str, str | None]] = field(default_factory=list)

    def check(self, rpps: str, *, author_rpps: str | None = None) -> PrescriberCheck:
        self.asked.append((rpps, author_rpps))
        return PrescriberCheck(rpps, self.status, date(2026, 1, 2))


def intake(dispensing: FakeDispensing, annuaire: FakeAnnuaire | None = None) -> DispensationIntake:
    catalog = InMemoryCatalog([LIST_I_PRODUCT, PLAIN_PRODUCT])
    return DispensationIntake(dispensing, catalog, annuaire or FakeAnnuaire())


def paper_copy(*, eprescription: bool = False, cip13: str | None = LIST_I_CIP) -> PaperCommand:
    line = PaperLineCommand(
        designation="FICTIVOL tapé",
        units_per_day=Decimal(1),
        duration_days=30,
        cip13=cip13,
        regulatory_list=RegulatoryList.LIST_I,
    )
    return PaperCommand(
        prescribed_on=date(2026, 1, 2),
        prescriber_rpps=PRESCRIBER,
        prescriber_name="Dr FICTIF",
        lines=(line,),
        prescriber_address="  1 rue Fictive  ",
        eprescription=eprescription,
    )


def command(
    *lines: LineCommand,
    prescription_id: str | None = RX_ID,
    paper: PaperCommand | None = None,
    acknowledged: bool = False,
) -> DispensationCommand:
    return DispensationCommand(
        patient_id="patient-1",
        lines=lines or (LineCommand(1, InterventionKind.UNCHANGED, days=30, cip13=PLAIN_CIP),),
        fingerprint=FINGERPRINT,
        prescription_id=prescription_id,
        paper=paper,
        patient_address="2 rue Fictive",
        bearer=Bearer(True),
        prescriber_acknowledged=acknowledged,
    )


def test_an_eprescription_is_committed_on_its_stored_copy() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    annuaire = FakeAnnuaire()
    result = intake(dispensing, annuaire).commit("key-0001", command(), pharmacist())
    assert result.status_code == 201
    [(key, data, degraded)] = dispensing.dispensed
    assert (key, data.prescription_id, data.paper, degraded) == ("key-0001", RX_ID, None, False)
    assert (data.patient_id, data.fingerprint, data.bearer) == (
        "patient-1",
        FINGERPRINT,
        Bearer(True),
    )
    assert dispensing.loaded == [(RX_ID, pharmacist().rpps, "patient-1")]
    assert annuaire.asked == [(PRESCRIBER, pharmacist().rpps)]
    # The catalogue resolves the box the counter scanned.
    assert data.lines[0].request.pack == PLAIN_PRODUCT.packs[0]


def test_the_cached_copy_commits_in_degraded_mode() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=True))
    intake(dispensing).commit("key-0001", command(), pharmacist())
    [(_, data, degraded)] = dispensing.dispensed
    assert degraded is True and data.paper is None


def test_a_paper_prescription_gets_a_replay_stable_local_id() -> None:
    dispensing = FakeDispensing()
    intake(dispensing).commit(
        "key-0001", command(prescription_id=None, paper=paper_copy()), pharmacist()
    )
    [(_, data, degraded)] = dispensing.dispensed
    assert data.prescription_id == "P" + FINGERPRINT[:17].upper()
    assert degraded is False and dispensing.loaded == []  # nothing asked of the national service
    typed = data.paper
    assert typed is not None and typed.source is PrescriptionSource.PAPER
    assert typed.prescription_id == data.prescription_id and typed.patient_id == "patient-1"
    assert typed.extra == {
        "prescriber_name": "Dr FICTIF",
        "prescriber_address": "1 rue Fictive",
    }
    # Same box and same list as the catalogue: the catalogue's product (generic group, packs).
    assert typed.lines[0].product is LIST_I_PRODUCT


def test_a_typed_line_whose_list_differs_keeps_what_was_typed() -> None:
    dispensing = FakeDispensing()
    copy = paper_copy()
    other = PaperLineCommand(
        "Autre",
        Decimal(2),
        10,
        cip13=PLAIN_CIP,
        molecule="autre",
        regulatory_list=RegulatoryList.LIST_II,
    )
    copy = PaperCommand(copy.prescribed_on, PRESCRIBER, "Dr FICTIF", (other,))
    intake(dispensing).commit("key-0001", command(prescription_id=None, paper=copy), pharmacist())
    product = dispensing.dispensed[0][1].paper.lines[0].product  # type: ignore[union-attr]
    assert (product.code, product.name, product.molecule) == (PLAIN_CIP, "Autre", "autre")
    assert product.packs == PLAIN_PRODUCT.packs  # the box's packs still come from the catalogue


def test_the_paper_copy_of_an_eprescription_stands_in_when_the_service_is_down() -> None:
    dispensing = FakeDispensing(view=None)
    paper = paper_copy(eprescription=True)
    intake(dispensing).commit("key-0001", command(paper=paper), pharmacist())
    [(_, data, degraded)] = dispensing.dispensed
    assert degraded is True and data.prescription_id == RX_ID
    assert data.paper is not None and data.paper.extra["eprescription"] == "true"
    assert data.paper.prescription_id == RX_ID


def test_an_unreachable_eprescription_without_a_paper_copy_is_refused() -> None:
    dispensing = FakeDispensing(view=None)
    with pytest.raises(EPrescriptionDown):
        intake(dispensing).commit("key-0001", command(), pharmacist())
    assert dispensing.dispensed == []


@pytest.mark.parametrize("paper", [None, paper_copy(eprescription=True)])
def test_without_an_id_only_a_true_paper_prescription_is_accepted(
    paper: PaperCommand | None,
) -> None:
    dispensing = FakeDispensing()
    with pytest.raises(InvalidInput):
        intake(dispensing).commit(
            "key-0001", command(prescription_id=None, paper=paper), pharmacist()
        )
    assert dispensing.dispensed == []


def test_an_unacknowledged_prescriber_warning_stops_the_commit() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    annuaire = FakeAnnuaire(PrescriberStatus.INACTIVE)
    with pytest.raises(PrescriberNotAcknowledged) as refused:
        intake(dispensing, annuaire).commit("key-0001", command(), pharmacist())
    assert refused.value.extra["prescriber_status"] == "inactive"
    assert dispensing.dispensed == []


def test_an_acknowledged_warning_needs_no_annuaire_call() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    annuaire = FakeAnnuaire(PrescriberStatus.UNVERIFIED)
    intake(dispensing, annuaire).commit("key-0001", command(acknowledged=True), pharmacist())
    assert annuaire.asked == [] and len(dispensing.dispensed) == 1
    # The acknowledgement travels with the commit, which logs it on its own line.
    assert dispensing.dispensed[0][1].acknowledged_prescriber == eprescription().prescriber_rpps


def test_a_request_without_acknowledgement_carries_none() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    intake(dispensing, FakeAnnuaire(PrescriberStatus.ACTIVE)).commit(
        "key-0001", command(), pharmacist()
    )
    assert dispensing.dispensed[0][1].acknowledged_prescriber is None


def test_lines_become_domain_requests_from_the_catalogue() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    line = LineCommand(
        1,
        InterventionKind.SUBSTITUTED,
        days=30,
        cip13=LIST_I_CIP,
        boxes=2,
        substitution=SubstitutionCommand(LIST_I_CIP, "FICTIVOL générique", "cp", 30),
        lot="LOT1",
        override=OverrideCommand(RefusalCode.PER_DELIVERY_CAP_EXCEEDED, "urgence"),
        units_per_day=Decimal("1.5"),
    )
    intake(dispensing).commit("key-0001", command(line), pharmacist())
    given = dispensing.dispensed[0][1].lines[0]
    request = given.request
    assert (given.cip13, given.boxes) == (LIST_I_CIP, 2)
    assert request.kind is InterventionKind.SUBSTITUTED and request.days == 30
    assert request.delivered_product is LIST_I_PRODUCT  # known to the catalogue
    assert request.substitution is not None and request.substitution.delivered_name == (
        "FICTIVOL générique"
    )
    assert request.lots == ("LOT1",) and request.units_per_day == Decimal("1.5")
    assert request.override is not None
    assert request.override.pharmacist_rpps == pharmacist().rpps  # who lifted the refusal


def test_an_unknown_substitute_is_taken_as_typed() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    unknown = "3400930000015"
    line = LineCommand(
        1,
        InterventionKind.SUBSTITUTED,
        days=30,
        substitution=SubstitutionCommand(unknown, "Inconnu", "cp", 10),
    )
    intake(dispensing).commit("key-0001", command(line), pharmacist())
    request = dispensing.dispensed[0][1].lines[0].request
    assert request.delivered_product == Product(code=unknown, name="Inconnu")
    assert request.pack is None


def test_an_override_of_a_hard_refusal_is_bad_input_before_anything_is_sent() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=False))
    line = LineCommand(
        2,
        InterventionKind.UNCHANGED,
        override=OverrideCommand(RefusalCode.NOTHING_LEFT, "pourquoi pas"),
    )
    with pytest.raises(InvalidInput, match="ligne 2 : dérogation impossible"):
        intake(dispensing).commit("key-0001", command(line), pharmacist())
    assert dispensing.dispensed == []


def test_check_evaluates_without_the_annuaire_or_a_fingerprint() -> None:
    dispensing = FakeDispensing(PrescriptionView(eprescription(), degraded=True))
    annuaire = FakeAnnuaire(PrescriberStatus.INACTIVE)
    outcome = intake(dispensing, annuaire).check(command(), pharmacist().rpps)
    assert outcome.allowed is True
    [data] = dispensing.checked
    assert (data.prescription_id, data.fingerprint, data.paper) == (RX_ID, "", None)
    assert annuaire.asked == [] and dispensing.dispensed == []
