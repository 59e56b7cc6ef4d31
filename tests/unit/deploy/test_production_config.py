"""The example production configuration: documented as shipped, parseable, refused until filled in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lgo.core.production import production_problems
from lgo.core.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "packaging" / "lgo.toml"


def test_the_deployment_guide_shows_the_shipped_file_as_it_is() -> None:
    guide = (REPO / "docs" / "deployment.md").read_text()
    section = guide.split("### Example production `lgo.toml`", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    assert block[1] == EXAMPLE.read_text()


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test suite's own LGO_MODE / LGO_NATIONAL__BASE_URL would win over the file.
    monkeypatch.delenv("LGO_MODE", raising=False)
    monkeypatch.delenv("LGO_NATIONAL__BASE_URL", raising=False)


def test_example_parses_and_is_production() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.mode == "production"
    assert tomllib.loads(EXAMPLE.read_text())["mode"] == "production"


def test_production_refuses_the_example_until_every_placeholder_is_replaced() -> None:
    problems = production_problems(load_settings(EXAMPLE))
    named = {line.split(" ")[0] for line in problems}
    # Every endpoint and every identifier of the example is a placeholder the technician replaces.
    assert {
        "national.base_url",
        "national.insi.url",
        "national.insi.idam",
        "national.dmp.url",
        "national.eprescription.url",
        "national.apcv.url",
        "national.psc.issuer_url",
        "national.psc.client_id",
        "national.psc.client_secret",
        "national.annuaire.url",
        "national.mss.host",
        "national.mss.sender",
        "pharmacy.name",
        "pharmacy.address",
        "pharmacy.finess",
    } <= named


def test_production_needs_the_cps_ca_file_for_the_revocation_check() -> None:
    # Without the IGC-Santé CAs every CPS login would be "revocation unknown" (cps-revocation.md).
    problems = production_problems(load_settings(EXAMPLE))
    lines = [line for line in problems if line.startswith("hardware.cps_ca_file ")]
    assert len(lines) == 1 and "révocation" in lines[0] and "IGC-Santé" in lines[0]
    assert "# cps_ca_file = " in EXAMPLE.read_text()  # shown to the technician, to uncomment


def _filled_in(with_cps_ca_file: bool) -> str:
    text = EXAMPLE.read_text()
    text = text.replace("a-remplir.invalid", "officine-services.fr")
    text = text.replace('finess = "000000000"', 'finess = "690123456"')
    text = text.replace("A-REMPLIR", "pharmacie-durand")
    text = text.replace("# client_cert =", "client_cert =").replace(
        "# client_key =", "client_key ="
    )
    return text.replace("# cps_ca_file =", "cps_ca_file =") if with_cps_ca_file else text


def test_the_example_filled_in_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "lgo.toml").write_text(_filled_in(with_cps_ca_file=True))
    filled = load_settings(tmp_path / "lgo.toml")
    assert production_problems(filled) == []


def test_serve_refuses_to_start_without_the_cps_ca_file(tmp_path: Path) -> None:
    config = tmp_path / "lgo.toml"
    for name in ("insi-auto.crt", "insi-auto.key"):  # the files the example names, present
        (tmp_path / name).write_text("")
    config.write_text(_filled_in(with_cps_ca_file=False).replace("/etc/lgo/certs/", f"{tmp_path}/"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGO_")}
    env.update(LGO_CONFIG=str(config), LGO_STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run(
        [sys.executable, "-m", "lgo", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    refused = [line for line in done.stderr.splitlines() if line.startswith("  - hardware.")]
    assert len(refused) == 1 and "hardware.cps_ca_file : manquant" in refused[0], done.stderr
