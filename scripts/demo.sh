#!/usr/bin/env bash
# The main job: build the desktop program and show what the virtual CIE answers
# (transport, ATR, limits, applications), with no reader needed.
# Extra arguments go to `card info`, e.g. `bash scripts/demo.sh --json` or
# `bash scripts/demo.sh --reader pcsc` for a real card in a PC/SC reader.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Only what the cli needs to build and run (PC/SC headers, libnfc build tools).
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_cli_deps

cargo run --release -q -p cie-companion-cli -- card info "$@"
