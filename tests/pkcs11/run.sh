#!/usr/bin/env bash
# The PKCS#11 module end to end through programs nobody on the team wrote:
#   OpenSC pkcs11-tool, NSS modutil/certutil  -> libcie_companion_pkcs11.so -> libpcsclite
#   -> pcscd (+ vsmartcard-vpcd driver) <--TCP 35963--> `cie-companion card-sim serve` (virtual CIE)
#                                       <--TCP 35964--> `card-sim serve --card cns` (virtual CNS)
# and every signature checked with OpenSSL against the certificate read from the card.
# Needs root (pcscd writes /run/pcscd) and the packages pcscd, vsmartcard-vpcd, opensc,
# libnss3-tools, openssl (scripts/deps.sh installs them). Starts its own pcscd and stops
# it, and the virtual card, on every exit path. A pcscd that is already running is not
# reused: stop it first (`systemctl stop pcscd.socket pcscd`).
#   CIE_COMPANION_BIN, CIE_PKCS11_MODULE   use these builds instead of building
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
READER="Virtual PCD 00 00"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
WAIT_SECS="${PCSC_TEST_WAIT:-30}"
PIN=12345678
CF=TSTTST80A01H501X
TOKEN_LABEL="CIE $CF"
HOLDER="MARIA TESTER ($CF)"

fail() { echo "tests/pkcs11: FAIL: $*" >&2; exit 1; }
step() { echo "tests/pkcs11: $*"; }

# shellcheck source=tests/pcsc/common.sh
source "$ROOT/tests/pcsc/common.sh"
require_pcscd_test_setup "pcscd needs /run/pcscd" pcscd pkcs11-tool modutil certutil openssl

pkcs11_builds

setup_work_and_cleanup

p11() { pkcs11-tool --module "$M" "$@"; }
# Run pkcs11-tool expecting failure; its output goes to $WORK/out.txt.
p11_fails() {
    if p11 "$@" >"$WORK/out.txt" 2>&1; then cat "$WORK/out.txt"; fail "pkcs11-tool $* should have failed"; fi
}
token_flags() { p11 -T 2>/dev/null | sed -n 's/^ *token flags *: //p'; }

step "no pcscd yet: the module loads and lists no slot, without crashing"
# (pkcs11-tool exits 1 when it finds no slot: its output is what is checked.)
p11 -I >"$WORK/info.txt" 2>&1 || true
grep -qF 'Manufacturer     cie-companion' "$WORK/info.txt" || fail "C_GetInfo manufacturer missing"
grep -qF 'Cryptoki version 2.40' "$WORK/info.txt" || fail "not a PKCS#11 2.40 module"
p11 -L >"$WORK/noslots.txt" 2>&1 || true
grep -qF 'No slots.' "$WORK/noslots.txt" || fail "slots listed without pcscd"

step "starting pcscd and the virtual CIE (cie-companion card-sim serve --card cie)"
pcscd --foreground --apdu --debug >"$WORK/pcscd.log" 2>&1 &
PCSCD_PID=$!
"$BIN" card-sim serve --card cie --vpcd 127.0.0.1:35963 --wait "$WAIT_SECS" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
ok=""
for _ in $(seq $((WAIT_SECS * 4))); do
    kill -0 "$PCSCD_PID" 2>/dev/null || fail "pcscd exited early"
    kill -0 "$SIM_PID" 2>/dev/null || fail "card-sim serve exited early"
    "$BIN" readers >"$WORK/readers.txt" 2>/dev/null || true
    if grep -qF "$READER  (card present)" "$WORK/readers.txt"; then ok=1; break; fi
    sleep 0.25
done
[ -n "$ok" ] || fail "\"$READER\" did not show a card within ${WAIT_SECS}s"

