#!/bin/sh
# lgo's admin command (installed as /usr/bin/lgo by the package, /usr/local/bin/lgo by install.sh):
# lgo doctor, lgo counters add ... run as the service user with its configuration, so that they
# never leave root-owned files in the state folder.
export LGO_CONFIG=/etc/lgo/lgo.toml
umask 077
if [ "$(id -u)" -eq 0 ]; then exec runuser -u lgo -- env LGO_CONFIG="$LGO_CONFIG" /opt/lgo/bin/lgo "$@"; fi
exec /opt/lgo/bin/lgo "$@"
