#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a set number of executions each, counted across
# resumed runs: the corpus is kept in fuzz/corpus/<target>/ and a ledger in
# fuzz/state/<target>.tsv (both gitignored) gets one line per libFuzzer run ("chunk"), so
# stopping the script loses at most the chunk under way (Ctrl-C or SIGTERM: not even that).
# Every run is seeded with fuzz/regressions/<target>/ and the kept corpus. Any crash, timeout
# or out-of-memory input is copied into fuzz/regressions/<target>/ (replayed from then on by
# `cargo test -p cie-tests --test fuzz_regressions` and, for oidc_request,
# `cargo test -p companion-server --test fuzz_regressions`) and the script exits 1.
#
#   bash scripts/fuzz.sh                       # every target up to 10 M executions
#   bash scripts/fuzz.sh --execs 200k tlv      # one target, 200 000 executions in all
#   bash scripts/fuzz.sh --quick               # CI: one dev build, every target 10 s
#   bash scripts/fuzz.sh --markdown            # the table only, for BENCHMARKS.md (no run)
#
# Options:
#   --quick           dev build (fast to compile), each target 10 s from a throwaway corpus
#                     seeded with the regressions only; ledger and kept corpus untouched;
#                     --jobs defaults to the number of CPUs
#   --execs N         executions per target in all runs together (default 10M; k/M suffixes)
#   --jobs N          targets fuzzed in parallel (default 1)
#   --sanitizer S     none (default) or address, see below
#   --dev             campaign with the dev profile instead of release (+ debug assertions)
#   --chunk S         seconds per libFuzzer run between ledger lines (default 300)
#   --target-time S   at most S seconds per target in this invocation (default: no cap)
#   --timeout S       libFuzzer's per-input timeout (default 10 s; 30 s with --quick)
#   --no-trace-compares  build without the comparison hooks (cargo fuzz --no-trace-compares),
#                     into <target dir>-nocmp; the ledger's profile says so. For targets whose
#                     time goes to the hooks of third-party numeric code (see below)
#   --table           print the ledger's table and exit (no build, no run)
#   --markdown        the table as Markdown with machine, toolchain and date (implies
#                     --table unless --quick or --run is given)
#   --run             with --markdown: run first, then print the Markdown table
#   -- FLAGS...       passed to libFuzzer as they are (e.g. -max_len=8192 -dict=FILE)
#
# Sanitizer: `none` by default. The code under test is Rust without unsafe (the workspace
# denies it), where AddressSanitizer finds little that a panic, the debug assertions and the
# overflow checks (on in every build here) do not, while it makes runs several times slower:
# the slow targets (qr_frame ~47 exec/s, emrtd_auth ~190 exec/s under ASan) could not reach
# 10 M. `none` also builds on stable Rust, which is all CI has. `--sanitizer address` adds
# -Zsanitizer=address, a nightly flag: the script then sets RUSTC_BOOTSTRAP=1, the documented
# escape hatch that lets the installed toolchain accept it (or pick one: RUSTUP_TOOLCHAIN).
#
# Comparison hooks: by default every comparison reports its operands to libFuzzer, which
# then solves magic values (tags, lengths) — what the parsers of card files need. In
# qr_frame, perf showed 70 % of the time in those hooks early on, on rxing's pixel and
# geometry comparisons (thresholds, not magic values); its campaign finished without them.
# (What really held it at ~300 exec/s a core was the scanner trying thousands of finder
# triples on textures, a bug: since MAX_TRIPLES in core/src/qr/engine.rs, ~1 700 exec/s.)
# Coverage guidance (the 8-bit edge counters) stays on either way.
#
# Environment: CIE_FUZZ_TARGET_DIR (default fuzz/target; CARGO_TARGET_DIR is not used, so the
# workspace's build is not thrown away by the fuzz flags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
STATE="$FUZZ/state"
CORPUS="$FUZZ/corpus"
REGRESSIONS="$FUZZ/regressions"
ARTIFACTS="$FUZZ/artifacts"
TARGET_DIR="${CIE_FUZZ_TARGET_DIR:-$FUZZ/target}"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 2; }