step "pkcs11-tool -L: one slot per reader, the CIE's token with the holder's codice fiscale"
p11 -L | tee "$WORK/slots.txt"
grep -qE "^Slot 0 \(0x1\): $READER\$" "$WORK/slots.txt" || fail "slot 1 is not \"$READER\""
grep -qE '^Slot 1 \(0x2\): Virtual PCD 00 01$' "$WORK/slots.txt" || fail "the empty reader has no slot"
grep -qE "token label +: $TOKEN_LABEL\$" "$WORK/slots.txt" || fail "token label is not \"$TOKEN_LABEL\""
grep -qE 'serial num +: 000011112222$' "$WORK/slots.txt" || fail "token serial is not the NIS"
grep -qE 'pin min/max +: 8/8$' "$WORK/slots.txt" || fail "PIN length is not 8 digits"
grep -qE 'token flags +: login required, token initialized, PIN initialized, readonly$' "$WORK/slots.txt" \
    || fail "fresh token flags wrong (no PIN try spent yet)"
p11 -L | grep -qF '(empty)' || fail "the empty reader is not shown without a token"

step "pkcs11-tool -M: the mechanisms the CIE really does"
p11 -M | tee "$WORK/mechs.txt"
for mech in RSA-PKCS SHA1-RSA-PKCS SHA256-RSA-PKCS SHA384-RSA-PKCS SHA512-RSA-PKCS; do
    grep -qE "^  $mech, keySize=\{2048,2048\}, hw, sign$" "$WORK/mechs.txt" || fail "mechanism $mech missing"
done
[ "$(grep -c '^  ' "$WORK/mechs.txt")" -eq 5 ] || fail "mechanisms beyond the five the card does are advertised"

step "pkcs11-tool -O before login: certificate, public key and the public-certificates profile"
p11 -O | tee "$WORK/objects.txt"
grep -qF 'Certificate Object; type = X.509 cert' "$WORK/objects.txt" || fail "no certificate before login"
grep -qF "label:      $HOLDER" "$WORK/objects.txt" || fail "certificate label is not \"$HOLDER\""
grep -qF 'Public Key Object; RSA 2048 bits' "$WORK/objects.txt" || fail "no public key"
grep -qF 'CKP_PUBLIC_CERTIFICATES_TOKEN' "$WORK/objects.txt" || fail "no public-certificates profile"
grep -q 'Private Key Object' "$WORK/objects.txt" && fail "a private key is listed before login"
ID="$(sed -n 's/^ *ID: *//p' "$WORK/objects.txt" | sort -u)"
[ "$(echo "$ID" | wc -l)" -eq 1 ] && [ -n "$ID" ] || fail "certificate and public key do not share one CKA_ID ($ID)"

step "the certificate read through the module is the card's, and names the holder"
p11 --read-object --type cert --id "$ID" -o "$WORK/cert.der" >/dev/null
openssl x509 -inform DER -in "$WORK/cert.der" -noout -subject | tee "$WORK/subject.txt"
grep -qF "$CF" "$WORK/subject.txt" || fail "certificate subject lacks the codice fiscale"
openssl x509 -inform DER -in "$WORK/cert.der" -pubkey -noout >"$WORK/pub.pem"
p11 --read-object --type pubkey --id "$ID" -o "$WORK/pub.der" >/dev/null
[ "$(openssl pkey -pubin -inform DER -in "$WORK/pub.der" -outform PEM)" = "$(cat "$WORK/pub.pem")" ] \
    || fail "the public key object differs from the certificate's key"

step "pkcs11-tool --login -O: the private key appears, sign-only, never extractable"
p11 --login --pin "$PIN" -O >"$WORK/objects-login.txt"
grep -A4 'Private Key Object' "$WORK/objects-login.txt" | tee "$WORK/priv.txt"
grep -qF 'Usage:      sign' "$WORK/priv.txt" || fail "private key cannot sign"
grep -qF 'never extractable' "$WORK/priv.txt" || fail "private key not marked never extractable"
grep -qF "ID:         $ID" "$WORK/priv.txt" || fail "private key has another CKA_ID"

step "sign with each mechanism; OpenSSL verifies each signature with the card's certificate"
head -c 1000 /dev/urandom >"$WORK/data"
openssl dgst -sha256 -binary "$WORK/data" >"$WORK/hash"
# CKM_RSA_PKCS signs a DigestInfo the caller built: what TLS 1.2 client authentication does.
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' | cat - "$WORK/hash" >"$WORK/di"
p11 --login --pin "$PIN" --sign --id "$ID" -m RSA-PKCS -i "$WORK/di" -o "$WORK/sig"
[ "$(stat -c %s "$WORK/sig")" -eq 256 ] || fail "RSA-PKCS signature is not 256 bytes"
openssl pkeyutl -verify -pubin -inkey "$WORK/pub.pem" -pkeyopt digest:sha256 \
    -in "$WORK/hash" -sigfile "$WORK/sig" || fail "RSA-PKCS signature does not verify"
