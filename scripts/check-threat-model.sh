#!/usr/bin/env bash
# docs/threat-model.md points every mitigation at the test that proves it: fail when a
# pointer names a test (Rust/Python/Kotlin function, or a shell script's `step "…"`) that
# no longer exists, so a renamed or deleted test cannot leave the threat model lying.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
doc=docs/threat-model.md
missing=0 checked=0
while IFS= read -r p; do
    f="${p%%::*}" n="${p##*::}"
    checked=$((checked + 1))
    grep -qE "(fn|def|fun) $n\b" "$f" 2>/dev/null || { echo "MISSING $p" >&2; missing=$((missing + 1)); }
done < <(grep -oE '`[a-zA-Z0-9_./-]+\.(rs|py|kt)::[A-Za-z0-9_]+`' "$doc" | tr -d '`' | sort -u)
while IFS= read -r l; do
    f="$(echo "$l" | cut -d'`' -f2)" s="$(echo "$l" | sed 's/.*step "\(.*\)"/\1/')"
    checked=$((checked + 1))
    grep -qF "$s" "$f" 2>/dev/null || { echo "MISSING $l" >&2; missing=$((missing + 1)); }
done < <(grep -oE '`tests/[a-z0-9/_]+\.sh` step "[^"]+"' "$doc")
# An empty extraction would pass vacuously: the document holds well over a hundred pointers.
[ "$checked" -ge 100 ] || { echo "threat model: only $checked pointers found (pattern broken?)" >&2; exit 1; }
[ "$missing" -eq 0 ] || { echo "threat model: $missing of $checked test pointers name nothing" >&2; exit 1; }
echo "threat model: $checked test pointers, all found"
