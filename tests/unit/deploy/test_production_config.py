"""The example production configuration: documented as shipped, parseable, refused until filled in."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lgo.production import production_problems
from lgo.settings import load_settings

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
    assert {"national.base_url", "national.insi.url", "national.insi.idam", "national.dmp.url",
            "national.eprescription.url", "national.apcv.url", "national.psc.issuer_url",
            "national.psc.client_id", "national.psc.client_secret", "national.annuaire.url",
            "national.mss.host", "national.mss.sender", "pharmacy.name", "pharmacy.address",
            "pharmacy.finess"} <= named  # fmt: skip


def test_the_example_filled_in_is_accepted(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("a-remplir.invalid", "officine-services.fr")
    text = text.replace('finess = "000000000"', 'finess = "690123456"')
    text = text.replace("A-REMPLIR", "pharmacie-durand")
    text = text.replace("# client_cert =", "client_cert =").replace("# client_key =", "client_key =")
    (tmp_path / "lgo.toml").write_text(text)
    filled = load_settings(tmp_path / "lgo.toml")
    assert production_problems(filled) == []

