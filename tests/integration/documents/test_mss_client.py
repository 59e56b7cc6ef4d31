"""MSSanté client against the SMTP simulator (STARTTLS + client certificates) on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from hwsim.mss import MssServer
from lgo.documents.cda import build_document
from lgo.national.errors import ServiceTimeout, ServiceUnavailable
from lgo.national.mss import (
    Attachment,
    MssClient,
    MssMessage,
    MssMessageRefused,
    MssRecipientRefused,
    MssTlsRefused,
)
from tests.fixtures.documents import (
    FICTIVE_RPPS,
    MssPki,
    make_header,
    make_vaccination_note,
    mss_config,
)

pytestmark = pytest.mark.integration
RECIPIENT = "dr.exemple@medecin.mssante.fr"


def _message(recipient: str = RECIPIENT) -> tuple[MssMessage, bytes]:
    cda = build_document(make_header(), make_vaccination_note()).xml
    message = MssMessage(
        message_id="msg-0001",
        recipient=recipient,
        subject="Note de vaccination",
        body="Veuillez trouver ci-joint la note de vaccination.",
        attachments=(Attachment("note-vaccination.xml", cda),),
    )
    return message, cda


def test_message_arrives_with_cda_and_client_certificate(
    mss_server: MssServer, mss_pki: MssPki
) -> None:
    message, cda = _message()
    receipt = MssClient(mss_config(mss_server, mss_pki)).send(message, author_rpps=FICTIVE_RPPS)
    assert receipt.code == 250
    [received] = mss_server.mailbox.received()
    assert received.rcpt_tos == (RECIPIENT,)
    assert received.mail_from == "pharmacie@pharmacie.mssante.fr"
    assert "organizationalUnitName=1750000000" in received.peer_subject
    assert received.tls_version in ("TLSv1.2", "TLSv1.3")
    parsed = received.parsed()
    assert parsed["Message-ID"] == "<msg-0001@pharmacie.mssante.fr>"
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "note-vaccination.xml"
    assert attachment.get_content_type() == "text/xml"
    assert attachment.get_payload(decode=True) == cda


def test_foreign_client_certificate_is_refused(mss_server: MssServer, mss_pki: MssPki) -> None:
    client = MssClient(mss_config(mss_server, mss_pki, client=mss_pki.foreign))
    with pytest.raises(MssTlsRefused):
        client.send(_message()[0], author_rpps=FICTIVE_RPPS)
    assert mss_server.mailbox.received() == []


def test_non_mssante_recipient_is_refused(mss_server: MssServer, mss_pki: MssPki) -> None:
    client = MssClient(mss_config(mss_server, mss_pki))
    with pytest.raises(MssRecipientRefused):
        client.send(_message("someone@example.org")[0], author_rpps=FICTIVE_RPPS)
    assert mss_server.mailbox.received() == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [("451 4.3.0 Indisponible", ServiceUnavailable), ("554 5.6.0 Refus", MssMessageRefused)],
)
def test_operator_refusals_are_typed(
    mss_server: MssServer, mss_pki: MssPki, reply: str, error: type[Exception]
) -> None:
    mss_server.mailbox.fail_next(reply)
    with pytest.raises(error):
        MssClient(mss_config(mss_server, mss_pki)).send(_message()[0], author_rpps=FICTIVE_RPPS)
    assert mss_server.mailbox.received() == []


def test_server_down_is_service_unavailable(mss_server: MssServer, mss_pki: MssPki) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = mss_config(mss_server, mss_pki)
    config = type(config)(**{**config.__dict__, "port": closed_port})
    with pytest.raises(ServiceUnavailable):
        MssClient(config).send(_message()[0], author_rpps=FICTIVE_RPPS)


def test_trace_has_author_and_ids_never_content(mss_server: MssServer, mss_pki: MssPki) -> None:
    message, _ = _message()
    with capture_logs() as logs:
        MssClient(mss_config(mss_server, mss_pki)).send(message, author_rpps=FICTIVE_RPPS)
    [trace] = [entry for entry in logs if entry["event"] == "mss_send"]
    assert trace["author_rpps"] == FICTIVE_RPPS
    assert trace["request_id"] == "msg-0001"
    assert trace["response"] == "250"
    assert trace["recipient_domain"] == "medecin.mssante.fr"
    flat = repr(trace)
    for secret in ("dr.exemple", "Note de vaccination", "ci-joint", "FICTIF", "LOT-42A"):
        assert secret not in flat


def test_a_silent_server_is_a_timeout(mss_server: MssServer, mss_pki: MssPki) -> None:
    mss_server.mailbox.hold_next(3.0)
    config = mss_config(mss_server, mss_pki)
    config = type(config)(**{**config.__dict__, "timeout_s": 0.5})
    with pytest.raises(ServiceTimeout):
        MssClient(config).send(_message()[0], author_rpps=FICTIVE_RPPS)
    assert mss_server.mailbox.received() == []
