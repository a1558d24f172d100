# Shared by the tests that start their own pcscd (tests/pcsc/run.sh, tests/pkcs11/run.sh):
# source it after defining `fail`. Uses the caller's PCSCD_PID.

# Live (non-zombie) pcscd processes, read from /proc (procps may be absent on a fresh machine).
live_pcscd() {
    local d
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = pcscd ] || continue
        awk '{ if ($3 != "Z") print FILENAME }' "$d/stat" 2>/dev/null | cut -d/ -f3
    done | tr '\n' ' '
}

# Fail unless no pcscd runs: a running one (e.g. systemd socket activation) is not reused.
require_no_pcscd() {
    local running
    running="$(live_pcscd)"
    [ -z "$running" ] || fail "a pcscd is already running (pid $running); stop it first: systemctl stop pcscd.socket pcscd"
}

# Fail unless we are root (for $1), the tools $2... are installed, the vpcd driver
# ($VPCD_DRIVER) is there and no pcscd runs.
require_pcscd_test_setup() {
    local why="$1" tool
    shift
    [ "$(id -u)" -eq 0 ] || fail "must run as root ($why); try: sudo bash $0"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail "$tool not installed (bash scripts/deps.sh)"
    done
    [ -e "$VPCD_DRIVER" ] || fail "vpcd driver $VPCD_DRIVER missing (apt-get install vsmartcard-vpcd)"
    require_no_pcscd
}

# Stop the pcscd this script started (TERM, up to 5 s, then KILL).
stop_pcscd() {
    [ -n "${PCSCD_PID:-}" ] || return 0
    kill "$PCSCD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$PCSCD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PCSCD_PID" 2>/dev/null
    wait "$PCSCD_PID" 2>/dev/null
    PCSCD_PID=""
}

# Make $WORK and install the exit trap: on every exit path stop the virtual card ($SIM_PID)
# and pcscd ($PCSCD_PID), show their logs ($WORK/pcscd.log, $WORK/sim.log) on failure, and
# remove $WORK.
setup_work_and_cleanup() {
    WORK="$(mktemp -d)"
    PCSCD_PID=""
    SIM_PID=""
    trap cleanup_pcscd_test EXIT
    trap 'exit 130' INT TERM
}

cleanup_pcscd_test() {
    local rc=$?
    set +e
    if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; fi
    if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
    stop_pcscd
    if [ "$rc" -ne 0 ]; then
        echo "---- pcscd log (last 40 lines) ----" >&2; tail -n 40 "$WORK/pcscd.log" >&2
        echo "---- virtual card log ----" >&2; cat "$WORK/sim.log" >&2
        [ -f "$WORK/server.log" ] && { echo "---- companion-server log (last 40 lines) ----" >&2; tail -n 40 "$WORK/server.log" >&2; }
    fi
    rm -rf "$WORK"
    exit "$rc"
}

# Set BIN (cie-companion) and M (the PKCS#11 module) from CIE_COMPANION_BIN and
# CIE_PKCS11_MODULE, building both when either is unset; with `--server`, SERVER
# (companion-server, COMPANION_SERVER_BIN) too. Uses the caller's ROOT and step.
pkcs11_builds() {
    local target="${CARGO_TARGET_DIR:-$ROOT/target}" server=""
    [ "${1:-}" = --server ] && server=1
    if [ -z "${CIE_COMPANION_BIN:-}" ] || [ -z "${CIE_PKCS11_MODULE:-}" ] \
        || { [ -n "$server" ] && [ -z "${COMPANION_SERVER_BIN:-}" ]; }; then
        if [ -n "$server" ]; then
            step "building cie-companion, the PKCS#11 module and companion-server"
            (cd "$ROOT" && cargo build -q -p cie-companion-cli -p cie-companion-pkcs11 -p companion-server)
        else
            step "building cie-companion and the PKCS#11 module"
            (cd "$ROOT" && cargo build -q -p cie-companion-cli -p cie-companion-pkcs11)
        fi
    fi
    BIN="${CIE_COMPANION_BIN:-$target/debug/cie-companion}"
    M="${CIE_PKCS11_MODULE:-$target/debug/libcie_companion_pkcs11.so}"
    [ -x "$BIN" ] || fail "binary $BIN not found"
    [ -f "$M" ] || fail "module $M not found"
    if [ -n "$server" ]; then
        SERVER="${COMPANION_SERVER_BIN:-$target/debug/companion-server}"
        [ -f "$SERVER" ] || fail "$SERVER not found"
    fi
}
