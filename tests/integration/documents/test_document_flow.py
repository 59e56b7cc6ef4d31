"""End to end in the process: dispensation → CDA → delivery queue → DMP / MSSanté simulators.

Real database (SQLite, and PostgreSQL under the ``postgres`` marker), real dispensing service,
real identity service as the INS guard, real HTTP to the national simulator and real SMTP+TLS to
the MSSanté simulator.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hwsim.mss import MssServer
from lgo.core.events import EventBus
from lgo.documents.errors import InsNotQualifiedError
from lgo.documents.models import Author, Organisation
from lgo.domain.identity import IdentityStatus, InsOid, with_key
from lgo.national.dmp import DmpClient, DmpDocumentUnknown
from lgo.national.mss import MssClient
from lgo.services.documents import (
    DELIVERED,
    FAILED,
    KIND_DMP,
    KIND_MSS,
    PENDING,
    DeliveryPolicy,
    DeliveryWorker,
    DmpConsultation,
    DocumentAlreadyProduced,
    DocumentService,
    dmp_handler,
    mss_handler,
)
from lgo.services.identity import IdentityService
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models import Patient
from lgo.store.models.documents import DocumentDelivery, DocumentRow
from tests.fixtures.dispensing import (
    PHARMACIST_RPPS,
    dispensation_input,
    dispensing_service,
    paper,
    pharmacist,
)
from tests.fixtures.documents import (
    FICTIVE_NIR,
    MssPki,
    arm_fault,
    mss_config,
    sim_control,
    sim_documents,
)

pytestmark = pytest.mark.integration
OID = InsOid.TEST.value
AUTHOR = Author("8" + PHARMACIST_RPPS, "PHARMACIEN", "TEST")
PHARMACY = Organisation("750000000", "Pharmacie de démonstration", "1 place de l'Exemple")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def add_patient(db: Database, status: IdentityStatus, nir: str = FICTIVE_NIR) -> str:
    pid = str(uuid.uuid4())
    now = datetime.now(UTC)
    with db.uow() as uow:
        uow.session.add(
            Patient(
                id=pid,
                created_at=now,
                updated_at=now,
                birth_name="FICTIF",
                given_names="ALICE",
                sex="F",
                birth_date_raw="19850312",
                birth_place_code="75112",
                source="manual",
                identity_status=status.value,
                nir=nir,
                ins_matricule=nir,
                ins_oid=OID,
            )
        )
        uow.commit()
    return pid


def dispense(db: Database, catalog: InMemoryCatalog, patient_id: str) -> str:
    service = dispensing_service(db, catalog)
    rx = paper("RX-" + uuid.uuid4().hex[:8].upper())
    result = service.dispense(
        str(uuid.uuid4()), dispensation_input(patient_id, rx), pharmacist(), degraded=True
    )
    dispensation_id: str = result.body["id"]
    return dispensation_id


@pytest.fixture
def dmp(dmp_sim: str) -> Iterator[DmpClient]:
    client = DmpClient.over_http(
        dmp_sim + "/dmp", finess="750000000", timeout_s=2.0, connect_timeout_s=1.0
    )
    yield client
    client.close()


@pytest.fixture
def events() -> EventBus:
    return EventBus()


def services(
    db: Database, events: EventBus, handlers: dict[str, object], clock: Clock
) -> tuple[DocumentService, DeliveryWorker]:
    identity = IdentityService(db, insi=None)  # type: ignore[arg-type]  # INSi is not called here
    documents = DocumentService(db, identity, PHARMACY, events=events, clock=clock)
    policy = DeliveryPolicy(base_delay_s=10, max_delay_s=60)
    worker = DeliveryWorker(db, handlers, events=events, policy=policy, clock=clock)  # type: ignore[arg-type]
    return documents, worker


def deliveries(db: Database) -> list[DocumentDelivery]:
    with db.uow(readonly=True) as uow:
        rows = uow.session.query(DocumentDelivery).order_by(DocumentDelivery.id).all()
        uow.session.expunge_all()
        return rows


def test_dispensing_summary_reaches_the_dmp_and_is_found_by_a_query(
    any_db: Database, catalog: InMemoryCatalog, dmp: DmpClient, dmp_sim: str, events: EventBus
) -> None:
    clock = Clock()
    documents, worker = services(any_db, events, {KIND_DMP: dmp_handler(dmp)}, clock)
    patient_id = add_patient(any_db, IdentityStatus.QUAL)
    dispensation_id = dispense(any_db, catalog, patient_id)

    view = documents.dispensing_summary(dispensation_id, AUTHOR)
    assert [d.status for d in view.deliveries] == [PENDING]
    assert worker.run_once() == 1

    [delivery] = documents.get(view.id).deliveries
    assert delivery.status == DELIVERED and delivery.attempts == 1
    stored = sim_documents(dmp_sim)
    assert [(s["unique_id"], s["patient_id"], s["type_code"]["code"]) for s in stored] == [
        (view.id, f"{FICTIVE_NIR}^^^&{OID}&ISO^NH", "60593-1")
    ]
    assert stored[0]["author_person"].startswith(f"8{PHARMACIST_RPPS}^PHARMACIEN^TEST")

    consultation = DmpConsultation(IdentityService(any_db, insi=None), dmp)  # type: ignore[arg-type]
    [entry] = consultation.list(patient_id, author_rpps=PHARMACIST_RPPS)
    assert entry.unique_id == view.id and entry.title == "Dispensation médicamenteuse"
    html = consultation.open(
        patient_id, entry.repository_id, entry.unique_id, author_rpps=PHARMACIST_RPPS
    )
    assert "FICTIVOL 10 mg cp" in html and "<script" not in html
    assert [e.type for e in events.recent()][-2:] == ["document.queued", "document.delivered"]


def test_outage_is_retried_with_backoff_then_delivered_once(
    sqlite_db: Database, catalog: InMemoryCatalog, dmp: DmpClient, dmp_sim: str, events: EventBus
) -> None:
    clock = Clock()
    documents, worker = services(sqlite_db, events, {KIND_DMP: dmp_handler(dmp)}, clock)
    patient_id = add_patient(sqlite_db, IdentityStatus.QUAL)
    view = documents.dispensing_summary(dispense(sqlite_db, catalog, patient_id), AUTHOR)

    arm_fault(dmp_sim, kind="outage", duration_s=60)
    assert worker.run_once() == 1
    [row] = deliveries(sqlite_db)
    assert (row.status, row.attempts, row.last_error) == (
        PENDING,
        1,
        "national-service-unavailable",
    )
    assert row.next_attempt_at > clock.now  # backoff: not due again at once
    assert worker.run_once() == 0
    assert worker.degraded

    httpx.delete(f"{dmp_sim}/_sim/faults", timeout=5).raise_for_status()
    clock.now += timedelta(seconds=61)
    assert worker.run_once() == 1
    [row] = deliveries(sqlite_db)
    assert (row.status, row.attempts) == (DELIVERED, 2)
    assert not worker.degraded
    stored = sim_documents(dmp_sim)
    assert [s["unique_id"] for s in stored] == [view.id]


@pytest.mark.parametrize("status", [IdentityStatus.PROV, IdentityStatus.RECUP, IdentityStatus.VALI])
def test_unqualified_identity_is_refused_before_anything_is_stored_or_sent(
    sqlite_db: Database,
    catalog: InMemoryCatalog,
    dmp: DmpClient,
    dmp_sim: str,
    events: EventBus,
    status: IdentityStatus,
) -> None:
    documents, worker = services(sqlite_db, events, {KIND_DMP: dmp_handler(dmp)}, Clock())
    patient_id = add_patient(sqlite_db, status)
    dispensation_id = dispense(sqlite_db, catalog, patient_id)
    with pytest.raises(InsNotQualifiedError):
        documents.dispensing_summary(dispensation_id, AUTHOR)
    with sqlite_db.uow(readonly=True) as uow:
        assert uow.session.query(DocumentRow).count() == 0
        assert uow.session.query(DocumentDelivery).count() == 0
    assert worker.run_once() == 0
    recorded = httpx.get(f"{dmp_sim}/_sim/recorder", params={"service": "dmp"}, timeout=5)
    assert recorded.json() == []


def test_patient_block_fails_the_delivery_with_its_reason(
    sqlite_db: Database, catalog: InMemoryCatalog, dmp: DmpClient, dmp_sim: str, events: EventBus
) -> None:
    documents, worker = services(sqlite_db, events, {KIND_DMP: dmp_handler(dmp)}, Clock())
    patient_id = add_patient(sqlite_db, IdentityStatus.QUAL)
    sim_control(dmp_sim, "patients", {"ins": FICTIVE_NIR, "oid": OID, "blocked": ["1750000000"]})
    documents.dispensing_summary(dispense(sqlite_db, catalog, patient_id), AUTHOR)
    worker.run_once()
    [row] = deliveries(sqlite_db)
    assert (row.status, row.last_error) == (FAILED, "dmp-access-refused")
    assert events.recent()[-1].type == "document.delivery_failed"


def test_vaccination_note_sent_by_mssante_with_the_cda_attached(
    sqlite_db: Database, mss_server: MssServer, mss_pki: MssPki, events: EventBus
) -> None:
    from tests.fixtures.documents import make_vaccination_note

    clock = Clock()
    mss = MssClient(mss_config(mss_server, mss_pki))
    documents, worker = services(sqlite_db, events, {KIND_MSS: mss_handler(mss)}, clock)
    patient_id = add_patient(sqlite_db, IdentityStatus.QUAL)
    recipient = "dr.exemple@medecin.mssante.fr"
    view = documents.vaccination_note(
        patient_id,
        make_vaccination_note().vaccinations,
        AUTHOR,
        to_dmp=False,
        mss_recipient=recipient,
    )
    documents.send(view.id, "mss", author_rpps=PHARMACIST_RPPS, recipient=recipient)  # twice
    assert len(documents.get(view.id).deliveries) == 1

    mss_server.mailbox.fail_next("451 4.3.0 Indisponible")
    assert worker.run_once() == 1
    assert deliveries(sqlite_db)[0].status == PENDING
    clock.now += timedelta(minutes=5)
    assert worker.run_once() == 1
    assert deliveries(sqlite_db)[0].status == DELIVERED

    [received] = mss_server.mailbox.received()
    assert received.rcpt_tos == (recipient,)
    [attachment] = list(received.parsed().iter_attachments())
    assert attachment.get_payload(decode=True) == documents.content(view.id)


def test_mssante_with_a_foreign_certificate_fails_permanently(
    sqlite_db: Database, mss_server: MssServer, mss_pki: MssPki, events: EventBus
) -> None:
    from tests.fixtures.documents import make_vaccination_note

    mss = MssClient(mss_config(mss_server, mss_pki, client=mss_pki.foreign))
    documents, worker = services(sqlite_db, events, {KIND_MSS: mss_handler(mss)}, Clock())
    patient_id = add_patient(sqlite_db, IdentityStatus.QUAL)
    documents.vaccination_note(
        patient_id,
        make_vaccination_note().vaccinations,
        AUTHOR,
        to_dmp=False,
        mss_recipient="dr.exemple@medecin.mssante.fr",
    )
    worker.run_once()
    [row] = deliveries(sqlite_db)
    assert (row.status, row.last_error) == (FAILED, "mss-tls-refused")
    assert mss_server.mailbox.received() == []


def test_documents_produced_elsewhere_are_listed_and_opened(
    sqlite_db: Database, dmp: DmpClient
) -> None:
    # The simulator's fixture DMP (hw-sim/hwsim/fixtures/national/dmp.toml) holds two documents
    # of another producer for this fictitious patient.
    patient_id = add_patient(sqlite_db, IdentityStatus.QUAL, nir=with_key("2991275056999"))
    consultation = DmpConsultation(IdentityService(sqlite_db, insi=None), dmp)  # type: ignore[arg-type]
    entries = consultation.list(patient_id, author_rpps=PHARMACIST_RPPS)
    assert sorted(e.title for e in entries) == [
        "Compte rendu d'examens biologiques",
        "Lettre de liaison",
    ]
    lab = next(e for e in entries if e.type_code == "11502-2")
    assert lab.author.startswith("810999999997^BIOLOGISTE")
    html = consultation.open(
        patient_id, lab.repository_id, lab.unique_id, author_rpps=PHARMACIST_RPPS
    )
    assert "<p>Glycémie à jeun : 0,95 g/L" in html
    assert "Laboratoire fictif de biologie" in html


def test_a_document_of_another_patient_is_never_shown(sqlite_db: Database, dmp: DmpClient) -> None:
    owner = add_patient(sqlite_db, IdentityStatus.QUAL, nir=with_key("2991275056999"))
    other = add_patient(sqlite_db, IdentityStatus.QUAL)
    consultation = DmpConsultation(IdentityService(sqlite_db, insi=None), dmp)  # type: ignore[arg-type]
    [entry, *_] = consultation.list(owner, author_rpps=PHARMACIST_RPPS)
    with pytest.raises(DmpDocumentUnknown):
        consultation.open(other, entry.repository_id, entry.unique_id, author_rpps=PHARMACIST_RPPS)


def test_one_summary_per_dispensation_whatever_the_retries(
    sqlite_db: Database, catalog: InMemoryCatalog, events: EventBus
) -> None:
    documents, _ = services(sqlite_db, events, {}, Clock())
    patient_id = add_patient(sqlite_db, IdentityStatus.QUAL)
    dispensation_id = dispense(sqlite_db, catalog, patient_id)
    first = documents.dispensing_summary(dispensation_id, AUTHOR)
    with pytest.raises(DocumentAlreadyProduced):
        documents.dispensing_summary(dispensation_id, AUTHOR)
    assert [d.id for d in documents.for_patient(patient_id)] == [first.id]
    assert len(deliveries(sqlite_db)) == 1
