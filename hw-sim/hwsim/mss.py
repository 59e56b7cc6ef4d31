"""MSSanté simulator: an SMTP server (aiosmtpd) on 127.0.0.1 with STARTTLS and client certificates.

- STARTTLS is mandatory before ``MAIL`` (``require_starttls``); the TLS context *requires* a client
  certificate issued by the test CA (``ssl.CERT_REQUIRED``): a missing or foreign certificate ends
  the handshake, and the message never arrives.
- Recipients must be in an MSSanté domain (``*.mssante.fr`` by default), else ``550 5.1.1``.
- Every accepted message is recorded with the client certificate's subject and the TLS version
  (:attr:`MssMailbox.messages`); refusals are counted in :attr:`MssMailbox.refusals`.
- With an inbox folder (``--dir``/inbox when run alone), every accepted message is also written
  there (``NNNNNN.eml`` and its envelope in ``NNNNNN.json``) so that a technician can read the
  simulated mailbox from another process (``hwsim mss inbox``).
- Faults on demand: :meth:`MssMailbox.fail_next` answers the next ``DATA`` with a given SMTP reply
  (``451`` temporary, ``554`` permanent); :meth:`MssMailbox.hold_next` holds the next ``DATA``
  reply for a while (client timeouts), the message being dropped.

Runs in its own thread (:class:`MssServer`), separate from the national HTTP app.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

DEFAULT_DOMAINS = ("mssante.fr",)


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    peer_subject: str
    tls_version: str

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class MssMailbox:
    """The aiosmtpd handler: accepts, records, refuses, or fails on demand (thread-safe)."""

    domains: tuple[str, ...] = DEFAULT_DOMAINS
    inbox_dir: Path | None = None
    messages: list[ReceivedMessage] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    _faults: deque[str] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` DATA commands with ``reply`` (e.g. ``451 4.3.0 Busy``)."""
        with self._lock:
            self._faults.extend([reply] * times)

    def hold_next(self, seconds: float) -> None:
        """Hold the next DATA reply ``seconds`` (then refuse it: the client has given up)."""
        with self._lock:
            self._faults.append(f"hold:{seconds}")

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.refusals.clear()
            self._faults.clear()

    def received(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self.messages)

    def _accepts(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.domains)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self._accepts(address):
            with self._lock:
                self.refusals.append("550 unknown recipient")
            return "550 5.1.1 Destinataire inconnu de l'annuaire MSSante"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            with self._lock:
                self.refusals.append(fault)
            if fault.startswith("hold:"):
                await asyncio.sleep(float(fault.removeprefix("hold:")))
                return "451 4.4.2 Delai depasse"
            return fault
        ssl_object = (session.ssl or {}).get("ssl_object")
        if ssl_object is None:  # require_starttls makes this unreachable; fail closed anyway
            return "530 5.7.0 STARTTLS requis"
        peer = ssl_object.getpeercert() or {}
        subject = ", ".join(
            f"{key}={value}" for rdn in peer.get("subject", ()) for key, value in rdn
        )
        message = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=bytes(envelope.original_content or envelope.content),
            peer_subject=subject,
            tls_version=str(ssl_object.version()),
        )
        with self._lock:
            self.messages.append(message)
            if self.inbox_dir is not None:
                _write_to_inbox(self.inbox_dir, message)
        return "250 2.0.0 Message accepte"


def _write_to_inbox(folder: Path, message: ReceivedMessage) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    number = len(list(folder.glob("*.eml"))) + 1
    envelope = {
        "mail_from": message.mail_from,
        "rcpt_tos": list(message.rcpt_tos),
        "peer_subject": message.peer_subject,
        "tls_version": message.tls_version,
    }
    # The envelope last: a reader lists the .json files, so it never sees a half-written .eml.
    (folder / f"{number:06d}.eml").write_bytes(message.content)
    (folder / f"{number:06d}.json").write_text(json.dumps(envelope), encoding="utf-8")


def server_tls_context(cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """TLS ≥ 1.2, server certificate, client certificate required and checked against the CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class _BoundController(Controller):
    """aiosmtpd Controller on a socket we bound ourselves (port 0: the OS picks a free port)."""

    def __init__(self, handler: MssMailbox, host: str, port: int, **kwargs: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        super().__init__(handler, hostname=host, port=self._sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class MssServer:
    """The SMTP server in a background thread: ``start()``, ``port``, ``stop()``."""

    def __init__(
        self,
        tls: ssl.SSLContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mailbox: MssMailbox | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the MSSanté simulator only listens on loopback")
        self.mailbox = mailbox or MssMailbox()
        self._controller = _BoundController(
            self.mailbox,
            host,
            port,
            tls_context=tls,
            require_starttls=True,
            server_hostname="localhost",
            ident="hwsim MSSante",
            timeout=timeout_s,
            data_size_limit=10 * 1024 * 1024,
        )

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


# --- standalone: ``python -m hwsim.mss`` -------------------------------------------------------


def provision(folder: Path) -> dict[str, str]:
    """A fresh test PKI in ``folder``: CA, server certificate, the pharmacy's client certificate."""
    from hwsim.national.mss_pki import make_ca, organisation_name, server_name

    ca = make_ca(folder)
    server = ca.issue(folder, "server", server_name(), server=True)
    subject = organisation_name("PHARMACIE DE DEMONSTRATION", "1750000000", "pharmacie.mssante.fr")
    pharmacy = ca.issue(folder, "pharmacy", subject, server=False)
    return {
        "ca_file": str(ca.cert_file),
        "server_cert": str(server.cert_file),
        "server_key": str(server.key_file),
        "cert_file": str(pharmacy.cert_file),
        "key_file": str(pharmacy.key_file),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="Simulateur MSSanté (SMTP + STARTTLS, 127.0.0.1)")
    parser.add_argument("--dir", type=Path, default=Path("./.state/hwsim/mss"))
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args(argv)
    paths = provision(args.dir.absolute())
    tls = server_tls_context(
        Path(paths["server_cert"]), Path(paths["server_key"]), Path(paths["ca_file"])
    )
    mailbox = MssMailbox(inbox_dir=args.dir.absolute() / "inbox")
    server = MssServer(tls, port=args.port, mailbox=mailbox)
    server.start()
    settings = {
        "LGO_NATIONAL__MSS__HOST": server.host,
        "LGO_NATIONAL__MSS__PORT": str(server.port),
        "LGO_NATIONAL__MSS__CERT_FILE": paths["cert_file"],
        "LGO_NATIONAL__MSS__KEY_FILE": paths["key_file"],
        "LGO_NATIONAL__MSS__CA_FILE": paths["ca_file"],
    }
    # One line, flushed: `hwsim up` waits for it on a pipe to learn the port and the files.
    ready = {"listening": f"{server.host}:{server.port}", "daemon_env": settings}
    print(json.dumps(ready), flush=True)  # noqa: T201
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