# 10M, 200k, 1500000 -> a plain number.
parse_count() {
    case "$1" in
        *[mM]) echo $((${1%?} * 1000000)) ;;
        *[kK]) echo $((${1%?} * 1000)) ;;
        *[!0-9]* | '') die "not a count: $1" ;;
        *) echo "$1" ;;
    esac
}

quick=0 execs=10000000 jobs="" sanitizer=none dev=0 chunk=300 target_time=0 timeout="" nocmp=0
table_only=0 markdown=0 run=0 targets=() extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --execs) execs="$(parse_count "${2:?}")"; shift ;;
        --jobs) jobs="${2:?}"; shift ;;
        --sanitizer) sanitizer="${2:?}"; shift ;;
        --dev) dev=1 ;;
        --chunk) chunk="${2:?}"; shift ;;
        --target-time) target_time="${2:?}"; shift ;;
        --timeout) timeout="${2:?}"; shift ;;
        --no-trace-compares) nocmp=1 ;;
        --table) table_only=1 ;;
        --markdown) markdown=1 ;;
        --run) run=1 ;;
        -h | --help) usage ;;
        --) shift; extra=("$@"); break ;;
        -*) die "unknown option $1 (--help)" ;;
        *) targets+=("$1") ;;
    esac
    shift
done
case "$sanitizer" in none | address) ;; *) die "--sanitizer none|address" ;; esac
for n in "$chunk" "$target_time" ${jobs:+"$jobs"} ${timeout:+"$timeout"}; do
    case "$n" in *[!0-9]* | '') die "not a number: $n" ;; esac
done
[ "$markdown" = 1 ] && [ "$quick" = 0 ] && [ "$run" = 0 ] && table_only=1
[ "$table_only" = 1 ] && [ "$quick" = 1 ] && die "--table reads the ledgers, which --quick does not write"
if [ "$quick" = 1 ]; then
    dev=1
    jobs="${jobs:-$(nproc)}"
    timeout="${timeout:-30}"
fi
jobs="${jobs:-1}"
timeout="${timeout:-10}"
[ "$jobs" -ge 1 ] || die "--jobs must be at least 1"
profile=release
[ "$dev" = 1 ] && profile=debug
# What the ledger records as the profile (the binaries stay in the profile's directory).
profile_label="$profile"
[ "$nocmp" = 1 ] && profile_label="$profile (no trace-compares)"

# The targets: the [[bin]] names of fuzz/Cargo.toml, or the ones named.
all_targets() { sed -n '/^\[\[bin\]\]/,/^name/ s/^name = "\(.*\)"/\1/p' "$FUZZ/Cargo.toml"; }
mapfile -t known < <(all_targets)
[ "${#targets[@]}" -eq 0 ] && targets=("${known[@]}")
for t in "${targets[@]}"; do
    # Not `grep -q` in a pipe: it may exit before printf has written, and pipefail then
    # reports printf's SIGPIPE as "no such target" (seen once in session 8).
    [[ " ${known[*]} " == *" $t "* ]] || die "no fuzz target '$t' (have: ${known[*]})"
done

# Ledger: one tab-separated line per libFuzzer run.
LEDGER_HEADER=$'# date\texecs\tseconds\tcov\tft\tcorpus\tcrashes\tsanitizer\tprofile\texit\trustc'
ledger_sum() { # target column -> sum of that column
    [ -f "$STATE/$1.tsv" ] || { echo 0; return; }
    awk -F'\t' -v c="$2" '!/^#/ { s += $c } END { printf "%d\n", s }' "$STATE/$1.tsv"
}
ledger_last() { # target column -> that column of the last line
    [ -f "$STATE/$1.tsv" ] || { echo -; return; }
    awk -F'\t' -v c="$2" '!/^#/ { v = $c } END { print (v == "" ? "-" : v) }' "$STATE/$1.tsv"
}

