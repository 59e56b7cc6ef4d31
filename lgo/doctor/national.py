"""`lgo doctor` probes of the national services: one line per service, green only when it answers.

Each probe calls a route that only the expected service has (the e-prescription FHIR search, the
Pro Santé Connect discovery document, the INSi/DMP/apCV SOAP or POST endpoints, which answer 405
to a GET), so an address that reaches some other web server (a 404, a login page) is red. Nothing
is sent that changes anything: searches and GETs only. The URLs are those the daemon uses
(a service's own URL, else ``national.base_url`` + the simulator's path).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from lgo.core.production import is_example_host
from lgo.core.settings import NationalSettings, Settings
from lgo.doctor.checks import CHECK_TIMEOUT_S, CheckList, CheckResult
from lgo.national.annuaire import API_KEY_HEADER

CHECKS = CheckList()

CONNECT_TIMEOUT_S = 2.0
BENCH_HINT = "sur un banc : `hwsim status`"


@dataclass(frozen=True)
class Probe:
    label: str
    setting: str  # the setting a technician corrects
    base: str
    path: str
    proves: Callable[[httpx.Response], bool]
    # Mutual TLS (INSi with the organisation certificate): PEM files, as the daemon uses them.
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_file: Path | None = None
    headers: dict[str, str] | None = None  # e.g. the Annuaire Santé API key (never printed)
    access_hint: str = "le certificat et les identifiants de lgo pour ce service"


def _json_has(response: httpx.Response, key: str, value: str | None = None) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and key in body and (value is None or body[key] == value)


def _is_405(response: httpx.Response) -> bool:
    # A GET on a POST-only endpoint: the route exists, the service is there.
    return response.status_code == 405


def _root(national: NationalSettings, own: str | None, path: str) -> str:
    return (own or national.base_url.rstrip("/") + path).rstrip("/")


def _eprescription(n: NationalSettings) -> Probe:
    return Probe(
        "e-prescription",
        "national.eprescription.url",
        _root(n, n.eprescription.url, "/eprescription/fhir"),
        "/MedicationRequest?group-identifier=LGODOCTORSONDE",
        lambda r: r.status_code == 200 and _json_has(r, "resourceType", "Bundle"),
    )


def _apcv(n: NationalSettings) -> Probe:
    return Probe(
        "apCV", "national.apcv.url", _root(n, n.apcv.url, "/apcv"), "/v1/exchange", _is_405
    )


def _insi(n: NationalSettings) -> Probe:
    insi = n.insi
    with_cert = insi.auth == "certificate"
    return Probe(
        "INSi",
        "national.insi.url",
        _root(n, insi.url, "/insi"),
        "/lps",
        _is_405,
        client_cert=insi.client_cert if with_cert else None,
        client_key=insi.client_key if with_cert else None,
        ca_file=insi.ca_file,
    )


def _dmp(n: NationalSettings) -> Probe:
    return Probe("DMP", "national.dmp.url", _root(n, n.dmp.url, "/dmp"), "/xds", _is_405)


def _psc(n: NationalSettings) -> Probe:
    return Probe(
        "Pro Santé Connect",
        "national.psc.issuer_url",
        _root(n, n.psc.issuer_url, "/psc"),
        "/.well-known/openid-configuration",
        lambda r: r.status_code == 200 and _json_has(r, "issuer"),
    )


def _annuaire(n: NationalSettings) -> Probe:
    key = n.annuaire.api_key.get_secret_value()
    return Probe(
        "Annuaire Santé",
        "national.annuaire.url",
        _root(n, n.annuaire.url, "/annuaire"),
        "/fhir/Practitioner",
        # Without a search parameter a FHIR server answers a Bundle or an OperationOutcome.
        lambda r: r.status_code in (200, 400) and _json_has(r, "resourceType"),
        headers={API_KEY_HEADER: key} if key else None,
        access_hint="la clé national.annuaire.api_key (ESANTE-API-KEY)",
    )


def why(exc: BaseException) -> str:
    """A network failure in a technician's words (never an exception class name)."""
    text = str(exc).upper()
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "délai dépassé"
    if isinstance(exc, socket.gaierror) or "NAME OR SERVICE" in text or "NAME RESOLUTION" in text:
        return "nom inconnu"
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "CERTIFICATE" in text:
        return "connexion TLS refusée"
    if isinstance(exc, ConnectionRefusedError) or "REFUSED" in text:
        return "connexion refusée"
    return "connexion impossible"


