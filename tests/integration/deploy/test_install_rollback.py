"""install.sh's upgrade when the new release's migrations fail: back to the previous release.

The releases here are tiny stand-in `lgo` distributions (a console script, no dependency) so that
the test exercises install.sh's own logic in seconds: venv per release, `current` switch, SQLite
backup before migrating, switch back on failure, configuration and data untouched.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.deploy.daemon import clean_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def _fake_release(tmp: Path, version: str, migrate_exit: int) -> Path:
    src = tmp / f"src-{version}"
    src.mkdir()
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "lgo"
            version = "{version}"

            [project.optional-dependencies]
            postgresql = []

            [project.scripts]
            lgo = "fakelgo:main"

            [tool.setuptools]
            py-modules = ["fakelgo"]
            """
        )
    )
    (src / "fakelgo.py").write_text(
        textwrap.dedent(
            f"""
            import sys

            def main() -> None:
                if sys.argv[1:] == ["migrate"]:
                    print("migrate {version}", file=sys.stderr)
                    sys.exit({migrate_exit})
                print("lgo {version}")
            """
        )
    )
    wheels = tmp / f"wheels-{version}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return wheels


def _install(root: Path, wheels: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "LGO_INSTALL_COMPILE": "0", **extra}
    return subprocess.run(
        [str(REPO / "packaging/install.sh"), "--root", str(root), "--wheels", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_failed_migration_switches_back_and_keeps_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    good = _install(root, _fake_release(tmp_path, "1.0.0", migrate_exit=0))
    assert good.returncode == 0, good.stderr
    current = root / "opt/lgo/current"
    first = current.resolve()
    assert first.name.startswith("1.0.0-")

    state = root / "var/lib/lgo"
    with sqlite3.connect(state / "lgo.sqlite3") as conn:
        conn.execute("CREATE TABLE kept (v TEXT)")
        conn.execute("INSERT INTO kept VALUES ('données')")
    config = root / "etc/lgo/lgo.toml"
    config_before = config.read_text()

    bad = _install(root, _fake_release(tmp_path, "2.0.0", migrate_exit=3))
    assert bad.returncode != 0
    assert "migrations ont échoué" in bad.stderr
    assert "migrate 2.0.0" in bad.stderr  # the new release's migration really ran (and failed)
    assert current.resolve() == first, "switched back to the release that worked"
    out = subprocess.run(
        [str(root / "opt/lgo/bin/lgo")], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "lgo 1.0.0"
    assert config.read_text() == config_before
    backups = list((state / "backups").glob("lgo-*.sqlite3"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("données",)]
    with sqlite3.connect(state / "lgo.sqlite3") as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("données",)]
    assert (backups[0].stat().st_mode & 0o777) == 0o600


def _releases(root: Path) -> list[str]:
    return sorted(p.name.split("-")[0] for p in (root / "opt/lgo/releases").iterdir())


def test_failed_releases_go_good_ones_stay_backups_rotate(tmp_path: Path) -> None:
    """A failed release is removed, even after a rerun; pruning keeps the good ones (current and
    the previous); backups keep the newest LGO_KEEP_BACKUPS copies."""
    root = tmp_path / "root"
    assert _install(root, _fake_release(tmp_path, "1.0.0", migrate_exit=0)).returncode == 0
    state = root / "var/lib/lgo"
    with sqlite3.connect(state / "lgo.sqlite3") as conn:
        conn.execute("CREATE TABLE steps (v TEXT)")
    installs = [("1.1.0", 0), ("2.0.0", 3), ("2.0.0", 3), ("3.0.0", 0)]  # a failure, its rerun
    for version, migrate_exit in installs:
        with sqlite3.connect(state / "lgo.sqlite3") as conn:  # what each backup must hold
            conn.execute("INSERT INTO steps VALUES (?)", (version,))
        if version == "3.0.0":  # an interrupted install left a release without INSTALLED_AT
            (root / "opt/lgo/releases/9.9.9-interrupted").mkdir()
        built = tmp_path / f"wheels-{version}"
        wheels = built if built.exists() else _fake_release(tmp_path, version, migrate_exit)
        done = _install(root, wheels, LGO_KEEP_BACKUPS="2")
        assert (done.returncode == 0) is (migrate_exit == 0), done.stderr
        if migrate_exit:
            assert _releases(root) == ["1.0.0", "1.1.0"], "the failed release is not kept"
            assert (root / "opt/lgo/current").resolve().name.startswith("1.1.0-")
    assert _releases(root) == ["1.1.0", "3.0.0"]  # current and the previous good one
    backups = sorted((state / "backups").glob("lgo-*.sqlite3"))
    assert len(backups) == 2, backups  # 4 were taken: the 2 newest stay
    held = []
    for backup in backups:
        with sqlite3.connect(backup) as conn:
            held.append(conn.execute("SELECT count(*) FROM steps").fetchone()[0])
    assert held == [3, 4]  # taken before the rerun of 2.0.0 and before 3.0.0