# One libFuzzer log -> "execs seconds cov ft corpus exec/s" (- when absent).
parse_log() {
    awk '
        /^stat::number_of_executed_units:/ { execs = $2 }
        /^stat::average_exec_per_sec:/ { rate = $2 }
        /^Done [0-9]+ runs in [0-9]+ second/ { done = $2; secs = $5 }
        /^#[0-9]+/ {
            last = substr($1, 2)
            for (i = 2; i < NF; i++) {
                if ($i == "cov:") cov = $(i + 1)
                if ($i == "ft:") ft = $(i + 1)
                if ($i == "corp:") { split($(i + 1), a, "/"); corp = a[1] }
            }
        }
        END {
            if (execs == "") execs = (done != "" ? done : (last != "" ? last : 0))
            printf "%d %s %s %s %s %s\n", execs, (secs == "" ? "-" : secs), (cov == "" ? "-" : cov),
                (ft == "" ? "-" : ft), (corp == "" ? "-" : corp), (rate == "" ? "-" : rate)
        }' "$1"
}

print_table() { # reads the per-target results of this invocation from $RESULTS (may be empty)
    local t total cov corp crashes status rate line
    local rows=() missing=not-run
    # A worker that left no result without a stop request died: an error, not a pass.
    [ -n "${RESULTS:-}" ] && [ ! -e "$RUN_DIR/stop" ] && missing=error
    for t in "${targets[@]}"; do
        line=""
        [ -n "${RESULTS:-}" ] && [ -f "$RESULTS/$t" ] && line="$(cat "$RESULTS/$t")"
        [ -n "${RESULTS:-}" ] && [ -z "$line" ] && line="$missing 0 0 - - - -"
        # result file: status crashes execs secs cov corpus exec/s
        if [ "$quick" = 1 ]; then
            read -r status crashes total _ cov corp rate <<<"$line"
        else
            total="$(ledger_sum "$t" 2)"
            cov="$(ledger_last "$t" 4)"
            corp="$(ledger_last "$t" 6)"
            rate="-"
            local secs
            secs="$(ledger_sum "$t" 3)"
            [ "$secs" -gt 0 ] && rate=$((total / secs))
            # Every crash the counted runs found; CRASH while the last run ended on one.
            crashes="$(ledger_sum "$t" 7)"
            if [ -n "$line" ]; then
                read -r status _ <<<"$line"
            elif [ "$(ledger_last "$t" 7)" != - ] && [ "$(ledger_last "$t" 7)" -gt 0 ]; then
                status=CRASH
            elif [ "$total" = 0 ]; then
                status=not-run
            elif [ "$total" -ge "$execs" ]; then
                status=done
            else
                status=partial
            fi
        fi
        rows+=("$t"$'\t'"$total"$'\t'"$rate"$'\t'"$cov"$'\t'"$corp"$'\t'"$crashes"$'\t'"$status")
    done
    local head=$'target\texecs total\texec/s\tcov\tcorpus\tcrashes\tstatus'
    [ "$quick" = 1 ] && head=$'target\texecs\texec/s\tcov\tcorpus\tcrashes\tstatus'
    if [ "$markdown" = 1 ]; then
        if [ "$quick" = 1 ]; then
            echo "Fuzzing, quick pass (10 s per target): sanitizer $sanitizer, $profile profile," \
                "$(rustc -V), $(nproc) CPUs, $(date -u +%Y-%m-%d). Command: \`bash scripts/fuzz.sh --quick\`."
        else
            # What the ledgers say the runs were made with (runs may have been resumed).
            local files=() used
            for t in "${targets[@]}"; do [ -f "$STATE/$t.tsv" ] && files+=("$STATE/$t.tsv"); done
            used="$( ((${#files[@]})) && awk -F'\t' '!/^#/ { s[$8] = 1; p[$9] = 1; r["rustc " $11] = 1; secs += $3; if ($1 > last) last = $1 }
                function keys(a,  k, o) { o = ""; for (k in a) o = o (o == "" ? "" : " + ") k; return o }
                END { printf "sanitizer %s, profile %s with debug assertions, %s, %.1f core-hours, last run %s", keys(s), keys(p), keys(r), secs / 3600, substr(last, 1, 10) }' "${files[@]}")"
            # Which targets ran without comparison hooks, and for how many executions.
            local nocmp_note=""
            for t in "${targets[@]}"; do
                [ -f "$STATE/$t.tsv" ] || continue
                local n
                n="$(awk -F'\t' '!/^#/ && $9 ~ /no trace-compares/ { s += $2 } END { printf "%d", s }' "$STATE/$t.tsv")"
                [ "$n" -gt 0 ] && nocmp_note+="${nocmp_note:+, }\`$t\` $(awk -v n="$n" 'BEGIN { printf (n >= 1e6 ? "%.2f M" : "%d"), (n >= 1e6 ? n / 1e6 : n) }') of its executions"
            done
            echo "Fuzzing to $(awk -v n="$execs" 'BEGIN { print (n >= 1e6 ? n / 1e6 " M" : n) }') executions per target (\`bash scripts/fuzz.sh\`, resumable):" \
                "${used:-no runs yet}; $(nproc) CPUs ($(uname -m)); exec/s averaged over all runs."
            # A ledger may start from another machine's recorded figures (a "# carried over"
            # comment says from where): said here, so the table is read for what it is.
            local carried=0
            for t in "${targets[@]}"; do
                grep -qs '^# carried over' "$STATE/$t.tsv" && carried=$((carried + 1))
            done
            [ "$carried" -gt 0 ] && echo "$carried ledgers start with executions carried over from an earlier machine's records (BENCHMARKS.md as committed, the tracker's note), that machine's ledger having gone with it; the comment line in \`fuzz/state/<target>.tsv\` says which."
            [ -n "$nocmp_note" ] && echo "Without comparison hooks (\`--no-trace-compares\`, see the script): $nocmp_note."
        fi
        echo
        printf '%s\n' "$head" "${rows[@]}" | awk -F'\t' '
            NR == 1 { h = "|"; s = "|"; for (i = 1; i <= NF; i++) { h = h " " $i " |"; s = s (i == 1 || i == NF ? "---|" : "--:|") } print h; print s; next }
            { if ($2 >= 1000000) $2 = sprintf("%.2f M", $2 / 1000000)
              r = "|"; for (i = 1; i <= NF; i++) r = r " " (i == 1 ? "`" $i "`" : $i) " |"; print r }'
    else
        printf '%s\n' "$head" "${rows[@]}" | column -t -s $'\t'
    fi
}

