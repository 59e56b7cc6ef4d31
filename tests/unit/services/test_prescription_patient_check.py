"""The patient check in the dispensing service, before anything is written (issue #17 item 1)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from lgo.domain.patient_match import PatientTraits
from lgo.domain.prescription import PrescriptionSource
from lgo.services.prescription_patient import (
    PrescriptionPatientMismatch,
    PrescriptionPatientUnknown,
)
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, OrdonnancierEntry
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    dispensation_input,
    dispensing_service,
    make_patient,
    paper,
    pharmacist,
)

FICTIF = PatientTraits(("FICTIF",), ("CAMILLE",), "19800101", "U")  # make_patient's defaults


def rows(db: Database) -> tuple[int, int]:
    with db.uow(readonly=True) as uow:
        run = uow.session.execute
        return (
            run(select(func.count()).select_from(DispensationRow)).scalar_one(),
            run(select(func.count()).select_from(OrdonnancierEntry)).scalar_one(),
        )


def test_eprescription_copy_without_its_patient_is_refused(sqlite_db: Database) -> None:
    service = dispensing_service(sqlite_db, InMemoryCatalog([LIST_I_PRODUCT]))
    legacy = replace(paper("EPLEGACY00000001"), source=PrescriptionSource.EPRESCRIPTION)
    with pytest.raises(PrescriptionPatientUnknown):
        service.dispense(
            "legacy-key-1",
            dispensation_input(make_patient(sqlite_db), legacy),
            pharmacist(),
            degraded=True,
        )
    assert rows(sqlite_db) == (0, 0)


def test_paper_copy_is_typed_for_the_patient_at_the_counter(sqlite_db: Database) -> None:
    service = dispensing_service(sqlite_db, InMemoryCatalog([LIST_I_PRODUCT]))
    result = service.dispense(
        "paper-key-1",
        dispensation_input(make_patient(sqlite_db), paper("PAPER0000000001")),
        pharmacist(),
        degraded=False,
    )
    assert result.status_code == 201 and rows(sqlite_db) == (1, 1)


def test_the_prescriptions_patient_is_served_and_another_is_not(sqlite_db: Database) -> None:
    service = dispensing_service(sqlite_db, InMemoryCatalog([LIST_I_PRODUCT]))
    rx = replace(paper("EPOWNED00000001"), source=PrescriptionSource.EPRESCRIPTION, patient=FICTIF)
    other = make_patient(sqlite_db, given_names="LOU")
    with pytest.raises(PrescriptionPatientMismatch) as refused:
        service.dispense("owned-key-1", dispensation_input(other, rx), pharmacist(), degraded=False)
    assert refused.value.extra["differing"] == ["given_name"]
    assert rows(sqlite_db) == (0, 0)
    right = service.dispense(
        "owned-key-2", dispensation_input(make_patient(sqlite_db), rx), pharmacist(), degraded=False
    )
    assert right.status_code == 201
