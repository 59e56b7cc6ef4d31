#!/usr/bin/env bash
# Build the Debian 12 packages of lgo from a wheel set (packaging/build.sh calls it):
#
#   packaging/build-deb.sh SET_DIR OUTDIR
#
# SET_DIR/wheels holds the wheels of lgo, lgo-hwsim and every dependency. Produces
#   OUTDIR/lgo_<version>_amd64.deb        the daemon: its wheels (offline), units, configuration
#   OUTDIR/lgo-hwsim_<version>_amd64.deb  the technician's bench simulator (never on a counter)
# and prints their paths. No root needed (dpkg-deb --root-owner-group).
#
# The venv is made on the target by the maintainer script, from the wheels the package carries
# (/opt/lgo/wheels, no network): a venv is tied to its absolute path and to the interpreter it was
# made with, so one built here would have to be built at /opt/lgo on this machine; made by
# postinst, each release gets its own venv beside the running one (packaging/install.sh --deb),
# which is what lets an upgrade migrate, and switch back when the migration fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
SET_DIR="$(realpath "${1:?wheel set folder}")"
OUT="$(realpath -m "${2:?output folder}")"
PY="${PYTHON:-$REPO/.venv/bin/python}"
MAINTAINER="${LGO_DEB_MAINTAINER:-lgo maintainers <lgo@officine.invalid>}"

shopt -s nullglob
lgo_wheels=("$SET_DIR"/wheels/lgo-[0-9]*.whl)
hwsim_wheels=("$SET_DIR"/wheels/lgo_hwsim-[0-9]*.whl)
shopt -u nullglob
[ "${#lgo_wheels[@]}" -eq 1 ] || { echo "une seule roue lgo attendue dans $SET_DIR/wheels" >&2; exit 1; }
version="$(basename "${lgo_wheels[0]}" | cut -d- -f2)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

# The wheels lgo itself installs (its dependency closure, resolved offline by pip); the others
# are the simulator's own and go to lgo-hwsim.
lgo_closure() {
    env PIP_CONFIG_FILE=/dev/null "$PY" -m pip install --dry-run --quiet --no-index --ignore-installed \
        --disable-pip-version-check --find-links "$SET_DIR/wheels" --report - "lgo[postgresql]" |
        "$PY" -c 'import json, sys; print("\n".join(i["download_info"]["url"].rsplit("/", 1)[-1]
                    for i in json.load(sys.stdin)["install"]))'
}

doc_files() {  # doc_files PACKAGE_ROOT PACKAGE
    local doc="$1/usr/share/doc/$2"
    install -d -m 0755 "$doc"
    install -m 0644 "$HERE/deb/copyright" "$doc/copyright"
    printf '%s (%s) bookworm; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
        "$2" "$version" "$version" "$MAINTAINER" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" |
        gzip -n -9 > "$doc/changelog.gz"
    chmod 0644 "$doc/changelog.gz"
    # The lintian findings kept on purpose, each with its reason (deployment.md, "lintian").
    install -d -m 0755 "$1/usr/share/lintian/overrides"
    install -m 0644 "$HERE/deb/$2.lintian-overrides" "$1/usr/share/lintian/overrides/$2"
}

control() {  # control PACKAGE_ROOT PACKAGE DEPENDS DESCRIPTION...
    local root="$1" name="$2" depends="$3" size
    shift 3
    size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    install -d -m 0755 "$root/DEBIAN"
    {
        printf 'Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: %s\n' "$name" "$version" "$MAINTAINER"
        printf 'Installed-Size: %s\nDepends: %s\nSection: misc\nPriority: optional\n' "$size" "$depends"
        printf 'Homepage: https://lgo.officine.invalid/\n'
        printf '%s\n' "$@"
    } > "$root/DEBIAN/control"
    for script in postinst prerm postrm; do
        if [ -f "$HERE/deb/$name.$script" ]; then install -m 0755 "$HERE/deb/$name.$script" "$root/DEBIAN/$script"; fi
    done
}