if [ "$table_only" = 1 ]; then
    RESULTS=""
    print_table
    exit 0
fi

# cargo-fuzz (pinned, installed once into ~/.cargo/bin by scripts/deps.sh).
# shellcheck source=scripts/deps.sh
source "$ROOT/scripts/deps.sh"
ensure_cargo_fuzz

# A build without comparison hooks goes apart: a campaign with them may be running.
[ "$nocmp" = 1 ] && TARGET_DIR="$TARGET_DIR-nocmp"
build=(cargo fuzz build -s "$sanitizer" --target-dir "$TARGET_DIR")
[ "$dev" = 1 ] && build+=(--dev)
[ "$nocmp" = 1 ] && build+=(--no-trace-compares)
[ "${#targets[@]}" -eq 1 ] && build+=("${targets[0]}")
if [ "$sanitizer" = address ]; then
    # -Zsanitizer is nightly-only; RUSTC_BOOTSTRAP=1 lets a stable rustc take it.
    export RUSTC_BOOTSTRAP=1
fi
echo "== building: ${build[*]}" >&2
t0=$SECONDS
# Not CARGO_TARGET_DIR: --target-dir places the instrumented build apart from the workspace's.
(cd "$FUZZ" && env -u CARGO_TARGET_DIR "${build[@]}" >&2)
echo "== built in $((SECONDS - t0)) s" >&2
host="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$TARGET_DIR/$host/$profile"
RUSTC_V="$(rustc -V | cut -d' ' -f2-)"

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cie-fuzz.XXXXXX")"
RESULTS="$RUN_DIR/results"
mkdir -p "$RESULTS" "$STATE" "$CORPUS" "$ARTIFACTS"
trap 'rm -rf "$RUN_DIR"' EXIT