for h in sha1 sha256 sha384 sha512; do
    H="$(echo "$h" | tr a-z A-Z)"
    p11 --login --pin "$PIN" --sign --id "$ID" -m "$H-RSA-PKCS" -i "$WORK/data" -o "$WORK/sig-$h"
    openssl dgst "-$h" -verify "$WORK/pub.pem" -signature "$WORK/sig-$h" "$WORK/data" \
        || fail "$H-RSA-PKCS signature does not verify (wrong DigestInfo?)"
done
# A signature over other data must not verify: the checks above can fail.
echo tampered >>"$WORK/data"
if openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig-sha256" "$WORK/data" >/dev/null 2>&1; then
    fail "OpenSSL accepted a signature over other data"
fi

step "NSS: modutil registers the module, certutil lists the token and the certificate before login"
mkdir "$WORK/nssdb"
certutil -N -d "sql:$WORK/nssdb" --empty-password
modutil -dbdir "sql:$WORK/nssdb" -add cie-companion -libfile "$M" -force >/dev/null
# modutil asks every slot for its token and exits non-zero for the empty "Virtual PCD 00 01"
# (C_GetTokenInfo → CKR_TOKEN_NOT_PRESENT, as PKCS#11 says): its listing is what is checked.
modutil -dbdir "sql:$WORK/nssdb" -list cie-companion >"$WORK/modutil.txt" 2>&1 || true
cat "$WORK/modutil.txt"
grep -qF "$TOKEN_LABEL" "$WORK/modutil.txt" || fail "modutil does not list the token"
certutil -d "sql:$WORK/nssdb" -L -h all | tee "$WORK/certutil.txt"
grep -qF "$TOKEN_LABEL:$HOLDER" "$WORK/certutil.txt" || fail "certutil does not list the card's certificate"

step "pkcs11-tool --test --login: OpenSC's own checks, its signatures verified by OpenSC"
p11 --test --login --pin "$PIN" >"$WORK/selftest.txt" 2>&1 || true
cat "$WORK/selftest.txt"
for mech in RSA-PKCS SHA1-RSA-PKCS SHA256-RSA-PKCS; do
    grep -qE "^ +$mech: OK\$" "$WORK/selftest.txt" || fail "pkcs11-tool --test: $mech not OK"
done
# The one error it may count: no random-number generator (the module offers none yet).
grep 'ERR:' "$WORK/selftest.txt" | grep -vqF 'C_GenerateRandom failed: CKR_FUNCTION_NOT_SUPPORTED' \
    && fail "pkcs11-tool --test reports errors beyond the missing C_GenerateRandom"
step "pkcs11-tool --test-fork: the child re-initialises the module after fork"
p11 --test-fork >"$WORK/fork.txt" 2>&1 || { cat "$WORK/fork.txt"; fail "pkcs11-tool --test-fork failed"; }
grep -qF 'Calling C_Initialize in forked child' "$WORK/fork.txt" || fail "--test-fork did not fork"

step "a PIN of the wrong shape reaches no card: CKR_PIN_LEN_RANGE, no try spent"
p11_fails --login --pin 1234 -O
grep -qF 'CKR_PIN_LEN_RANGE' "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "short PIN not refused as CKR_PIN_LEN_RANGE"; }
[ "$(token_flags)" = "login required, token initialized, PIN initialized, readonly" ] || fail "a short PIN spent a try"

step "wrong PIN: CKR_PIN_INCORRECT, and the token's flags show the tries left (3 → 2 → 1)"
p11_fails --login --pin 00000000 -O
grep -qF 'CKR_PIN_INCORRECT' "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "wrong PIN not reported as CKR_PIN_INCORRECT"; }
[ "$(token_flags)" = "login required, token initialized, user PIN count low, PIN initialized, readonly" ] \
    || fail "after one wrong PIN the token does not say COUNT_LOW ($(token_flags))"
