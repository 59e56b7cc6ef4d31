"""The Debian package: what it declares, and install / upgrade / failed upgrade / remove / purge.

The lifecycle runs the real `dpkg` as root inside a private mount namespace: /usr, /etc and /var
are overlays of this machine's (dpkg's database, the lgo user, the units, all written to the
overlays' upper folders) and /opt a tmpfs, so nothing of it stays on the machine. The packages are
built by packaging/build-deb.sh around tiny stand-in `lgo` releases (the install.sh rollback
test's) so that the maintainer scripts' logic runs in seconds; systemd is not PID 1 here, so the
scripts skip systemctl as they do on any such machine. The real package built by
packaging/build.sh is checked for its control fields, contents and lintian findings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.deploy.daemon import clean_env
from tests.integration.deploy.test_install_rollback import _fake_release

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

# Runs as root in the namespace, $1 being the shared folder: private /usr, /etc, /var and /opt.
PRELUDE = r"""
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
shared=$1
for dir in /usr /etc /var; do
    mkdir -p "$shared/overlay$dir/up" "$shared/overlay$dir/work"
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$shared/overlay$dir/up,workdir=$shared/overlay$dir/work" "$dir"
done
mount -t tmpfs tmpfs /opt
state() { dpkg-query -W -f='${Status} ${Version}' "${1:-lgo}" 2>/dev/null || echo absent; }
"""

# Then the three .deb files. Prints key=value lines.
LIFECYCLE = (
    PRELUDE
    + r"""
v1=$2 v2_bad=$3 v3=$4
release() { basename "$(readlink -f /opt/lgo/current)" | cut -d- -f1; }

dpkg -i "$v1" >"$shared/dpkg.log" 2>&1; echo "install_rc=$?"
echo "after_install status=$(state) current=$(release) run=$(/opt/lgo/bin/lgo)"
echo "user=$(id -un lgo) shell=$(getent passwd lgo | cut -d: -f7)"
for f in /etc/lgo /etc/lgo/lgo.toml /var/lib/lgo; do echo "stat $(stat -c '%U:%G %a' "$f") $f"; done
echo "wrapper=$(lgo)"
python3 -c "import sqlite3; c = sqlite3.connect('/var/lib/lgo/lgo.sqlite3'); c.execute('CREATE TABLE kept (v TEXT)'); c.execute(\"INSERT INTO kept VALUES ('données')\"); c.commit()"
chown lgo:lgo /var/lib/lgo/lgo.sqlite3
echo 'level = "WARNING"' >> /etc/lgo/lgo.toml

dpkg -i "$v2_bad" >>"$shared/dpkg.log" 2>&1; echo "bad_upgrade_rc=$?"
echo "after_bad status=$(state) current=$(release) run=$(/opt/lgo/bin/lgo)"
echo "releases_after_bad=$(ls /opt/lgo/releases | cut -d- -f1 | sort | tr '\n' ' ')"
echo "backups_after_bad=$(ls /var/lib/lgo/backups | wc -l)"

dpkg -i "$v3" >>"$shared/dpkg.log" 2>&1; echo "upgrade_rc=$?"
echo "after_upgrade status=$(state) current=$(release) run=$(/opt/lgo/bin/lgo)"
echo "releases_after_upgrade=$(ls /opt/lgo/releases | cut -d- -f1 | sort | tr '\n' ' ')"
echo "backups_after_upgrade=$(ls /var/lib/lgo/backups | wc -l)"
echo "config_kept=$(grep -c 'level = "WARNING"' /etc/lgo/lgo.toml)"
echo "data=$(python3 -c "import sqlite3; print(sqlite3.connect('/var/lib/lgo/lgo.sqlite3').execute('SELECT v FROM kept').fetchone()[0])")"

dpkg -r lgo >>"$shared/dpkg.log" 2>&1; echo "remove_rc=$?"
echo "after_remove status=$(state) opt=$(test -e /opt/lgo && echo present || echo absent)" \
     "data=$(test -e /var/lib/lgo/lgo.sqlite3 && echo kept || echo gone)" \
     "config=$(test -e /etc/lgo/lgo.toml && echo kept || echo gone)" \
     "user=$(id -un lgo 2>/dev/null || echo none)"

dpkg -P lgo >>"$shared/dpkg.log" 2>&1; echo "purge_rc=$?"
echo "after_purge status=$(state) data=$(test -e /var/lib/lgo && echo kept || echo gone)" \
     "config=$(test -e /etc/lgo && echo kept || echo gone) user=$(id -un lgo 2>/dev/null || echo none)"