def _tls_context(probe: Probe) -> ssl.SSLContext | bool:
    if not (probe.client_cert or probe.ca_file):
        return True
    context = ssl.create_default_context(cafile=str(probe.ca_file) if probe.ca_file else None)
    if probe.client_cert:
        context.load_cert_chain(probe.client_cert, probe.client_key)
    return context


def probe_result(probe: Probe) -> CheckResult:
    name = f"service national : {probe.label}"
    url = probe.base + probe.path
    if is_example_host(urlsplit(probe.base).hostname or ""):
        return CheckResult(
            name,
            False,
            f"adresse d'exemple {probe.base} : mettez celle du "
            f"service dans {probe.setting} (lgo.toml)",
        )
    try:
        verify = _tls_context(probe)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or "format invalide"
        return CheckResult(
            name,
            False,
            f"certificats de {probe.label} illisibles ({reason}) : "
            "vérifiez leurs chemins dans lgo.toml",
        )
    try:
        response = httpx.get(
            url,
            verify=verify,
            follow_redirects=False,
            headers=probe.headers,
            timeout=httpx.Timeout(CHECK_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        )
    except (httpx.HTTPError, OSError) as exc:
        return CheckResult(
            name,
            False,
            f"{probe.base} injoignable ({why(exc)}) : "
            f"vérifiez {probe.setting}, le réseau et les certificats ({BENCH_HINT})",
        )
    code = response.status_code
    if probe.proves(response):
        return CheckResult(name, True, f"{probe.base} répond (HTTP {code})")
    if code in (401, 403):
        return CheckResult(
            name, False, f"{probe.base} refuse l'accès (HTTP {code}) : vérifiez {probe.access_hint}"
        )
    return CheckResult(
        name,
        False,
        f"{url} répond HTTP {code}, ce n'est pas le service attendu : corrigez {probe.setting}",
    )


def mss_result(settings: Settings) -> CheckResult:
    name = "service national : MSSanté"
    mss = settings.national.mss
    if not (mss.cert_file and mss.key_file and mss.ca_file):
        return CheckResult(
            name,
            True,
            "non configurée : envoi désactivé (national.mss.cert_file, "
            "key_file, ca_file pour l'activer)",
            info=True,
        )
    if is_example_host(mss.host):
        return CheckResult(
            name,
            False,
            f"adresse d'exemple {mss.host} : mettez le serveur SMTP "
            "de l'opérateur dans national.mss.host",
        )
    where = f"{mss.host}:{mss.port}"
    try:
        with socket.create_connection((mss.host, mss.port), timeout=CONNECT_TIMEOUT_S) as conn:
            conn.settimeout(CHECK_TIMEOUT_S)
            banner = conn.recv(512).decode("ascii", "replace")
    except OSError as exc:
        return CheckResult(
            name,
            False,
            f"{where} injoignable ({why(exc)}) : vérifiez national.mss.host et port ({BENCH_HINT})",
        )
    if not banner.startswith("220"):
        return CheckResult(
            name, False, f"{where} n'est pas un serveur SMTP : corrigez national.mss.host et port"
        )
    return CheckResult(name, True, f"{where} répond (SMTP)")


def _register(build: Callable[[NationalSettings], Probe], key: str) -> None:
    def check(settings: Settings) -> CheckResult:
        return probe_result(build(settings.national))

    check.__name__ = f"check_national_{key}"
    CHECKS.add(check)


for _key, _build in (
    ("eprescription", _eprescription),
    ("apcv", _apcv),
    ("insi", _insi),
    ("dmp", _dmp),
    ("psc", _psc),
    ("annuaire", _annuaire),
):
    _register(_build, _key)


@CHECKS.add
def check_national_mss(settings: Settings) -> CheckResult:
    return mss_result(settings)