p11_fails --login --pin 00000000 -O
grep -qF 'CKR_PIN_INCORRECT' "$WORK/out.txt" || fail "second wrong PIN not CKR_PIN_INCORRECT"
token_flags | grep -qF 'final user PIN try' || fail "after two wrong PINs the token does not say FINAL_TRY"
step "the right PIN restores the tries"
p11 --login --pin "$PIN" -O >/dev/null
[ "$(token_flags)" = "login required, token initialized, PIN initialized, readonly" ] \
    || fail "tries not restored after the right PIN ($(token_flags))"

step "three wrong PINs block the PIN: CKR_PIN_LOCKED, token flag LOCKED, the right PIN refused"
p11_fails --login --pin 00000000 -O
p11_fails --login --pin 00000000 -O
p11_fails --login --pin 00000000 -O
grep -qF 'CKR_PIN_LOCKED' "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "the blocking try is not CKR_PIN_LOCKED"; }
token_flags | grep -qF 'user PIN locked' || fail "blocked PIN not flagged LOCKED ($(token_flags))"
p11_fails --login --pin "$PIN" -O
grep -qF 'CKR_PIN_LOCKED' "$WORK/out.txt" || fail "a blocked PIN accepted a login"

# pcscd really carried the card work: its APDU log has the VERIFY and INTERNAL AUTHENTICATE
# commands under secure messaging (CLA 0C).
grep -qF 'APDU: 0C 20 00 81' "$WORK/pcscd.log" || fail "pcscd's APDU log shows no VERIFY under secure messaging"
grep -qF 'APDU: 0C 88 00 00' "$WORK/pcscd.log" || fail "pcscd's APDU log shows no INTERNAL AUTHENTICATE under secure messaging"

step "starting the virtual CNS in the second reader (cie-companion card-sim serve --card cns)"
CNS_READER="Virtual PCD 00 01"
CNS_PIN=13579
CNS_CF=PRVLCU85T10A662C
CNS_LABEL="LUCA PROVA $CNS_CF"
CNS_HOLDER="LUCA PROVA ($CNS_CF)"
"$BIN" card-sim serve --card cns --vpcd 127.0.0.1:35964 --wait "$WAIT_SECS" >"$WORK/sim-cns.log" 2>&1 &
CNS_PID=$!
# Stop it too on every exit path, then the common cleanup (which keeps the exit status).
cleanup_cns() {
    local rc=$?
    set +e
    kill "$CNS_PID" 2>/dev/null; wait "$CNS_PID" 2>/dev/null
    if [ "$rc" -ne 0 ]; then echo "---- virtual CNS log ----" >&2; cat "$WORK/sim-cns.log" >&2; fi
    (exit "$rc"); cleanup_pcscd_test
}
trap cleanup_cns EXIT
ok=""
for _ in $(seq $((WAIT_SECS * 4))); do
    kill -0 "$CNS_PID" 2>/dev/null || fail "card-sim serve --card cns exited early"
    "$BIN" readers >"$WORK/readers.txt" 2>/dev/null || true
    if grep -qF "$CNS_READER  (card present)" "$WORK/readers.txt"; then ok=1; break; fi
    sleep 0.25
done
[ -n "$ok" ] || fail "\"$CNS_READER\" did not show the CNS within ${WAIT_SECS}s"
c11() { p11 --slot 2 "$@"; }
c11_fails() {
    if c11 "$@" >"$WORK/out.txt" 2>&1; then cat "$WORK/out.txt"; fail "pkcs11-tool --slot 2 $* should have failed"; fi
}
cns_flags() { p11 -L 2>/dev/null | sed -n 's/^ *token flags *: //p' | tail -1; }

step "pkcs11-tool -L: the CNS token, labelled with the holder and the codice fiscale"
p11 -L | tee "$WORK/slots-cns.txt"
grep -qE "token label +: $CNS_LABEL\$" "$WORK/slots-cns.txt" || fail "CNS token label is not \"$CNS_LABEL\""
grep -qE 'serial num +: 7420000000000042$' "$WORK/slots-cns.txt" || fail "CNS serial is not EF_IDCarta"
grep -qE 'pin min/max +: 5/8$' "$WORK/slots-cns.txt" || fail "CNS PIN length is not 5-8"
[ "$(cns_flags)" = "login required, token initialized, PIN initialized, readonly" ] \
    || fail "fresh CNS token flags wrong ($(cns_flags))"

