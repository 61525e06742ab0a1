#!/bin/sh
# Install (or upgrade) ratehubd as a systemd service from this source checkout.
#
#   sudo deploy/install.sh
#
# Steps (deploy/README.md lists the same commands to run by hand):
#   1. a virtualenv in $PREFIX with ratehub installed, bytecode precompiled (the unit
#      makes $PREFIX read-only), ratehubd and ratectl linked into /usr/local/bin;
#   2. the unit, /etc/systemd/system/ratehubd.service, with $PREFIX substituted;
#   3. /etc/ratehub/ratehubd.env, root-only, with a fresh random API_SECRET_KEY; an
#      existing one is kept, never overwritten (it holds the secret);
#   4. systemctl daemon-reload, enable, restart.
#
# Settings (environment):
#   PREFIX=/opt/ratehub   where the virtualenv goes (not under /home: the unit sets
#                         ProtectHome=yes, so the service could not read it)
#   PYTHON=python3        the interpreter (>= 3.11) the virtualenv is made from
#   DESTDIR=              stage files under this directory instead of /; skips systemctl
#                         and the root check (for packaging and tests)
#   RATEHUB_SKIP_VENV=1   install the unit and the environment file only
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/opt/ratehub}
PYTHON=${PYTHON:-python3}
DESTDIR=${DESTDIR:-}
UNIT_DIR=/etc/systemd/system
CONF_DIR=/etc/ratehub
ENV_FILE=$CONF_DIR/ratehubd.env

say() { printf 'install.sh: %s\n' "$*"; }

case $PREFIX in
/home/* | /root/*) say "PREFIX=$PREFIX is under a home directory, which the unit hides (ProtectHome=yes); pick e.g. /opt/ratehub" >&2; exit 2 ;;
/*) ;;
*) say "PREFIX=$PREFIX must be an absolute path" >&2; exit 2 ;;
esac
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    say "run as root (sudo deploy/install.sh), or set DESTDIR=DIR to stage the files there" >&2
    exit 2
fi

if [ "${RATEHUB_SKIP_VENV:-0}" != 1 ]; then
    say "installing ratehub from $SRC into $PREFIX"
    "$PYTHON" -m venv "$DESTDIR$PREFIX"
    "$DESTDIR$PREFIX/bin/pip" install --quiet --upgrade "$SRC"
    "$DESTDIR$PREFIX/bin/python" -m compileall -q "$DESTDIR$PREFIX/lib" >/dev/null || true
    install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR$PREFIX/share/ratehub"
    ln -sf "$PREFIX/bin/ratehubd" "$PREFIX/bin/ratectl" "$DESTDIR/usr/local/bin/"
    install -m 0644 "$SRC/deploy/README.md" "$DESTDIR$PREFIX/share/ratehub/README.md"
fi

say "installing $UNIT_DIR/ratehubd.service"
install -d -m 0755 "$DESTDIR$UNIT_DIR"
sed "s|/opt/ratehub|$PREFIX|g" "$SRC/deploy/ratehubd.service" >"$DESTDIR$UNIT_DIR/ratehubd.service"
chmod 0644 "$DESTDIR$UNIT_DIR/ratehubd.service"

install -d -m 0755 "$DESTDIR$CONF_DIR"
if [ -e "$DESTDIR$ENV_FILE" ]; then
    say "keeping $ENV_FILE (compare with deploy/ratehubd.env.example for new settings)"
else
    key=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
    (
        umask 077
        sed "s|^API_SECRET_KEY=.*|API_SECRET_KEY=$key|" "$SRC/deploy/ratehubd.env.example" \
            >"$DESTDIR$ENV_FILE"
    )
    chmod 0600 "$DESTDIR$ENV_FILE"
    say "wrote $ENV_FILE with a new random API_SECRET_KEY (root-only)"
fi

if [ -n "$DESTDIR" ]; then
    say "staged under $DESTDIR; systemctl not run"
    exit 0
fi
systemctl daemon-reload
systemctl enable ratehubd.service
systemctl restart ratehubd.service
say "ratehubd is running; check it with: systemctl status ratehubd; journalctl -u ratehubd -f"
