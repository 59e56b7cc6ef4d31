#!/usr/bin/env bash
# Install, upgrade or uninstall lgo from a wheel set (built by packaging/build.sh).
#
#   install.sh [--root DIR] [--wheels DIR] [--with-hwsim] [--no-start] [--python PY]
#                                                   install or upgrade
#   install.sh --uninstall [--purge] [--root DIR]   remove (configuration and data kept)
#   install.sh --deb --wheels /opt/lgo/wheels       the .deb's postinst: the package manager has
#                                                   installed the units, configuration and wrapper;
#                                                   build the release venv, migrate, switch
#
# Layout (all under --root, "/" by default):
#   /opt/lgo/releases/<version>-<stamp>/   one venv per installed release (pip, offline wheels)
#   /opt/lgo/current -> releases/...       the running release; /opt/lgo/bin/lgo -> current/bin/lgo
#   /opt/lgo/share/{systemd,doc}           optional units and drop-ins, documentation
#   /etc/lgo/lgo.toml                      configuration (never overwritten; new defaults beside it)
#   /var/lib/lgo, /var/log/lgo             state (database) and logs, owned by the lgo user
#   /usr/local/lib/systemd/system/         lgo.service, lgo.socket (and lgo-hwsim.service)
#   /usr/local/lib/sysusers.d/lgo.conf     the lgo system user
#   /etc/polkit-1/rules.d/50-lgo-pcscd.rules  pcscd access, where polkit is installed
#   /usr/local/bin/lgo                     admin wrapper: runs lgo as the lgo user with the config
#
# With --root other than "/", the files go under that folder with every path rewritten to it, no
# user is created, nothing is chowned and systemctl is not called: that is how the tests install
# into a temporary folder and run the daemon from there.
#
# An upgrade builds the new release beside the old one, backs up a SQLite database, switches the
# `current` link, runs the migrations and restarts the service; if the migrations fail it switches
# back. Data and configuration are never removed except by `--uninstall --purge`.
set -euo pipefail
# Command substitutions (release="$(build_release)") must stop on errors too.
shopt -s inherit_errexit
# Whatever the technician's umask, the release must be readable by the service user; the
# configuration and the state get explicit modes below.
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="/"
WHEELS=""
WITH_HWSIM=0
START=1
ACTION="install"
PURGE=0
# The distribution's interpreter: a python3 earlier in root's PATH (pyenv, /root/...) may not be
# readable by the service user.
PYTHON="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3 || echo python3)}"
KEEP_RELEASES=2
# SQLite copies taken before each migration (lgo-<stamp>.sqlite3): the newest ones are kept.
KEEP_BACKUPS="${LGO_KEEP_BACKUPS:-5}"
DEB=0

log() { printf '[lgo-install] %s\n' "$*" >&2; }
die() { log "ERREUR : $*"; exit 1; }

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --root) ROOT="${2:?--root needs a folder}"; shift 2 ;;
            --wheels) WHEELS="${2:?--wheels needs a folder}"; shift 2 ;;
            --with-hwsim) WITH_HWSIM=1; shift ;;
            --no-start) START=0; shift ;;
            --uninstall) ACTION="uninstall"; shift ;;
            --purge) PURGE=1; shift ;;
            --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
            --deb) DEB=1; shift ;;
            -h|--help) usage ;;
            *) log "option inconnue : $1"; usage ;;
        esac
    done
    if [ "$PURGE" -eq 1 ] && [ "$ACTION" != "uninstall" ]; then
        die "--purge ne s'utilise qu'avec --uninstall"
    fi
}

