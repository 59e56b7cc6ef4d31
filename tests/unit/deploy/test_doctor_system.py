"""`lgo doctor` checks of the installed system, each pointed at temporary files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel

from lgo.core.settings import Settings
from lgo.doctor import system as doctor_system

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


def _settings(tmp_path: Path, **api: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", api=api or {"port": 8700})  # type: ignore[arg-type]


def test_checks_are_registered_by_the_doctor_itself() -> None:
    """Importing lgo.doctor.local alone (as `lgo doctor` does) brings these checks in."""
    code = "import lgo.doctor as d; print(' '.join(c.__name__ for c in d.CHECKS))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert {
        "check_units",
        "check_permissions",
        "check_pcscd_access",
        "check_certificates",
        "check_disk_space",
    } <= set(out)


# --- units ---------------------------------------------------------------------------------------


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    units = tmp_path / "units"
    units.mkdir()
    for name in ("lgo.service", "lgo.socket"):
        (units / name).write_text((REPO / "systemd" / name).read_text())
    return units


def test_units_installed_and_port_consistent(tmp_path: Path, unit_dir: Path) -> None:
    result = doctor_system.units_state(_settings(tmp_path), [unit_dir], with_systemd=False)
    assert result.ok, result.detail


def test_units_missing(tmp_path: Path) -> None:
    production = _settings(tmp_path).model_copy(update={"mode": "production"})
    result = doctor_system.units_state(production, [tmp_path], with_systemd=False)
    assert not result.ok
    assert "non installés" in result.detail and "apt install" in result.detail


def test_units_missing_on_a_bench_is_information(tmp_path: Path) -> None:
    bench = _settings(tmp_path).model_copy(update={"mode": "bench"})
    result = doctor_system.units_state(bench, [tmp_path], with_systemd=False)
    assert result.ok and result.info


def test_units_port_mismatch_is_reported(tmp_path: Path, unit_dir: Path) -> None:
    result = doctor_system.units_state(
        _settings(tmp_path, port=8800), [unit_dir], with_systemd=False
    )
    assert not result.ok
    assert "8800" in result.detail and "8700" in result.detail


def test_socket_ports_parsing(tmp_path: Path) -> None:
    unit = tmp_path / "x.socket"
    unit.write_text(
        "[Socket]\nListenStream=127.0.0.1:8700\nListenStream=/run/lgo/api.sock\n"
        "ListenStream = [::1]:8701\n"
    )
    assert doctor_system.socket_ports(unit) == [8700, 8701]


# --- permissions ---------------------------------------------------------------------------------


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "lgo.toml"
    config.write_text("")
    config.chmod(0o640)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    state.chmod(0o700)
    db = state / "lgo.sqlite3"
    db.write_bytes(b"")
    db.chmod(0o600)
    return config, state


def test_permissions_as_installed_are_fine(installed: tuple[Path, Path]) -> None:
    config, state = installed
    assert doctor_system.permission_problems(config, state, os.getuid()) == []


def test_permissions_problems_are_each_named(installed: tuple[Path, Path]) -> None:
    config, state = installed
    config.chmod(0o664)
    state.chmod(0o755)
    (state / "lgo.sqlite3").chmod(0o644)
    problems = doctor_system.permission_problems(config, state, os.getuid())
    assert len(problems) == 4, problems
    assert any("accessible à tous" in p for p in problems)
    assert any("modifiable par le groupe" in p for p in problems)
    assert any("chmod 0700" in p for p in problems)
    assert any("lgo.sqlite3" in p for p in problems)


def test_state_dir_owned_by_another_user(installed: tuple[Path, Path]) -> None:
    config, state = installed
    problems = doctor_system.permission_problems(config, state, os.getuid() + 4242)
    assert any("n'appartient pas" in p for p in problems)


# --- pcscd access --------------------------------------------------------------------------------


@pytest.fixture
def pcscd_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pcscd.comm"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    yield path
    server.close()


def test_pcscd_reachable_without_polkit(pcscd_socket: Path) -> None:
    result = doctor_system.pcscd_access(pcscd_socket, polkit=False)
    assert result.ok, result.detail


def test_pcscd_with_polkit_needs_the_rule(pcscd_socket: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.d"
    rules.mkdir()
    missing = doctor_system.pcscd_access(pcscd_socket, polkit=True, rule_dirs=[rules])
    assert not missing.ok and doctor_system.POLKIT_RULE_NAME in missing.detail
    (rules / doctor_system.POLKIT_RULE_NAME).write_text("")
    assert doctor_system.pcscd_access(pcscd_socket, polkit=True, rule_dirs=[rules]).ok


def test_pcscd_socket_absent_or_dead(tmp_path: Path) -> None:
    assert not doctor_system.pcscd_access(tmp_path / "none", polkit=False).ok
    dead = tmp_path / "dead"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(dead))  # bound, never listening: connection refused
    result = doctor_system.pcscd_access(dead, polkit=False)
    assert not result.ok and "refuse" in result.detail


def test_installed_pcscd_feature_detection() -> None:
    # Debian 12's pcscd is built without polkit (hw-feasibility.md); elsewhere just a boolean.
    assert doctor_system.pcscd_has_polkit() in (True, False, None)


# --- certificates --------------------------------------------------------------------------------


def _cert(path: Path, not_after: datetime, cn: str = "MSSANTE TEST PHARMACIE") -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_certificates_valid(tmp_path: Path) -> None:
    cert = _cert(tmp_path / "client.pem", NOW + timedelta(days=200))
    result = doctor_system.certificate_expiry([cert], NOW)
    assert result.ok
    assert "client.pem" in result.detail and "/2027" in result.detail


@pytest.mark.parametrize(("days", "word"), [(-1, "expiré"), (10, "expire le")])
def test_certificates_expired_or_expiring(tmp_path: Path, days: int, word: str) -> None:
    cert = _cert(tmp_path / "client.pem", NOW + timedelta(days=days))
    result = doctor_system.certificate_expiry([cert], NOW)
    assert not result.ok
    assert word in result.detail


def test_certificate_unreadable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = doctor_system.certificate_expiry([bad], NOW)
    assert not result.ok and "illisible" in result.detail


def test_no_certificate_configured() -> None:
    assert doctor_system.certificate_expiry([], NOW).ok


def test_certificate_settings_are_found_in_any_section(tmp_path: Path) -> None:
    class Mss(BaseModel):
        client_cert: Path | None = None
        ca_certificates: list[Path] = []
        host: str = "mss"

    class Root(BaseModel):
        mss: Mss
        name: str = "x"

    model = Root(mss=Mss(client_cert=tmp_path / "a.pem", ca_certificates=[tmp_path / "b.pem"]))
    assert list(doctor_system.certificate_paths(model)) == [tmp_path / "a.pem", tmp_path / "b.pem"]


# --- disk space ----------------------------------------------------------------------------------


def test_disk_space_ok_and_short(tmp_path: Path) -> None:
    missing_child = tmp_path / "not" / "yet"
    assert doctor_system.disk_space(missing_child, min_free=1, min_ratio=0).ok
    short = doctor_system.disk_space(tmp_path, min_free=1 << 60)
    assert not short.ok and "insuffisant" in short.detail


@pytest.mark.parametrize(
    ("active", "enabled", "ok"),
    [("active", "enabled", True), ("failed", "enabled", False), ("active", "disabled", False)],
)
def test_units_state_under_systemd(
    tmp_path: Path,
    unit_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    active: str,
    enabled: str,
    ok: bool,
) -> None:
    """With systemd as PID 1 the doctor asks systemctl (a stand-in script here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(
        "#!/bin/sh\n"
        f'case "$1 $2" in "is-active lgo.service") echo {active};; '
        f'"is-enabled lgo.socket") echo {enabled};; *) exit 1;; esac\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = doctor_system.units_state(_settings(tmp_path), [unit_dir], with_systemd=True)
    assert result.ok is ok
    assert result.detail.startswith(f"lgo.service {active}, lgo.socket {enabled}")
    assert ok or "lancez `systemctl enable --now lgo.socket lgo.service`" in result.detail


def test_certificates_of_the_real_settings_are_found(tmp_path: Path) -> None:
    """INSi and MSSanté client certificates and their CA bundles, wherever they are configured."""
    files = {name: tmp_path / f"{name}.pem" for name in ("insi", "insi-ca", "mss", "mss-ca")}
    settings = Settings(
        state_dir=tmp_path,
        national={  # type: ignore[arg-type]
            "insi": {
                "client_cert": files["insi"],
                "client_key": tmp_path / "insi-key.pem",
                "ca_file": files["insi-ca"],
            },
            "mss": {
                "cert_file": files["mss"],
                "key_file": tmp_path / "mss-key.pem",
                "ca_file": files["mss-ca"],
            },
        },
    )
    # Exactly the certificates: private keys are never read by this check.
    assert set(doctor_system.certificate_paths(settings)) == set(files.values())


def test_doctor_check_reports_an_expired_configured_certificate(tmp_path: Path) -> None:
    expired = _cert(tmp_path / "mss.pem", datetime.now(UTC) - timedelta(days=1))
    settings = Settings(
        state_dir=tmp_path,
        national={"mss": {"cert_file": expired}},  # type: ignore[arg-type]
    )
    result = doctor_system.check_certificates(settings)
    assert not result.ok and "mss.pem" in result.detail and "expiré" in result.detail
