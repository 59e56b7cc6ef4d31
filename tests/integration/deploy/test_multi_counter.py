"""Several counters, one PostgreSQL server: each counter's daemon shares the database.

Two real `lgo serve` processes (two "counters", each with its own state folder and port) on one
real PostgreSQL database, started at the same moment as counter PCs are in the morning, each
running its `ExecStartPre=lgo migrate` first.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.deploy.daemon import Daemon, clean_env

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

LGO = Path(sys.executable).with_name("lgo")


def _counter_env(tmp_path: Path, name: str, url: str) -> dict[str, str]:
    return {
        **clean_env(),
        "LGO_STATE_DIR": str(tmp_path / name),
        "LGO_DATABASE__URL": url,
        "LGO_LOGGING__LEVEL": "WARNING",
    }


def _lgo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LGO), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.mark.timeout(600)
def test_two_counters_share_one_postgresql_database(
    tmp_path: Path, pg_url: str, daemons: list[Daemon]
) -> None:
    envs = [_counter_env(tmp_path, name, pg_url) for name in ("comptoir-1", "comptoir-2")]
    assert _lgo(envs[0], "migrate").returncode == 0  # the technician's upgrade, on one counter

    # Morning boot: both counters run their ExecStartPre migration at once (a no-op) ...
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda env: _lgo(env, "migrate"), envs))
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]

    # ... then both daemons start on the shared database.
    for env in envs:
        daemons.append(Daemon(LGO, tmp_path, env))
    for daemon in daemons:
        daemon.wait_ready()

    # A front-end token created from counter 1 is valid on counter 2: one shared database.
    created = _lgo(envs[0], "counters", "add", "poste-1")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    for daemon in daemons:
        assert daemon.get("/v1/health", token).status_code == 200

    # Revoked from counter 2, refused by both at once.
    assert _lgo(envs[1], "counters", "revoke", "poste-1").returncode == 0
    for daemon in daemons:
        assert daemon.get("/v1/health", token).status_code == 401

    for daemon in daemons:
        daemon.stop()