set_paths() {
    ROOT="$(realpath -m "$ROOT")"
    if [ "$ROOT" = "/" ]; then SYSTEM=1; P=""; else SYSTEM=0; P="$ROOT"; fi
    OPT="$P/opt/lgo"
    ETC="$P/etc/lgo"
    STATE="$P/var/lib/lgo"
    LOGS="$P/var/log/lgo"
    UNITS="$P/usr/local/lib/systemd/system"
    SYSUSERS="$P/usr/local/lib/sysusers.d"
    POLKIT="$P/etc/polkit-1/rules.d"
    DROPINS="$P/etc/systemd/system/lgo.service.d"
    WRAPPER="$P/usr/local/bin/lgo"
    # Sources: a built wheel set has systemd/ and wheels/ beside this script; the repo has them
    # one level up (systemd/) or in dist/.
    if [ -d "$HERE/systemd" ]; then SRC="$HERE"; else SRC="$(dirname "$HERE")"; fi
    [ -n "$WHEELS" ] || WHEELS="$HERE/wheels"
}

systemd_running() {
    [ "$SYSTEM" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

# Rewrite the absolute paths of units and configuration when installing under another root.
render() {  # render SRC DEST MODE
    local tmp
    tmp="$(mktemp "$(dirname "$2")/.lgo-render.XXXXXX")"
    # One pass, so that a rewritten path is never rewritten again.
    sed -E "s#(/opt/lgo|/etc/lgo|/var/lib/lgo|/var/log/lgo)#$P\\1#g" "$1" > "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
}

as_service_user() {
    # Same umask as the unit (UMask=0077): the database files are the service's alone.
    if [ "$SYSTEM" -eq 1 ]; then
        (umask 077 && runuser -u lgo -- env LGO_CONFIG="$ETC/lgo.toml" "$@")
    else
        (umask 077 && env LGO_CONFIG="$ETC/lgo.toml" "$@")
    fi
}

lgo_wheel() {
    local found=()
    shopt -s nullglob
    found=("$WHEELS"/lgo-[0-9]*.whl)
    shopt -u nullglob
    [ "${#found[@]}" -eq 1 ] || die "il faut exactement une roue lgo-*.whl dans $WHEELS (trouvé ${#found[@]})"
    printf '%s\n' "${found[0]}"
}

check_python() {
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        || die "Python 3.11 ou plus récent est nécessaire ($PYTHON)"
}

build_release() {  # prints the new release folder
    local wheel version release packages
    wheel="$(lgo_wheel)"
    version="$(basename "$wheel" | cut -d- -f2)"
    release="$OPT/releases/$version-$(date -u +%Y%m%dT%H%M%SZ)-$$"
    packages=("lgo[postgresql]")
    [ "$WITH_HWSIM" -eq 1 ] && packages+=("lgo-hwsim")
    log "création de $release"
    mkdir -p "$OPT/releases"
    "$PYTHON" -m venv "$release" >&2
    # Offline: only the wheels of the set, never an index.
    # Only the wheel set counts: no pip configuration or PIP_* variable of the machine.
    if ! env $(compgen -e | grep '^PIP_' | sed 's/^/-u /') PIP_CONFIG_FILE=/dev/null \
            "$release/bin/python" -m pip install --quiet --no-index --no-cache-dir --no-compile \
            --disable-pip-version-check --find-links "$WHEELS" "${packages[@]}" >&2; then
        rm -rf "$release"
        die "installation des paquets impossible (rien n'a été changé)"
    fi
    # Byte-code now: the service cannot write it later (ProtectSystem=strict). The tests skip it
    # with LGO_INSTALL_COMPILE=0 to stay fast.
    if [ "${LGO_INSTALL_COMPILE:-1}" != "0" ]; then
        "$release/bin/python" -m compileall -q -j 0 "$release/lib" >/dev/null
    fi
    printf '%s\n' "$release"
}

install_files() {
    mkdir -p "$OPT/bin" "$OPT/share/systemd/bench" "$OPT/share/systemd/dropins" "$OPT/share/doc" \
        "$ETC" "$UNITS" "$SYSUSERS" "$(dirname "$WRAPPER")"
    render "$SRC/systemd/lgo.service" "$UNITS/lgo.service" 0644
    render "$SRC/systemd/lgo.socket" "$UNITS/lgo.socket" 0644
    render "$SRC/systemd/dropins/serial-scanner.conf" "$OPT/share/systemd/dropins/serial-scanner.conf" 0644
    render "$SRC/systemd/bench/lgo-hwsim.service" "$OPT/share/systemd/bench/lgo-hwsim.service" 0644
    render "$SRC/systemd/bench/bench.conf" "$OPT/share/systemd/bench/bench.conf" 0644
    render "$SRC/systemd/polkit/50-lgo-pcscd.rules" "$OPT/share/systemd/50-lgo-pcscd.rules" 0644
    render "$(config_template)" "$ETC/lgo.toml.dist" 0640
    for doc in "$SRC"/docs/deployment.md; do
        [ -f "$doc" ] && install -m 0644 "$doc" "$OPT/share/doc/"
    done
    if [ "$SYSTEM" -eq 0 ] || [ -d /etc/polkit-1 ] || [ -d /usr/share/polkit-1 ]; then
        mkdir -p "$POLKIT"
        install -m 0644 "$OPT/share/systemd/50-lgo-pcscd.rules" "$POLKIT/"
    fi
    if [ "$WITH_HWSIM" -eq 1 ]; then
        install -m 0644 "$OPT/share/systemd/bench/lgo-hwsim.service" "$UNITS/"
        mkdir -p "$DROPINS"
        install -m 0644 "$OPT/share/systemd/bench/bench.conf" "$DROPINS/"
    fi
    install_config
    write_wrapper
}

packaging_file() {  # a file of packaging/, from the repository or from a wheel set
    if [ -f "$SRC/packaging/$1" ]; then echo "$SRC/packaging/$1"; else echo "$SRC/$1"; fi
}

config_template() {
    if [ -f "$SRC/packaging/lgo.toml" ]; then echo "$SRC/packaging/lgo.toml"; else echo "$SRC/lgo.toml"; fi
}

sysusers_template() {
    if [ -f "$SRC/packaging/sysusers.conf" ]; then echo "$SRC/packaging/sysusers.conf"; else echo "$SRC/sysusers.conf"; fi
}

install_config() {
    if [ -e "$ETC/lgo.toml" ]; then
        log "configuration conservée : $ETC/lgo.toml (nouvelles valeurs par défaut : lgo.toml.dist)"
    else
        cp -p "$ETC/lgo.toml.dist" "$ETC/lgo.toml"
        log "configuration par défaut installée : $ETC/lgo.toml"
    fi
    if [ "$SYSTEM" -eq 1 ]; then
        # Readable by the service (group lgo), writable by root only.
        chown root:lgo "$ETC" "$ETC/lgo.toml" "$ETC/lgo.toml.dist"
        chmod 0750 "$ETC"
        chmod 0640 "$ETC/lgo.toml"
    fi
}

deb_config_rights() {  # dpkg unpacked /etc/lgo as root:root before the lgo group existed
    chown root:lgo "$ETC" "$ETC/lgo.toml"
    chmod 0750 "$ETC"
    chmod 0640 "$ETC/lgo.toml"
}

write_wrapper() {
    local tmp
    tmp="$(mktemp "$(dirname "$WRAPPER")/.lgo-wrapper.XXXXXX")"
    if [ "$SYSTEM" -eq 1 ]; then
        cp "$(packaging_file lgo-admin.sh)" "$tmp"
    else
        cat > "$tmp" <<EOF
#!/bin/sh
# Admin commands with the configuration of the installation under $ROOT.
export LGO_CONFIG=$ETC/lgo.toml
umask 077
exec $OPT/bin/lgo "\$@"
EOF
    fi
    chmod 0755 "$tmp"
    mv -f "$tmp" "$WRAPPER"
}

create_user_and_state() {
    if [ "$DEB" -eq 1 ]; then
        # Debian's way for a package's system user (adduser is a dependency of the package).
        if ! id lgo >/dev/null 2>&1; then
            adduser --system --group --home /var/lib/lgo --no-create-home --shell /usr/sbin/nologin \
                --gecos "lgo pharmacy dispensing daemon" lgo >&2
        fi
    else
        mkdir -p "$SYSUSERS"
        install -m 0644 "$(sysusers_template)" "$SYSUSERS/lgo.conf"
    fi
    if [ "$DEB" -eq 1 ]; then
        :
    elif [ "$SYSTEM" -eq 1 ]; then
        if command -v systemd-sysusers >/dev/null; then
            systemd-sysusers "$SYSUSERS/lgo.conf"
        elif ! id lgo >/dev/null 2>&1; then
            useradd --system --home-dir /var/lib/lgo --no-create-home --shell /usr/sbin/nologin lgo
        fi
    fi
    mkdir -p "$STATE" "$LOGS"
    chmod 0700 "$STATE"
    chmod 0750 "$LOGS"
    if [ "$SYSTEM" -eq 1 ]; then chown -R lgo:lgo "$STATE" "$LOGS"; fi
}

backup_sqlite() {  # backup_sqlite PYTHON
    local db="$STATE/lgo.sqlite3" dest
    [ -f "$db" ] || return 0
    mkdir -p "$STATE/backups"
    dest="$STATE/backups/lgo-$(date -u +%Y%m%dT%H%M%S.%NZ).sqlite3"
    # sqlite3's online backup: consistent even if a writer were active.
    "$1" - "$db" "$dest" <<'EOF'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1])
dst = sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
dst.close()
src.close()
EOF
    chmod 0600 "$dest"
    chmod 0700 "$STATE/backups"
    if [ "$SYSTEM" -eq 1 ]; then chown lgo:lgo "$STATE/backups" "$dest"; fi
    log "sauvegarde de la base avant migration : $dest"
    rotate_backups
}

