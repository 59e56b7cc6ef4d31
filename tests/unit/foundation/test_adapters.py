"""The composition root with a test's own outside world (``Adapters``): the real ``Container`` and
its real services, a fake INSi, a fixed clock, a fake CPS card and a fake MSSanté. No simulator, no
pcscd: what the use cases do with the outside world is asserted through the services the daemon
uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from drivers.cps import PinStatus, pin_status_from_flags
from drivers.cps.identity import ProfessionalIdentity
from drivers.cps.login import CpsCardInfo
from lgo.bootstrap.container import Adapters, Container
from lgo.core.settings import load_settings
from lgo.documents.models import Author
from lgo.domain.identity import Ins, InsOid, RawBirthDate, Traits, with_key
from lgo.domain.professionals import luhn_key
from lgo.domain.vaccination import Vaccine
from lgo.national.annuaire import PractitionerRecord, PractitionerRoleRecord
from lgo.national.insi import InsiIdentity, VitaleQuery
from lgo.national.mss import MssMessage, MssReceipt
from lgo.services.documents import MssNotConfigured, MssRecipientInvalid
from lgo.services.identity import NewPatient
from lgo.services.missions_common import Actor
from lgo.services.prescriber_check import PrescriberStatus
from lgo.services.sessions import SessionKind
from lgo.services.vaccinations import VaccinationInput
from lgo.store import migrate

# Fictitious people only: a woman born in June 2000 in Paris, a pharmacist of the test range.
NIR = with_key("2000675112345")
RPPS = "10000000000"
PHARMACIST = ProfessionalIdentity("810000000000", RPPS, "OFFICINE", "CAMILLE", "Pharmacien")


@dataclass
class FakeInsi:
    """INSi answering one identity; the traits it was asked about are kept."""

    found: InsiIdentity
    asked: list[Traits] = field(default_factory=list)

    def search_by_traits(self, traits: Traits, *, author_rpps: str | None) -> InsiIdentity:
        self.asked.append(traits)
        return self.found

    def search_by_vitale(self, query: VitaleQuery, *, author_rpps: str | None) -> InsiIdentity:
        raise AssertionError("not asked by Vitale in these tests")


@dataclass
class FakeCardSession:
    identity: ProfessionalIdentity
    closed: list[bool] = field(default_factory=list)

    def sign_authentication(self, data: bytes) -> bytes:
        return b"signed:" + data

    def authentication_certificate(self) -> bytes:
        return b"certificate"

    def close(self, *, card_removed: bool = False) -> None:
        self.closed.append(card_removed)


@dataclass
class FakeCpsCard:
    """A CPS whose PIN is 1234, three tries; no PC/SC, no PKCS#11 module."""

    tries_left: int = 3
    pins: list[str] = field(default_factory=list)
    sessions: list[FakeCardSession] = field(default_factory=list)

    def card_info(self, reader: str) -> CpsCardInfo:
        return CpsCardInfo(reader, "CPS-0001", 3, self.tries_left)

    def require_middleware(self) -> None:
        return None

    def pin_status(self, serial: str, card_tries_left: int | None) -> PinStatus:
        return pin_status_from_flags(0, card_tries_left)

    def auth_certificate(self, reader: str) -> bytes:
        return b"certificate"

    def login(self, reader: str, pin: str, *, confirm_final_try: bool) -> FakeCardSession:
        self.pins.append(pin)
        session = FakeCardSession(PHARMACIST)
        self.sessions.append(session)
        return session


@dataclass
class FakeAnnuaire:
    """The Annuaire Santé knowing one doctor whose practice ends on 30 June 2026."""

    asked: list[str] = field(default_factory=list)

    def practitioner(self, rpps: str, *, author_rpps: str | None = None) -> PractitionerRecord:
        self.asked.append(rpps)
        role = PractitionerRoleRecord(
            "10", None, True, date(2020, 1, 1), date(2026, 6, 30), None, None
        )
        return PractitionerRecord(rpps, "8" + rpps, True, "MEDECIN", "FICTIF", "Dr", (role,))


class FakeMss:
    def send(self, message: MssMessage, *, author_rpps: str) -> MssReceipt:
        raise AssertionError("nothing is sent in these tests")


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


@contextmanager
def built(tmp_path: Path, adapters: Adapters) -> Iterator[Container]:
    """The daemon's root on a migrated SQLite file of ``tmp_path``, no PC/SC."""
    settings = load_settings(state_dir=tmp_path / "state", hardware={"pcsc_enabled": False})
    container = Container(settings, adapters=adapters)
    migrate.upgrade(container.db)
    try:
        yield container
    finally:
        container.db.dispose()


def new_patient(container: Container) -> str:
    patient = NewPatient("FICTIF", "ALICE", "20000615", sex="F", birthplace="75112")
    return container.identity.service.create_patient(patient).id


