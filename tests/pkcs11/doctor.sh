#!/usr/bin/env bash
# `cie-companion doctor` and `cie-companion pkcs11 install` for real:
#   doctor -> libpcsclite -> pcscd (+ vsmartcard-vpcd) <--TCP 35963--> `card-sim serve` (virtual CIE)
#                                                      <--TCP 35964--> `card-sim serve --card cns`
#   pkcs11 install -> NSS modutil -> a throwaway HOME's ~/.pki/nssdb, ~/.config/pkcs11/modules
#   doctor --server -> companion-server's card-login origins (--mtls-tls12-listen: TLS 1.2
#   only; --mtls-listen: TLS 1.2 and 1.3)
# Asserts: no pcscd -> the pcscd line fails with the command to run, exit status 9; then the
# readers, the CIE and the CNS recognised with the holder masked (never the whole codice
# fiscale), the module not registered before `pkcs11 install` and registered after, and
# the TLS verdicts (1.2-only origin OK; 1.2+1.3 origin fails with a CIE in a reader).
# Needs root (pcscd writes /run/pcscd) and pcscd, vsmartcard-vpcd, libnss3-tools
# (scripts/deps.sh). About 15 s after the build (each doctor run opens the CIE's secure
# session, as the module does).
#   CIE_COMPANION_BIN, CIE_PKCS11_MODULE, COMPANION_SERVER_BIN   use these builds
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
WAIT_SECS="${PCSC_TEST_WAIT:-30}"
CIE_READER="Virtual PCD 00 00"
CNS_READER="Virtual PCD 00 01"
CF=TSTTST80A01H501X
CNS_CF=PRVLCU85T10A662C

fail() { echo "tests/pkcs11/doctor: FAIL: $*" >&2; exit 1; }
step() { echo "tests/pkcs11/doctor: $*"; }

# shellcheck source=tests/pcsc/common.sh
source "$ROOT/tests/pcsc/common.sh"
require_pcscd_test_setup "pcscd needs /run/pcscd" pcscd modutil

pkcs11_builds --server

setup_work_and_cleanup
CNS_PID=""
cleanup_doctor() {
    local rc=$?
    set +e
    [ -n "$CNS_PID" ] && { kill "$CNS_PID" 2>/dev/null; wait "$CNS_PID" 2>/dev/null; }
    [ "$rc" -ne 0 ] && [ -f "$WORK/doctor.txt" ] && { echo "---- last doctor output ----" >&2; cat "$WORK/doctor.txt" >&2; }
    (exit "$rc"); cleanup_pcscd_test
}
trap cleanup_doctor EXIT
export HOME="$WORK/home"
mkdir -p "$HOME"

# doctor EXPECTED_STATUS ARGS...: run it (plain output, not a terminal) into $WORK/doctor.txt.
doctor() {
    local want="$1" rc=0
    shift
    "$BIN" doctor "$@" >"$WORK/doctor.txt" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || fail "doctor $* exited $rc, expected $want"
}
has() { grep -qF -- "$1" "$WORK/doctor.txt" || fail "doctor output lacks: $1"; }
has_re() { grep -qE -- "$1" "$WORK/doctor.txt" || fail "doctor output lacks /$1/"; }

step "no pcscd: the pcscd line fails with what to run, exit status 9"
doctor 9
has "[FAIL] pcscd: the PC/SC service (pcscd) is not reachable"
has "sudo systemctl start pcscd"
has "sudo apt install pcscd"
has "[FAIL] nss: no NSS database at sql:$HOME/.pki/nssdb"

step "pcscd, the virtual CIE ($CIE_READER) and the virtual CNS ($CNS_READER)"
pcscd --foreground --apdu --debug >"$WORK/pcscd.log" 2>&1 &
PCSCD_PID=$!
"$BIN" card-sim serve --card cie --vpcd 127.0.0.1:35963 --wait "$WAIT_SECS" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
"$BIN" card-sim serve --card cns --vpcd 127.0.0.1:35964 --wait "$WAIT_SECS" >"$WORK/sim-cns.log" 2>&1 &
CNS_PID=$!
ok=""
for _ in $(seq $((WAIT_SECS * 4))); do
    kill -0 "$PCSCD_PID" 2>/dev/null || fail "pcscd exited early"
    kill -0 "$SIM_PID" 2>/dev/null || fail "card-sim serve (CIE) exited early"
    kill -0 "$CNS_PID" 2>/dev/null || fail "card-sim serve (CNS) exited early"
    "$BIN" readers >"$WORK/readers.txt" 2>/dev/null || true
    if grep -qF "$CIE_READER  (card present)" "$WORK/readers.txt" \
        && grep -qF "$CNS_READER  (card present)" "$WORK/readers.txt"; then ok=1; break; fi
    sleep 0.25
