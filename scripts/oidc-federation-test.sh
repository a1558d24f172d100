#!/usr/bin/env bash
# The OpenID Provider in an OpenID Federation against the official reference software:
# PyPI `spid-cie-oidc` (pinned with all it pulls: tests/oidc/reference/requirements.txt,
# in a cached virtualenv) runs its Trust Anchor and Relying Party (Django, SQLite) on
# loopback, the real `companion-server` joins under that Trust Anchor, and the official
# Relying Party logs users in through it at levels 1, 2 and 3 (at 3 the phone's key is
# refused before the card approves) and gets a refused consent
# (tests/oidc/test_reference.py). Offline after
# the first run. The user's part is done in Debian's Chromium (headless, Playwright) on our
# pages, with the core's Python bindings as the phone and the virtual CIE. Honours
# CARGO_TARGET_DIR.
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
# Chromium and Playwright: the browser tests' cached virtualenv (its packages are appended
# to this one's path by the test).
ensure_browser_venv

# One virtualenv per pinned set: a change of the pins makes a new one.
PINS="$(sha256sum "$REQUIREMENTS" | cut -c1-12)"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/spid-cie-oidc-venv-$PINS"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import spid_cie_oidc, django, requests' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" </dev/null
fi

# The core's Python bindings (scripts/bindings-test.sh builds them; scripts/test.sh runs it
# first), rebuilt when missing or older than the code enrolment.
grep -qs enroll_device_with_code build/bindings/python/cie_core.py || bash scripts/bindings-test.sh
cargo build -q -p companion-server
export SERVER_BIN="$TARGET/debug/companion-server"
export BINDINGS_DIR="$ROOT/build/bindings/python"
export CARD_CA="$ROOT/card-sim/testdata/test_ca_cert.der"
export CHROMIUM=/usr/bin/chromium
BROWSER_SITE="$("$BROWSER_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export BROWSER_SITE
export REF_PYTHON="$VENV/bin/python"
"$VENV/bin/python" tests/oidc/test_reference.py -v
