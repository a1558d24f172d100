#!/usr/bin/env bash
# Soak (issue 14; not in CI): desktop QR logins for --minutes per store against the release
# companion-server on loopback — SQLite with its one instance restarted midway, then
# PostgreSQL (scripts/postgres.sh) with two instances the client alternates between, one
# restarted midway. Prints a Markdown section (logins/s, p99, sessions created, completed,
# lost, duplicated, counted in the database afterwards); exits non-zero when a login was
# lost or duplicated. `cargo xtask report --sections soak` puts it in BENCHMARKS.md.
#
#   bash scripts/soak.sh [--minutes 10] [--stores sqlite,postgres] [--users 32] [--debug]
#
# --debug runs debug builds: a check of the script, not figures. Honours CARGO_TARGET_DIR
# and CIE_TEST_POSTGRES_URL.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

minutes=10 stores=sqlite,postgres users=32 profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --stores) stores="$2"; shift 2 ;;
        --users) users="$2"; shift 2 ;;
        --debug) profile=debug; shift ;;
        *) echo "soak: unknown option $1 (--minutes N, --stores sqlite,postgres, --users N, --debug)" >&2; exit 2 ;;
    esac
done

if [[ ",$stores," == *",postgres,"* ]] && [ -z "${CIE_TEST_POSTGRES_URL:-}" ]; then
    eval "$(bash scripts/postgres.sh)"
fi

build=(cargo build -q -p companion-server -p cie-bench --bin companion-load)
[ "$profile" = release ] && build+=(--release)
"${build[@]}" >&2

echo "## 9. Soak: desktop QR logins with an instance restarted"
echo
echo "Command: \`bash scripts/soak.sh --minutes $minutes\` ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg))."
[ "$profile" = debug ] && echo "**Debug builds (\`--debug\`): a check of the script, not figures.**"
echo
"$TARGET/$profile/companion-load" --soak --minutes "$minutes" --stores "$stores" --users "$users" \
    --server "$TARGET/$profile/companion-server"
