#!/usr/bin/env bash
# Supply-chain policy (deny.toml): licences, banned and duplicate crates, sources, offline
# (the lock file and the registry cache are enough). Advisories need the RustSec database
# from the network: `bash scripts/deny.sh advisories` by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_cargo_deny
if [ "${1:-}" = advisories ]; then
    exec "$CARGO_DENY" check advisories
fi
# The registry cache must hold every package of the lock file (other platforms' too) for
# the offline check: one fetch, a no-op when they are there.
cargo fetch --locked -q
exec "$CARGO_DENY" --offline check licenses bans sources
