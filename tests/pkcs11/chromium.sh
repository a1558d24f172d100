#!/usr/bin/env bash
# Chromium logs in with a smart card through the PKCS#11 module, end to end:
#   Chromium (headful, Xvfb) -> NSS ($HOME/.pki/nssdb) -> libcie_companion_pkcs11.so
#   -> pcscd + vpcd -> `cie-companion card-sim serve` (virtual CIE, virtual CNS)
# against `companion-server`'s card-login page (GET /login/card on its mutual-TLS
# origins): the virtual CIE over the TLS-1.2-only origin, the virtual CNS over TLS 1.3.
# The AutoSelectCertificateForUrls policy picks each card's certificate; the token's PIN is
# typed into Chromium's PIN dialog with xdotool (the module has no PIN-less mode).
# tests/pkcs11/chromium_login.py asserts the identity and TLS version the page shows and
# that its session cookie logs the browser in.
#
# Needs root (pcscd writes /run/pcscd; the policy goes to /etc/chromium/policies/managed,
# removed on exit) and the packages of scripts/deps.sh (pcscd, vsmartcard-vpcd,
# libnss3-tools, openssl, chromium, xvfb, xdotool); Playwright comes from PyPI into the
# same cached virtualenv scripts/browser-test.sh uses.
#   CIE_COMPANION_BIN, CIE_PKCS11_MODULE, COMPANION_SERVER_BIN   use these builds
#   CHROMIUM_TEST_ARTIFACTS   keep screenshots and logs here (default: printed, then removed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
WAIT_SECS="${PCSC_TEST_WAIT:-30}"
# The virtualenv scripts/browser-test.sh makes, with the same pins (so either reuses it).
PLAYWRIGHT_VERSION=1.65.2
PILLOW_VERSION=13.0.0
POLICY=/etc/chromium/policies/managed/cie-companion-chromium-test.json

fail() { echo "tests/pkcs11/chromium: FAIL: $*" >&2; exit 1; }
step() { echo "tests/pkcs11/chromium: $*"; }

# shellcheck source=tests/pcsc/common.sh
source "$ROOT/tests/pcsc/common.sh"
require_pcscd_test_setup "pcscd, the Chromium policy" pcscd modutil certutil openssl Xvfb xdotool chromium python3 timeout

pkcs11_builds --server

VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/browser-venv-$PLAYWRIGHT_VERSION"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import playwright, PIL' 2>/dev/null; then
    step "Playwright $PLAYWRIGHT_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "playwright==$PLAYWRIGHT_VERSION" "pillow==$PILLOW_VERSION" </dev/null
fi