# libFuzzer's -timeout is wall clock (SIGALRM): a campaign at nice 19 beside builds can starve
# one input past it (seen in session 8: a 0.1 s frame "timed out" at a load average of 10).
# True when one run of the input alone spends at least half the timeout on the CPU, or never
# ends (killed at three times the timeout), or its time cannot be read.
really_slow() { # binary input
    local TIMEFORMAT='%U %S' cpu
    cpu="$({ time timeout "$((timeout * 3))" "$1" -runs=1 -timeout=0 "$2" >/dev/null 2>&1; } 2>&1 | tail -1)"
    awk -v c="$cpu" -v lim="$timeout" 'BEGIN { n = split(c, a, " "); exit !(n < 2 || a[1] + a[2] >= lim / 2) }'
}

# Copy the crash/timeout/oom inputs of one run into fuzz/artifacts/<t>/ and, unless the same
# bytes are already kept, fuzz/regressions/<t>/. Prints how many there were (a timeout that
# was only a starved run is reported and not counted).
keep_artifacts() { # target dir
    local t="$1" dir="$2" f n=0 sum kept
    mkdir -p "$ARTIFACTS/$t" "$REGRESSIONS/$t"
    for f in "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-* "$dir"/leak-*; do
        [ -f "$f" ] || continue
        if [[ "$(basename "$f")" == timeout-* ]] && ! really_slow "$BIN_DIR/$t" "$f"; then
            echo "!! $t: $(basename "$f") runs in under $((timeout / 2)) s of CPU alone: the machine starved it, not kept" >&2
            continue
        fi
        n=$((n + 1))
        cp "$f" "$ARTIFACTS/$t/"
        sum="$(sha1sum <"$f" | cut -d' ' -f1)"
        kept="$(sha1sum "$REGRESSIONS/$t"/* 2>/dev/null | cut -d' ' -f1 || true)"
        if ! grep -qx "$sum" <<<"$kept"; then
            cp "$f" "$REGRESSIONS/$t/"
            echo "!! $t: new input kept as fuzz/regressions/$t/$(basename "$f")" >&2
        else
            echo "!! $t: $(basename "$f") is an input already in fuzz/regressions/$t/" >&2
        fi
    done
    echo "$n"
}