rotate_backups() {  # keep the KEEP_BACKUPS newest copies (names sort by their UTC stamp)
    local old
    ls -1 "$STATE/backups"/lgo-*.sqlite3 2>/dev/null | sort -r | tail -n +"$((KEEP_BACKUPS + 1))" |
        while read -r old; do rm -f "$old"; log "ancienne sauvegarde supprimée : $(basename "$old")"; done
}

switch_to() {  # atomically point current (and bin/lgo, bin/hwsim) at a release
    ln -sfn "releases/$(basename "$1")" "$OPT/.current.tmp"
    mv -Tf "$OPT/.current.tmp" "$OPT/current"
    ln -sfn ../current/bin/lgo "$OPT/bin/lgo"
    if [ -x "$1/bin/hwsim" ]; then ln -sfn ../current/bin/hwsim "$OPT/bin/hwsim"; fi
}

prune_releases() {
    # A release is good once it has run its migrations (INSTALLED_AT): one without it failed or was
    # interrupted and goes. Of the good ones, the current and the KEEP_RELEASES-1 most recently
    # installed stay (rollback targets), whatever their folder dates.
    local current dir keep="$KEEP_RELEASES"
    current="$(readlink "$OPT/current" || true)"
    for dir in "$OPT/releases"/*; do
        [ -d "$dir" ] || continue
        if [ "releases/$(basename "$dir")" != "$current" ] && [ ! -f "$dir/INSTALLED_AT" ]; then
            rm -rf "$dir"; log "version inachevée supprimée : $(basename "$dir")"
        fi
    done
    for dir in $(good_releases_newest_first); do
        if [ "releases/$(basename "$dir")" = "$current" ]; then continue; fi
        keep=$((keep - 1))
        if [ "$keep" -le 0 ]; then rm -rf "$dir"; log "ancienne version supprimée : $(basename "$dir")"; fi
    done
}

good_releases_newest_first() {
    local marker
    for marker in "$OPT/releases"/*/INSTALLED_AT; do
        [ -f "$marker" ] && printf '%s %s\n' "$(cat "$marker")" "$(dirname "$marker")"
    done | sort -r | cut -d' ' -f2-
}

