#!/usr/bin/env bash
# Benchmarks: run the single entry point (`cargo run -p cie-bench --release`), print its
# Markdown figures, and rewrite BENCHMARKS.md with them, the date, a machine note and the
# exact command. Every figure comes from the ISO 14443 link model in front of the virtual
# CIE with seeded randomness (counts and modelled link time, no wall clock), so a run is
# deterministic and the ratios compare peers measured in the same run.
#
#   bash scripts/bench.sh
#
# Honours CARGO_TARGET_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CMD=(cargo run -p cie-bench --release)
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

"${CMD[@]}" >"$out"
cat "$out"

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1 || true)"
{
    echo "# Benchmarks"
    echo
    echo "Latest figures from the benchmark entry point. Do not edit by hand: \`bash scripts/bench.sh\` rewrites this file."
    echo
    echo "- Command: \`${CMD[*]}\` (via \`bash scripts/bench.sh\`)"
    echo "- Date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core card-sim bench 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- Machine: $(uname -srm)${cpu:+, $cpu}; $(rustc -V)"
    echo "- Note: the figures are counts and modelled link time (\`card_sim::LinkModel\`), not wall-clock timings: they do not depend on the machine, and every ratio is against a peer measured in the same run."
    echo
    cat "$out"
} >BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md" >&2