done
[ -n "$ok" ] || fail "the virtual cards did not show within ${WAIT_SECS}s"

step "doctor before pkcs11 install: pcscd, readers, CIE and CNS; the module not registered"
doctor 9
cat "$WORK/doctor.txt"
has "[OK]   pcscd: the PC/SC service (pcscd) is running"
has_re "^\[OK\]   readers: 2 reader\(s\): .*$CIE_READER.*$CNS_READER"
has_re "^\[OK\]   card: $CIE_READER: CIE \(CIE 3\.0\), holder M\. T\. \(TST\*{12}X\), PIN: 3 tries left"
has_re "^\[OK\]   card: $CNS_READER: CNS \(CNS / TS-CNS\), holder L\. P\. \(PRV\*{12}C\), PIN: 3 tries left"
has "[FAIL] nss: no NSS database"
has "[WARN] p11kit: no p11-kit module file"
has "cie-companion pkcs11 install"
grep -qF -e "$CF" -e "$CNS_CF" "$WORK/doctor.txt" && fail "a whole codice fiscale was printed"
# No PIN sent: the CNS's VERIFY went out without data only (its PIN VERIFY is
# `00 20 00 10|90 08 …`); the run after install shows 3 tries left on both cards again
# (the virtual cards keep their counters across resets, as real ones do).
grep -qE 'APDU: 00 20 00 [19]0 08' "$WORK/pcscd.log" && fail "doctor sent a PIN to the CNS"
grep -qE 'APDU: 00 20 00 [19]0 ?$' "$WORK/pcscd.log" || fail "doctor did not read the CNS PIN tries"

step "pkcs11 install (NSS modutil + p11-kit file), twice: the second says already installed"
"$BIN" pkcs11 install --module "$M" | tee "$WORK/install.txt"
grep -qF "NSS (sql:$HOME/.pki/nssdb): installed" "$WORK/install.txt" || fail "NSS not installed"
"$BIN" pkcs11 install --module "$M" >"$WORK/install2.txt"
[ "$(grep -c 'already installed / già installato' "$WORK/install2.txt")" -eq 2 ] \
    || { cat "$WORK/install2.txt"; fail "second install is not idempotent"; }
modutil -dbdir "sql:$HOME/.pki/nssdb" -list >"$WORK/modutil.txt" 2>&1
grep -qF "cie-companion" "$WORK/modutil.txt" || fail "modutil does not list the module"

step "doctor after install: every check passes, exit status 0"
doctor 0
cat "$WORK/doctor.txt"
has "[OK]   nss: module registered in sql:$HOME/.pki/nssdb as \"cie-companion\""
has "[OK]   p11kit: p11-kit module file $HOME/.config/pkcs11/modules/cie-companion.module"
has "All checks passed"

step "companion-server with both card-login origins (self-signed TLS)"
"$SERVER" --listen 127.0.0.1:0 --database "sqlite:$WORK/server.db" \
    --card-ca "$ROOT/card-sim/testdata/test_ca_cert.pem" \
    --mtls-listen 127.0.0.1:0 --mtls-tls12-listen 127.0.0.1:0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q '^tls pin' "$WORK/server.log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "companion-server exited"
    sleep 0.1
done
TLS13_ORIGIN="$(sed -n 's/^mutual-TLS card login on //p' "$WORK/server.log")"
TLS12_ORIGIN="$(sed -n 's/^mutual-TLS card login (TLS 1.2 only) on //p' "$WORK/server.log")"
[ -n "$TLS13_ORIGIN" ] && [ -n "$TLS12_ORIGIN" ] || fail "no mutual-TLS origins in the server log"

step "doctor --server, TLS 1.2-only origin ($TLS12_ORIGIN): client authentication over TLS 1.2, OK"
doctor 0 --server "$TLS12_ORIGIN/login/card"
has_re "^\[OK\]   server: .*TLS 1\.2 offered, asks for a client certificate; TLS 1\.3 not offered; a browser gets TLS 1\.2: .*the CIE and the CNS can log in"

step "doctor --server, TLS 1.2+1.3 origin ($TLS13_ORIGIN): with a CIE in a reader, a failure"
doctor 9 --server "$TLS13_ORIGIN/login/card"
has_re "^\[FAIL\] server: .*TLS 1\.3 offered, asks for a client certificate; a browser gets TLS 1\.3: a CNS can log in, a CIE cannot"
has "--mtls-tls12-listen"

step "pkcs11 install --uninstall: doctor fails on the NSS database again"
"$BIN" pkcs11 install --uninstall >/dev/null
doctor 9
has "[FAIL] nss: the module is not registered"
[ -e "$HOME/.config/pkcs11/modules/cie-companion.module" ] && fail "p11-kit file left behind"

step "PASS"
