"""`lgo doctor` as a technician trusts it: read-only, French, each red line says what to do, and a
national service is green only when the real service (here the simulator) answers its own route."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lgo.core.settings import load_settings
from lgo.doctor import CheckResult, run_checks
from lgo.doctor import national as doctor_national
from lgo.store.db import Database

pytestmark = pytest.mark.integration

# A red line names a command or a setting to change.
ACTIONS = (
    "lancez",
    "mettez",
    "corrigez",
    "vérifiez",
    "installez",
    "branchez",
    "réglez",
    "libérez",
    "`chmod",
    "`chown",
    "commandez",
    "réinstallez",
    "relancez",
)


def _listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mode) for p in root.rglob("*"))


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "PCSCLITE_"))}
    return subprocess.run(
        [sys.executable, "-m", "lgo", "doctor"],
        env={**clean, "COLUMNS": "250", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("state_exists", [False, True])
def test_doctor_creates_nothing(tmp_path: Path, state_exists: bool) -> None:
    state = tmp_path / "state"
    if state_exists:
        state.mkdir(mode=0o700)
    before = _listing(tmp_path)
    done = _doctor(
        {
            "LGO_STATE_DIR": str(state),
            "LGO_NATIONAL__BASE_URL": "http://127.0.0.1:9",
            "PCSCLITE_CSOCK_NAME": str(tmp_path / "absent.comm"),
        }
    )
    assert _listing(tmp_path) == before
    assert done.returncode == 1
    assert "lancez `lgo migrate`" in done.stdout


def test_every_red_line_says_what_to_do_in_french(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path / "state", national={"base_url": "http://127.0.0.1:9"}
    )
    results = run_checks(settings)
    red = [r for r in results if not r.ok]
    assert len(red) >= 5  # mode, database, PKCS#11, national services, state folder
    for result in red:
        assert any(word in result.detail for word in ACTIONS), result
    for english in ("Error", "error:", "not found", "Traceback", "No such file"):
        assert all(english not in r.detail for r in results)


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<h1>Not Found</h1>")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def web_server_404() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _national_results(base_url: str) -> list[CheckResult]:
    settings = load_settings(mode="bench", national={"base_url": base_url})
    builders = (
        doctor_national._eprescription,
        doctor_national._apcv,
        doctor_national._insi,
        doctor_national._dmp,
        doctor_national._psc,
        doctor_national._annuaire,
    )
    return [doctor_national.probe_result(build(settings.national)) for build in builders]


def test_a_web_server_answering_404_is_not_a_national_service(web_server_404: str) -> None:
    results = _national_results(web_server_404)
    assert len(results) == 6
    for result in results:
        assert not result.ok and "HTTP 404" in result.detail and "corrigez" in result.detail


def test_national_services_are_green_against_the_simulator(national_sim: Any) -> None:
    for result in _national_results(national_sim.base_url):
        assert result.ok, result


def test_example_hosts_are_red_without_a_network_call() -> None:
    for result in _national_results("https://services.a-remplir.invalid"):
        assert not result.ok and "adresse d'exemple" in result.detail


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_lgo_creates_its_files_0600_and_folders_0700(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGO_")}
    done = subprocess.run(
        [sys.executable, "-m", "lgo", "migrate"],
        env={**env, "LGO_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr
    assert _mode(state) == 0o700
    assert _mode(state / "lgo.sqlite3") == 0o600
    # A writer under a permissive umask: the -wal and -shm files take the database's mode.
    previous = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{state / 'other.sqlite3'}")
        with db.connection() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        reader = sqlite3.connect(state / "other.sqlite3")  # keeps the WAL files alive
        reader.execute("SELECT 1").fetchall()
        files = sorted(state.glob("other.sqlite3*"))
        assert {p.name for p in files} >= {
            "other.sqlite3",
            "other.sqlite3-wal",
            "other.sqlite3-shm",
        }
        assert all(_mode(p) == 0o600 for p in files), [(p.name, oct(_mode(p))) for p in files]
        reader.close()
        db.dispose()
    finally:
        os.umask(previous)