# Fuzz one target: chunks until its execs are reached, its time cap is spent, a crash, or a
# stop request. Leaves "status crashes execs secs cov corpus exec/s" in $RESULTS/<t>.
fuzz_target() {
    local t="$1" bin="$BIN_DIR/$1" started=$SECONDS status="" crashes=0 ran=0 secs=0
    local log="$RUN_DIR/$t.log" corpus seeds=("$REGRESSIONS/$t") cov=- corp=- rate=-
    if [ "$quick" = 1 ]; then
        # The regressions only: a large kept corpus would take minutes to load in a dev build.
        corpus="$RUN_DIR/corpus-$t"
        mkdir -p "$corpus"
    else
        corpus="$CORPUS/$t"
        mkdir -p "$corpus"
        [ -f "$STATE/$t.tsv" ] || echo "$LEDGER_HEADER" >"$STATE/$t.tsv"
    fi
    [ -x "$bin" ] || { echo "error 0 0 0 - - -" >"$RESULTS/$t"; return; }
    while :; do
        local slice=$chunk runs=-1 done_execs
        if [ "$quick" = 1 ]; then
            [ "$ran" = 1 ] && { status=ok; break; }
            slice=10
        else
            done_execs="$(ledger_sum "$t" 2)"
            runs=$((execs - done_execs))
            [ "$runs" -le 0 ] && { status=done; break; }
            if [ "$target_time" -gt 0 ]; then
                local left=$((target_time - (SECONDS - started)))
                [ "$left" -le 0 ] && { status=capped; break; }
                [ "$left" -lt "$slice" ] && slice=$left
            fi
        fi
        [ -e "$RUN_DIR/stop" ] && { status=stopped; break; }
        local art="$RUN_DIR/artifacts-$t"
        rm -rf "$art" && mkdir -p "$art"
        local rc=0 t0=$SECONDS
        # In the background so that the script's traps can stop it: SIGTERM makes libFuzzer
        # print its final stats and exit, and the chunk still goes into the ledger.
        "$bin" -runs="$runs" -max_total_time="$slice" -timeout="$timeout" -print_final_stats=1 \
            -artifact_prefix="$art/" "${extra[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1 &
        echo $! >"$RUN_DIR/$t.pid"
        wait $! || rc=$?
        rm -f "$RUN_DIR/$t.pid"
        ran=1
        local e s ft
        read -r e s cov ft corp rate < <(parse_log "$log")
        [ "$s" = - ] && s=$((SECONDS - t0)) # no "Done N runs in S s" after a crash
        ran_execs=$((${ran_execs:-0} + e))
        secs=$((secs + s))
        local found
        found="$(keep_artifacts "$t" "$art")"
        crashes=$((crashes + found))
        if [ "$quick" = 0 ]; then
            cp "$log" "$STATE/$t.log"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$e" "$s" \
                "$cov" "$ft" "$corp" "$found" "$sanitizer" "$profile_label" "$rc" "$RUSTC_V" >>"$STATE/$t.tsv"
        fi
        if [ "$found" -gt 0 ]; then
            status=CRASH
            cp "$log" "$ARTIFACTS/$t/last-crash.log"
            echo "!! $t: libFuzzer's report is in fuzz/artifacts/$t/last-crash.log" >&2
            break
        fi
        if [ -e "$RUN_DIR/stop" ]; then
            status=stopped # libFuzzer exits 72 when stopped by SIGTERM; the chunk is counted
            break
        fi
        if [ "$rc" -ne 0 ]; then
            status="exit-$rc"
            cp "$log" "$ARTIFACTS/$t/last-error.log"
            echo "!! $t: libFuzzer exited $rc with no artifact; see fuzz/artifacts/$t/last-error.log" >&2
            break
        fi
    done
    echo "$status $crashes ${ran_execs:-0} $secs $cov $corp $rate" >"$RESULTS/$t"
    echo "== $t: $status (${ran_execs:-0} execs in ${secs} s this time, cov $cov)" >&2
}

# Stop cleanly on Ctrl-C / SIGTERM: no new chunk, running ones end with their stats.
stop() {
    touch "$RUN_DIR/stop"
    local p
    for p in "$RUN_DIR"/*.pid; do
        [ -f "$p" ] && kill -TERM "$(cat "$p")" 2>/dev/null || true
    done
}
trap stop INT TERM

echo "== fuzzing ${#targets[*]} target(s), $jobs at a time, sanitizer $sanitizer, $profile_label;" \
    "$([ "$quick" = 1 ] && echo "10 s each" || echo "up to $execs execs each, $chunk s chunks")" >&2
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ] && [ ! -e "$RUN_DIR/stop" ]; do
        wait -n || true
    done
    [ -e "$RUN_DIR/stop" ] && break
    fuzz_target "$t" &
done
# `wait` returns early when a trapped signal arrives: wait again until the workers are gone.
while [ -n "$(jobs -rp)" ]; do wait || true; done

echo >&2
print_table
fail=0
for t in "${targets[@]}"; do
    status=error
    [ -f "$RESULTS/$t" ] && read -r status _ <"$RESULTS/$t"
    case "$status" in CRASH | exit-* | error) fail=1 ;; esac
done
[ -e "$RUN_DIR/stop" ] && { echo "stopped: run the same command again to resume" >&2; exit 130; }
exit "$fail"
