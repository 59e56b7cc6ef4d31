"""Production and bench modes: production refuses the simulator's settings, naming each one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lgo.core.production import production_problems
from lgo.core.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
# What a real pharmacy could configure: nothing here belongs to the simulator or an example.
REAL = {
    "national": {
        "base_url": "https://services.sante.fr",
        "psc": {"client_secret": "s3cr3t-de-l-officine"},
        "insi": {"idam": "LPS-123456", "auth": "cps"},
        "annuaire": {"api_key": "cle-de-l-officine"},
        "mss": {"host": "mss.operateur.fr", "sender": "pharmacie.durand@pharmacien.mssante.fr"},
    },
    "pharmacy": {
        "name": "Pharmacie Durand",
        "address": "3 rue Haute, 69001 Lyon",
        "finess": "690123456",
    },
    "hardware": {"cps_ca_file": "/etc/lgo/certs/igc-sante-ca.pem"},
}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LGO_")}


def test_production_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LGO_MODE", raising=False)
    assert load_settings().mode == "production"


def test_simulator_defaults_are_each_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LGO_NATIONAL__BASE_URL", raising=False)
    problems = "\n".join(production_problems(load_settings()))
    for setting in (
        "national.base_url",
        "national.psc.client_secret",
        "national.insi.idam",
        "national.mss.host",
        "national.mss.sender",
        "pharmacy.finess",
        "pharmacy.name",
        "national.annuaire.api_key",
    ):
        assert setting in problems
    assert "lgo-officine-sim-secret" not in problems  # a secret is never printed


def test_real_looking_settings_pass() -> None:
    assert production_problems(load_settings(**REAL)) == []


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"national": {**REAL["national"], "dmp": {"url": "http://localhost:8765/dmp"}}},
            "national.dmp.url",
        ),
        (
            {"national": {**REAL["national"], "insi": {"idam": "LGO-DEMO-0001", "auth": "cps"}}},
            "national.insi.idam",
        ),
        (
            {"national": {**REAL["national"], "insi": {"idam": "LPS-1", "auth": "certificate"}}},
            "national.insi.client_cert",
        ),
        (
            {"national": {**REAL["national"], "base_url": "https://insi.example.invalid"}},
            "national.base_url",
        ),
        (
            {"national": {**REAL["national"], "base_url": "https://api.example.org"}},
            "national.base_url",
        ),
        (
            {"national": {**REAL["national"], "psc": {"client_secret": "A-REMPLIR"}}},
            "national.psc.client_secret",
        ),
        (
            {"hardware": {**REAL["hardware"], "pkcs11_module": "/usr/lib/softhsm/libsofthsm2.so"}},
            "hardware.pkcs11_module",
        ),
    ],
)
def test_each_bench_value_is_refused(override: dict[str, object], named: str) -> None:
    problems = production_problems(load_settings(**{**REAL, **override}))
    assert len(problems) == 1 and problems[0].startswith(named), problems


def test_the_counter_page_redirect_on_loopback_is_fine() -> None:
    national = {
        **REAL["national"],
        "psc": {
            **REAL["national"]["psc"],  # type: ignore[dict-item]
            "redirect_uri": "http://127.0.0.1:8700/",
        },
    }
    assert production_problems(load_settings(**{**REAL, "national": national})) == []


def test_hwsim_test_certificates_are_refused(tmp_path: Path) -> None:
    from hwsim.national.mss_pki import make_ca, organisation_name

    ca = make_ca(tmp_path)
    issued = ca.issue(tmp_path, "client", organisation_name("P", "1", "p.fr"), server=False)
    national = {
        **REAL["national"],
        "mss": {
            **REAL["national"]["mss"],  # type: ignore[dict-item]
            "cert_file": str(issued.cert_file),
        },
    }
    problems = production_problems(load_settings(**{**REAL, "national": national}))
    assert [p.split(" ")[0] for p in problems] == ["national.mss.cert_file"]


def test_hwsim_test_cas_as_trust_anchors_are_refused(tmp_path: Path) -> None:
    # `hwsim up` exports its MSSanté CA as national.mss.ca_file: a production daemon trusting it
    # would accept a server certified by the bench's PKI.
    from hwsim.national.mss_pki import make_ca

    ca = make_ca(tmp_path)
    national = {
        **REAL["national"],
        "mss": {
            **REAL["national"]["mss"],  # type: ignore[dict-item]
            "ca_file": str(ca.cert_file),
        },
    }
    problems = production_problems(load_settings(**{**REAL, "national": national}))
    assert [p.split(" ")[0] for p in problems] == ["national.mss.ca_file"]
    assert "AC" in problems[0]


def test_serve_in_production_with_simulator_settings_exits_naming_them(tmp_path: Path) -> None:
    env = {
        **_clean_env(),
        "LGO_STATE_DIR": str(tmp_path / "state"),
        "LGO_HARDWARE__PCSC_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "lgo", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Mode production" in done.stderr
    for setting in (
        "national.base_url",
        "national.psc.client_secret",
        "national.insi.idam",
        "pharmacy.finess",
    ):
        assert setting in done.stderr
    assert not (tmp_path / "state").exists()  # refused before touching anything


def test_bench_mode_lets_the_same_settings_through(tmp_path: Path) -> None:
    env = {
        **_clean_env(),
        "LGO_STATE_DIR": str(tmp_path / "state"),
        "LGO_MODE": "bench",
        "LGO_HARDWARE__PCSC_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "lgo", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    # Past the mode check: it stops at the next one, the database not migrated yet.
    assert done.returncode == 3 and "lgo migrate" in done.stderr


def test_serve_names_a_configured_file_that_is_missing(tmp_path: Path) -> None:
    env = {
        **_clean_env(),
        "LGO_STATE_DIR": str(tmp_path / "state"),
        "LGO_MODE": "bench",
        "LGO_NATIONAL__MSS__CERT_FILE": str(tmp_path / "absent.crt"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "lgo", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "national.mss.cert_file" in done.stderr and "introuvable" in done.stderr
    assert "Traceback" not in done.stderr