build_lgo() {
    local root="$work/lgo" wheel
    install -d -m 0755 "$root/opt/lgo/wheels" "$root/opt/lgo/share/systemd/dropins" \
        "$root/lib/systemd/system" "$root/usr/bin" "$root/usr/share/polkit-1/rules.d" "$root/etc/lgo"
    while read -r wheel; do
        install -m 0644 "$SET_DIR/wheels/$wheel" "$root/opt/lgo/wheels/"
    done < <(lgo_closure)
    install -m 0755 "$HERE/install.sh" "$root/opt/lgo/share/install.sh"
    install -m 0644 "$REPO/systemd/lgo.service" "$REPO/systemd/lgo.socket" "$root/lib/systemd/system/"
    install -m 0644 "$REPO/systemd/dropins/serial-scanner.conf" "$root/opt/lgo/share/systemd/dropins/"
    install -m 0644 "$REPO/systemd/polkit/50-lgo-pcscd.rules" "$root/usr/share/polkit-1/rules.d/"
    install -m 0755 "$HERE/lgo-admin.sh" "$root/usr/bin/lgo"
    # Root's until postinst hands it to the lgo group (the group does not exist at unpack time).
    install -m 0640 "$HERE/lgo.toml" "$root/etc/lgo/lgo.toml"
    doc_files "$root" lgo
    install -m 0644 "$REPO/docs/deployment.md" "$root/usr/share/doc/lgo/deployment.md"
    install -d -m 0755 "$root/usr/share/man/man8"
    gzip -n -9 -c "$HERE/deb/lgo.8" > "$root/usr/share/man/man8/lgo.8.gz"
    chmod 0644 "$root/usr/share/man/man8/lgo.8.gz"
    control "$root" lgo \
        "python3 (>= 3.11), python3 (<< 3.12), python3-venv, adduser, pcscd, libccid, libpcsclite1, ca-certificates" \
        "Recommends: opensc" "Suggests: postgresql-client, lgo-hwsim" \
        "Description: point-of-dispensing service for French community pharmacies" \
        " lgo runs on the counter PC: carte Vitale and CPS readers (PC/SC), scanners," \
        " e-prescriptions, the ordonnancier, and the national services (INSi, DMP," \
        " MSSanté, Pro Santé Connect) through a durable outbox, behind a loopback API." \
        " The Python application and its dependencies are installed offline into" \
        " /opt/lgo from the wheels this package carries."
    echo "/etc/lgo/lgo.toml" > "$root/DEBIAN/conffiles"
    dpkg-deb --root-owner-group -Zgzip --build "$root" "$OUT/lgo_${version}_amd64.deb" >/dev/null
    echo "$OUT/lgo_${version}_amd64.deb"
}

build_hwsim() {
    local root="$work/hwsim" wheel
    install -d -m 0755 "$root/opt/lgo-hwsim/wheels" "$root/lib/systemd/system/lgo.service.d"
    for wheel in "$SET_DIR"/wheels/*.whl; do
        if [ ! -f "$work/lgo/opt/lgo/wheels/$(basename "$wheel")" ]; then
            install -m 0644 "$wheel" "$root/opt/lgo-hwsim/wheels/"
        fi
    done
    # The bench unit runs the simulator from its own venv (install.sh's bench uses /opt/lgo/bin).
    sed 's#/opt/lgo/bin/hwsim#/opt/lgo-hwsim/venv/bin/hwsim#' "$REPO/systemd/bench/lgo-hwsim.service" \
        > "$root/lib/systemd/system/lgo-hwsim.service"
    install -m 0644 "$REPO/systemd/bench/bench.conf" "$root/lib/systemd/system/lgo.service.d/bench.conf"
    chmod 0644 "$root/lib/systemd/system/lgo-hwsim.service"
    doc_files "$root" lgo-hwsim
    control "$root" lgo-hwsim \
        "lgo (= $version), python3-venv, pcscd, vsmartcard-vpcd, softhsm2, opensc, iproute2" \
        "Description: technician's bench for lgo (simulated readers, cards and national services)" \
        " hw-sim: virtual carte Vitale and CPS readers seen by a private pcscd, virtual" \
        " scanners, and a simulator of the national services on 127.0.0.1. It turns lgo" \
        " into bench mode. Never install it on a pharmacy's counter PC."
    dpkg-deb --root-owner-group -Zgzip --build "$root" "$OUT/lgo-hwsim_${version}_amd64.deb" >/dev/null
    echo "$OUT/lgo-hwsim_${version}_amd64.deb"
}

build_lgo
if [ "${#hwsim_wheels[@]}" -eq 1 ]; then build_hwsim; fi
