"""The shipped systemd units: `systemd-analyze verify` and `security` scores, and consistency.

systemd is installed but not PID 1 here; both analyses work offline on unit files. The units name
/opt/lgo/bin/lgo, which verify requires to exist, so they are rendered the way install.sh does for
an installation under another root, next to stand-in executables.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from lgo.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
SYSTEMD = REPO / "systemd"
PACKAGING = REPO / "packaging"
SCORE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+) (\w+)")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _render(text: str, root: Path) -> str:
    # Same rewrite as install.sh's render(): one pass over the four installed prefixes.
    return re.sub(r"(/opt/lgo|/etc/lgo|/var/lib/lgo|/var/log/lgo)", lambda m: f"{root}{m[1]}", text)


@pytest.fixture
def units(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for tool in ("lgo", "hwsim"):
        exe = root / "opt/lgo/bin" / tool
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    sources = ("lgo.service", "lgo.socket", "bench/lgo-hwsim.service")
    for src in (SYSTEMD / name for name in sources):
        (out / src.name).write_text(_render(src.read_text(), root))
    return out


def _verify(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=paths[0].parent,
    )


def _security(unit: Path) -> tuple[float, str]:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = SCORE.search(result.stdout)
    assert match, result.stdout + result.stderr
    return float(match[2]), match[3]


def test_units_pass_systemd_analyze_verify(units: Path) -> None:
    result = _verify(units / "lgo.service", units / "lgo.socket", units / "lgo-hwsim.service")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_verify_catches_a_broken_unit(units: Path) -> None:
    """The check above can fail: a unit with a typo in a directive is reported."""
    broken = units / "broken.service"
    broken.write_text((units / "lgo.service").read_text().replace("Type=notify", "Tpye=notify"))
    assert "Tpye" in _verify(broken).stderr


def test_lgo_service_security_score_is_ok_or_better(units: Path) -> None:
    score, level = _security(units / "lgo.service")
    print(f"systemd-analyze security lgo.service: {score} {level}")
    assert level in {"SAFE", "OK"}
    assert score <= 4.9


def test_serial_scanner_drop_in_keeps_the_score_ok(units: Path) -> None:
    dropins = units / "lgo.service.d"
    dropins.mkdir()
    shutil.copy(SYSTEMD / "dropins/serial-scanner.conf", dropins)
    assert _verify(units / "lgo.service").returncode == 0
    score, level = _security(units / "lgo.service")
    print(f"systemd-analyze security lgo.service + serial-scanner.conf: {score} {level}")
    assert level in {"SAFE", "OK"}


def test_bench_drop_in_verifies(units: Path) -> None:
    dropins = units / "lgo.service.d"
    dropins.mkdir()
    shutil.copy(SYSTEMD / "bench/bench.conf", dropins)
    result = _verify(units / "lgo.service", units / "lgo-hwsim.service")
    assert result.returncode == 0, result.stderr


def _unit_values(path: Path, key: str) -> list[str]:
    return [
        line.split("=", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.startswith(f"{key}=")
    ]


def test_service_contract_directives() -> None:
    service = SYSTEMD / "lgo.service"
    assert _unit_values(service, "Type") == ["notify"]
    assert _unit_values(service, "Restart") == ["on-failure"]
    # No start limit: the daemon must come back by itself after a long database outage.
    assert _unit_values(service, "StartLimitIntervalSec") == ["0"]
    assert _unit_values(service, "WatchdogSec")
    assert _unit_values(service, "StateDirectory") == ["lgo"]
    assert _unit_values(service, "CapabilityBoundingSet") == [""]
    assert _unit_values(service, "ProtectSystem") == ["strict"]
    assert _unit_values(service, "NoNewPrivileges") == ["yes"]


def test_socket_port_matches_the_configured_port() -> None:
    """The Origin check compares with api.port: socket, default config and settings must agree."""
    listen = _unit_values(SYSTEMD / "lgo.socket", "ListenStream")
    assert listen == [f"127.0.0.1:{Settings().api.port}"]
    config = tomllib.loads((PACKAGING / "lgo.toml").read_text())
    assert config["api"]["port"] == Settings().api.port


def test_service_user_is_the_one_created_and_granted_pcscd() -> None:
    user = _unit_values(SYSTEMD / "lgo.service", "User")
    assert user == ["lgo"]
    sysusers = (PACKAGING / "sysusers.conf").read_text().split("\n")
    assert any(line.split()[:2] == ["u", "lgo"] for line in sysusers if line.strip())
    rule = (SYSTEMD / "polkit/50-lgo-pcscd.rules").read_text()
    assert 'subject.user == "lgo"' in rule
    assert "org.debian.pcsc-lite.access_pcsc" in rule
    assert "org.debian.pcsc-lite.access_card" in rule


def test_default_config_is_valid_for_the_current_settings(tmp_path: Path) -> None:
    """Settings forbid unknown keys: a stale default lgo.toml would stop the daemon at start."""
    config = tmp_path / "lgo.toml"
    config.write_text(_render((PACKAGING / "lgo.toml").read_text(), tmp_path))
    settings = load_settings(config)
    assert settings.state_dir == tmp_path / "var/lib/lgo"
    assert settings.api.host == "127.0.0.1"


def test_bench_drop_in_gives_lgo_the_cps_path_hwsim_up_prints() -> None:
    # On the packaged bench, as with `hwsim up` in a shell: OpenSC's module drives the virtual CPS
    # (the production lgo.toml names the Cryptolib, absent from a bench), with hwsim's opensc.conf
    # (CPS4 ATR) and its test CAs for the revocation check.
    hwsim_dir = dict(
        v.split("=", 1) for v in _unit_values(SYSTEMD / "bench/lgo-hwsim.service", "Environment")
    )["LGO_HWSIM_DIR"]
    env = dict(v.split("=", 1) for v in _unit_values(SYSTEMD / "bench/bench.conf", "Environment"))
    assert env["LGO_HARDWARE__PKCS11_MODULE"].endswith("/opensc-pkcs11.so")
    assert env["OPENSC_CONF"] == f"{hwsim_dir}/opensc.conf"
    assert env["LGO_HARDWARE__CPS_CA_FILE"] == f"{hwsim_dir}/cps-ca.pem"
    assert env["PCSCLITE_CSOCK_NAME"].startswith(f"{hwsim_dir}/")
