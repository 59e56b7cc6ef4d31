"""Every `lgo …` line of the README's command section runs as written, in order, on a fresh state."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LGO = Path(sys.executable).with_name("lgo")
pytestmark = pytest.mark.integration


def readme_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The `lgo` command", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line.startswith("lgo "):
                commands.append(shlex.split(line))
    return commands


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    """The daemon runs until stopped: it must say where it listens, then stop cleanly on Ctrl-C."""
    proc = subprocess.Popen(
        [str(LGO), *argv[1:]],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("lgo écoute sur "):
                assert f"http://127.0.0.1:{env['LGO_API__PORT']}/" in line
                break
        else:
            raise AssertionError("lgo serve stopped without listening:\n" + "".join(seen)[-3000:])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode in (0, 130, -signal.SIGINT)


def test_the_readme_lists_the_commands() -> None:
    commands = readme_commands()
    assert ["lgo", "ordonnancier", "export", "ordonnancier.csv"] in commands
    assert ["lgo", "dispensations", "export-fhir", "dispensations.ndjson"] in commands
    assert ["lgo", "serve", "--migrate"] in commands


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "hw-sim").symlink_to(REPO / "hw-sim")  # the repository's paths, written files here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "PCSCLITE_"))}
    env.update(
        LGO_MODE="bench",
        LGO_STATE_DIR=str(tmp_path / "state"),
        LGO_API__PORT=str(_free_port()),
        LGO_HARDWARE__PCSC_ENABLED="false",
        LGO_NATIONAL__BASE_URL="http://127.0.0.1:9",
        COLUMNS="200",
    )
    for argv in readme_commands():
        if argv[1] == "serve":
            _serve(argv, env, tmp_path)
            continue
        done = subprocess.run(
            [str(LGO), *argv[1:]],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # The doctor is red on a state with no readers nor national services: that is its job.
        allowed = (0, 1) if argv[1] == "doctor" else (0,)
        assert done.returncode in allowed, f"{shlex.join(argv)}:\n{done.stderr[-3000:]}"
        assert "Utilisation :" not in done.stderr, f"{shlex.join(argv)}:\n{done.stderr}"
    for written in ("ordonnancier.csv", "ordonnancier.html", "dispensations.ndjson", "stats.csv"):
        assert (tmp_path / written).is_file(), written


ENGLISH = (
    "Show this message",
    "Usage:",
    "Commands",
    "Missing argument",
    "[default:",
    "[required]",
    "Try '",
    "No such",
)


def _all_command_paths() -> list[list[str]]:
    import typer.main

    from lgo.cli.main import app

    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_help_and_usage_errors_are_in_french() -> None:
    from typer.testing import CliRunner

    from lgo.cli.main import app

    runner = CliRunner()
    paths = _all_command_paths()
    assert len(paths) > 10
    for path in paths:
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0, (path, out.output)
        assert "Afficher cette aide et quitter." in out.output and "Utilisation :" in out.output
        assert not [w for w in ENGLISH if w in out.output], (path, out.output)
    wrong = runner.invoke(app, ["ordonnancier", "export"], env={"COLUMNS": "200"})
    assert wrong.exit_code == 2 and "Argument manquant" in wrong.output
    unknown = runner.invoke(app, ["inconnue"], env={"COLUMNS": "200"})
    assert "Commande inconnue" in unknown.output
