"""Certificate revocation lists, as a relying party reads them (RFC 5280 §6.3).

:class:`CrlStore` answers "is this certificate revoked?" for certificates issued by one of the CA
certificates lgo trusts (``anchors``):

1. the issuer is found among the anchors by name (and key identifier) and the certificate's
   signature and dates are checked, else the verdict is ``untrusted``;
2. the CRL is taken from the certificate's CRL distribution point (``http``/``https`` URLs only),
   through :class:`lgo.national.transport.NationalHttpClient` (timeouts, size cap, one trace line);
3. a CRL is used only if its issuer is the certificate's issuer and its signature verifies with
   the issuer's key; it is kept in memory and on disk (``<cache_dir>/<sha256(url)>.crl``, 0600)
   and reused without network until its ``nextUpdate``;
4. when no fresh CRL can be had (network down, bad answer), the last good one is still used until
   ``nextUpdate + grace`` (verdict reason ``stale_crl``); beyond that the verdict is ``unknown``.
   A failed download is not retried for :data:`RETRY_AFTER` so a login never waits twice.

What to do with ``unknown`` is the caller's policy (see ``docs/cps-revocation.md``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from lgo.core.errors import LgoError
from lgo.national.transport import NationalHttpClient

log = structlog.get_logger("lgo.national.crl")

RETRY_AFTER: Final = timedelta(seconds=60)
CLOCK_SKEW: Final = timedelta(minutes=5)
Status = Literal["good", "revoked", "unknown", "untrusted"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str  # English code for logs: fresh_crl, cached_crl, stale_crl, crl_unavailable, ...
    next_update: datetime | None = None


@dataclass(frozen=True)
class _Crl:
    crl: x509.CertificateRevocationList
    next_update: datetime


def load_anchors(path: Path) -> list[x509.Certificate]:
    """The CA certificates of a PEM bundle (an unreadable bundle is a configuration error)."""
    return list(x509.load_pem_x509_certificates(path.read_bytes()))


def _key_id(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The HTTP(S) URLs of the certificate's CRL distribution points (LDAP ones are skipped)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.lower().startswith(("http://", "https://"))
    ]


def cache_path(cache_dir: Path, url: str) -> Path:
    """Where the CRL downloaded from ``url`` is kept."""
    return cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.crl"


class CrlStore:
    """Verified CRLs by URL, in memory and on disk. Thread-safe; blocking (HTTP)."""

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        cache_dir: Path,
        http: NationalHttpClient,
        *,
        grace: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._anchors = list(anchors)
        self._dir = cache_dir
        self._http = http
        self._grace = grace
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: dict[str, _Crl] = {}
        self._failed_until: dict[str, datetime] = {}

    def close(self) -> None:
        self._http.close()

    def check(self, cert: x509.Certificate) -> Verdict:
        now = self._clock()
        issuer = self._issuer(cert, now)
        if issuer is None:
            return Verdict("untrusted", "issuer_not_trusted")
        if not cert.not_valid_before_utc - CLOCK_SKEW <= now <= cert.not_valid_after_utc:
            return Verdict("untrusted", "certificate_out_of_validity")
        urls = crl_urls(cert)
        if not urls:
            return Verdict("unknown", "no_crl_distribution_point")
        for url in urls:
            found, reason = self._crl(url, issuer, now)
            if found is not None:
                revoked = found.crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                status: Status = "revoked" if revoked is not None else "good"
                return Verdict(status, reason, found.next_update)
        return Verdict("unknown", "crl_unavailable")

    # --- issuer --------------------------------------------------------------------------------

    def _issuer(self, cert: x509.Certificate, now: datetime) -> x509.Certificate | None:
        wanted = _key_id(cert, x509.AuthorityKeyIdentifier)
        for anchor in self._anchors:
            if anchor.subject != cert.issuer:
                continue
            if wanted is not None and _key_id(anchor, x509.SubjectKeyIdentifier) not in (
                None,
                wanted,
            ):
                continue
            try:
                cert.verify_directly_issued_by(anchor)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if anchor.not_valid_before_utc <= now <= anchor.not_valid_after_utc:
                return anchor
        return None

    # --- CRLs ----------------------------------------------------------------------------------

    def _crl(self, url: str, issuer: x509.Certificate, now: datetime) -> tuple[_Crl | None, str]:
        with self._lock:
            held = self._memory.get(url) or self._from_disk(url, issuer)
            if held is not None and now < held.next_update:
                return held, "cached_crl"
            if self._failed_until.get(url, now) <= now:
                fetched = self._download(url, issuer, now)
                if fetched is not None:
                    self._keep(url, fetched)
                    return fetched, "fresh_crl"
                self._failed_until[url] = now + RETRY_AFTER
            if held is not None and now < held.next_update + self._grace:
                return held, "stale_crl"
            return None, "crl_unavailable"

    def _download(self, url: str, issuer: x509.Certificate, now: datetime) -> _Crl | None:
        try:
            response = self._http.request(
                "crl_fetch", "GET", url, author_rpps=None, idempotent=True
            )
        except LgoError as exc:
            log.warning("crl_fetch_failed", url=url, error=exc.slug)
            return None
        if response.status_code != 200:
            log.warning("crl_fetch_failed", url=url, error=f"http_{response.status_code}")
            return None
        verified = self._verified(response.content, issuer)
        if verified is None:
            log.warning("crl_refused", url=url)
        elif verified.crl.last_update_utc > now + CLOCK_SKEW:
            log.warning("crl_refused_from_the_future", url=url)
            return None
        return verified

    @staticmethod
    def _verified(data: bytes, issuer: x509.Certificate) -> _Crl | None:
        """The CRL in ``data`` (DER, or PEM) if ``issuer`` signed it and it says when it expires."""
        try:
            crl = (
                x509.load_pem_x509_crl(data)
                if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_crl(data)
            )
        except ValueError:
            return None
        if crl.issuer != issuer.subject or crl.next_update_utc is None:
            return None
        public_key = issuer.public_key()
        try:
            valid = crl.is_signature_valid(public_key)  # type: ignore[arg-type]
        except TypeError:
            return None
        return _Crl(crl, crl.next_update_utc) if valid else None

    def _path(self, url: str) -> Path:
        return cache_path(self._dir, url)

    def _from_disk(self, url: str, issuer: x509.Certificate) -> _Crl | None:
        try:
            data = self._path(url).read_bytes()
        except OSError:
            return None
        found = self._verified(data, issuer)  # checked again: the file is outside our process
        if found is not None:
            self._memory[url] = found
        return found

    def _keep(self, url: str, found: _Crl) -> None:
        self._memory[url] = found
        self._failed_until.pop(url, None)
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self._path(url)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                out.write(found.crl.public_bytes(Encoding.DER))
            tmp.replace(path)
        except OSError as exc:  # the memory copy still serves; the next start fetches again
            log.warning("crl_cache_write_failed", error=type(exc).__name__)