step "pkcs11-tool -M: the CNS adds raw RSA and PSS (padded on the host)"
c11 -M | tee "$WORK/mechs-cns.txt"
for mech in RSA-PKCS SHA1-RSA-PKCS SHA256-RSA-PKCS SHA384-RSA-PKCS SHA512-RSA-PKCS RSA-X-509 \
    RSA-PKCS-PSS SHA1-RSA-PKCS-PSS SHA256-RSA-PKCS-PSS SHA384-RSA-PKCS-PSS SHA512-RSA-PKCS-PSS; do
    grep -qE "^  $mech, keySize=\{2048,2048\}, hw, sign$" "$WORK/mechs-cns.txt" || fail "CNS mechanism $mech missing"
done
[ "$(grep -c '^  ' "$WORK/mechs-cns.txt")" -eq 11 ] || fail "CNS advertises other mechanisms"

step "the CNS certificate and key through the module"
c11 -O | tee "$WORK/objects-cns.txt"
grep -qF "label:      $CNS_HOLDER" "$WORK/objects-cns.txt" || fail "CNS certificate label is not \"$CNS_HOLDER\""
CID="$(sed -n 's/^ *ID: *//p' "$WORK/objects-cns.txt" | sort -u)"
[ "$(echo "$CID" | wc -l)" -eq 1 ] && [ -n "$CID" ] || fail "CNS certificate and key do not share one CKA_ID"
c11 --read-object --type cert --id "$CID" -o "$WORK/cns-cert.der" >/dev/null
openssl x509 -inform DER -in "$WORK/cns-cert.der" -noout -subject | grep -qF "$CNS_CF" \
    || fail "CNS certificate lacks the codice fiscale"
openssl x509 -inform DER -in "$WORK/cns-cert.der" -pubkey -noout >"$WORK/cns-pub.pem"

step "CNS: sign with each mechanism; OpenSSL verifies each with the card's certificate"
head -c 1000 /dev/urandom >"$WORK/cdata"
openssl dgst -sha256 -binary "$WORK/cdata" >"$WORK/chash"
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' | cat - "$WORK/chash" >"$WORK/cdi"
c11 --login --pin "$CNS_PIN" --sign --id "$CID" -m RSA-PKCS -i "$WORK/cdi" -o "$WORK/csig"
openssl pkeyutl -verify -pubin -inkey "$WORK/cns-pub.pem" -pkeyopt digest:sha256 \
    -in "$WORK/chash" -sigfile "$WORK/csig" || fail "CNS RSA-PKCS signature does not verify"
for h in sha1 sha256 sha384 sha512; do
    H="$(echo "$h" | tr a-z A-Z)"
    c11 --login --pin "$CNS_PIN" --sign --id "$CID" -m "$H-RSA-PKCS" -i "$WORK/cdata" -o "$WORK/csig-$h"
    openssl dgst "-$h" -verify "$WORK/cns-pub.pem" -signature "$WORK/csig-$h" "$WORK/cdata" \
        || fail "CNS $H-RSA-PKCS signature does not verify"
    c11 --login --pin "$CNS_PIN" --sign --id "$CID" -m "$H-RSA-PKCS-PSS" --mgf "MGF1-$H" \
        -i "$WORK/cdata" -o "$WORK/cpss-$h"
    openssl dgst "-$h" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto \
        -verify "$WORK/cns-pub.pem" -signature "$WORK/cpss-$h" "$WORK/cdata" \
        || fail "CNS $H-RSA-PKCS-PSS signature does not verify"
done
# CKM_RSA_PKCS_PSS over a hash, as NSS and Chromium send it for TLS 1.3.
c11 --login --pin "$CNS_PIN" --sign --id "$CID" -m RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 \
    -i "$WORK/chash" -o "$WORK/cpss"
openssl pkeyutl -verify -pubin -inkey "$WORK/cns-pub.pem" -in "$WORK/chash" -sigfile "$WORK/cpss" \
    -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:auto \
    || fail "CNS RSA-PKCS-PSS signature does not verify"