do_install() {
    check_python
    [ "$SYSTEM" -eq 0 ] || [ "$(id -u)" -eq 0 ] || die "l'installation système se fait en root"
    local release previous=""
    release="$(build_release)"
    [ -L "$OPT/current" ] && previous="$(realpath "$OPT/current")"
    create_user_and_state
    if [ "$DEB" -eq 1 ]; then deb_config_rights; fi
    if [ "$SYSTEM" -eq 1 ] && ! runuser -u lgo -- "$release/bin/python" -c '' 2>/dev/null; then
        rm -rf "$release"
        die "l'utilisateur lgo ne peut pas exécuter $PYTHON (choisir un autre interpréteur : --python)"
    fi
    if [ "$DEB" -eq 0 ]; then install_files; else mkdir -p "$OPT/bin"; fi
    if systemd_running; then
        systemctl daemon-reload
        systemctl stop lgo.service 2>/dev/null || true
    fi
    backup_sqlite "$release/bin/python"
    switch_to "$release"
    log "migrations de la base"
    if ! as_service_user "$OPT/bin/lgo" migrate >&2; then
        if [ -n "$previous" ]; then
            switch_to "$previous"
            log "retour à la version précédente $(basename "$previous")"
            if systemd_running && [ "$START" -eq 1 ]; then systemctl start lgo.socket lgo.service || true; fi
        fi
        # The failed release is never kept (a rerun must not take it for a rollback target).
        rm -rf "$release"
        die "les migrations ont échoué (sauvegarde SQLite dans $STATE/backups)"
    fi
    date -u +%Y-%m-%dT%H:%M:%S.%NZ > "$OPT/current/INSTALLED_AT"
    if systemd_running && [ "$START" -eq 1 ]; then start_units; fi
    prune_releases
    log "lgo $(basename "$release" | cut -d- -f1) installé dans $OPT"
}

