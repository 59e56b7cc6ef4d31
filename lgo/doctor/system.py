"""`lgo doctor` checks of the installed system: units, rights, pcscd access, certificates, disk.

Each registered check is a thin wrapper over a function that takes its inputs as parameters, so the
tests can point it at temporary files. Every external command has a timeout; nothing here prints a
secret (certificates are described by subject common name and expiry date only).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from lgo.core.settings import Settings
from lgo.doctor.checks import CheckList, CheckResult

CHECKS = CheckList()

COMMAND_TIMEOUT_S = 3.0
UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
POLKIT_RULES = (Path("/etc/polkit-1/rules.d"), Path("/usr/share/polkit-1/rules.d"))
POLKIT_RULE_NAME = "50-lgo-pcscd.rules"
DEFAULT_PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
MIN_FREE_BYTES = 1 << 30  # 1 GiB: room for the SQLite WAL, backups and a release upgrade
MIN_FREE_RATIO = 0.05
CERT_WARNING = timedelta(days=30)


# --- systemd units -------------------------------------------------------------------------------


def systemd_is_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(*args: str) -> str:
    try:
        result = subprocess.run(
            ["systemctl", *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"systemctl sans réponse ({'délai dépassé' if isinstance(exc, subprocess.TimeoutExpired) else 'absent'})"
    return result.stdout.strip() or result.stderr.strip()


def find_unit(name: str, dirs: Sequence[Path] = UNIT_DIRS) -> Path | None:
    return next((d / name for d in dirs if (d / name).is_file()), None)


def socket_ports(unit: Path) -> list[int]:
    """TCP ports of the ListenStream= lines of a socket unit (Unix paths are skipped)."""
    ports: list[int] = []
    for line in unit.read_text().splitlines():
        match = re.fullmatch(r"\s*ListenStream\s*=\s*(\S*?):?(\d+)\s*", line)
        if match:
            ports.append(int(match[2]))
    return ports


def units_state(
    settings: Settings, dirs: Sequence[Path] = UNIT_DIRS, with_systemd: bool | None = None
) -> CheckResult:
    name = "unités systemd"
    service, sock = find_unit("lgo.service", dirs), find_unit("lgo.socket", dirs)
    if service is None or sock is None:
        if settings.mode == "bench":  # `./dev demo` or a test: lgo runs in a terminal
            return CheckResult(
                name,
                True,
                "non installées : normal sur un banc lancé à la main (`./dev demo`)",
                info=True,
            )
        return CheckResult(
            name,
            False,
            "lgo.service / lgo.socket non installés : installez le "
            "paquet (`apt install ./lgo_<version>_amd64.deb`)",
        )
    ports = socket_ports(sock)
    if ports and settings.api.port not in ports:
        return CheckResult(
            name,
            False,
            f"lgo.socket écoute sur {ports} mais api.port vaut {settings.api.port} : "
            f"mettez api.port = {ports[0]} dans lgo.toml (ou corrigez lgo.socket par "
            "`systemctl edit lgo.socket`)",
        )
    running = systemd_is_running() if with_systemd is None else with_systemd
    if not running:
        return CheckResult(name, True, f"{service.parent} ; systemd n'est pas PID 1 ici", info=True)
    active = _systemctl("is-active", "lgo.service")
    enabled = _systemctl("is-enabled", "lgo.socket")
    detail = f"lgo.service {active}, lgo.socket {enabled}"
    if active == "active" and enabled == "enabled":
        return CheckResult(name, True, detail)
    return CheckResult(
        name,
        False,
        f"{detail} : lancez `systemctl enable --now lgo.socket "
        "lgo.service`, puis `journalctl -u lgo` si le service s'arrête",
    )


@CHECKS.add
def check_units(settings: Settings) -> CheckResult:
    return units_state(settings)


# --- permissions ---------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def permission_problems(config: Path | None, state_dir: Path, uid: int) -> list[str]:
    """What is wrong with the files' modes and owners, for a daemon running as `uid`."""
    problems: list[str] = []
    if config is not None and config.exists():
        # It may hold a database password: readable by the service group, writable by its owner.
        if _mode(config) & 0o007:
            problems.append(f"{config} accessible à tous : `chmod 0640 {config}`")
        if _mode(config) & 0o020:
            problems.append(f"{config} modifiable par le groupe : `chmod 0640 {config}`")
    if not state_dir.exists():
        return problems
    if state_dir.stat().st_uid != uid:
        problems.append(
            f"{state_dir} n'appartient pas à l'utilisateur du service (uid {uid}) : "
            f"`chown -R lgo:lgo {state_dir}`"
        )
    if _mode(state_dir) & 0o077:
        problems.append(
            f"{state_dir} accessible à d'autres utilisateurs : `chmod 0700 {state_dir}`"
        )
    for db_file in sorted(state_dir.glob("*.sqlite3*")):
        if db_file.stat().st_uid != uid:
            problems.append(
                f"{db_file.name} n'appartient pas à l'utilisateur du service : "
                f"`chown lgo:lgo {db_file}`"
            )
        if _mode(db_file) & 0o077:
            problems.append(
                f"{db_file.name} accessible à d'autres utilisateurs : `chmod 0600 {db_file}`"
            )
    return problems


@CHECKS.add
def check_permissions(settings: Settings) -> CheckResult:
    name = "droits des fichiers"
    config = Path(os.environ["LGO_CONFIG"]) if os.environ.get("LGO_CONFIG") else None
    problems = permission_problems(config, settings.state_dir, os.getuid())
    if problems:
        return CheckResult(name, False, " ; ".join(problems))
    return CheckResult(name, True, f"configuration et {settings.state_dir} protégés")


