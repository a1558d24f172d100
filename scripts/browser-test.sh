#!/usr/bin/env bash
# Browser end-to-end test of the desktop QR login: a real `companion-server` on loopback,
# Debian's Chromium driven headless by Playwright loads the desktop page, the QR is read
# from a screenshot by the core's scanner through the Python bindings, the core claims and
# approves it with the virtual CIE, and the browser types the code and ends up logged in.
# Then residents abroad: a PIN issued by `companion-server pin`, its halves read from the
# outboxes, the first login, the forced change and a login with the new PIN on the page;
# an OTP set up on the page (codes computed by the core through the bindings) and the next
# PIN login completed with its code; the phone (the core through the bindings) enrolled
# with the page's one-time code, and the next PIN login approved by it.
# First, the pages' hardening (tests/browser/test_page_hardening.py, ~15 s, no bindings):
# each security header and cookie attribute on every response a page loads, no request
# off the origin, no CSP violation, the pages still working, framing from another origin
# blocked.
#
#   bash scripts/browser-test.sh        (after scripts/bindings-test.sh built build/bindings)
#
# Installs Debian's chromium and, in a cached virtualenv, Playwright and Pillow from PyPI
# (pinned). Honours CARGO_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_browser_venv
VENV="$BROWSER_VENV"

# Bindings older than the core's code enrolment (residents abroad) are rebuilt too.
grep -qs enroll_device_with_code build/bindings/python/cie_core.py || bash scripts/bindings-test.sh
cargo build -q -p companion-server
export SERVER_BIN="$TARGET/debug/companion-server"
export BINDINGS_DIR="$ROOT/build/bindings/python"
export CARD_CA="$ROOT/card-sim/testdata/test_ca_cert.der"
export CHROMIUM=/usr/bin/chromium
"$VENV/bin/python" tests/browser/test_page_hardening.py -v
"$VENV/bin/python" tests/browser/test_desktop_qr.py -v
"$VENV/bin/python" tests/browser/test_abroad_pin.py -v