# CKM_RSA_X_509: the raw operation over a PKCS#1 block built here, so OpenSSL can check it.
{ printf '\x00\x01'; head -c 202 /dev/zero | tr '\0' '\377'; printf '\x00'; cat "$WORK/cdi"; } >"$WORK/cblock"
[ "$(stat -c %s "$WORK/cblock")" -eq 256 ] || fail "test block is not 256 bytes"
c11 --login --pin "$CNS_PIN" --sign --id "$CID" -m RSA-X-509 -i "$WORK/cblock" -o "$WORK/craw"
openssl pkeyutl -verify -pubin -inkey "$WORK/cns-pub.pem" -pkeyopt digest:sha256 \
    -in "$WORK/chash" -sigfile "$WORK/craw" || fail "CNS RSA-X-509 result is not the card's signature"
echo tampered >>"$WORK/cdata"
if openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto -verify "$WORK/cns-pub.pem" \
    -signature "$WORK/cpss-sha256" "$WORK/cdata" >/dev/null 2>&1; then
    fail "OpenSSL accepted a CNS PSS signature over other data"
fi

step "CNS: pkcs11-tool --test --login (OpenSC's own signature checks; 0.23 tests no PSS)"
c11 --test --login --pin "$CNS_PIN" >"$WORK/selftest-cns.txt" 2>&1 || true
cat "$WORK/selftest-cns.txt"
grep 'ERR:' "$WORK/selftest-cns.txt" | grep -vqF 'C_GenerateRandom failed: CKR_FUNCTION_NOT_SUPPORTED' \
    && fail "pkcs11-tool --test on the CNS reports errors beyond the missing C_GenerateRandom"
for mech in RSA-X-509 RSA-PKCS SHA1-RSA-PKCS SHA256-RSA-PKCS; do
    grep -qE "^ +$mech: OK\$" "$WORK/selftest-cns.txt" || fail "pkcs11-tool --test on the CNS: $mech not OK"
done

step "NSS: certutil lists the CNS token's certificate before login"
certutil -d "sql:$WORK/nssdb" -L -h all | tee "$WORK/certutil-cns.txt"
grep -qF "$CNS_LABEL:$CNS_HOLDER" "$WORK/certutil-cns.txt" || fail "certutil does not list the CNS certificate"

step "CNS wrong PIN: CKR_PIN_INCORRECT with the tries left in the flags; short PIN spends none"
c11_fails --login --pin 1357 -O
grep -qF 'CKR_PIN_LEN_RANGE' "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "4-digit CNS PIN not CKR_PIN_LEN_RANGE"; }
c11_fails --login --pin 00000 -O
grep -qF 'CKR_PIN_INCORRECT' "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "wrong CNS PIN not CKR_PIN_INCORRECT"; }
[ "$(cns_flags)" = "login required, token initialized, user PIN count low, PIN initialized, readonly" ] \
    || fail "after one wrong CNS PIN the token does not say COUNT_LOW ($(cns_flags))"
c11_fails --login --pin 00000 -O
cns_flags | grep -qF 'final user PIN try' || fail "after two wrong CNS PINs no FINAL_TRY"
c11_fails --login --pin 00000 -O
grep -qF 'CKR_PIN_LOCKED' "$WORK/out.txt" || { cat "$WORK/out.txt"; fail "the blocking CNS try is not CKR_PIN_LOCKED"; }
cns_flags | grep -qF 'user PIN locked' || fail "blocked CNS PIN not flagged LOCKED ($(cns_flags))"
c11_fails --login --pin "$CNS_PIN" -O
grep -qF 'CKR_PIN_LOCKED' "$WORK/out.txt" || fail "a blocked CNS PIN accepted a login"

# The CNS's VERIFY goes in clear with reference 90 (STIncard) and FF padding; PSO signs.
grep -qF 'APDU: 00 20 00 90 08 31 33 35 37 39 FF FF FF' "$WORK/pcscd.log" \
    || fail "pcscd's APDU log shows no clear CNS VERIFY with FF padding"
grep -qF 'APDU: 00 22 F1 B6 03 83 01 01' "$WORK/pcscd.log" || fail "pcscd's APDU log shows no CNS MSE SET"

echo "tests/pkcs11: 1 passed, 0 failed"