# --- pcscd access --------------------------------------------------------------------------------


def pcscd_has_polkit() -> bool | None:
    """Whether the installed pcscd was built with polkit (None when pcscd is not installed)."""
    if shutil.which("pcscd") is None:
        return None
    try:
        out = subprocess.run(
            ["pcscd", "--version"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    features = next((line for line in out.splitlines() if line.startswith("Enabled features")), "")
    return "polkit" in features.split()


def pcscd_access(
    sock_path: Path, polkit: bool | None, rule_dirs: Sequence[Path] = POLKIT_RULES
) -> CheckResult:
    name = "accès à pcscd"
    if polkit and not any((d / POLKIT_RULE_NAME).is_file() for d in rule_dirs):
        return CheckResult(
            name,
            False,
            f"pcscd utilise polkit mais la règle {POLKIT_RULE_NAME} est absente : "
            "réinstallez le paquet lgo (il la pose dans /etc/polkit-1/rules.d)",
        )
    if not sock_path.exists():
        return CheckResult(
            name,
            False,
            f"{sock_path} absent : lancez `systemctl start "
            "pcscd.socket` (sur un banc : `hwsim up`)",
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(COMMAND_TIMEOUT_S)
        try:
            sock.connect(str(sock_path))
        except OSError as exc:
            return CheckResult(
                name,
                False,
                f"{sock_path} refuse la connexion ({exc.strerror}) : "
                "lancez `systemctl restart pcscd.socket`",
            )
    policy = "polkit : règle lgo présente" if polkit else "sans polkit"
    return CheckResult(name, True, f"{sock_path} joignable ({policy})")


@CHECKS.add
def check_pcscd_access(settings: Settings) -> CheckResult:
    if not settings.hardware.pcsc_enabled:
        return CheckResult("accès à pcscd", True, "PC/SC désactivé par la configuration")
    path = Path(os.environ.get("PCSCLITE_CSOCK_NAME") or DEFAULT_PCSCD_SOCKET)
    return pcscd_access(path, pcscd_has_polkit())


# --- certificates --------------------------------------------------------------------------------


def _holds_certificates(field_name: str) -> bool:
    name = field_name.lower()
    return "cert" in name or name in {"ca_file", "ca_bundle", "cafile"}


def certificate_paths(model: BaseModel) -> Iterator[Path]:
    """Every configured file whose setting name says it holds certificates (any section):
    `*cert*` (client certificates, CA certificates) and CA bundles (`ca_file`)."""
    for field_name in type(model).model_fields:
        value = getattr(model, field_name)
        if isinstance(value, BaseModel):
            yield from certificate_paths(value)
        elif _holds_certificates(field_name):
            values = value if isinstance(value, list | tuple) else [value]
            yield from (Path(v) for v in values if isinstance(v, str | Path) and str(v))


def certificate_expiry(paths: Sequence[Path], now: datetime) -> CheckResult:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = "certificats"
    if not paths:
        return CheckResult(name, True, "aucun certificat configuré")
    problems: list[str] = []
    soonest: tuple[datetime, str] | None = None
    for path in paths:
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            reason = "absent" if isinstance(exc, FileNotFoundError) else "format PEM invalide"
            problems.append(
                f"{path} illisible ({reason}) : vérifiez le chemin dans "
                "lgo.toml et les droits (root:lgo 0640)"
            )
            continue
        for cert in certs:
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            subject = cn[0].value if cn else "sans CN"
            if isinstance(subject, bytes):
                subject = subject.decode(errors="replace")
            label = f"{path.name} ({subject})"
            expires = cert.not_valid_after_utc
            if expires <= now:
                problems.append(
                    f"{label} expiré le {expires:%d/%m/%Y} : installez le certificat renouvelé"
                )
            elif expires - now <= CERT_WARNING:
                problems.append(
                    f"{label} expire le {expires:%d/%m/%Y} : commandez son renouvellement"
                )
            if soonest is None or expires < soonest[0]:
                soonest = (expires, label)
    if problems:
        return CheckResult(name, False, " ; ".join(problems))
    assert soonest is not None
    return CheckResult(name, True, f"première échéance : {soonest[1]} le {soonest[0]:%d/%m/%Y}")


@CHECKS.add
def check_certificates(settings: Settings) -> CheckResult:
    return certificate_expiry(sorted(set(certificate_paths(settings))), datetime.now(UTC))


# --- disk space ----------------------------------------------------------------------------------


def disk_space(
    path: Path, min_free: int = MIN_FREE_BYTES, min_ratio: float = MIN_FREE_RATIO
) -> CheckResult:
    name = "espace disque"
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    free_mib = usage.free // (1 << 20)
    detail = f"{free_mib} Mio libres sur {usage.total // (1 << 20)} Mio ({target})"
    ok = usage.free >= min_free and usage.free >= usage.total * min_ratio
    if ok:
        return CheckResult(name, True, detail)
    return CheckResult(
        name,
        False,
        f"espace insuffisant : {detail} ; libérez de la place (anciennes "
        "sauvegardes dans /var/lib/lgo/backups, journaux : `journalctl --vacuum-size`)",
    )


@CHECKS.add
def check_disk_space(settings: Settings) -> CheckResult:
    return disk_space(settings.state_dir)