"""
)


def _namespace_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("dpkg") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


def _deb(tmp: Path, version: str, migrate_exit: int) -> Path:
    set_dir = tmp / f"set-{version}"
    set_dir.mkdir()
    (set_dir / "wheels").symlink_to(_fake_release(tmp, version, migrate_exit))
    out = tmp / "debs"
    done = subprocess.run(
        [str(REPO / "packaging/build-deb.sh"), str(set_dir), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    deb = out / f"lgo_{version}_amd64.deb"
    assert deb.is_file() and str(deb) in done.stdout
    return deb


@pytest.fixture
def shared() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lgo-deb-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(900)
def test_install_failed_upgrade_upgrade_remove_purge(tmp_path: Path, shared: Path) -> None:
    if not _namespace_works():
        pytest.skip("needs root, dpkg and unshare --mount to install into a private namespace")
    debs = [_deb(tmp_path, "1.0.0", 0), _deb(tmp_path, "2.0.0", 3), _deb(tmp_path, "3.0.0", 0)]
    env = {**clean_env(), "LGO_INSTALL_COMPILE": "0", "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            LIFECYCLE,
            "lifecycle",
            str(shared),
            *map(str, debs),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    log = (shared / "dpkg.log").read_text() if (shared / "dpkg.log").exists() else ""
    lines = done.stdout.splitlines()
    context = f"{done.stdout}\n{done.stderr}\n{log[-4000:]}"

    assert "install_rc=0" in lines, context
    assert "after_install status=install ok installed 1.0.0 current=1.0.0 run=lgo 1.0.0" in lines
    assert "user=lgo shell=/usr/sbin/nologin" in lines
    assert "stat root:lgo 750 /etc/lgo" in lines
    assert "stat root:lgo 640 /etc/lgo/lgo.toml" in lines
    assert "stat lgo:lgo 700 /var/lib/lgo" in lines
    assert "wrapper=lgo 1.0.0" in lines  # /usr/bin/lgo runs the current release as lgo

    # A release whose migration fails: dpkg reports it, the previous release runs on, the failed
    # one is gone, the database was backed up first and is intact.
    assert "bad_upgrade_rc=1" in lines, context
    assert "after_bad status=install ok half-configured 2.0.0 current=1.0.0 run=lgo 1.0.0" in lines
    assert "releases_after_bad=1.0.0 " in lines
    assert "backups_after_bad=1" in lines
    assert "migrations ont échoué" in log

    assert "upgrade_rc=0" in lines, context
    assert "after_upgrade status=install ok installed 3.0.0 current=3.0.0 run=lgo 3.0.0" in lines
    assert "releases_after_upgrade=1.0.0 3.0.0 " in lines  # the previous good one is kept
    assert "backups_after_upgrade=2" in lines
    assert "config_kept=1" in lines  # a conffile the technician changed survives the upgrade
    assert "data=données" in lines

    assert "remove_rc=0" in lines, context
    assert (
        "after_remove status=deinstall ok config-files 3.0.0 opt=absent data=kept "
        "config=kept user=lgo"
    ) in lines
    assert "purge_rc=0" in lines, context
    assert "after_purge status=absent data=gone config=gone user=none" in lines


def _control(deb: Path) -> dict[str, str]:
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    fields: dict[str, str] = {}
    for line in out.splitlines():
        if line and not line.startswith(" "):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


# The real packages, $2 and $3: installed as a technician's bench would, then purged.
REAL_INSTALL = (
    PRELUDE
    + r"""
lgo_deb=$2 hwsim_deb=$3
dpkg -i "$lgo_deb" >"$shared/dpkg.log" 2>&1; echo "install_rc=$?"
echo "status=$(state lgo)"
echo "version=$(lgo --version)"
lgo serve --check >"$shared/check.log" 2>&1; echo "production_check_rc=$?"
LGO_MODE=bench runuser -u lgo -- env LGO_MODE=bench LGO_CONFIG=/etc/lgo/lgo.toml \
    /opt/lgo/bin/lgo serve --check >>"$shared/check.log" 2>&1; echo "bench_check_rc=$?"
