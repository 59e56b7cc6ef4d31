"""Revocation of the CPS card at login: the relying party's policy over :class:`CrlStore`.

Before the PIN is presented, the card's public authentication certificate is checked against the
trusted CAs (``hardware.cps_ca_file``) and its issuer's CRL (docs/cps-revocation.md says why):

- on a CRL that is fresh, or cached and still valid (up to ``nextUpdate + hardware.cps_crl_grace_h``)
  the card is listed → :class:`CpsRevoked`, always;
- the certificate does not chain to a trusted CA, or is expired → :class:`CpsCertificateUntrusted`;
- no usable CRL → ``hardware.cps_revocation``: ``soft-fail`` (default) lets the login through,
  logs ``cps_revocation_unknown`` and publishes ``cps.revocation_unknown``; ``hard-fail`` refuses
  with :class:`CpsRevocationUnknown`; ``off`` skips the whole check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lgo.core.errors import Forbidden, Unavailable
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.national.transport import NationalHttpClient, RetryPolicy

if TYPE_CHECKING:
    from lgo.core.settings import Settings
    from lgo.national.crl import CrlStore, Verdict

log = get_logger(__name__)
CRL_FOLDER = "crl"


class CpsRevoked(Forbidden):
    slug = "cps-revoked"
    title = (
        "Carte CPS révoquée : elle ne peut plus être utilisée. Prenez une autre carte et "
        "demandez son remplacement à l'ANS"
    )


class CpsCertificateUntrusted(Forbidden):
    slug = "cps-certificate-untrusted"
    title = "Certificat de la carte CPS non reconnu (autorité non approuvée ou certificat expiré)"


class CpsRevocationUnknown(Unavailable):
    slug = "cps-revocation-unknown"
    title = (
        "Impossible de vérifier que la carte CPS n'est pas révoquée (liste de révocation "
        "injoignable) : réessayez plus tard"
    )


class CpsRevocationCheck:
    """``check`` blocks (HTTP): call it where the login already runs off the event loop."""

    def __init__(self, store: CrlStore | None, policy: str, events: EventBus | None = None) -> None:
        self._store = store
        self._policy = policy
        self._events = events

    def check(self, certificate_der: Callable[[], bytes], reader: str) -> Verdict | None:
        """Raise the card's refusal, if any; ``certificate_der`` reads the card's authentication
        certificate (called only when there is something to check it against)."""
        if self._policy == "off":
            return None
        # lgo.national.crl and cryptography.x509 (~25 ms) are loaded at the first card check,
        # not at the daemon's start.
        from cryptography import x509

        from lgo.national.crl import Verdict

        if self._store is None:
            return self._unknown(Verdict("unknown", "no_trusted_ca_configured"), reader)
        try:
            cert = x509.load_der_x509_certificate(certificate_der())
        except ValueError:
            log.info("cps_certificate_unreadable", reader=reader)
            raise CpsCertificateUntrusted("certificat illisible") from None
        verdict = self._store.check(cert)
        log.info(
            "cps_revocation_checked", reader=reader, status=verdict.status, reason=verdict.reason
        )
        if verdict.status == "revoked":
            raise CpsRevoked()
        if verdict.status == "untrusted":
            raise CpsCertificateUntrusted(reason=verdict.reason)
        if verdict.status == "unknown":
            return self._unknown(verdict, reader)
        return verdict

    def _unknown(self, verdict: Verdict, reader: str) -> Verdict:
        log.warning(
            "cps_revocation_unknown", reader=reader, reason=verdict.reason, policy=self._policy
        )
        if self._policy == "hard-fail":
            raise CpsRevocationUnknown(reason=verdict.reason)
        if self._events is not None:
            self._events.publish(
                "cps.revocation_unknown", {"reader": reader, "reason": verdict.reason}
            )
        return verdict

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def revocation_check_from(
    settings: Settings,
    events: EventBus | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CpsRevocationCheck:
    """``clock``: the "now" a CRL's freshness (``nextUpdate`` + grace) is judged on."""
    hardware, national = settings.hardware, settings.national
    store = None
    if hardware.cps_ca_file is not None and hardware.cps_revocation != "off":
        from lgo.national.crl import CrlStore, load_anchors  # cryptography: only when configured

        http = NationalHttpClient(
            "pki",
            "",
            timeout_s=national.timeout_s,
            connect_timeout_s=national.connect_timeout_s,
            retry=RetryPolicy(attempts=2),  # a login waits on it: one retry at most
            max_body_bytes=hardware.cps_crl_max_kb * 1024,
        )
        store = CrlStore(
            load_anchors(hardware.cps_ca_file),
            settings.state_dir / CRL_FOLDER,
            http,
            grace=timedelta(hours=hardware.cps_crl_grace_h),
            clock=clock,
        )
    return CpsRevocationCheck(store, hardware.cps_revocation, events)
