#!/usr/bin/env bash
# End-to-end test through real third-party PC/SC software:
#   pcscd (pcsc-lite) + vsmartcard-vpcd driver  <--TCP 35963-->  `cie-companion sim vpcd`
#   (virtual CIE), then `cie-companion readers` and `card info --reader pcsc:...` through
#   libpcsclite -> pcscd -> vpcd -> virtual card.
# Needs root (pcscd writes /run/pcscd) and the packages pcscd, vsmartcard-vpcd,
# libpcsclite-dev (scripts/deps.sh installs them). Fails loudly if anything is missing.
# A pcscd that is already running (e.g. systemd socket activation) is not reused: stop it
# first (`systemctl stop pcscd.socket pcscd`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
READER="Virtual PCD 00 00"   # pcsc-lite names vpcd slot 0 "<FRIENDLYNAME> 00 00"
VPCD_CONF=/etc/reader.conf.d/vpcd
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
WAIT_SECS="${PCSC_TEST_WAIT:-30}"

fail() { echo "tests/pcsc: FAIL: $*" >&2; exit 1; }
step() { echo "tests/pcsc: $*"; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (pcscd needs /run/pcscd); try: sudo bash tests/pcsc/run.sh"
command -v pcscd >/dev/null || fail "pcscd not installed (bash scripts/deps.sh)"
[ -e "$VPCD_DRIVER" ] || fail "vpcd driver $VPCD_DRIVER missing (apt-get install vsmartcard-vpcd)"
[ -r "$VPCD_CONF" ] || fail "$VPCD_CONF missing (apt-get install vsmartcard-vpcd)"
grep -q '^FRIENDLYNAME *"Virtual PCD"' "$VPCD_CONF" || fail "$VPCD_CONF does not name the reader \"Virtual PCD\""
# shellcheck source=tests/pcsc/common.sh
source "$ROOT/tests/pcsc/common.sh"
require_no_pcscd

# Build the program (uses CARGO_TARGET_DIR if set), unless a binary is given.
if [ -z "${CIE_COMPANION_BIN:-}" ]; then
    step "building cie-companion"
    (cd "$ROOT" && cargo build -q -p cie-companion-cli)
    CIE_COMPANION_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/cie-companion"
fi
if [ -z "${COMPANION_SERVER_BIN:-}" ]; then
    step "building companion-server"
    (cd "$ROOT" && cargo build -q -p companion-server)
    COMPANION_SERVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/companion-server"
fi
[ -x "$COMPANION_SERVER_BIN" ] || fail "binary $COMPANION_SERVER_BIN not found"
[ -x "$CIE_COMPANION_BIN" ] || fail "binary $CIE_COMPANION_BIN not found"
BIN="$CIE_COMPANION_BIN"

setup_work_and_cleanup

step "no PC/SC service yet: readers must say so plainly and exit 0"
"$BIN" readers >"$WORK/none.txt" 2>&1 || fail "readers exited non-zero without pcscd"
grep -qF "PC/SC service is not available" "$WORK/none.txt" || fail "readers did not report the missing PC/SC service"

step "starting pcscd (foreground, APDU log)"
pcscd --foreground --apdu --debug >"$WORK/pcscd.log" 2>&1 &
PCSCD_PID=$!

step "starting the virtual CIE as vpcd client"
"$BIN" sim vpcd --host 127.0.0.1 --port 35963 --wait "$WAIT_SECS" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!

step "waiting for \"$READER\" to report the card"
ok=""
for _ in $(seq $((WAIT_SECS * 4))); do
    kill -0 "$PCSCD_PID" 2>/dev/null || fail "pcscd exited early"
    kill -0 "$SIM_PID" 2>/dev/null || fail "cie-companion sim vpcd exited early"
    if "$BIN" readers 2>/dev/null | grep -qF "$READER  (card present)"; then ok=1; break; fi
    sleep 0.25
done
[ -n "$ok" ] || fail "\"$READER\" did not show a card within ${WAIT_SECS}s"

step "cie-companion readers"
"$BIN" readers | tee "$WORK/readers.txt"
grep -qF "$READER  (card present)" "$WORK/readers.txt" || fail "readers does not list \"$READER\" with a card"

step "cie-companion card info --reader sim (expected values)"
"$BIN" card info --reader sim >"$WORK/sim-info.txt"
SIM_ATR="$(sed -n 's/^ATR: *//p' "$WORK/sim-info.txt")"
[ -n "$SIM_ATR" ] || fail "the virtual card shows no ATR"

step "cie-companion card info --reader \"pcsc:$READER\""
"$BIN" card info --reader "pcsc:$READER" | tee "$WORK/info.txt"
grep -q '^Transport: *contact' "$WORK/info.txt" || fail "not reported as a contact (PC/SC) link"
grep -qxF "ATR:        $SIM_ATR" "$WORK/info.txt" || fail "ATR through pcscd differs from the virtual card's ($SIM_ATR)"
for app in IAS CIE eMRTD; do
    grep -qE "^  $app .*answers \(SW 9000\)" "$WORK/info.txt" || fail "application $app did not answer SELECT through pcscd"
done
grep -q '^EF.ATR (3F00/2F01): [0-9A-F]' "$WORK/info.txt" || fail "EF.ATR not read through pcscd"

step "cie-companion card info --json"
"$BIN" card info --reader "pcsc:$READER" --json >"$WORK/info.json"
grep -qF "\"atr\":\"${SIM_ATR// /}\"" "$WORK/info.json" || fail "JSON output lacks the ATR"

# pcscd really carried the APDUs: its APDU log shows the eMRTD SELECT.
grep -qiE '00 A4 04 0C 07 A0 00 00 02 47 10 01' "$WORK/pcscd.log" \
    || fail "pcscd's APDU log does not show the eMRTD SELECT"

step "cie-companion mrtd read --reader \"pcsc:$READER\" --can (PACE DH 2048 through pcscd)"
# vpcd does not report its APDU size (see cli/src/transport/pcsc.rs): say it carries
# extended APDUs, as a CCID reader that reports dwMaxAPDUDataSize would.
"$BIN" mrtd read --reader "pcsc:$READER" --extended-length on --can 123456 \
    --csca "$ROOT/card-sim/testdata/test_csca_cert.pem" --photo "$WORK/face.png" | tee "$WORK/mrtd.txt"
grep -qF 'Access / accesso: Pace' "$WORK/mrtd.txt" || fail "mrtd read did not use PACE"
grep -qF 'CA00000AA (ITA)' "$WORK/mrtd.txt" || fail "mrtd read did not show the document number"
grep -qF 'TSTTST80A01H501X' "$WORK/mrtd.txt" || fail "mrtd read did not show the codice fiscale from DG11"
grep -qF 'GENUINE: the data is what the issuing State signed' "$WORK/mrtd.txt" \
    || fail "passive authentication did not pass through pcscd"
[ -s "$WORK/face.png" ] || fail "the photo was not written"
grep -qF 'Chip authentication / autenticazione del chip: passed' "$WORK/mrtd.txt" \
    || fail "chip authentication (DH, MSE:Set KAT) did not pass through pcscd"
grep -qF 'Active authentication / autenticazione attiva: passed' "$WORK/mrtd.txt" \
    || fail "active authentication did not pass through pcscd"
set +e
"$BIN" mrtd read --reader "pcsc:$READER" --extended-length on --can 654321 >/dev/null 2>"$WORK/wrongcan.txt"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "a wrong CAN through pcscd should exit 2, got $rc"
grep -qF 'CAN errato' "$WORK/wrongcan.txt" || fail "no Italian wrong-CAN message"

step "registration with the CIE through pcscd (issue 12): companion-server + cie-companion register"
# The reference server binary on loopback, trusting the virtual CIE's test CA and CSCA.
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$COMPANION_SERVER_BIN" --listen "127.0.0.1:$PORT" --database "sqlite:$WORK/reg.sqlite" \
    --card-ca "$ROOT/card-sim/testdata/test_ca_cert.der" \
    --csca "$ROOT/card-sim/testdata/test_csca_cert.der" --pin-file "$WORK/server.pin" \
    </dev/null >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq $((WAIT_SECS * 4))); do
    [ -s "$WORK/server.pin" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "companion-server exited early"
    sleep 0.25
done
[ -s "$WORK/server.pin" ] || fail "companion-server did not start within ${WAIT_SECS}s"
register() {
    "$BIN" register --reader "pcsc:$READER" --extended-length on --yes \
        --server "https://127.0.0.1:$PORT" --server-key "$(cat "$WORK/server.pin")" "$@"
}
CIE_COMPANION_CAN=123456 register </dev/null | tee "$WORK/register.txt"
grep -qF 'codice fiscale TSTTST80A01H501X' "$WORK/register.txt" || fail "register did not show the chip's codice fiscale"
grep -qF 'identità nuova' "$WORK/register.txt" || fail "the first registration did not create a new identity"
grep -qF 'Registrazione completata: MARIA TESTER (TSTTST80A01H501X), livello 3' "$WORK/register.txt" \
    || fail "registration through pcscd did not complete"
# Run "${@:3}" with no input, expecting exit code $1, output (both streams) into $2.
expect_exit() {
    local want=$1 out=$2 rc
    shift 2
    set +e
    "$@" </dev/null >"$out" 2>&1
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] || { cat "$out"; fail "'$*' should exit $want, got $rc"; }
}
expect_exit 7 "$WORK/register2.txt" register --can 123456
grep -qF 'carta già registrata' "$WORK/register2.txt" || fail "the second registration was not refused as already registered"
expect_exit 7 "$WORK/register3.txt" register --can 654321
grep -qF 'CAN' "$WORK/register3.txt" || fail "no wrong-CAN message from register"
kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

step "cie-companion demo through pcscd: registration, then the new identity logs in (phone tap, desktop QR, approvals)"
# A real reader: the PIN and CAN come from the environment (no terminal here).
CIE_COMPANION_PIN=12345678 CIE_COMPANION_CAN=123456 "$BIN" demo --reader "pcsc:$READER" \
    --extended-length on --card-ca "$ROOT/card-sim/testdata/test_ca_cert.der" \
    --csca "$ROOT/card-sim/testdata/test_csca_cert.der" </dev/null | tee "$WORK/demo.txt"
grep -qF 'Registrazione completata: MARIA TESTER (TSTTST80A01H501X), livello 3' "$WORK/demo.txt" \
    || fail "the demo through pcscd did not register"
grep -qF 'identità nuova' "$WORK/demo.txt" || fail "the demo's registration did not create the identity"
[ "$(grep -c 'Accesso effettuato.*MARIA TESTER (TSTTST80A01H501X)' "$WORK/demo.txt")" -eq 4 ] \
    || fail "the registered identity did not complete the four logins through pcscd"
grep -qF 'Demo completata' "$WORK/demo.txt" || fail "the demo through pcscd did not complete"
grep -qF '12345678' "$WORK/demo.txt" && fail "the demo printed the PIN"

step "unknown reader name gives exit code 3"
set +e
"$BIN" card info --reader "pcsc:No Such Reader" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "expected exit code 3 for an unknown reader, got $rc"

step "swap in the virtual passport (BAC only) and read it with the MRZ data"
kill "$SIM_PID" 2>/dev/null
wait "$SIM_PID" 2>/dev/null || true
"$BIN" sim vpcd --card passport --host 127.0.0.1 --port 35963 --wait "$WAIT_SECS" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
ok=""
for _ in $(seq $((WAIT_SECS * 4))); do
    kill -0 "$SIM_PID" 2>/dev/null || fail "cie-companion sim vpcd --card passport exited early"
    # Through a file, not a pipe: `grep -q` would close the pipe under the writer.
    "$BIN" card info --reader "pcsc:$READER" >"$WORK/probe.txt" 2>/dev/null || true
    if grep -qE '^  IAS .*not present' "$WORK/probe.txt"; then ok=1; break; fi
    sleep 0.25
done
[ -n "$ok" ] || fail "the virtual passport did not replace the CIE in \"$READER\" within ${WAIT_SECS}s"
"$BIN" mrtd read --reader "pcsc:$READER" --mrz L898902C,690806,940623 \
    --csca "$ROOT/card-sim/testdata/test_csca_cert.der" | tee "$WORK/passport.txt"
grep -qF 'Access / accesso: Bac' "$WORK/passport.txt" || fail "the passport was not read with BAC"
grep -qF 'ERIKSSON' "$WORK/passport.txt" || fail "the passport holder's name is missing"
grep -qF 'GENUINE: the data is what the issuing State signed' "$WORK/passport.txt" \
    || fail "passive authentication of the passport did not pass through pcscd"

step "stopping pcscd: the virtual card client must end by itself, exit code 0"
set +e
stop_pcscd
for _ in $(seq 50); do kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SIM_PID" 2>/dev/null && fail "cie-companion sim vpcd still running after pcscd stopped"
wait "$SIM_PID"
rc=$?
SIM_PID=""
set -e
[ "$rc" -eq 0 ] || fail "cie-companion sim vpcd exited with $rc after vpcd closed the socket"
grep -q 'virtual card removed' "$WORK/sim.log" || fail "sim vpcd did not report the removal"
cat "$WORK/sim.log"

echo "tests/pcsc: 1 passed, 0 failed"
