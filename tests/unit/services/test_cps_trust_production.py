"""Production refuses a CPS revocation check that is off or trusts the bench's test CAs."""

from __future__ import annotations

from pathlib import Path

from hwsim.pki import TestPki
from lgo.core.production import production_problems
from lgo.core.settings import load_settings


def _cps_lines(problems: list[str]) -> list[str]:
    return [
        p for p in problems if p.startswith(("hardware.cps_revocation", "hardware.cps_ca_file"))
    ]


def test_revocation_off_and_the_test_cas_are_named(tmp_path: Path) -> None:
    pki = TestPki(tmp_path, base_url="http://127.0.0.1:1")
    bench_cas = tmp_path / "cps-ca.pem"
    bench_cas.write_bytes(pki.root.cert_pem + pki.ca.cert_pem)
    settings = load_settings(hardware={"cps_revocation": "off", "cps_ca_file": str(bench_cas)})
    lines = _cps_lines(production_problems(settings))
    assert len(lines) == 2 and "soft-fail ou hard-fail" in lines[0] and "AC IGC-Santé" in lines[1]
    # The defaults name the one thing production lacks: the CAs the revocation check needs.
    (missing,) = _cps_lines(production_problems(load_settings()))
    assert missing.startswith("hardware.cps_ca_file : manquant")