echo "db=$(stat -c '%U:%G %a' /var/lib/lgo/lgo.sqlite3)"
dpkg -i "$hwsim_deb" >>"$shared/dpkg.log" 2>&1; echo "hwsim_install_rc=$?"
echo "hwsim=$(/opt/lgo-hwsim/venv/bin/hwsim version >"$shared/hwsim.log" 2>&1 && echo runs || echo broken)"
dpkg -P lgo-hwsim lgo >>"$shared/dpkg.log" 2>&1; echo "purge_rc=$?"
echo "after_purge opt=$(ls -A /opt | tr '\n' ' ')"
"""
)


@pytest.mark.timeout(1200)
def test_the_real_packages_install_refuse_production_placeholders_and_purge(
    deploy_wheelset: Path, shared: Path
) -> None:
    if not _namespace_works():
        pytest.skip("needs root, dpkg and unshare --mount to install into a private namespace")
    version = deploy_wheelset.name.removeprefix("lgo-")
    out = deploy_wheelset.parent
    env = {**clean_env(), "LGO_INSTALL_COMPILE": "0", "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            REAL_INSTALL,
            "real",
            str(shared),
            str(out / f"lgo_{version}_amd64.deb"),
            str(out / f"lgo-hwsim_{version}_amd64.deb"),
        ],
        capture_output=True,
        text=True,
        timeout=1100,
        env=env,
    )
    logs = "".join(
        p.read_text()[-3000:]
        for p in (shared / "dpkg.log", shared / "check.log", shared / "hwsim.log")
        if p.exists()
    )
    lines = done.stdout.splitlines()
    context = f"{done.stdout}\n{done.stderr}\n{logs}"
    assert "install_rc=0" in lines, context
    assert f"status=install ok installed {version}" in lines, context
    assert f"version=lgo {version}" in lines, context
    # The shipped lgo.toml is the production example: refused until filled in, naming settings.
    assert "production_check_rc=2" in lines, context
    check = (shared / "check.log").read_text()
    assert "Mode production" in check and "national.insi.idam" in check
    assert "bench_check_rc=0" in lines, context  # migrated by postinst, ready in bench mode
    assert "db=lgo:lgo 600" in lines, context
    hwsim_log = (shared / "hwsim.log").read_text() if (shared / "hwsim.log").exists() else ""
    assert "hwsim_install_rc=0" in lines and "hwsim=runs" in lines, context + hwsim_log
    assert "purge_rc=0" in lines and "after_purge opt=" in lines, context


def _contents(deb: Path) -> list[str]:
    out = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [line.split()[-1].removeprefix(".") for line in out.splitlines()]


@pytest.mark.timeout(900)
def test_the_built_packages_declare_and_carry_what_a_counter_needs(deploy_wheelset: Path) -> None:
    out = deploy_wheelset.parent
    version = deploy_wheelset.name.removeprefix("lgo-")
    lgo_deb, hwsim_deb = out / f"lgo_{version}_amd64.deb", out / f"lgo-hwsim_{version}_amd64.deb"
    control = _control(lgo_deb)
    depends = control["Depends"]
    for needed in (
        "python3 (>= 3.11)",
        "python3 (<< 3.12)",
        "python3-venv",
        "pcscd",
        "libccid",
        "adduser",
    ):
        assert needed in depends
    assert "opensc" in control["Recommends"]
    files = _contents(lgo_deb)
    for path in (
        "/lib/systemd/system/lgo.service",
        "/lib/systemd/system/lgo.socket",
        "/etc/lgo/lgo.toml",
        "/usr/bin/lgo",
        "/opt/lgo/share/install.sh",
        "/usr/share/polkit-1/rules.d/50-lgo-pcscd.rules",
        "/usr/share/doc/lgo/copyright",
    ):
        assert path in files
    wheels = [f for f in files if f.startswith("/opt/lgo/wheels/")]
    assert any("/lgo-" in w for w in wheels) and any("/fastapi-" in w for w in wheels)
    assert not any("lgo_hwsim" in w for w in wheels), "the simulator is a separate package"
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(lgo_deb)], capture_output=True, check=True, timeout=60
    ).stdout
    assert (
        b"./conffiles"
        in subprocess.run(
            ["tar", "-t"], input=conffiles, capture_output=True, check=True, timeout=60
        ).stdout
    )
    # The lgo wheel carries the CDA schema the documents are validated against.
    wheel = next(deploy_wheelset.glob("wheels/lgo-*.whl"))
    listing = subprocess.run(
        ["unzip", "-l", str(wheel)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "lgo/documents/schema/CDA.xsd" in listing

    hwsim = _control(hwsim_deb)
    assert f"lgo (= {version})" in hwsim["Depends"] and "vsmartcard-vpcd" in hwsim["Depends"]
    hwsim_files = _contents(hwsim_deb)
    assert "/lib/systemd/system/lgo-hwsim.service" in hwsim_files
    assert "/lib/systemd/system/lgo.service.d/bench.conf" in hwsim_files
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, timeout=120
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr

    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (./dev setup installs it)")
    lint = subprocess.run(
        ["lintian", "--tag-display-limit", "0", str(lgo_deb), str(hwsim_deb)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    findings = [line for line in lint.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert findings == [], "\n".join(findings)