def test_ins_qualification_asks_the_insi_adapter(tmp_path: Path) -> None:
    found = InsiIdentity(
        Ins.of(NIR, InsOid.TEST.value),
        "FICTIF",
        ("ALICE",),
        "F",
        RawBirthDate.parse("20000615"),
        "75112",
    )
    insi = FakeInsi(found)
    with built(tmp_path, Adapters(insi=insi, clock=lambda: at("2026-03-02T09:30:00"))) as c:
        identity = c.identity.service
        patient_id = new_patient(c)
        identity.record_document_check(patient_id, "cni", author_rpps=RPPS)
        view = identity.retrieve_ins(patient_id, author_rpps=RPPS)

        assert [t.birth_name for t in insi.asked] == ["FICTIF"]
        assert view.status.code == "QUAL"
        assert identity.require_qualified_ins(patient_id).matricule == NIR
        # the INS the dispensing part and the documents part are given is this one
        assert c.dispensing.worker.identity is identity
        assert [check.at for check in identity.checks(patient_id)] == [
            at("2026-03-02T09:30:00")
        ] * 2


@pytest.mark.parametrize(
    ("now", "eligible"),
    [("2027-06-14T10:00:00", True), ("2027-06-15T10:00:00", False)],  # 26 years, then 27
)
def test_vaccination_eligibility_is_decided_on_the_clock_of_the_root(
    tmp_path: Path, now: str, eligible: bool
) -> None:
    with built(tmp_path, Adapters(clock=lambda: at(now))) as c:
        patient_id = new_patient(c)
        answer = c.missions.vaccinations.eligibility(patient_id, Vaccine.HPV)
        assert c.dispensing.service.clock() == at(now)  # "deliverable today" on the same clock
    assert answer.eligible is eligible
    assert answer.age_min == (26 if eligible else 27)


def test_cps_login_goes_through_the_card_adapter(tmp_path: Path) -> None:
    card = FakeCpsCard()
    with built(tmp_path, Adapters(cps_card=card)) as c:
        cps = c.hardware.cps
        cps.card_inserted("Lecteur CPS")
        assert cps.card_status().pin_tries_left == 3

        session = cps.login("1234")

        assert card.pins == ["1234"]
        assert session.kind is SessionKind.CPS
        assert c.sessions.current() == session
        assert session.identity.national_id == PHARMACIST.national_id
        assert cps.signer() is card.sessions[0]  # what documents and INSi sign with

        cps.card_removed("Lecteur CPS")
        assert c.sessions.current() is None
        assert card.sessions[0].closed == [True]


@pytest.mark.parametrize(
    ("now", "status"),
    [
        ("2026-06-30T10:00:00", PrescriberStatus.ACTIVE),
        ("2026-07-01T10:00:00", PrescriberStatus.INACTIVE),
    ],
)
def test_prescriber_status_from_the_annuaire_adapter_on_the_clock_of_the_root(
    tmp_path: Path, now: str, status: PrescriberStatus
) -> None:
    annuaire = FakeAnnuaire()
    doctor = "1000000001" + luhn_key("1000000001")
    with built(tmp_path, Adapters(annuaire=annuaire, clock=lambda: at(now))) as c:
        first = c.psc.prescribers.check(doctor)
        again = c.psc.prescribers.check(doctor)
    assert (first.status, first.checked_on) == (status, at(now).date())
    assert again.status is status
    assert annuaire.asked == [doctor]  # the second answer came from lgo's cache


def test_mss_recipient_checked_by_the_documents_service_before_any_act(tmp_path: Path) -> None:
    actor = Actor(Author(PHARMACIST.national_id, "OFFICINE", "CAMILLE"), RPPS, "s-1", "comptoir")
    dose = VaccinationInput(
        patient_id="inconnu",
        vaccine=Vaccine.GRIPPE,
        datamatrix="not read: the recipient is refused first",
        mss_recipient="dr.exemple@medecin.mssante.fr",
    )
    with built(tmp_path, Adapters()) as c:  # no MSSanté certificate in the settings
        with pytest.raises(MssNotConfigured):
            c.missions.vaccinations.record("key-00000001", dose, actor)
        assert c.missions.vaccinations.search() == []

    with built(tmp_path / "mss", Adapters(mss=FakeMss())) as c:
        c.documents.service.require_mss("dr.exemple@medecin.mssante.fr")
        outside = replace(dose, mss_recipient="dr.exemple@exemple.fr")
        with pytest.raises(MssRecipientInvalid):
            c.missions.trod.document("inconnu", actor, mss_recipient="dr.exemple@exemple.fr")
        with pytest.raises(MssRecipientInvalid):
            c.missions.vaccinations.record("key-00000002", outside, actor)
        assert c.missions.vaccinations.search() == []
