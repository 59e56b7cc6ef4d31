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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _smtp_answers_starttls_with_the_printed_settings(stdout: str) -> None:
    """The MSSanté simulator listens where `hwsim up` says, offers STARTTLS and accepts the
    pharmacy certificate of the printed LGO_NATIONAL__MSS__* settings."""
    import re
    import smtplib
    import ssl

    env = dict(re.findall(r"^export (LGO_NATIONAL__MSS__\w+)=(.*)$", stdout, re.MULTILINE))
    assert env["LGO_NATIONAL__MSS__HOST"] == "127.0.0.1"
    tls = ssl.create_default_context(cafile=env["LGO_NATIONAL__MSS__CA_FILE"])
    tls.load_cert_chain(env["LGO_NATIONAL__MSS__CERT_FILE"], env["LGO_NATIONAL__MSS__KEY_FILE"])
    with smtplib.SMTP("127.0.0.1", int(env["LGO_NATIONAL__MSS__PORT"]), timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert smtp.mail("pharmacie@pharmacie.mssante.fr")[0] == 530  # not before STARTTLS
        smtp.rset()
        assert smtp.starttls(context=tls)[0] == 220
        smtp.ehlo()
        assert smtp.noop()[0] == 250


def _crl_published_for_the_printed_cas(stdout: str, port: int) -> None:
    """The daemon's trusted CPS CAs (printed by hwsim up) sign the CRL this bench publishes."""
    import re
    from pathlib import Path

    import httpx
    from cryptography import x509

    found = re.search(r"^export LGO_HARDWARE__CPS_CA_FILE=(.+)$", stdout, flags=re.MULTILINE)
    assert found is not None, stdout
    root, ca = x509.load_pem_x509_certificates(Path(found.group(1)).read_bytes())
    crl = httpx.get(f"http://127.0.0.1:{port}/pki/ac-personnes-test.crl", timeout=10)
    assert crl.headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(crl.content).is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert ca.issuer == root.subject


def test_up_detach_starts_everything_and_down_stops_it() -> None:
    import os
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    workdir = Path(f"/tmp/hwsim-up-{os.getpid()}")
    port = _free_port()
    hwsim = [sys.executable, "-m", "hwsim.cli"]
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_CSOCK_NAME"}
    try:
        up = subprocess.run(
            [
                *hwsim,
                "up",
                "--detach",
                "-w",
                str(workdir),
                "--national-port",
                str(port),
                "--mss-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
            check=False,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"PCSCLITE_CSOCK_NAME={workdir}/run/pcscd/pcscd.comm" in up.stdout
        # What the daemon needs to talk to this bench, not to another one or to production:
        assert "export LGO_MODE=bench" in up.stdout
        assert f"export LGO_NATIONAL__BASE_URL=http://127.0.0.1:{port}" in up.stdout
        assert (workdir / "national.port").read_text() == str(port)
        status = json.loads(
            subprocess.run(
                [*hwsim, "status", "--json", "-w", str(workdir)],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
                check=True,
            ).stdout
        )
        assert [t["serial"] for t in status["tokens"]][:1] == ["123456789"]
        pids = [int((workdir / f"{n}.pid").read_text()) for n in ("hwsim", "national", "mss")]
        _smtp_answers_starttls_with_the_printed_settings(up.stdout)
        deadline = time.monotonic() + 30
        while True:  # the national app is a separate process that binds its port on its own
            try:
                assert (
                    httpx.get(f"http://127.0.0.1:{port}/_sim/recorder", timeout=2).status_code
                    == 200
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        _crl_published_for_the_printed_cas(up.stdout, port)
        down = subprocess.run(
            [*hwsim, "down", "-w", str(workdir)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
        assert down.returncode == 0 and "hwsim" in down.stdout
        for pid in pids:
            deadline = time.monotonic() + 15
            while _alive(pid):
                assert time.monotonic() < deadline, f"process {pid} still alive"
                time.sleep(0.05)  # another process exiting: nothing to await
    finally:
        subprocess.run(
            [*hwsim, "down", "-w", str(workdir)], capture_output=True, timeout=30, env=env
        )
        shutil.rmtree(workdir, ignore_errors=True)


def test_cps4_is_honoured_on_every_insert_and_on_swap(hwsim: HwsimBench) -> None:
    import contextlib
    import time

    from drivers.errors import DriverError
    from drivers.pcsc import CardChannel
    from hwsim.cards.cps import CPS3_ATR, CPS4_ATR

    wd = ["--workdir", str(hwsim.workdir)]
    reader = hwsim.reader_names[1]

    def atr_seen(expected: bytes) -> bytes:
        """The ATR pcscd (and so OpenSC) reports, once it shows ``expected`` (a swap is seen a
        moment later), or the last one read after 10 s."""
        wait_card(reader, present=True)
        deadline = time.monotonic() + 10.0
        while True:
            with contextlib.suppress(DriverError), CardChannel(reader) as channel:
                atr = channel.atr
                if atr == expected or time.monotonic() > deadline:
                    return atr
            time.sleep(0.1)

    def atr_inserted() -> str:
        return str(hwsim.client.status()["readers"][1]["card"]["atr"]).replace(" ", "")

    for flags, expected in (([], CPS3_ATR), (["--cps4"], CPS4_ATR), ([], CPS3_ATR)):
        result = runner.invoke(app, ["insert", "cps", "pharmacien", "-r", "1", *flags, *wd])
        assert result.exit_code == 0, result.output
        assert atr_inserted() == expected.hex().upper(), flags
        assert atr_seen(expected) == expected, flags
        assert runner.invoke(app, ["remove", "-r", "1", *wd]).exit_code == 0
        wait_card(reader, present=False)
    assert runner.invoke(app, ["insert", "cps", "pharmacien", "-r", "1", *wd]).exit_code == 0
    assert atr_seen(CPS3_ATR) == CPS3_ATR
    swapped = runner.invoke(app, ["swap", "cps", "pharmacien", "--cps4", "-r", "1", *wd])
    assert swapped.exit_code == 0, swapped.output
    assert atr_inserted() == CPS4_ATR.hex().upper()
    assert atr_seen(CPS4_ATR) == CPS4_ATR


def test_reset_gives_a_fresh_cps_when_its_pin_is_blocked(hwsim: HwsimBench) -> None:
    from drivers.pcsc import CardChannel

    wd = ["--workdir", str(hwsim.workdir)]
    reader = hwsim.reader_names[1]
    verify_wrong = bytes.fromhex("0020000108") + b"0000" + b"\xff" * 4
    ask_tries = bytes.fromhex("00200001")  # VERIFY without data: the tries left, none spent
    assert runner.invoke(app, ["insert", "cps", "medecin", "-r", "1", *wd]).exit_code == 0
    wait_card(reader, present=True)
    with CardChannel(reader) as channel:
        answers = [channel.transmit(verify_wrong).sw for _ in range(3)]
    assert answers == [0x63C2, 0x63C1, 0x6983]
    # Out and back in, the card is still blocked: only `hwsim reset` gives a fresh one.
    assert runner.invoke(app, ["remove", "-r", "1", *wd]).exit_code == 0
    wait_card(reader, present=False)
    assert runner.invoke(app, ["insert", "cps", "medecin", "-r", "1", *wd]).exit_code == 0
    wait_card(reader, present=True)
    with CardChannel(reader) as channel:
        assert channel.transmit(ask_tries).sw == 0x6983
    reset = runner.invoke(app, ["reset", *wd])
    assert reset.exit_code == 0 and "3 essais" in reset.output, reset.output
    wait_card(reader, present=False)
    assert hwsim.client.status()["readers"][1]["card"] is None
    assert runner.invoke(app, ["insert", "cps", "medecin", "-r", "1", *wd]).exit_code == 0
    wait_card(reader, present=True)
    with CardChannel(reader) as channel:
        assert channel.transmit(ask_tries).sw == 0x63C3


@pytest.mark.parametrize("option", ["--national-port", "--mss-port"])
def test_up_refuses_a_port_another_bench_holds_and_starts_nothing(option: str) -> None:
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    workdir = Path(f"/tmp/hwsim-busy-{os.getpid()}")
    other = {"--national-port": "--mss-port", "--mss-port": "--national-port"}[option]
    with socket.socket() as held:  # another bench's simulator on that port
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "hwsim.cli",
                "up",
                "--detach",
                "-w",
                str(workdir),
                option,
                str(port),
                other,
                str(_free_port() if other == "--national-port" else 0),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert up.returncode == 1, up.stdout + up.stderr
    assert f"127.0.0.1:{port} déjà utilisé" in up.stderr and option in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1 and "Traceback" not in up.stderr
    assert "hwsim prêt" not in up.stdout and "export" not in up.stdout
    assert not (workdir / "control.sock").exists() and not (workdir / "hwsim.pid").exists()


def test_insert_and_remove_return_once_pcscd_sees_it(hwsim: HwsimBench) -> None:
    """A technician's `hwsim insert cps …; pkcs11-tool -L` must find the token: the command returns
    when pcscd reports the card (and `remove` when it reports none), not when the link is up."""
    from smartcard import scard

    wd = ["--workdir", str(hwsim.workdir)]
    reader = hwsim.reader_names[1]
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == scard.SCARD_S_SUCCESS

    def present_now() -> bool:
        hresult, states = scard.SCardGetStatusChange(ctx, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)

    try:
        for _ in range(3):  # the race was lost most of the time: three rounds make it certain
            assert (
                runner.invoke(app, ["insert", "cps", "pharmacien", "-r", "1", *wd]).exit_code == 0
            )
            assert present_now()
            assert runner.invoke(app, ["remove", "-r", "1", *wd]).exit_code == 0
            assert not present_now()
        assert runner.invoke(app, ["swap", "cps", "medecin", "-r", "1", *wd]).exit_code == 0
        assert present_now()
    finally:
        scard.SCardReleaseContext(ctx)


def test_scan_says_what_was_read(hwsim: HwsimBench) -> None:
    wd = ["--workdir", str(hwsim.workdir)]
    done = runner.invoke(app, ["scan", "EPTEST0000000000000042", "--aim", "]Q1", *wd])
    assert done.exit_code == 0, done.output
    assert "Scanner serial : ]Q1EPTEST0000000000000042 lu." in done.output
