"""BDPM import (``lgo catalog import-bdpm``/``show``) and what it changes at the counter: a
substitution inside a generic group is refused without the catalogue and accepted with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.cli.main import app as cli_app
from lgo.core.settings import load_settings
from lgo.domain.products import PackForm, RegulatoryList, is_mte
from lgo.services.bdpm import BdpmError, import_bdpm, pack_units, price_cents
from lgo.services.counters import add_counter
from lgo.services.prescriptions import CATALOG_FILE, load_catalog
from lgo.store import migrate
from tests.fixtures.dispensing import make_patient_for, open_pharmacist_session
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
BDPM = Path(__file__).resolve().parents[3] / "hw-sim" / "hwsim" / "fixtures" / "bdpm"
RX_ID = "EPTEST0000000000000043"  # line 2: atorvastatine (princeps), substitutable, list I
ATORVASTATINE = "3400999999076"
ATORVASTATINE_GENERIC = "3400999999175"  # 3 plaquettes de 10 comprimés, same generic group
LEVOTHYROXINE = "3400999999021"
CETIRIZINE = "3400999999052"


def test_import_reads_packs_groups_lists_and_molecules(tmp_path: Path) -> None:
    summary = import_bdpm(BDPM, tmp_path)
    assert (summary.products, summary.packs, summary.generic_groups) == (13, 13, 4)
    catalog = load_catalog(tmp_path / CATALOG_FILE)
    princeps, generic = catalog.product(ATORVASTATINE), catalog.product(ATORVASTATINE_GENERIC)
    assert princeps is not None and generic is not None
    assert princeps.generic_group == generic.generic_group == "bdpm:2003"
    assert princeps.regulatory_list is RegulatoryList.LIST_I
    assert catalog.pack(ATORVASTATINE_GENERIC).units == 30  # type: ignore[union-attr]
    assert catalog.pack(ATORVASTATINE).price_cents == 813  # type: ignore[union-attr]
    morphine = catalog.product("3400999999069")
    assert morphine is not None and morphine.regulatory_list is RegulatoryList.STUPEFIANT
    levothyroxine = catalog.product("3400999999021")
    assert levothyroxine is not None and is_mte(levothyroxine.molecule)  # accents from UTF-8
    bottle = catalog.pack("3400999999045")
    assert bottle is not None and (bottle.units, bottle.form) == (1, PackForm.BOTTLE)
    types = json.loads((tmp_path / CATALOG_FILE).read_text(encoding="utf-8"))["generic_types"]
    assert (types[princeps.code], types[generic.code]) == ("princeps", "générique")


def test_label_and_price_parsing() -> None:
    assert pack_units("plaquette(s) thermoformée(s) PVC-aluminium de 30 comprimé(s)") == 30
    assert pack_units("3 plaquette(s) thermoformée(s) aluminium de 10 comprimé(s)") == 30
    assert pack_units("20 récipient(s) unidose(s) polyéthylène de 2 ml") == 20
    assert pack_units("1 flacon(s) en verre brun de 100 ml") == 1
    assert (price_cents("2,18"), price_cents("1,234,56"), price_cents("")) == (218, 123456, 0)


def test_bad_folder_changes_nothing(tmp_path: Path) -> None:
    import_bdpm(BDPM, tmp_path)
    before = (tmp_path / CATALOG_FILE).read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "CIS_bdpm.txt").write_bytes((BDPM / "CIS_bdpm.txt").read_bytes())
    with pytest.raises(BdpmError, match=r"CIS_CIP_bdpm\.txt"):
        import_bdpm(broken, tmp_path)
    (broken / "CIS_CIP_bdpm.txt").write_text("60990001\t1\tboîte\tx\ty\tz\tnot-a-cip\n")
    with pytest.raises(BdpmError):
        import_bdpm(broken, tmp_path)
    assert (tmp_path / CATALOG_FILE).read_bytes() == before


def lgo_catalog(state: Path, *args: str) -> Result:
    """The real ``lgo catalog`` command, in-process."""
    try:
        return CliRunner().invoke(cli_app, ["catalog", *args], env={"LGO_STATE_DIR": str(state)})
    finally:
        # The command configured structlog to print to the runner's (now closed) stderr.
        structlog.reset_defaults()


def test_cli_import_then_show(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert lgo_catalog(state, "show", ATORVASTATINE_GENERIC).exit_code == 1
    imported = lgo_catalog(state, "import-bdpm", str(BDPM))
    assert imported.exit_code == 0, imported.output
    assert "13 produit(s)" in imported.output
    shown = lgo_catalog(state, "show", ATORVASTATINE_GENERIC)
    assert shown.exit_code == 0, shown.output
    assert "Groupe générique : bdpm:2003" in shown.output
    assert "Type : générique" in shown.output and "Unités par boîte : 30" in shown.output
    assert lgo_catalog(state, "import-bdpm", str(tmp_path)).exit_code == 1


@contextmanager
def counter(state: Path, national_sim: NationalSim) -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings(
        state_dir=state,
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    app = create_app(settings, container)
    with TestClient(
        app,
        base_url=f"http://127.0.0.1:{settings.api.port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client, container


def substitution(patient: str) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "prescription_id": RX_ID,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "lines": [
            {"line_no": 1, "intervention": "unchanged", "days": 30, "cip13": LEVOTHYROXINE},
            {"line_no": 3, "intervention": "unchanged", "days": 15, "cip13": CETIRIZINE},
            {
                "line_no": 2,
                "intervention": "substituted",
                "days": 30,
                "cip13": ATORVASTATINE_GENERIC,
                "substitution": {
                    "cip13": ATORVASTATINE_GENERIC,
                    "name": "ATORVASTATINE GENERIQUE TEST 20 mg",
                    "form": "comprimé pelliculé",
                    "units": 30,
                },
            },
        ],
    }


def test_substitution_in_a_generic_group_needs_the_catalogue(
    tmp_path: Path, national_sim: NationalSim
) -> None:
    with counter(tmp_path / "bare", national_sim) as (client, container):
        open_pharmacist_session(container)
        client.get(f"/v1/prescriptions/{RX_ID}").raise_for_status()
        body = substitution(make_patient_for(container.db, RX_ID))
        refused = client.post("/v1/dispensations/check", json=body).json()
        assert [(r["line_no"], r["code"]) for r in refused["refusals"]] == [
            (2, "not_same_generic_group")
        ]

    state = tmp_path / "imported"
    result = lgo_catalog(state, "import-bdpm", str(BDPM))
    assert result.exit_code == 0, result.output
    with counter(state, national_sim) as (client, container):
        assert client.get("/v1/health").json()["components"]["catalog"]["ok"] is True
        open_pharmacist_session(container)
        client.get(f"/v1/prescriptions/{RX_ID}").raise_for_status()
        created = client.post(
            "/v1/dispensations",
            json=substitution(make_patient_for(container.db, RX_ID)),
            headers={"Idempotency-Key": "bdpm-subst-1"},
        )
        assert created.status_code == 201, created.text
        line = created.json()["lines"][1]
        assert (line["intervention"], line["delivered_cip13"], line["boxes"]) == (
            "substituted",
            ATORVASTATINE_GENERIC,
            1,
        )
