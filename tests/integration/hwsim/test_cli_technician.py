"""`hwsim` for technicians: every command talks to the simulators of its own work folder, says
what it did, and fails with one French line (never a traceback)."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwsim.cli import app
from hwsim.mss import MssMailbox, MssServer, server_tls_context
from tests.fixtures.documents import MssPki
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def bench_dir(tmp_path: Path, national_sim: NationalSim) -> Path:
    """A work folder whose recorded national port is the test simulator's (as `hwsim up` does)."""
    (tmp_path / "national.port").write_text(national_sim.base_url.rsplit(":", 1)[1])
    return tmp_path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hwsim.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_national_fault_commands_use_the_work_folders_simulator(
    bench_dir: Path, national_sim: NationalSim
) -> None:
    wd = ["-w", str(bench_dir)]
    added = runner.invoke(
        app, ["national", "fault", "add", "insi", "error", "--status", "500", "--times", "2", *wd]
    )
    assert added.exit_code == 0, added.output
    assert "armée" in added.output and "insi error 500" in added.output
    armed = national_sim.faults.list()
    assert [(f.spec.service, f.spec.status, f.remaining) for f in armed] == [("insi", 500, 2)]
    listed = runner.invoke(app, ["national", "fault", "list", *wd])
    assert listed.exit_code == 0 and "2 appel(s) restant(s)" in listed.output
    cleared = runner.invoke(app, ["national", "fault", "clear", *wd])
    assert cleared.exit_code == 0 and "1 panne(s) effacée(s)" in cleared.output
    assert national_sim.faults.list() == []


def test_unknown_service_or_kind_is_refused_and_arms_nothing(
    bench_dir: Path, national_sim: NationalSim
) -> None:
    wd = ["-w", str(bench_dir)]
    unknown = runner.invoke(app, ["national", "fault", "add", "cnam", "error", *wd])
    assert unknown.exit_code == 2 and "Service inconnu : cnam" in unknown.output
    bad_kind = runner.invoke(app, ["national", "fault", "add", "dmp", "explode", *wd])
    assert bad_kind.exit_code == 2 and "kind" in bad_kind.output
    assert national_sim.faults.list() == []


def test_clock_set_advance_reset(bench_dir: Path, national_sim: NationalSim) -> None:
    wd = ["-w", str(bench_dir)]
    frozen = runner.invoke(app, ["national", "clock", "set", "2026-12-24T09:30", *wd])
    assert frozen.exit_code == 0, frozen.output
    assert "24/12/2026 09:30:00 (Paris, figée)" in frozen.output
    from datetime import UTC, datetime

    assert national_sim.state.clock.now() == datetime(2026, 12, 24, 8, 30, tzinfo=UTC)
    advanced = runner.invoke(app, ["national", "clock", "advance", "3600", *wd])
    assert "24/12/2026 10:30:00" in advanced.output
    back = runner.invoke(app, ["national", "clock", "reset", *wd])
    assert back.exit_code == 0 and "heure réelle" in back.output
    assert not national_sim.state.clock.frozen
    unreadable = runner.invoke(app, ["national", "clock", "set", "demain", *wd])
    assert unreadable.exit_code == 2 and "Date illisible" in unreadable.output


def test_psc_commands_follow_the_work_folder(bench_dir: Path, national_sim: NationalSim) -> None:
    listed = runner.invoke(app, ["psc", "pending", "-w", str(bench_dir)])
    assert listed.exit_code == 0 and "Aucune demande en attente." in listed.output
    spoiled = runner.invoke(app, ["psc", "spoil", "expired", "-w", str(bench_dir)])
    assert spoiled.exit_code == 0 and "expired" in spoiled.output
    nothing = runner.invoke(app, ["psc", "approve", "-w", str(bench_dir)])
    assert nothing.exit_code == 1 and "Aucune demande" in nothing.output


def test_a_stopped_simulator_is_one_french_line_without_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "national.port").write_text(str(port))
    for args in (
        ["national", "fault", "list"],
        ["national", "clock", "show"],
        ["psc", "pending"],
        ["national", "log"],
    ):
        done = _run(*args, "-w", str(tmp_path))
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "hwsim up" in lines[0]


def test_a_work_folder_without_a_bench_never_falls_back_to_another_benchs_simulator(
    tmp_path: Path,
) -> None:
    # No national.port here: the default port may be another bench's simulator (it answers).
    for args in (
        ["national", "services"],
        ["national", "fault", "list"],
        ["psc", "pending"],
        ["national", "clock", "show"],
    ):
        done = _run(*args, "-w", str(tmp_path))
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and str(tmp_path) in lines[0] and "hwsim up" in lines[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["frobnicate"], "commande inconnue : frobnicate"),
        (
            ["national", "fault", "add", "insi", "error", "--status", "abc"],
            "valeur invalide pour --status",
        ),
        (["insert"], "argument manquant : kind"),
        (["status", "--bogus"], "option inconnue : --bogus"),
        (["scan", "a", "b", "c"], "argument(s) en trop : b c"),
    ],
)
def test_a_wrong_argument_is_one_french_line(tmp_path: Path, args: list[str], said: str) -> None:
    done = _run(*args, "-w", str(tmp_path)) if args[0] != "frobnicate" else _run(*args)
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0] and "--help" in lines[0], done.stderr


def test_reader_commands_without_a_bench_say_so(tmp_path: Path) -> None:
    done = _run("fault", "clear", "-w", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "hwsim up" in done.stderr


def test_profiles_accepts_a_work_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profiles", "--workdir", str(tmp_path)])
    assert result.exit_code == 0 and "famille-testnom" in result.output


def test_mss_inbox_lists_and_shows_what_the_simulator_received(
    tmp_path: Path, mss_pki: MssPki
) -> None:
    tls = server_tls_context(mss_pki.server.cert_file, mss_pki.server.key_file, mss_pki.ca_file)
    server = MssServer(tls, timeout_s=5, mailbox=MssMailbox(inbox_dir=tmp_path / "mss" / "inbox"))
    server.start()
    try:
        _send(server.port, mss_pki)
    finally:
        server.stop()
    wd = ["-w", str(tmp_path)]
    rows = json.loads(runner.invoke(app, ["mss", "inbox", "--json", *wd]).output)
    assert [(r["number"], r["to"], r["subject"], r["attachments"]) for r in rows] == [
        (1, ["dr.testnom@medecin.mssante.fr"], "Vaccination de test", ["note.xml"])
    ]
    assert "PHARMACIE DE DEMONSTRATION" in rows[0]["client_certificate"]
    table = runner.invoke(app, ["mss", "inbox", *wd])
    assert table.exit_code == 0 and "Vaccination" in table.output  # rich wraps at 80 columns
    shown = runner.invoke(app, ["mss", "inbox", "--show", "1", *wd])
    assert shown.exit_code == 0 and "Corps du message de test" in shown.output
    missing = runner.invoke(app, ["mss", "inbox", "--show", "7", *wd])
    assert missing.exit_code == 1 and "Pas de message n° 7" in missing.output


def _send(port: int, pki: MssPki) -> None:
    message = EmailMessage()
    message["From"] = "pharmacie@pharmacie.mssante.fr"
    message["To"] = "dr.testnom@medecin.mssante.fr"
    message["Subject"] = "Vaccination de test"
    message.set_content("Corps du message de test")
    message.add_attachment(
        b"<ClinicalDocument/>", maintype="text", subtype="xml", filename="note.xml"
    )
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.check_hostname = False
    context.load_cert_chain(pki.pharmacy.cert_file, pki.pharmacy.key_file)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=context)
        smtp.send_message(message)
