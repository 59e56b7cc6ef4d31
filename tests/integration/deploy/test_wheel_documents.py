"""The installed wheel carries everything the daemon needs to produce a document: lgo's CDA schema
(before, ``lgo/documents/schema`` was missing from the wheel and every CDA build raised OSError on an
install) and Saxon-HE for the CI-SIS kit. The wheel set of ``packaging/build.sh`` is installed
offline (``--no-index``) into a throwaway venv; a fictitious dispensing document is built from the
installed package, outside the source tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.deploy import deploy_env
from tests.fixtures.documents import cisis_kit_dir

pytestmark = pytest.mark.integration

SCRIPT = r"""
import json, os, sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import lgo.documents.validate as validate
from lgo.documents.cda import build_document, read_document
from lgo.documents.models import (
    Author, DispensedItem, DispensingSummary, DocumentHeader, Organisation, PatientRecord,
)
from lgo.domain.identity import IdentityStatus, Ins, InsOid, Traits, with_key
from lgo.domain.professionals import idnat_from_rpps, luhn_key

paris = ZoneInfo("Europe/Paris")
patient = PatientRecord(
    ins=Ins.of(with_key("2850375112345"), InsOid.TEST.value),
    traits=Traits.of("FICTIF", "ALICE", "F", "19850312", "75112"),
    status=IdentityStatus.QUAL,
)
header = DocumentHeader(
    patient, Author(idnat_from_rpps("1000000000" + luhn_key("1000000000")), "EXEMPLE", "Paul"),
    Organisation("750000000", "Pharmacie de démonstration"), datetime(2026, 3, 15, 10, 30, tzinfo=paris),
)
summary = DispensingSummary("disp-1", datetime(2026, 3, 15, 10, 20, tzinfo=paris), (
    DispensedItem("3400930000002", "PARACETAMOL FICTIF 500 mg", Decimal("2")),
))
document = build_document(header, summary)
out = {"schema_dir": str(validate.SCHEMA_DIR), "kind": read_document(document.xml).kind.value}
kit = os.environ.get("KIT")
if kit:
    from lgo.documents.conformance import CisisKit, DocumentChecker
    report = DocumentChecker(CisisKit(Path(kit), Path(sys.argv[1]))).check(document.kind, document.xml)
    out["failed"] = [str(rule) for rule in report.failed]
    out["schema_errors"] = list(report.schema_errors)
print(json.dumps(out))
"""


def test_the_installed_wheel_builds_and_validates_a_document(
    deploy_wheelset: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    env = deploy_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    install = subprocess.run(
        [
            str(venv / "bin/pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(deploy_wheelset / "wheels"),
            "lgo",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    kit = cisis_kit_dir()
    if kit is not None:
        env["KIT"] = str(kit)
    # outside the source tree: only the installed package can be imported
    run = subprocess.run(
        [str(venv / "bin/python"), "-I", "-c", SCRIPT, str(tmp_path / "cisis-cache")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["schema_dir"].startswith(str(venv))  # the installed copy, not the repository's
    assert out["kind"] == "dispensing-summary"
    if kit is not None:  # the kit's normative schema and volet schematron, from the install
        assert out["failed"] == [] and out["schema_errors"] == []
