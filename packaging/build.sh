#!/usr/bin/env bash
# Build the installable artefact of lgo: a wheel set with its install script.
#
#   packaging/build.sh [OUTDIR]        (default: build/dist)
#
# Produces OUTDIR/lgo-<version>/ (wheels/ for lgo, lgo-hwsim and every dependency, systemd/ units,
# lgo.toml, sysusers.conf, install.sh, docs/), OUTDIR/lgo-<version>.tar.gz of the same folder,
# the Debian 12 packages OUTDIR/lgo_<version>_amd64.deb and OUTDIR/lgo-hwsim_<version>_amd64.deb
# (packaging/build-deb.sh), and OUTDIR/SHA256SUMS of the three artefacts.
# On the target: sudo apt install ./lgo_<version>_amd64.deb
# (or: tar xzf lgo-<version>.tar.gz && sudo ./lgo-<version>/install.sh)
# The target needs Python >= 3.11 with venv (Debian 12: python3-venv) and no network access.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="$(realpath -m "${1:-$REPO/build/dist}")"
PY="${PYTHON:-$REPO/.venv/bin/python}"

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/lgo/__init__.py")"
[ -n "$version" ] || { echo "version introuvable dans lgo/__init__.py" >&2; exit 1; }
set_dir="$OUT/lgo-$version"

rm -rf "$set_dir"
mkdir -p "$set_dir/wheels" "$set_dir/docs"
# Wheels of lgo, the bench simulator and all their dependencies (the target installs offline).
# The build venv (./dev setup) already has setuptools and wheel: no isolated build env needed.
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-build-isolation \
    --wheel-dir "$set_dir/wheels" "$REPO[postgresql]" "$REPO/hw-sim"
cp -r "$REPO/systemd" "$set_dir/systemd"
install -m 0755 "$HERE/install.sh" "$set_dir/install.sh"
install -m 0644 "$HERE/lgo.toml" "$HERE/sysusers.conf" "$set_dir/"
install -m 0755 "$HERE/lgo-admin.sh" "$set_dir/"
if [ -f "$REPO/docs/deployment.md" ]; then install -m 0644 "$REPO/docs/deployment.md" "$set_dir/docs/"; fi
tar -C "$OUT" -czf "$OUT/lgo-$version.tar.gz" "lgo-$version"
PYTHON="$PY" "$HERE/build-deb.sh" "$set_dir" "$OUT" >&2
(cd "$OUT" && sha256sum "lgo-$version.tar.gz" lgo_"$version"_amd64.deb lgo-hwsim_"$version"_amd64.deb \
    > SHA256SUMS)
echo "$set_dir"
