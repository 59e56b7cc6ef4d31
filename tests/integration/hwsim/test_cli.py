"""The `hwsim` CLI against the running session simulator (control API over its Unix socket)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hwsim.cli import app
from tests.fixtures.pcsc import HwsimBench, wait_card

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_insert_status_remove(hwsim: HwsimBench) -> None:
    wd = ["--workdir", str(hwsim.workdir)]
    result = runner.invoke(app, ["insert", "cps", "medecin", "--reader", "1", *wd])
    assert result.exit_code == 0, result.output
    wait_card(hwsim.reader_names[1], present=True)
    again = runner.invoke(app, ["insert", "cps", "medecin", "--reader", "1", *wd])
    assert again.exit_code == 1 and "occupé" in again.output
    status = json.loads(runner.invoke(app, ["status", "--json", *wd]).output)
    assert status["readers"][1]["card"]["serial"] == "2000000001"
    assert status["isolation"] in ("netns", "plain")
    table = runner.invoke(app, ["status", *wd])
    assert table.exit_code == 0 and "HWSIM PCD 00 01" in table.output
    assert runner.invoke(app, ["fault", "slow", "--delay", "0.2", "-r", "1", *wd]).exit_code == 0
    assert hwsim.client.status()["readers"][1]["faults"]["delay_s"] == 0.2
    assert runner.invoke(app, ["remove", "--reader", "1", *wd]).exit_code == 0
    wait_card(hwsim.reader_names[1], present=False)


def test_not_running(tmp_path: object) -> None:
    result = runner.invoke(app, ["status", "--workdir", str(tmp_path)])
    assert result.exit_code == 2 and "hwsim up" in result.output


def test_profiles_lists_fixtures() -> None:
    result = runner.invoke(app, ["profiles"])
    assert result.exit_code == 0 and "famille-testnom" in result.output