setup_work_and_cleanup
XVFB_PID=""
CNS_PID=""
SERVER2_PID=""
cleanup_chromium() {
    local rc=$?
    set +e
    rm -f "$POLICY"
    [ -n "$CNS_PID" ] && { kill "$CNS_PID" 2>/dev/null; wait "$CNS_PID" 2>/dev/null; }
    [ -n "$SERVER2_PID" ] && { kill "$SERVER2_PID" 2>/dev/null; wait "$SERVER2_PID" 2>/dev/null; }
    [ -n "$XVFB_PID" ] && { kill "$XVFB_PID" 2>/dev/null; wait "$XVFB_PID" 2>/dev/null; }
    if [ "$rc" -ne 0 ]; then
        echo "---- virtual CNS log ----" >&2; cat "$WORK/sim-cns.log" >&2
        echo "---- companion-server log (last 60 lines) ----" >&2; tail -n 60 "$WORK/server.log" >&2
        [ -f "$WORK/server2.log" ] && { echo "---- second companion-server log ----" >&2; tail -n 30 "$WORK/server2.log" >&2; }
        if [ -n "${CHROMIUM_TEST_ARTIFACTS:-}" ]; then
            mkdir -p "$CHROMIUM_TEST_ARTIFACTS" && cp "$WORK"/artifacts/*-* "$WORK"/*.log "$CHROMIUM_TEST_ARTIFACTS/"
            echo "tests/pkcs11/chromium: screenshots (PNG: the page; XWD: the whole screen, dialogs included) and logs kept in $CHROMIUM_TEST_ARTIFACTS" >&2
        else
            ls -l "$WORK/artifacts" >&2
        fi
    fi
    # The server log is shown by the common cleanup; it must not find it twice.
    rm -f "$WORK/server.log"
    (exit "$rc"); cleanup_pcscd_test
}
trap cleanup_chromium EXIT
mkdir -p "$WORK/artifacts"

wait_card() { # reader, pid of its card
    for _ in $(seq $((WAIT_SECS * 4))); do
        kill -0 "$PCSCD_PID" 2>/dev/null || fail "pcscd exited early"
        kill -0 "$2" 2>/dev/null || fail "card-sim serve for \"$1\" exited early"
        "$BIN" readers 2>/dev/null | grep -qF "$1  (card present)" && return 0
        sleep 0.25
    done
    fail "\"$1\" did not show a card within ${WAIT_SECS}s"
}

step "pcscd, the virtual CIE (Virtual PCD 00 00) and the virtual CNS (Virtual PCD 00 01)"
pcscd --foreground --apdu --debug >"$WORK/pcscd.log" 2>&1 &
PCSCD_PID=$!
"$BIN" card-sim serve --card cie --vpcd 127.0.0.1:35963 --wait "$WAIT_SECS" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
wait_card "Virtual PCD 00 00" "$SIM_PID"
"$BIN" card-sim serve --card cns --vpcd 127.0.0.1:35964 --wait "$WAIT_SECS" >"$WORK/sim-cns.log" 2>&1 &
CNS_PID=$!
wait_card "Virtual PCD 00 01" "$CNS_PID"

step "a TLS CA and the server's certificate for 127.0.0.1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cie-companion Chromium test TLS CA" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign \
    -keyout "$WORK/tls-ca.key" -out "$WORK/tls-ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:false\n' >"$WORK/tls.ext"
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/tls-ca.pem" -CAkey "$WORK/tls-ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/tls.ext" -out "$WORK/tls.pem" 2>/dev/null

step "companion-server: main origin, mutual-TLS origins (TLS 1.2+1.3, and TLS 1.2 only)"
# start_server LOG ARGS...: a companion-server on loopback ports; waits for its banner.
start_server() {
    local log="$1" pid
    shift
    "$SERVER" --listen 127.0.0.1:0 --card-ca "$ROOT/card-sim/testdata/test_ca_cert.pem" \
        --tls-cert "$WORK/tls.pem" --tls-key "$WORK/tls.key" "$@" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q '^tls pin' "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || fail "companion-server exited: $(cat "$log")"
        sleep 0.1
    done
    grep -q '^tls pin' "$log" || fail "companion-server did not start: $(cat "$log")"
    STARTED_PID=$pid
}
start_server "$WORK/server.log" --database "sqlite:$WORK/server.db" \
    --mtls-listen 127.0.0.1:0 --mtls-tls12-listen 127.0.0.1:0
SERVER_PID=$STARTED_PID
MAIN_ORIGIN="https://$(sed -n 's/^listening on //p' "$WORK/server.log")"
CNS_ORIGIN="$(sed -n 's/^mutual-TLS card login on //p' "$WORK/server.log")"
CIE_ORIGIN="$(sed -n 's/^mutual-TLS card login (TLS 1.2 only) on //p' "$WORK/server.log")"
[ -n "$CNS_ORIGIN" ] && [ -n "$CIE_ORIGIN" ] || fail "no mutual-TLS origins"
step "main $MAIN_ORIGIN, CIE (TLS 1.2) $CIE_ORIGIN, CNS (TLS 1.3) $CNS_ORIGIN"
# A second server whose only card origin offers TLS 1.3 too, for the CIE's refusal.
start_server "$WORK/server2.log" --database "sqlite:$WORK/server2.db" --mtls-listen 127.0.0.1:0
SERVER2_PID=$STARTED_PID
CIE_TLS13_ORIGIN="$(sed -n 's/^mutual-TLS card login on //p' "$WORK/server2.log")"

step "NSS database of a throwaway HOME: our module, the server's TLS CA trusted"
BROWSER_HOME="$WORK/home"
NSSDB="sql:$BROWSER_HOME/.pki/nssdb"
mkdir -p "$BROWSER_HOME/.pki/nssdb"
certutil -N -d "$NSSDB" --empty-password
# modutil asks for confirmation unless -force; it lists the tokens as it adds the module.
modutil -dbdir "$NSSDB" -add cie-companion -libfile "$M" -force >"$WORK/modutil.log" 2>&1 \
    || { cat "$WORK/modutil.log" >&2; fail "modutil -add failed"; }
certutil -A -d "$NSSDB" -n "cie-companion Chromium test TLS CA" -t "C,," -i "$WORK/tls-ca.pem"
certutil -L -d "$NSSDB" -h all >"$WORK/certutil.log" 2>&1 || true
grep -qF 'CIE TSTTST80A01H501X:MARIA TESTER (TSTTST80A01H501X)' "$WORK/certutil.log" \
    || { cat "$WORK/certutil.log" >&2; fail "NSS does not see the CIE's certificate"; }
grep -qF 'LUCA PROVA PRVLCU85T10A662C:LUCA PROVA (PRVLCU85T10A662C)' "$WORK/certutil.log" \
    || { cat "$WORK/certutil.log" >&2; fail "NSS does not see the CNS's certificate"; }

step "policy $POLICY: each origin auto-selects its card's certificate"
mkdir -p "$(dirname "$POLICY")"
python3 - "$CIE_ORIGIN" "$CNS_ORIGIN" "$CIE_TLS13_ORIGIN" >"$POLICY" <<'EOF'
import json, sys
cie, cns, cie13 = sys.argv[1:4]
rule = lambda origin, cn: json.dumps({"pattern": origin, "filter": {"SUBJECT": {"CN": cn}}})
print(json.dumps({"AutoSelectCertificateForUrls": [
    rule(cie, "TSTTST80A01H501X"),
    rule(cns, "PRVLCU85T10A662C/7420000000000042.TEST"),
    rule(cie13, "TSTTST80A01H501X"),
]}, indent=1))
EOF

step "Xvfb"
exec 3>"$WORK/display"
# -fbdir: the screen, PIN dialog included, is kept as an XWD image (artifacts/Xvfb_screen0).
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp -fbdir "$WORK/artifacts" >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
exec 3>&-
for _ in $(seq 100); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || fail "Xvfb did not start: $(cat "$WORK/xvfb.log")"
export DISPLAY=":$(cat "$WORK/display")"

step "Chromium (headful on $DISPLAY): CIE over TLS 1.2, CNS over TLS 1.3, PINs typed with xdotool;"
step "then the CIE where TLS 1.3 is offered: refused, no fallback"
mkdir -p "$WORK/profile"
CHROMIUM=/usr/bin/chromium BROWSER_HOME="$BROWSER_HOME" PROFILE_DIR="$WORK/profile" \
    MAIN_ORIGIN="$MAIN_ORIGIN" CIE_ORIGIN="$CIE_ORIGIN" CNS_ORIGIN="$CNS_ORIGIN" \
    CIE_TLS13_ORIGIN="$CIE_TLS13_ORIGIN" \
    CIE_PIN=12345678 CNS_PIN=13579 CIE_CF=TSTTST80A01H501X CNS_CF=PRVLCU85T10A662C \
    CIE_NAME="MARIA TESTER" CNS_NAME="LUCA PROVA" ARTIFACTS="$WORK/artifacts" \
    timeout -k 10 300 "$VENV/bin/python" "$ROOT/tests/pkcs11/chromium_login.py" \
    || fail "Chromium did not log in with the cards"

# The server logged both logins with the versions the pages claimed (colours stripped).
sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" >"$WORK/server-plain.log"
grep -q 'browser card login .*tls="TLS 1.2"' "$WORK/server-plain.log" || fail "server log: no login over TLS 1.2"
grep -q 'browser card login .*tls="TLS 1.3"' "$WORK/server-plain.log" || fail "server log: no login over TLS 1.3"
grep -q 'browser card login' "$WORK/server2.log" && fail "the CIE logged in where TLS 1.3 is offered"
# And the cards did the work: pcscd carried the CIE's VERIFY and INTERNAL AUTHENTICATE under
# secure messaging, the CNS's clear VERIFY with the PIN typed into the dialog and its PSO COMPUTE DIGITAL SIGNATURE.
grep -qF 'APDU: 0C 20 00 81' "$WORK/pcscd.log" || fail "no CIE VERIFY went through pcscd"
grep -qF 'APDU: 0C 88 00 00' "$WORK/pcscd.log" || fail "no CIE INTERNAL AUTHENTICATE went through pcscd"
grep -qF 'APDU: 00 20 00 90 08 31 33 35 37 39 FF FF FF' "$WORK/pcscd.log" || fail "no CNS VERIFY with the typed PIN"
grep -qF 'APDU: 00 22 F1 B6 03 83 01 01' "$WORK/pcscd.log" || fail "no CNS MSE SET before the signature"
grep -qE 'APDU: [01]0 2A 9E 9A' "$WORK/pcscd.log" || fail "no CNS PSO signature went through pcscd"
echo "tests/pkcs11/chromium: 1 passed, 0 failed"
