"""The dispensation use case as the composition root builds it, with a fake Annuaire Santé handed in
through ``Adapters``: the real ``Container``, its real dispensing service on a migrated SQLite file,
no simulator. A paper prescription needs no e-prescription service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from lgo.bootstrap.container import Adapters, Container
from lgo.core.settings import load_settings
from lgo.domain.dispensing import InterventionKind
from lgo.national.annuaire import PractitionerRecord
from lgo.services.dispensation_intake import (
    DispensationCommand,
    LineCommand,
    PaperCommand,
    PaperLineCommand,
)
from lgo.services.identity import NewPatient
from lgo.services.prescriber_check import PrescriberNotAcknowledged
from lgo.store import migrate
from tests.fixtures.dispensing import PLAIN_PRODUCT, PRESCRIBER_RPPS, pharmacist

PRESCRIBER = PRESCRIBER_RPPS  # a valid key: the Annuaire is asked
PLAIN_CIP = PLAIN_PRODUCT.packs[0].cip13


@dataclass
class UnknownToTheAnnuaire:
    asked: list[str] = field(default_factory=list)

    def practitioner(
        self, rpps: str, *, author_rpps: str | None = None
    ) -> PractitionerRecord | None:
        self.asked.append(rpps)
        return None


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[Container, UnknownToTheAnnuaire]]:
    annuaire = UnknownToTheAnnuaire()
    settings = load_settings(state_dir=tmp_path / "state", hardware={"pcsc_enabled": False})
    container = Container(settings, adapters=Adapters(annuaire=annuaire))
    migrate.upgrade(container.db)
    container.dispensing.catalog.add(PLAIN_PRODUCT)
    try:
        yield container, annuaire
    finally:
        container.db.dispose()


def paper_command(patient_id: str, *, acknowledged: bool) -> DispensationCommand:
    line = PaperLineCommand("NEUTRALINE 500 mg cp", Decimal(1), 30, cip13=PLAIN_CIP)
    paper = PaperCommand(date.today(), PRESCRIBER, "Dr FICTIF", (line,))
    return DispensationCommand(
        patient_id=patient_id,
        lines=(LineCommand(1, InterventionKind.UNCHANGED, days=30, cip13=PLAIN_CIP),),
        fingerprint="c0ffee" * 10 + "abcd",
        paper=paper,
        prescriber_acknowledged=acknowledged,
    )


def new_patient(container: Container) -> str:
    patient = NewPatient("FICTIF", "ALICE", "20000615", sex="F", birthplace="75112")
    return container.identity.service.create_patient(patient).id


def test_an_unknown_prescriber_stops_the_commit_until_acknowledged(
    root: tuple[Container, UnknownToTheAnnuaire],
) -> None:
    container, annuaire = root
    patient_id = new_patient(container)
    intake = container.dispensation_intake
    with pytest.raises(PrescriberNotAcknowledged) as refused:
        intake.commit("key-00000001", paper_command(patient_id, acknowledged=False), pharmacist())
    assert refused.value.extra["prescriber_status"] == "unknown"
    assert annuaire.asked == [PRESCRIBER]  # the root's checker asked the adapter handed in
    assert container.dispensing.service.list(patient_id=patient_id) == []  # nothing written

    command = paper_command(patient_id, acknowledged=True)
    first = intake.commit("key-00000001", command, pharmacist("comptoir-1"))
    assert first.status_code == 201 and not first.replayed
    assert annuaire.asked == [PRESCRIBER]  # acknowledged: no second Annuaire call

    record = container.dispensing.service.get(first.body["id"])
    assert record.prescription_id == "P" + command.fingerprint[:17].upper()
    assert record.prescription_source == "paper" and record.degraded is False
    assert [(ln.line_no, ln.days, ln.delivered_cip13) for ln in record.lines] == [
        (1, 30, PLAIN_CIP)
    ]

    again = intake.commit("key-00000001", command, pharmacist("comptoir-1"))
    assert again.replayed and again.body == first.body
    assert len(container.dispensing.service.list(patient_id=patient_id)) == 1


def test_check_records_nothing(root: tuple[Container, UnknownToTheAnnuaire]) -> None:
    container, annuaire = root
    patient_id = new_patient(container)
    outcome = container.dispensation_intake.check(
        paper_command(patient_id, acknowledged=False), pharmacist().rpps
    )
    assert outcome.allowed is True and outcome.refusals == []
    assert [(ln.line_no, ln.days) for ln in outcome.lines] == [(1, 30)]
    assert annuaire.asked == []  # the warning is shown when the prescription is opened
    assert container.dispensing.service.list(patient_id=patient_id) == []
