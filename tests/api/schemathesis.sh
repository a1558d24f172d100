#!/usr/bin/env bash
# The API contract against a live server: the real `companion-server` on loopback (its own
# SQLite file in a temporary folder, self-signed TLS, the virtual test CA, OTP, registration
# with the test CSCA and the OpenID Provider on) is fuzzed by schemathesis (PyPI, pinned, in
# a cached virtualenv) from the server's own /openapi.json, every operation, a bounded number
# of examples each: no 5xx, every status, content type and body as documented. Then the
# server is stopped and its database is checked (tests/api/store_invariants.py): nothing left
# half-changed. Honours CARGO_TARGET_DIR.
#
#   bash tests/api/schemathesis.sh [EXAMPLES]     # examples per operation, default 25
#
# A failure leaves the schemathesis report (JUnit, the failing cases as curl commands) and
# the server log in the folder it prints.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
EXAMPLES="${1:-25}"

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_cli_deps
ensure_schemathesis_venv

cargo build -q -p companion-server
SERVER="$TARGET/debug/companion-server"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DB="$WORK/db.sqlite"
head -c 32 /dev/urandom >"$WORK/otp.key"
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    SERVER_PID=
}
cleanup() {
    local rc=$?
    stop_server
    if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "left for inspection: $WORK" >&2; fi
}
trap cleanup EXIT

STARTED="$(date +%s)"
# A relying party registered with its key (tests/api/client_auth.py signs its assertions).
CLIENT_ID="https://rp.example/oidc/rp"
"$SCHEMATHESIS_VENV/bin/python" tests/api/client_auth.py keygen "$WORK"
"$SERVER" oidc client add --client-id "$CLIENT_ID" \
    --redirect-uri "$CLIENT_ID/callback" --jwks "$WORK/jwks.json" \
    --client-name "Comune di Prova" --database "sqlite:$DB" >/dev/null
# A resident abroad with a PIN, so the PIN endpoints meet an account as well as strangers.
"$SERVER" pin issue --database "sqlite:$DB" --otp-key-file "$WORK/otp.key" \
    --codice-fiscale RSSMRA80A01H501U \
    --given-name MARIO --surname ROSSI --email mario@example.org \
    --address "1 Main Street, Springfield" >/dev/null

"$SERVER" --listen "127.0.0.1:$PORT" --database "sqlite:$DB" \
    --card-ca card-sim/testdata/test_ca_cert.der --pin-file "$WORK/pin" \
    --otp-key-file "$WORK/otp.key" --csca card-sim/testdata/test_csca_cert.der \
    --oidc-key "$WORK/oidc.pem" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
    [ -s "$WORK/pin" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$WORK/pin" ] || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }

# The same PIN holder logged in (tests/api/pin_session.py: the letters, the forced change,
# the new PIN), before any fuzzing: the second run sends its session as cookie and bearer.
TOKEN="$(python3 tests/api/pin_session.py "$SERVER" "sqlite:$DB" "$WORK/otp.key" \
    "https://127.0.0.1:$PORT" RSSMRA80A01H501U)"

# Checks: no 5xx, documented status codes, content types and bodies (response headers too).
# Examples, the schema's edge cases (coverage, positive and negative) and random fuzzing,
# each bounded; 4 workers; no test may hang on a long poll (25 s at most, by design).
# --seed keeps runs reproducible; CIE_SCHEMATHESIS_SEED changes it.
# Run from the work folder: schemathesis keeps its replay cache (.schemathesis/) in the
# current directory.
# Two runs: as a stranger (every operation), then as the logged-in holder and the registered
# relying party, so the steps behind the session (`/api/v1/session`, the OTP and phone
# enrolment of /api/v1/abroad) and the client-authenticated OpenID Provider endpoints (token,
# introspection, revocation: tests/api/client_auth.py signs a fresh assertion for each
# request) are fuzzed past "log in first" and `invalid_client` (store_invariants.py
# --logged-in checks they were). The second run
# leaves out the OpenID Provider's logout, which would end the session it fuzzes with (the
# first run fuzzes it).
schemathesis() {
    local name="$1"
    shift
    (cd "$WORK" && "$SCHEMATHESIS_VENV/bin/st" run "https://127.0.0.1:$PORT/openapi.json" \
        --tls-verify false \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
        --phases examples,coverage,fuzzing \
        --max-examples "$EXAMPLES" \
        --workers 4 \
        --request-timeout 30 \
        --seed "${CIE_SCHEMATHESIS_SEED:-14}" \
        --suppress-health-check too_slow,filter_too_much \
        --report junit --report-dir "$WORK/report-$name" \
        --generation-database none \
        --no-color "$@")
}
set +e
echo "== schemathesis, no credentials"
schemathesis anonymous
ST_RC=$?
if [ "$ST_RC" -eq 0 ]; then
    echo "== schemathesis, logged in with the PIN (cc_session cookie and bearer)"
    PYTHONPATH="$ROOT/tests/api" SCHEMATHESIS_HOOKS=client_auth \
        CIE_ST_CLIENT_ID="$CLIENT_ID" CIE_ST_CLIENT_KEY="$WORK/client.pem" \
        CIE_ST_ORIGIN="https://127.0.0.1:$PORT" \
        schemathesis session -H "Cookie: cc_session=$TOKEN" -H "Authorization: Bearer $TOKEN" \
        --exclude-path /oidc/logout
    ST_RC=$?
fi
set -e
stop_server
FINISHED="$(date +%s)"
if [ "$ST_RC" -ne 0 ]; then
    echo "schemathesis found failures (exit $ST_RC); server log: $WORK/server.log" >&2
    exit 1
fi
python3 tests/api/store_invariants.py "$DB" "$STARTED" "$FINISHED" --logged-in RSSMRA80A01H501U
