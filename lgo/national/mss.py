"""MSSanté client: send a document to a professional's secure mailbox over SMTP.

SMTP with mandatory STARTTLS (the server certificate is checked against the configured CA and host
name) and the pharmacy's organisation certificate as TLS client certificate. Every network step has
a timeout. The ``Message-ID`` is fixed by the caller (the outbox message id), so a retry after an
unclear outcome carries the same id and the receiving side can recognise it.

Functional trace (exigence SC.MSS/CONF.18): one ``mss_send`` line per message: author RPPS, local
time, action, request (Message-ID, recipient domain, number and size of attachments), response
(SMTP code or error). Never the subject, the body, the attachment or the full address.

Errors: :class:`MssRecipientRefused` (the address is not an MSSanté mailbox; permanent),
:class:`MssTlsRefused` (our certificate was refused, or the server's is not trusted),
:class:`MssMessageRefused` (5xx on the message), and the shared :class:`ServiceUnavailable` /
:class:`ServiceTimeout` for 4xx replies and network trouble (worth retrying).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Final, Protocol

import structlog

from lgo.national.errors import NationalServiceError, ServiceTimeout, ServiceUnavailable

log = structlog.get_logger("lgo.national.mss")
MAX_MESSAGE_BYTES: Final = 10 * 1024 * 1024


class MssRecipientRefused(NationalServiceError):
    slug = "mss-recipient-refused"
    status = 422
    title = "Adresse MSSanté du destinataire refusée : vérifier l'adresse dans l'annuaire"


class MssTlsRefused(NationalServiceError):
    slug = "mss-tls-refused"
    status = 502
    title = (
        "Connexion sécurisée MSSanté refusée : certificat de la pharmacie ou de l'opérateur "
        "invalide"
    )


class MssMessageRefused(NationalServiceError):
    slug = "mss-message-refused"
    status = 502
    title = "Message refusé par l'opérateur MSSanté"


@dataclass(frozen=True)
class MssConfig:
    host: str
    port: int
    sender: str  # the pharmacy's MSSanté address
    cert_file: Path  # organisation certificate (PEM) for TLS client authentication
    key_file: Path
    ca_file: Path  # CA(s) that sign the operator's server certificate
    server_name: str = "localhost"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "text"
    subtype: str = "xml"


@dataclass(frozen=True)
class MssMessage:
    message_id: str  # stable across retries (``<id@domain>`` form is built from it)
    recipient: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...] = ()

    def __repr__(self) -> str:
        return f"MssMessage({self.message_id}, {len(self.attachments)} attachment(s))"


@dataclass(frozen=True)
class MssReceipt:
    message_id: str
    code: int


class MssGateway(Protocol):
    def send(self, message: MssMessage, *, author_rpps: str) -> MssReceipt: ...


def client_tls_context(config: MssConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(config.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(config.cert_file), str(config.key_file))
    return context


def build_email(message: MssMessage, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=True)
    domain = sender.rpartition("@")[2] or "lgo.invalid"
    mail["Message-ID"] = f"<{message.message_id}@{domain}>"
    mail.set_content(message.body)
    for attachment in message.attachments:
        mail.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    return mail


class MssClient:
    """Sends one message per SMTP session (short-lived connections, nothing kept open)."""

    def __init__(self, config: MssConfig) -> None:
        self._config = config
        self._tls = client_tls_context(config)

    def send(self, message: MssMessage, *, author_rpps: str) -> MssReceipt:
        mail = build_email(message, self._config.sender)
        raw = mail.as_bytes()
        if len(raw) > MAX_MESSAGE_BYTES:
            raise MssMessageRefused("mss: message too large")
        code = 0
        outcome = "error"
        try:
            code = self._deliver(mail, message.recipient)
            outcome = str(code)
            return MssReceipt(message.message_id, code)
        except NationalServiceError as error:
            outcome = error.slug
            raise
        finally:
            self._trace(message, author_rpps, outcome, len(raw))

    def _deliver(self, mail: EmailMessage, recipient: str) -> int:
        config = self._config
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
                self._secure(smtp)
                try:
                    smtp.send_message(mail, from_addr=config.sender, to_addrs=[recipient])
                except smtplib.SMTPRecipientsRefused:
                    raise MssRecipientRefused("mss: recipient refused") from None
                except smtplib.SMTPResponseException as exc:
                    raise _reply_error(exc.smtp_code) from None
                return 250
        except TimeoutError:
            raise ServiceTimeout("mss: no answer in time") from None
        except smtplib.SMTPServerDisconnected as exc:
            if _timed_out(exc):
                raise ServiceTimeout("mss: no answer in time") from None
            raise ServiceUnavailable("mss: server disconnected") from None
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code) from None
        except ssl.SSLError:
            raise MssTlsRefused("mss: TLS refused") from None
        except OSError:
            raise ServiceUnavailable("mss: connection failed") from None

    def _secure(self, smtp: smtplib.SMTP) -> None:
        """EHLO, STARTTLS with our certificate, EHLO again; any failure here is a TLS refusal."""
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise MssTlsRefused("mss: server does not offer STARTTLS")
        try:
            smtp.starttls(context=self._tls)
            # With TLS 1.3 a refused client certificate shows on the first read after the
            # handshake: the second EHLO.
            smtp.ehlo()
        except smtplib.SMTPServerDisconnected as exc:
            if _timed_out(exc):
                raise ServiceTimeout("mss: no answer in time") from None
            raise MssTlsRefused("mss: TLS handshake refused") from None
        except (ssl.SSLError, ConnectionError):
            raise MssTlsRefused("mss: TLS handshake refused") from None

    def _trace(self, message: MssMessage, author_rpps: str, response: str, size: int) -> None:
        log.info(
            "mss_send",
            author_rpps=author_rpps,
            local_time=datetime.now().astimezone().isoformat(timespec="milliseconds"),
            action="send",
            request_id=message.message_id,
            recipient_domain=message.recipient.rpartition("@")[2],
            attachments=len(message.attachments),
            size=size,
            response=response,
        )


def _timed_out(exc: smtplib.SMTPServerDisconnected) -> bool:
    # smtplib turns a read timeout into "Connection unexpectedly closed: timed out".
    return isinstance(exc.__context__, TimeoutError) or "timed out" in str(exc)


def _reply_error(code: int) -> NationalServiceError:
    if 400 <= code < 500:
        return ServiceUnavailable(f"mss: temporary refusal {code}")
    return MssMessageRefused(f"mss: refused {code}")
