#!/usr/bin/env bash
# The OpenID Provider against a generic client library: the real `companion-server` on
# loopback, authlib (PyPI, pinned, in a cached virtualenv) as the relying party
# (tests/oidc/test_authlib.py). Honours CARGO_TARGET_DIR.
#
#   bash scripts/oidc-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
AUTHLIB_VERSION=1.9.6
REQUESTS_VERSION=2.32.5

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_cli_deps

VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/oidc-venv-$AUTHLIB_VERSION"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import authlib, requests' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "authlib==$AUTHLIB_VERSION" "requests==$REQUESTS_VERSION" </dev/null
fi

cargo build -q -p companion-server
export SERVER_BIN="$TARGET/debug/companion-server"
export CARD_CA="$ROOT/card-sim/testdata/test_ca_cert.der"
export CARD_KEY="$ROOT/card-sim/testdata/auth_key.pk8.der"
export CARD_CERT="$ROOT/card-sim/testdata/auth_cert.der"
"$VENV/bin/python" tests/oidc/test_authlib.py -v
