"""Production mode: the settings a counter PC must not run with.

``mode = "production"`` (the default) makes ``lgo serve`` refuse to start while any setting still
points at the bench: a national endpoint on the loopback (the hw-sim simulator) or on a reserved
example host (``*.invalid``, ``example.org``: the placeholders of the documented example file), the
simulator's client secret, an example identifier (IDAM, FINESS, pharmacy name), the simulator-only
SoftHSM as the CPS middleware, or a certificate of hw-sim's test PKI. Each problem
names its setting and says what to put there, in French, for the technician. ``mode = "bench"``
(``./dev demo``, the bench units, the tests) skips all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from lgo.core.settings import Settings, is_loopback

# Values that only make sense against hw-sim (its fixtures and lgo's bench defaults).
SIMULATOR_VALUES: dict[str, frozenset[str]] = {
    "national.psc.client_secret": frozenset({"lgo-officine-sim-secret"}),
    "national.insi.idam": frozenset({"LGO-SIM-0001", "LGO-DEMO-0001"}),
    "national.mss.sender": frozenset({"pharmacie@pharmacie.mssante.fr"}),
    "pharmacy.finess": frozenset(
        {"000000000", "750000000", "759999999", "750999991", "750999992", "750999993", "750999994"}
    ),
    "pharmacy.name": frozenset({"Pharmacie de démonstration"}),
    "pharmacy.address": frozenset({"1 place de l'Exemple, 75000 Paris"}),
}
# What the example production file puts where a value must be filled in.
PLACEHOLDER = "A-REMPLIR"
# RFC 2606 / RFC 6761 names that never reach a real service.
RESERVED_SUFFIXES = (".invalid", ".example", ".test", ".localhost")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
# Settings that legitimately name the loopback: the counter page's own address.
LOOPBACK_ALLOWED = frozenset({"national.psc.redirect_uri"})


def _leaves(model: BaseModel, prefix: str) -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def is_example_host(host: str) -> bool:
    """A reserved name (RFC 2606/6761) that never reaches a real service: a placeholder."""
    name = host.strip("[]").lower().rstrip(".")
    return name.endswith(RESERVED_SUFFIXES) or any(
        name == d or name.endswith("." + d) for d in RESERVED_DOMAINS
    )


def _host_problem(path: str, host: str) -> str | None:
    if path not in LOOPBACK_ALLOWED and is_loopback(host.strip("[]").lower().rstrip(".")):
        return (
            f"{path} : {host} est une adresse locale (le simulateur hw-sim) ; mettez l'adresse "
            "du service national (guide de déploiement, deployment.md)"
        )
    if is_example_host(host):
        return f"{path} : {host} est une adresse d'exemple ; mettez l'adresse réelle du service"
    return None


def _national_endpoint_problem(path: str, value: object) -> str | None:
    if path == "national.mss.host" and isinstance(value, str):
        return _host_problem(path, value)
    if isinstance(value, str) and "://" in value:
        return _host_problem(path, urlsplit(value).hostname or "")
    return None


def _value_problem(path: str, value: object) -> str | None:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        return None
    if text in SIMULATOR_VALUES.get(path, frozenset()):
        if isinstance(value, SecretStr):  # never print a secret, even the simulator's
            return f"{path} : c'est le secret du simulateur ; mettez celui attribué à l'officine"
        return (
            f"{path} : {text!r} est une valeur d'exemple ou du banc de test ; mettez "
            "celle de l'officine"
        )
    if PLACEHOLDER in text:
        return f"{path} : valeur à remplir ({PLACEHOLDER})"
    return None


def _hwsim_certificate(path: Path) -> bool:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return False  # unreadable files are lgo doctor's business
    # hwsim's MSSanté CA names itself; its IGC-Santé-like PKI carries OU=IGC-SANTE TEST
    return any(
        "hwsim" in c.issuer.rfc4514_string().lower()
        or "IGC-SANTE TEST" in c.issuer.rfc4514_string()
        for c in certs
    )


def _insi_problems(settings: Settings) -> Iterator[str]:
    insi = settings.national.insi
    if insi.auth == "certificate" and not (insi.client_cert and insi.client_key):
        yield (
            'national.insi.client_cert : manquant avec auth = "certificate" ; déposez le '
            'certificat INSI-AUTO et sa clé (client_cert, client_key), ou mettez auth = "cps"'
        )


def _annuaire_problems(settings: Settings) -> Iterator[str]:
    if not settings.national.annuaire.api_key.get_secret_value().strip():
        yield (
            "national.annuaire.api_key : manquante ; l'API FHIR de l'Annuaire Santé refuse "
            "tout appel sans la clé ESANTE-API-KEY de l'officine (portail de l'ANS) ; mettez-la"
        )


def missing_files(settings: Settings) -> list[str]:
    """Configured national certificate and key files that are not there (any mode): lgo says so
    instead of failing later in a TLS call or at start."""
    problems = []
    for path, value in _leaves(settings.national, "national."):
        if isinstance(value, Path) and not value.is_file():
            problems.append(
                f"{path} : {value} introuvable ; déposez le fichier ou retirez le "
                "réglage de lgo.toml"
            )
    return problems


def _hardware_problems(settings: Settings) -> Iterator[str]:
    module = settings.hardware.pkcs11_module
    if module is not None and "softhsm" in module.name.lower():
        yield (
            f"hardware.pkcs11_module : {module} est SoftHSM (le banc de test) ; mettez le "
            "module Cryptolib CPS"
        )
    yield from _cps_trust_problems(settings)


def _cps_trust_problems(settings: Settings) -> Iterator[str]:
    """The CPS revocation check (docs/cps-revocation.md) must run against the real IGC-Santé CAs."""
    hardware = settings.hardware
    if hardware.cps_revocation == "off":
        yield (
            "hardware.cps_revocation : off ne vérifie pas si la carte CPS est révoquée ; "
            "mettez soft-fail ou hard-fail"
        )
    ca_file = hardware.cps_ca_file
    if ca_file is None and hardware.cps_revocation != "off":
        yield (
            "hardware.cps_ca_file : manquant ; sans les AC IGC-Santé, la révocation des cartes "
            "CPS n'est jamais vérifiée (docs/cps-revocation.md) ; déposez-les et mettez le chemin"
        )
    if ca_file is not None and _hwsim_certificate(ca_file):
        yield (
            f"hardware.cps_ca_file : {ca_file} contient les AC de test du banc (hwsim) ; "
            "mettez les AC IGC-Santé"
        )


def production_problems(settings: Settings) -> list[str]:
    """Every setting that belongs to a bench, one French line each (empty: ready for production)."""
    problems: list[str] = []
    for path, value in _leaves(settings, ""):
        problem = _value_problem(path, value)
        if problem is None and path.startswith("national."):
            problem = _national_endpoint_problem(path, value) or _certificate_problem(path, value)
        if problem is not None:
            problems.append(problem)
    problems.extend(_insi_problems(settings))
    problems.extend(_annuaire_problems(settings))
    problems.extend(_hardware_problems(settings))
    return problems


def _certificate_problem(path: str, value: object) -> str | None:
    if path.endswith(".ca_file") and isinstance(value, Path) and _hwsim_certificate(value):
        return (
            f"{path} : {value} contient les AC de test de hw-sim ; mettez les AC du service "
            "national (celles de son opérateur)"
        )
    if "cert" in path and isinstance(value, Path) and _hwsim_certificate(value):
        return (
            f"{path} : {value} est un certificat de test de hw-sim ; mettez le certificat "
            "IGC-Santé de l'officine"
        )
    return None


def refusal_message(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return (
        "Mode production : lgo refuse de démarrer avec des réglages du banc de test.\n"
        f"{lines}\n"
        "Corrigez la configuration (guide de déploiement, deployment.md), ou, sur un banc de test seulement, "
        'mettez mode = "bench".'
    )
