"""``./dev demo``: a whole counter bench on this machine, stopped by one Ctrl-C.

1. ``hwsim up --detach``: private pcscd with virtual readers (in its own namespaces), the CPS cards
   OpenSC's PKCS#11 module drives (the daemon's CPS module),
   virtual scanners, the national-services simulator and the MSSanté SMTP simulator on 127.0.0.1
   (the daemon gets the ``LGO_NATIONAL__MSS__*`` settings ``hwsim up`` prints).
2. ``lgo migrate``, ``lgo catalog import-bdpm`` (sample BDPM files of the simulator's products) and
   ``lgo counters add`` on an SQLite file in ``.state/demo``.
3. ``lgo serve`` wired to all of that; prints the counter page URL (token in the URL fragment, which
   never reaches the server) and the commands that drive the bench.

It drives both programs as a technician would, through their commands: the daemon never imports the
simulator.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BDPM_SAMPLE = ROOT / "hw-sim" / "hwsim" / "fixtures" / "bdpm"


def say(text: str) -> None:
    print(f"\033[1m[demo]\033[0m {text}", flush=True)  # noqa: T201 (terminal output)


def hwsim(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hwsim"), *args], capture_output=True, text=True, check=check, timeout=120
    )


def start_hwsim(workdir: Path, national_port: int) -> dict[str, str]:
    hwsim("down", "--workdir", str(workdir), check=False)
    # The MSSanté SMTP simulator takes any free port: its LGO_NATIONAL__MSS__* settings (port, test
    # PKI files) come back among the `export` lines and go to the daemon's environment.
    done = hwsim(
        "up",
        "--detach",
        "--workdir",
        str(workdir),
        "--national-port",
        str(national_port),
        "--mss-port",
        "0",
    )
    env = dict(re.findall(r"^export (\w+)=(.*)$", done.stdout, flags=re.MULTILINE))
    # LGO_HARDWARE__PKCS11_MODULE: OpenSC's module, which drives the virtual CPS card itself
    if "PCSCLITE_CSOCK_NAME" not in env or "LGO_HARDWARE__PKCS11_MODULE" not in env:
        raise SystemExit(
            f"hwsim up did not report its pcscd socket and CPS module:\n{done.stdout}\n{done.stderr}"
        )
    return env


def lgo_env(
    state: Path, hw_env: dict[str, str], workdir: Path, port: int, national_port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGO_")}
    env.update(hw_env)
    env.update(
        LGO_MODE="bench",  # hw-sim: production would refuse the simulator's settings
        LGO_STATE_DIR=str(state),
        LGO_API__PORT=str(port),
        LGO_NATIONAL__BASE_URL=f"http://127.0.0.1:{national_port}",
        LGO_HARDWARE__SCANNER_SERIAL_PORTS=f'["{workdir / "scanner-serial"}"]',
        LGO_LOGGING__JSON="false",
    )
    return env


def write_env_file(env: dict[str, str], path: Path) -> Path:
    """The bench's lgo settings as a shell file, for `lgo doctor` or another `lgo` command."""
    wanted = {k: v for k, v in env.items() if k.startswith(("LGO_", "PCSCLITE_", "SOFTHSM2_"))}
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(wanted.items())))
    return path


def lgo(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "lgo"), *args], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"lgo {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description="Banc de démonstration lgo + hw-sim")
    parser.add_argument("--port", type=int, default=8700, help="port de l'API locale (127.0.0.1)")
    parser.add_argument("--national-port", type=int, default=8765)
    parser.add_argument(
        "--state", type=Path, default=ROOT / ".state", help="dossier d'état du banc"
    )
    args = parser.parse_args()

    workdir, state = args.state / "hwsim", args.state / "demo"
    say("démarrage de hw-sim (pcscd privé, lecteurs virtuels, jetons CPS, services nationaux)…")
    hw_env = start_hwsim(workdir, args.national_port)
    env = lgo_env(state, hw_env, workdir, args.port, args.national_port)
    server: subprocess.Popen[bytes] | None = None
    try:
        lgo(env, "migrate")
        lgo(env, "catalog", "import-bdpm", str(BDPM_SAMPLE))
        token = lgo(env, "counters", "add", f"demo-{int(time.time())}")
        env_file = write_env_file(env, state / "lgo.env")
        server = subprocess.Popen([str(BIN / "lgo"), "serve"], env=env)
        say(f"page du comptoir : http://127.0.0.1:{args.port}/#token={token}")
        say(f"jeton du poste   : {token}")
        say(
            f"API              : curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{args.port}/v1/health"
        )
        say(
            f"banc             : {BIN / 'hwsim'} profiles | insert vitale <profil> --reader 0 | "
            "insert cps <profil> --reader 1 | scan <texte> | status"
        )
        say(f"vérification     : (set -a; . {env_file}; {BIN / 'lgo'} doctor)")
        if "LGO_NATIONAL__MSS__PORT" in env:
            say(f"MSSanté simulé   : smtp://127.0.0.1:{env['LGO_NATIONAL__MSS__PORT']} (STARTTLS)")
        say("Ctrl-C pour tout arrêter.")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        hwsim("down", "--workdir", str(workdir), check=False)
        say("tout est arrêté.")


if __name__ == "__main__":
    sys.exit(main())