start_units() {
    systemctl enable lgo.socket lgo.service
    if [ "$WITH_HWSIM" -eq 1 ]; then systemctl enable --now lgo-hwsim.service; fi
    systemctl start lgo.socket
    # A production configuration still holding placeholders would be refused (exit 2): say what
    # to do instead of starting a service that stops at once.
    if [ "$DEB" -eq 1 ] && ! as_service_user "$OPT/bin/lgo" serve --check >/dev/null 2>&1; then
        log "lgo installé ; configurez $ETC/lgo.toml (lgo doctor dit quoi), puis : systemctl restart lgo"
        return 0
    fi
    systemctl restart lgo.service
}

do_uninstall() {
    [ "$SYSTEM" -eq 0 ] || [ "$(id -u)" -eq 0 ] || die "la désinstallation système se fait en root"
    if systemd_running; then
        systemctl disable --now lgo.service lgo.socket 2>/dev/null || true
        systemctl disable --now lgo-hwsim.service 2>/dev/null || true
    fi
    rm -f "$UNITS/lgo.service" "$UNITS/lgo.socket" "$UNITS/lgo-hwsim.service" \
        "$DROPINS/bench.conf" "$POLKIT/50-lgo-pcscd.rules" "$WRAPPER"
    rmdir "$DROPINS" 2>/dev/null || true
    rm -rf "$OPT"
    if systemd_running; then systemctl daemon-reload; fi
    if [ "$PURGE" -eq 1 ]; then
        rm -rf "$ETC" "$STATE" "$LOGS" "$SYSUSERS/lgo.conf"
        if [ "$SYSTEM" -eq 1 ] && id lgo >/dev/null 2>&1; then userdel lgo || true; fi
        log "lgo supprimé avec sa configuration et ses données"
    else
        log "lgo supprimé ; conservés : $ETC, $STATE, $LOGS (--purge pour les effacer)"
    fi
}

main() {
    parse_args "$@"
    set_paths
    case "$ACTION" in
        install) do_install ;;
        uninstall) do_uninstall ;;
    esac
}

main "$@"
