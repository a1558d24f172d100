#!/usr/bin/env bash
# The PKCS#11 module on a card other applications use too, through a real pcscd + vpcd
# and the virtual CIE (`cie-companion card-sim serve`), with programs nobody on the team
# wrote (OpenSC pkcs11-tool, PyKCS11):
#  1. two processes signing at once, in a loop: every signature verifies (OpenSSL), no
#     PIN try is spent (PC/SC transactions keep each operation whole; a secure session the
#     other process ended is reopened and the kept PIN verified again);
#  2. pcscd restarted while an application is logged in: its next signature fails with a
#     device error (never CKR_PIN_INCORRECT) within a bounded time, and the call after that
#     works (PyKCS11, tests/pkcs11/shared_card.py).
# Root, like tests/pkcs11/run.sh; packages from scripts/deps.sh; PyKCS11 from PyPI in a
# cached virtualenv.
#   CIE_COMPANION_BIN, CIE_PKCS11_MODULE   use these builds instead of building
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
READER="Virtual PCD 00 00"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
WAIT_SECS="${PCSC_TEST_WAIT:-30}"
PIN=12345678
ROUNDS="${SHARED_CARD_ROUNDS:-3}"
PYKCS11_VERSION=1.5.20
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/pykcs11-venv-$PYKCS11_VERSION"

fail() { echo "tests/pkcs11/shared: FAIL: $*" >&2; exit 1; }
step() { echo "tests/pkcs11/shared: $*"; }

# shellcheck source=tests/pcsc/common.sh
source "$ROOT/tests/pcsc/common.sh"
require_pcscd_test_setup "pcscd" pcscd pkcs11-tool openssl python3

pkcs11_builds

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import PyKCS11' 2>/dev/null; then
    step "PyKCS11 $PYKCS11_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "PyKCS11==$PYKCS11_VERSION"
fi

setup_work_and_cleanup

start_pcscd() {
    pcscd --foreground --apdu --debug >>"$WORK/pcscd.log" 2>&1 &
    PCSCD_PID=$!
}
start_card() {
    "$BIN" card-sim serve --card cie --vpcd 127.0.0.1:35963 --wait "$WAIT_SECS" >>"$WORK/sim.log" 2>&1 &
    SIM_PID=$!
}
wait_card() {
    for _ in $(seq $((WAIT_SECS * 4))); do
        kill -0 "$PCSCD_PID" 2>/dev/null || fail "pcscd exited early"
        kill -0 "$SIM_PID" 2>/dev/null || fail "card-sim serve exited early"
        "$BIN" readers >"$WORK/readers.txt" 2>/dev/null || true
        grep -qF "$READER  (card present)" "$WORK/readers.txt" && return 0
        sleep 0.25
    done
    fail "\"$READER\" did not show a card within ${WAIT_SECS}s"
}

step "starting pcscd and the virtual CIE"
start_pcscd
start_card
wait_card

p11() { pkcs11-tool --module "$M" "$@"; }
ID="$(p11 -O 2>/dev/null | sed -n 's/^ *ID: *//p' | sort -u)"
[ -n "$ID" ] || fail "no object ID"
p11 --read-object --type cert --id "$ID" -o "$WORK/cert.der" >/dev/null
openssl x509 -inform DER -in "$WORK/cert.der" -pubkey -noout >"$WORK/pub.pem"
head -c 500 /dev/urandom >"$WORK/data"

step "two processes signing at once, $ROUNDS rounds each"
signer() {
    local who="$1" i
    for i in $(seq "$ROUNDS"); do
        p11 --login --pin "$PIN" --sign --id "$ID" -m SHA256-RSA-PKCS -i "$WORK/data" \
            -o "$WORK/sig-$who-$i" >"$WORK/signer-$who-$i.log" 2>&1 \
            || { cat "$WORK/signer-$who-$i.log" >&2; echo "signer $who round $i failed" >&2; return 1; }
    done
}
signer a & A=$!
signer b & B=$!
ok=1
wait "$A" || ok=""
wait "$B" || ok=""
[ -n "$ok" ] || fail "a signer failed while the other signed at the same time"
for who in a b; do
    for i in $(seq "$ROUNDS"); do
        openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig-$who-$i" "$WORK/data" >/dev/null \
            || fail "signature $who/$i does not verify"
    done
done
flags="$(p11 -T 2>/dev/null | sed -n 's/^ *token flags *: //p')"
case "$flags" in
    *"count low"* | *"final try"* | *locked*) fail "a PIN try was spent: token flags '$flags'" ;;
esac
step "both signed $ROUNDS times, every signature verifies, no PIN try spent"

step "pcscd restarted while an application (PyKCS11) is logged in"
mkfifo "$WORK/go"
"$VENV/bin/python" "$ROOT/tests/pkcs11/shared_card.py" "$M" "$PIN" <"$WORK/go" >"$WORK/app.log" 2>&1 &
APP=$!
exec 3>"$WORK/go"
for _ in $(seq $((WAIT_SECS * 4))); do
    grep -q '^READY' "$WORK/app.log" && break
    kill -0 "$APP" 2>/dev/null || { cat "$WORK/app.log" >&2; fail "the application exited before READY"; }
    sleep 0.25
done
grep -q '^READY' "$WORK/app.log" || fail "the application did not log in"
kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true
stop_pcscd || true
start_pcscd
start_card
wait_card
echo GO >&3
exec 3>&-
if ! timeout 120 tail --pid="$APP" -f /dev/null; then fail "the application hung"; fi
wait "$APP" || { cat "$WORK/app.log" >&2; fail "the application's check failed"; }
cat "$WORK/app.log"
grep -q '^OK' "$WORK/app.log" || fail "no OK from the application"
step "OK"
