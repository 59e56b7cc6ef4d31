"""The e-prescription carries its patient and prescriber (issue #17 item 1): the simulator sends
the Patient and Practitioner it has, the client reads them (partial birth dates as given, the
specialty and the practice address)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hwsim.national.eprescription import store_of
from lgo.national.eprescription import EPrescriptionClient
from lgo.services.prescriptions import InMemoryCatalog, from_record, patient_view
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
AUTHOR = "10000000009"


@pytest.fixture
def client(national_sim: NationalSim) -> Iterator[EPrescriptionClient]:
    with EPrescriptionClient(national_sim.url("/eprescription/fhir"), timeout_s=5) as c:
        yield c


def test_patient_and_prescriber_are_read(client: EPrescriptionClient) -> None:
    record = client.fetch("EPTEST0000000000000042", author_rpps=AUTHOR)
    patient = record.patient
    assert (patient.family_name, patient.given_names, patient.birth_date, patient.sex) == (
        "TESTNOM",
        ("CAMILLE",),
        "1999-12-31",
        "female",
    )
    assert (patient.ins, patient.ins_oid) == ("299127505699943", "1.2.250.1.213.1.4.10")
    prescriber = record.prescriber
    assert (prescriber.rpps, prescriber.profession_code, prescriber.specialty_code) == (
        "10000000009",
        "10",
        "SM54",
    )
    assert prescriber.address == "12 rue des Essais, 75010 PARIS"


def test_a_partial_birth_date_is_kept_as_the_service_gives_it(
    client: EPrescriptionClient, national_sim: NationalSim
) -> None:
    prescription = store_of(national_sim.state).prescriptions["EPTEST0000000000000049"]
    prescription.patient = {**prescription.patient, "birth_date": "1970"}  # year only
    record = client.fetch("EPTEST0000000000000049", author_rpps=AUTHOR)
    assert record.patient.birth_date == "1970" and record.patient.ins is None
    rx = from_record(record, InMemoryCatalog(), None)
    assert rx.patient is not None and rx.patient.birth_date == "19700000"
    view = patient_view(rx.patient)
    assert view is not None
    assert (view.birth_date, view.sex, view.ins) == ("1970", "U", None)
