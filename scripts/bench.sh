#!/usr/bin/env bash
# Benchmarks: run the single entry point (`cargo run -p cie-bench --release`), print its
# Markdown figures, and rewrite BENCHMARKS.md with them, the date, a machine note and the
# exact command. Sections 1-3 come from the ISO 14443 link model in front of the virtual
# CIE with seeded randomness (counts and modelled link time, no wall clock), so they are
# deterministic; section 4 is wall clock: desktop QR logins under load against the release
# companion-server binary (built by the entry point) on loopback, with its PostgreSQL peer
# when a local PostgreSQL can be had (scripts/postgres.sh); section 5 is wall clock too:
# the core's QR scanner beside zxing-cpp on the shared camera-like frames
# (scripts/qr-bench.sh); section 6 is the link model again: the PKCS#11 module's token
# open, C_Login and C_Sign beside the official module's sequence on every virtual CIE
# field variant. Every ratio compares peers measured in the same run.
#
#   bash scripts/bench.sh
#
# Honours CARGO_TARGET_DIR and CIE_TEST_POSTGRES_URL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The load section's PostgreSQL peer.
if [ -z "${CIE_TEST_POSTGRES_URL:-}" ] && { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }; then
    eval "$(bash scripts/postgres.sh)" || echo "bench: no PostgreSQL, the load peer is skipped" >&2
fi
export CIE_TEST_POSTGRES_URL="${CIE_TEST_POSTGRES_URL:-}"
[ -n "$CIE_TEST_POSTGRES_URL" ] || unset CIE_TEST_POSTGRES_URL

CMD=(cargo run -p cie-bench --release)
out="$(mktemp)"

qr="$(mktemp)"
trap 'rm -f "$out" "$qr"' EXIT
"${CMD[@]}" >"$out"
# Section 5: QR decoding beside zxing-cpp (wall clock, same frames, same run), placed
# before the entry point's section 6.
bash scripts/qr-bench.sh >"$qr"
awk -v qr="$qr" '
    function put_qr(  l) { while ((getline l < qr) > 0) print l; print ""; done = 1 }
    /^## 6\./ && !done { put_qr() }
    { print }
    END { if (!done) { print ""; put_qr() } }
' "$out" >"$out.all"
mv "$out.all" "$out"
cat "$out"

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1 || true)"
{
    echo "# Benchmarks"
    echo
    echo "Latest figures from the benchmark entry point. Do not edit by hand: \`bash scripts/bench.sh\` rewrites this file."
    echo
    echo "- Command: \`${CMD[*]}\` (via \`bash scripts/bench.sh\`)"
    echo "- Date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core card-sim bench server 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- Machine: $(uname -srm)${cpu:+, $cpu}; $(rustc -V)"
    echo "- Machine size: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "- Note: sections 1-3 and 6 are counts and modelled link time (\`card_sim::LinkModel\`), not wall-clock timings: they do not depend on the machine. Section 4 is wall clock on this machine (client and server processes sharing its cores). Every ratio is against a peer measured in the same run."
    echo
    cat "$out"
} >BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md" >&2
