"""install.sh as a technician runs it (`--root /`, as root), without touching this machine.

The script runs inside a private mount namespace where /etc is a copy and /opt, /usr/local,
/var/lib and /var/log are empty tmpfs: the `lgo` system user, the chowns, `runuser`, the admin
wrapper and the daemon running as `lgo` are all real, and all of it vanishes with the namespace.
systemd is not PID 1 here, so install.sh skips systemctl (as it does on any such machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.deploy import deploy_env
from tests.integration.deploy.daemon import free_port

pytestmark = pytest.mark.integration

# Runs as root in the namespace. $1: shared folder (the test reads and writes it), $2: wheel set,
# $3: API port. Each step prints `key=value` lines the test checks.
SCRIPT = r"""
set -euo pipefail
shared=$1 wheelset=$2 port=$3
cp -a /etc "$shared/etc-copy"
mount --bind "$shared/etc-copy" /etc
for dir in /opt /usr/local /var/lib /var/log; do mount -t tmpfs tmpfs "$dir"; done

"$wheelset/install.sh" >"$shared/install.log" 2>&1
echo "user=$(id -un lgo) shell=$(getent passwd lgo | cut -d: -f7)"
for f in /etc/lgo /etc/lgo/lgo.toml /var/lib/lgo /var/lib/lgo/lgo.sqlite3 /var/log/lgo; do
    echo "stat $(stat -c '%U:%G %a' "$f") $f"
done

# Admin command as root: the wrapper runs it as lgo.
/usr/local/bin/lgo counters add comptoir-1 >"$shared/token" 2>/dev/null
echo "after-admin $(stat -c '%U' /var/lib/lgo/lgo.sqlite3*| sort -u | tr '\n' ' ')"

# The daemon as the unit runs it: user lgo, UMask=0077, the installed configuration.
# setpriv execs (runuser would stay as a root parent), so $! is the daemon itself.
(umask 077 && exec setpriv --reuid=lgo --regid=lgo --init-groups -- env LGO_CONFIG=/etc/lgo/lgo.toml \
    LGO_MODE=bench LGO_API__PORT="$port" LGO_HARDWARE__PCSC_ENABLED=false NOTIFY_SOCKET="$shared/notify" \
    /opt/lgo/bin/lgo serve 2>"$shared/serve.log") &
echo $! >"$shared/daemon.pid"
wait || true
echo "after-run $(find /var/lib/lgo -not -user lgo | wc -l) files not owned by lgo"

"$wheelset/install.sh" --uninstall >>"$shared/install.log" 2>&1
echo "uninstalled opt=$(test -e /opt/lgo && echo present || echo absent)" \
     "data=$(test -e /var/lib/lgo/lgo.sqlite3 && echo kept || echo gone)" \
     "user=$(id -un lgo 2>/dev/null || echo none)"
"$wheelset/install.sh" --uninstall --purge >>"$shared/install.log" 2>&1
echo "purged data=$(test -e /var/lib/lgo && echo kept || echo gone)" \
     "config=$(test -e /etc/lgo && echo kept || echo gone)" \
     "user=$(id -un lgo 2>/dev/null || echo none)"
"""


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder both sides reach; the lgo user must traverse it to the notify socket."""
    path = Path(tempfile.mkdtemp(prefix="lgo-sysinstall-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _unshare_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


@pytest.mark.timeout(900)
def test_system_install_user_rights_admin_wrapper_daemon_and_purge(
    shared: Path, deploy_wheelset: Path
) -> None:
    if not _unshare_works():
        pytest.skip("needs root and unshare --mount to install into a private namespace")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(shared / "notify"))
    (shared / "notify").chmod(0o666)  # the daemon runs as lgo
    port = free_port()
    script = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            SCRIPT,
            "install",
            str(shared),
            str(deploy_wheelset),
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=deploy_env(),
    )
    try:
        _wait_ready(notify, script, shared)
        token = (shared / "token").read_text().strip()
        health = httpx.get(
            f"http://127.0.0.1:{port}/v1/health",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert health.status_code == 200
        daemon_pid = int((shared / "daemon.pid").read_text())
        assert _owner_of(daemon_pid) != 0, "the daemon does not run as root"
        os.kill(daemon_pid, signal.SIGTERM)
        out, err = script.communicate(timeout=300)
    finally:
        notify.close()
        if script.poll() is None:
            script.kill()
            script.wait(timeout=60)
    log = (shared / "install.log").read_text() if (shared / "install.log").exists() else ""
    assert script.returncode == 0, f"{out}\n{err}\n{log[-3000:]}"
    lines = out.splitlines()

    assert "user=lgo shell=/usr/sbin/nologin" in lines
    assert "stat root:lgo 750 /etc/lgo" in lines
    assert "stat root:lgo 640 /etc/lgo/lgo.toml" in lines
    assert "stat lgo:lgo 700 /var/lib/lgo" in lines
    assert "stat lgo:lgo 600 /var/lib/lgo/lgo.sqlite3" in lines
    assert "stat lgo:lgo 750 /var/log/lgo" in lines
    assert "after-admin lgo " in lines, "admin commands run as lgo, never leave root-owned files"
    assert "after-run 0 files not owned by lgo" in lines
    assert "uninstalled opt=absent data=kept user=lgo" in lines
    assert "purged data=gone config=gone user=none" in lines


def _wait_ready(notify: socket.socket, script: subprocess.Popen[str], shared: Path) -> None:
    """Until READY=1 arrives; fail with the logs if the script ends first or 5 minutes pass."""
    notify.settimeout(5)
    for _ in range(60):
        try:
            if "READY=1" in notify.recv(4096).decode().splitlines():
                return
        except TimeoutError:
            if script.poll() is not None:
                break
    logs = [
        p.read_text()[-3000:] for p in (shared / "install.log", shared / "serve.log") if p.exists()
    ]
    script.kill()
    out, err = script.communicate(timeout=60)
    raise AssertionError(f"no READY=1\n{out}\n{err}\n" + "\n".join(logs))


def _owner_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(uid_line.split()[1])
