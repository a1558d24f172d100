#!/usr/bin/env bash
# Run every test: formatting, lints, unit/integration/doc tests, a quick pass of every fuzz
# target, the bindings tests (when present) and the PC/SC end-to-end test through real
# pcscd + vpcd.
# Installs missing system packages first (scripts/deps.sh; root or passwordless sudo) and
# starts a local PostgreSQL for the store tests (scripts/postgres.sh), unless
# CIE_TEST_POSTGRES_URL already names one.
#   CIE_SKIP_PCSC=1   skip the PC/SC and PKCS#11 end-to-end tests (root, no running pcscd)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

T0=$SECONDS
step() {
    local free
    free="$(df -h --output=avail "${CARGO_TARGET_DIR:-$ROOT/target}" 2>/dev/null | tail -1 || true)"
    free="${free:-$(df -h --output=avail "$ROOT" | tail -1)}"
    printf '\n==== [%s +%ss, disk free:%s] %s ====\n' "$(date +%H:%M:%S)" "$((SECONDS - T0))" "$free" "$*"
}

step "dependencies (scripts/deps.sh)"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_all_deps

step "PostgreSQL on loopback (scripts/postgres.sh) for the store tests"
if [ -n "${CIE_TEST_POSTGRES_URL:-}" ]; then
    echo "using CIE_TEST_POSTGRES_URL from the environment"
elif [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
    eval "$(bash scripts/postgres.sh)"
    export CIE_TEST_POSTGRES_URL
else
    echo "no root to start PostgreSQL: set CIE_TEST_POSTGRES_URL to a database the tests may use" >&2
    [ "${CI:-}" = true ] && exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
# The mobile library's features (android/core/build.gradle.kts, ios/build-xcframework.sh):
# without the core's own HTTPS client, the requests go through the shells' HttpsTransport.
step "cargo clippy (cie-core as the apps build it: --no-default-features --features net)"
cargo clippy -p cie-core --no-default-features --features net --all-targets -- -D warnings

step "cargo deny: licences, banned and duplicate crates, sources (scripts/deny.sh, offline)"
bash scripts/deny.sh

step "threat model: every mitigation's test pointer names a real test (scripts/check-threat-model.sh)"
bash scripts/check-threat-model.sh

# The workspace tests include the log leak test (cli/tests/log_leak.rs: a whole demo at
# RUST_LOG=trace, its log searched for every secret of the run; docs/operations.md), run
# there rather than as a step of its own: a `-p` build would unify features differently
# and rebuild half the tree.
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace (with the log leak test)"
    # Every failure in one run, not only the first (a red CI run costs half an hour).
    cargo nextest run --workspace --no-fail-fast
    step "cargo test --doc --workspace"
    cargo test --doc --workspace
else
    step "cargo test --workspace (unit, integration and doc tests, the log leak test)"
    cargo test --workspace
fi

step "fuzz targets, quick pass (scripts/fuzz.sh --quick: stable Rust, one dev build, every target 10 s)"
bash scripts/fuzz.sh --quick
# A one-shot CI build (~2 GB): give its disk back to the steps after.
if [ "${CI:-}" = true ]; then rm -rf fuzz/target; fi

step "desktop QR load, quick mode (scripts/load-quick.sh: zero lost or duplicated logins)"
bash scripts/load-quick.sh

step "bindings tests (scripts/bindings-test.sh: Python and Kotlin run, Swift generated)"
bash scripts/bindings-test.sh

step "browser test (scripts/browser-test.sh: Chromium + desktop page + core through Python; the pages' security headers)"
bash scripts/browser-test.sh

step "OpenID Provider with a generic client (scripts/oidc-test.sh: real server + authlib)"
bash scripts/oidc-test.sh

step "API contract (tests/api/schemathesis.sh: schemathesis against a live server's /openapi.json, then the store's invariants)"
bash tests/api/schemathesis.sh

step "OpenID Federation with the official software (scripts/oidc-federation-test.sh: spid-cie-oidc TA + RP)"
bash scripts/oidc-federation-test.sh

step "mobile targets type-check (scripts/cross-check.sh: aarch64 Android and iOS)"
bash scripts/cross-check.sh

# The tests that start their own pcscd (root; one at a time: they share pcscd and vpcd).
#   $1 what, $2 script
run_pcscd_test() {
    if [ "$(id -u)" -eq 0 ]; then
        step "$1 ($2)"
        bash "$2"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        step "$1 ($2, via sudo)"
        cargo build -q -p cie-companion-cli -p cie-companion-pkcs11 -p companion-server
        local target="${CARGO_TARGET_DIR:-$ROOT/target}"
        sudo -n env CIE_COMPANION_BIN="$target/debug/cie-companion" \
            COMPANION_SERVER_BIN="$target/debug/companion-server" \
            CIE_PKCS11_MODULE="$target/debug/libcie_companion_pkcs11.so" bash "$2"
    else
        echo "The PC/SC end-to-end tests need root (they start pcscd). Run as root, configure" >&2
        echo "passwordless sudo, or set CIE_SKIP_PCSC=1 to skip them knowingly." >&2
        exit 1
    fi
}

if [ "${CIE_SKIP_PCSC:-}" = 1 ]; then
    step "PC/SC end-to-end tests SKIPPED (CIE_SKIP_PCSC=1)"
else
    run_pcscd_test "PC/SC end-to-end test: pcscd + vpcd + virtual CIE" tests/pcsc/run.sh
    run_pcscd_test "PKCS#11 module: pkcs11-tool, NSS and OpenSSL through pcscd + virtual CIE" \
        tests/pkcs11/run.sh
    run_pcscd_test "cie-companion doctor and pkcs11 install with pcscd, the virtual CIE and CNS, companion-server" \
        tests/pkcs11/doctor.sh
    run_pcscd_test "Chromium logs in with the virtual CIE (TLS 1.2) and CNS (TLS 1.3) through the module" \
        tests/pkcs11/chromium.sh
    run_pcscd_test "PKCS#11 module on a shared card: two processes signing at once, pcscd restarted" \
        tests/pkcs11/shared.sh
fi

step "all tests passed in $((SECONDS - T0))s"
