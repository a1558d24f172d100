#!/usr/bin/env bash
# The OpenID Provider in an OpenID Federation against the official reference software:
# PyPI `spid-cie-oidc` (pinned with all it pulls: tests/oidc/reference/requirements.txt,
# in a cached virtualenv) runs its Trust Anchor and Relying Party (Django, SQLite) on
# loopback, the real `companion-server` joins under that Trust Anchor, and the official
# Relying Party logs a user in through it (tests/oidc/test_reference.py). Offline after
# the first run. Honours CARGO_TARGET_DIR.
#
#   bash scripts/oidc-federation-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
REQUIREMENTS=tests/oidc/reference/requirements.txt

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_cli_deps

# One virtualenv per pinned set: a change of the pins makes a new one.
PINS="$(sha256sum "$REQUIREMENTS" | cut -c1-12)"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/spid-cie-oidc-venv-$PINS"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import spid_cie_oidc, django, requests' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" </dev/null
fi

cargo build -q -p companion-server
export SERVER_BIN="$TARGET/debug/companion-server"
export CARD_CA="$ROOT/card-sim/testdata/test_ca_cert.der"
export CARD_KEY="$ROOT/card-sim/testdata/auth_key.pk8.der"
export CARD_CERT="$ROOT/card-sim/testdata/auth_cert.der"
export REF_PYTHON="$VENV/bin/python"
"$VENV/bin/python" tests/oidc/test_reference.py -v
