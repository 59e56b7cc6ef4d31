"""Install → run → upgrade → data kept → uninstall, with the real scripts, under a temporary root.

packaging/build.sh builds the wheel set (lgo, lgo-hwsim and every dependency); install.sh installs
it offline under `--root`, which rewrites every path into the temporary folder and leaves the real
/etc, /opt and /var alone. The "upgrade" is a second wheel set whose lgo wheel has a higher version
and one more migration, built from a copy of the source tree.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lgo
from lgo.doctor.system import permission_problems
from tests.fixtures.deploy import deploy_env
from tests.integration.deploy.daemon import Daemon

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 300
PROBE_TABLE = "deploy_upgrade_probe"
UPGRADE_MIGRATION = f'''"""Upgrade probe used by tests/integration/deploy (never shipped).

Revision ID: deploytest_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "deploytest_0001"
down_revision = "0001_foundation"
branch_labels = ("deploytest",)
depends_on = None


def upgrade() -> None:
    op.create_table("{PROBE_TABLE}", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("{PROBE_TABLE}")
'''


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def _env() -> dict[str, str]:
    return deploy_env()


@pytest.fixture(scope="module")
def upgrade_set(
    deploy_wheelset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """The same wheel set with lgo at version <current>.post1 carrying one more migration."""
    version = f"{lgo.__version__}.post1"
    src = tmp_path_factory.mktemp("src-upgrade")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("lgo", "drivers"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    init = src / "lgo/__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
    (src / "lgo/store/migrations/versions/deploytest_0001_upgrade_probe.py").write_text(
        UPGRADE_MIGRATION
    )
    new_set = tmp_path_factory.mktemp("dist-upgrade") / deploy_wheelset.name
    shutil.copytree(deploy_wheelset, new_set)
    for old in new_set.glob("wheels/lgo-[0-9]*.whl"):
        old.unlink()
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        new_set / "wheels",
        src,
        env=_env(),
    )
    return new_set, version


@pytest.fixture
def running() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def _daemon(root: Path, tmp: Path, running: list[Daemon]) -> Daemon:
    env = {**_env(), "LGO_CONFIG": str(root / "etc/lgo/lgo.toml")}
    daemon = Daemon(root / "opt/lgo/bin/lgo", tmp, env)
    running.append(daemon)
    daemon.wait_ready()
    return daemon


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# Two offline installs of ~50 wheels and two daemon starts: minutes on a loaded 2-core machine.
@pytest.mark.timeout(900)
def test_install_run_upgrade_keeps_data_then_uninstall(
    tmp_path: Path, deploy_wheelset: Path, upgrade_set: tuple[Path, str], running: list[Daemon]
) -> None:
    root = tmp_path / "root"
    opt, etc, state = root / "opt/lgo", root / "etc/lgo", root / "var/lib/lgo"
    units = root / "usr/local/lib/systemd/system"
    wrapper = root / "usr/local/bin/lgo"

    # --- install ---------------------------------------------------------------------------
    _run(deploy_wheelset / "install.sh", "--root", root, env=_env())
    assert (etc / "lgo.toml").is_file()
    assert f'state_dir = "{state}"' in (etc / "lgo.toml").read_text()
    assert (state.stat().st_mode & 0o777) == 0o700
    assert (root / "etc/polkit-1/rules.d/50-lgo-pcscd.rules").is_file()
    assert (root / "usr/local/lib/sysusers.d/lgo.conf").is_file()
    service = (units / "lgo.service").read_text()
    assert f"ExecStart={opt}/bin/lgo serve" in service
    first_release = (opt / "current").resolve()
    assert first_release.name.startswith(lgo.__version__ + "-")
    # The installed units verify, now that their executable really exists.
    if shutil.which("systemd-analyze"):
        verify = _run("systemd-analyze", "verify", units / "lgo.service", units / "lgo.socket")
        assert verify.stderr.strip() == ""
    assert (state / "lgo.sqlite3").is_file()  # migrated by the installer

    # --- run: a counter, its token, the daemon serving it -------------------------------------
    token = _run(wrapper, "counters", "add", "comptoir-1", env=_env()).stdout.strip()
    # Files as installed pass the doctor's rights check (config 0640, state 0700, db 0600) ...
    assert permission_problems(etc / "lgo.toml", state, os.getuid()) == []
    # ... and the installed doctor runs the installed system's checks.
    doctor = subprocess.run(
        [wrapper, "doctor"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**_env(), "COLUMNS": "200", "LGO_HARDWARE__PCSC_ENABLED": "false"},
    )
    assert doctor.returncode in (0, 1), doctor.stderr
    assert "droits des fichiers" in doctor.stdout and "espace disque" in doctor.stdout
    daemon = _daemon(root, tmp_path, running)
    assert daemon.get("/v1/health", token).status_code == 200
    daemon.stop()

    # A technician's change to the configuration must survive the upgrade.
    config = etc / "lgo.toml"
    config.write_text(config.read_text().replace('level = "INFO"', 'level = "WARNING"'))
    edited = config.read_text()

    # --- upgrade (this counter also becomes a technician's bench: --with-hwsim) ---------------
    new_set, new_version = upgrade_set
    _run(new_set / "install.sh", "--root", root, "--with-hwsim", env=_env())
    current = (opt / "current").resolve()
    assert current.name.startswith(new_version + "-")
    assert _run(opt / "bin/hwsim", "version", env=_env()).stdout.strip()
    bench = (root / "etc/systemd/system/lgo.service.d/bench.conf").read_text()
    assert f"PCSCLITE_CSOCK_NAME={root}/var/lib/lgo-hwsim/run/pcscd/pcscd.comm" in bench
    if shutil.which("systemd-analyze"):
        verify = _run("systemd-analyze", "verify", units / "lgo-hwsim.service")
        assert verify.stderr.strip() == ""
    assert first_release.is_dir(), "the previous release is kept for a rollback"
    assert list(current.glob(f"lib/python3*/site-packages/lgo-{new_version}.dist-info"))
    assert config.read_text() == edited
    assert list((state / "backups").glob("lgo-*.sqlite3")), "SQLite backed up before migrating"
    assert PROBE_TABLE in _tables(state / "lgo.sqlite3"), "the upgrade ran the new migration"
    daemon = _daemon(root, tmp_path, running)
    health = daemon.get("/v1/health", token)
    assert health.status_code == 200, "the token made before the upgrade still works"
    daemon.stop()

    # --- uninstall keeps data; --purge removes it --------------------------------------------
    _run(new_set / "install.sh", "--uninstall", "--root", root, env=_env())
    assert not opt.exists() and not (units / "lgo.service").exists() and not wrapper.exists()
    assert not (units / "lgo-hwsim.service").exists()
    assert not (root / "etc/systemd/system/lgo.service.d/bench.conf").exists()
    assert config.read_text() == edited
    assert "counters" in _tables(state / "lgo.sqlite3")

    _run(new_set / "install.sh", "--uninstall", "--purge", "--root", root, env=_env())
    assert not etc.exists() and not state.exists()


def test_install_refuses_a_wheel_set_without_lgo(tmp_path: Path) -> None:
    """A broken artefact is refused before anything is created."""
    empty = tmp_path / "wheels"
    empty.mkdir()
    root = tmp_path / "root"
    result = subprocess.run(
        [REPO / "packaging/install.sh", "--root", root, "--wheels", empty],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
    )
    assert result.returncode != 0
    assert "lgo-*.whl" in result.stderr
    assert not (root / "opt").exists()
