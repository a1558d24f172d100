#!/usr/bin/env bash
# Bindings test: build the FFI test library (tests/, crate cie-tests: cie-core + card-sim in
# one cdylib, debug), generate Kotlin, Python and Swift bindings from it in library mode into
# build/bindings/, then run the Python and Kotlin/JVM binding tests against it and check the
# Swift output (no Swift compiler on Linux CI: generation only).
#
#   bash scripts/bindings-test.sh
#
# Idempotent and non-interactive. Installs what it needs when missing (root or passwordless
# sudo): Debian libjna-java, junit5, openjdk-17-jdk-headless, and the Kotlin compiler from
# the npm package kotlin-compiler into ${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/kotlin
# (via scripts/deps.sh when present). Honours CARGO_TARGET_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$ROOT/build/bindings"
KOTLIN_VERSION="${CIE_KOTLIN_VERSION:-2.4.20}"

T0=$SECONDS
step() { printf '\n---- [bindings +%ss] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { printf 'bindings-test: FAIL: %s\n' "$*" >&2; exit 1; }

# ---- dependencies ---------------------------------------------------------------------
step "dependencies"
if [ -f scripts/deps.sh ]; then
    # shellcheck source=scripts/deps.sh
    source scripts/deps.sh
fi
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif sudo -n true 2>/dev/null; then sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
    else fail "need root (or passwordless sudo) to run: $*"; fi
}
if ! declare -F ensure_apt >/dev/null; then
    ensure_apt() {
        local missing=() p
        for p in "$@"; do
            dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
        done
        [ "${#missing[@]}" -eq 0 ] && return 0
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -q </dev/null
        as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    }
fi
if ! declare -F ensure_kotlin >/dev/null; then
    ensure_kotlin() {
        local home="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion/kotlin/$KOTLIN_VERSION" tmp
        if [ ! -x "$home/bin/kotlinc" ]; then
            tmp="$(mktemp -d)"
            (cd "$tmp" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" </dev/null >/dev/null)
            mkdir -p "$tmp/x" "$(dirname "$home")"
            tar -xzf "$tmp"/kotlin-compiler-*.tgz -C "$tmp/x"
            chmod +x "$tmp/x/package/bin/"*
            rm -rf "$home" && mv "$tmp/x/package" "$home" && rm -rf "$tmp"
        fi
        export KOTLIN_HOME="$home"
    }
fi
ensure_apt libjna-java junit5 openjdk-17-jdk-headless
ensure_kotlin
[ -n "${KOTLIN_HOME:-}" ] && [ -x "$KOTLIN_HOME/bin/kotlinc" ] || fail "no kotlinc (KOTLIN_HOME=${KOTLIN_HOME:-})"
JDK17="/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)"
[ -d "$JDK17" ] && export JAVA_HOME="$JDK17"
JNA=/usr/share/java/jna.jar
JUNIT=/usr/share/java/junit-platform-console-standalone.jar
for f in "$JNA" "$JUNIT" "$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar"; do
    [ -f "$f" ] || fail "missing $f"
done

# ---- build ----------------------------------------------------------------------------
step "cargo build -p cie-tests -p uniffi-bindgen -p companion-server (debug)"
cargo build -p cie-tests -p uniffi-bindgen -p companion-server
LIB="$TARGET/debug/libcie_tests.so"
[ -f "$LIB" ] || fail "$LIB was not built"
BINDGEN="$TARGET/debug/uniffi-bindgen"
BINDGEN_SWIFT="$TARGET/debug/uniffi-bindgen-swift"

# ---- generate -------------------------------------------------------------------------
step "generate bindings into build/bindings/"
rm -rf "$OUT"
mkdir -p "$OUT"
gen() { "$BINDGEN" generate "$LIB" "$@"; }
# What the Android app ships (core/uniffi.toml: android = true) ...
gen --language kotlin --out-dir "$OUT/kotlin-android"
# ... and the JVM copy the tests compile (Android-only cleaner switched off).
gen --language kotlin --config tests/bindings/uniffi-jvm.toml --out-dir "$OUT/kotlin-jvm"
gen --language python --out-dir "$OUT/python"
gen --language swift --out-dir "$OUT/swift"
# XCFramework layout: Swift sources, C headers, and a framework modulemap named like the
# `ffi_module_name` the Swift sources import (core/uniffi.toml).
"$BINDGEN_SWIFT" "$LIB" "$OUT/swift-xcframework/Sources" --swift-sources
"$BINDGEN_SWIFT" "$LIB" "$OUT/swift-xcframework/Headers" --headers
"$BINDGEN_SWIFT" "$LIB" "$OUT/swift-xcframework/Headers" --modulemap --xcframework \
    --module-name cie_coreFFI --modulemap-filename module.modulemap

KT_CORE_ANDROID="$OUT/kotlin-android/it/ciecompanion/core/cie_core.kt"
KT_CORE="$OUT/kotlin-jvm/it/ciecompanion/core/cie_core.kt"
KT_SIM="$OUT/kotlin-jvm/uniffi/card_sim/card_sim.kt"
for f in "$KT_CORE_ANDROID" "$KT_CORE" "$KT_SIM" "$OUT/python/cie_core.py" "$OUT/python/card_sim.py"; do
    [ -s "$f" ] || fail "not generated: ${f#"$ROOT"/}"
done
grep -q 'android.system.SystemCleaner' "$KT_CORE_ANDROID" || fail "Android Kotlin lacks the Android cleaner"
if grep -q '^import android' "$KT_CORE" "$KT_SIM"; then fail "JVM Kotlin imports android.*"; fi

# ---- Python ---------------------------------------------------------------------------
step "Python binding test"
cp "$LIB" "$OUT/python/"
# The ValueError test makes UniFFI print "Unhandled exception in trait interface call" with a
# traceback on stderr: expected, the test asserts it arrives as CardError.Reader.
# RegistrationTest starts the real server binary (registration, then login and desktop QR).
export SERVER_BIN="$TARGET/debug/companion-server"
export CARD_CA="$ROOT/card-sim/testdata/test_ca_cert.der"
export CSCA="$ROOT/card-sim/testdata/test_csca_cert.der"
PYTHONDONTWRITEBYTECODE=1 BINDINGS_DIR="$OUT/python" python3 tests/bindings/test_bindings.py

# ---- Kotlin/JVM -----------------------------------------------------------------------
step "Kotlin/JVM binding test (kotlinc $("$KOTLIN_HOME/bin/kotlinc" -version 2>&1 | grep -o 'kotlinc-jvm [0-9.]*' || true))"
KLIB="$KOTLIN_HOME/lib"
CP="$JNA:$KLIB/kotlinx-coroutines-core-jvm.jar:$KLIB/kotlin-test.jar:$KLIB/kotlin-test-junit5.jar:$JUNIT"
"$KOTLIN_HOME/bin/kotlinc" -Werror -nowarn -cp "$CP" -d "$OUT/kotlin-test.jar" \
    "$KT_CORE" "$KT_SIM" tests/bindings/kotlin/*.kt
java -Djna.library.path="$(dirname "$LIB")" -jar "$JUNIT" \
    -cp "$OUT/kotlin-test.jar:$CP:$KLIB/kotlin-stdlib.jar" \
    --select-class CoreBindingsTest --select-class LoginBindingsTest --select-class OtpBindingsTest --select-class DocumentBindingsTest --select-class RegistrationBindingsTest --fail-if-no-tests --disable-banner --details=tree

# ---- Android shell (platform-independent Kotlin) ---------------------------------------
# The shell's IsoDepTransport and screen models compiled with kotlinc against the JVM
# bindings and test stubs of the few android.nfc classes they use (android/stubs: never
# shipped), then JUnit tests through the real core library: the virtual CIE behind the
# IsoDep stub, the real server binary for the login model. Gradle + the Android SDK build
# the real AAR/APK (android/README.md); this machine has neither.
step "Android shell: IsoDepTransport and models (kotlinc + JUnit, android.nfc stubs)"
# (The bindings and the Kotlin test helpers come from the jar compiled above.)
"$KOTLIN_HOME/bin/kotlinc" -Werror -nowarn -cp "$OUT/kotlin-test.jar:$CP" -d "$OUT/android-test.jar" \
    android/stubs/android/nfc/*.kt android/stubs/android/nfc/tech/*.kt \
    $(find android/core/src/main/kotlin android/core/src/test/kotlin -name '*.kt' | sort)
java -Djna.library.path="$(dirname "$LIB")" -jar "$JUNIT" \
    -cp "$OUT/android-test.jar:$OUT/kotlin-test.jar:$CP:$KLIB/kotlin-stdlib.jar" \
    --select-class IsoDepTransportTest --select-class CardLoginModelTest --select-class DesktopQrModelTest --select-class ApprovalsModelTest --select-class OtpModelTest --select-class CodeEnrolmentModelTest --select-class CardPinChangeTest --select-class PlatformHttpsTest \
    --fail-if-no-tests --disable-banner --details=tree
# Every string resource the app uses, in English (values) and Italian (values-it).
python3 - android/app/src <<'PY' || fail "Android strings: see above"
import pathlib, re, sys
src = pathlib.Path(sys.argv[1])
used = set(re.findall(r"R[.](?:string|plurals)[.](\w+)", "".join(p.read_text() for p in src.rglob("*.kt"))))
bad = 0
for d in ("values", "values-it"):
    defined = set(re.findall(r'name="(\w+)"', (src / "main/res" / d / "strings.xml").read_text()))
    for name in sorted(used - defined):
        print(f"{d}/strings.xml lacks {name}", file=sys.stderr)
        bad += 1
print(f"Android strings: {len(used)} used, in values and values-it")
sys.exit(1 if bad else 0)
PY
# The apps' library is built without `rustls-https` (docs/mobile.md): the API only that
# feature exports (the core's own HTTPS client, the mutual-TLS login) must not appear in the
# shells, which the bindings here (every feature) would not catch.
if grep -rnE 'CompanionClient\(|startMtlsLogin|mtlsLogin|MtlsLoginSession' \
    android/core/src/main android/app/src ios/Sources; then
    fail "the shells use API the apps' library does not have (--no-default-features --features net)"
fi
echo "Shells: only the apps' feature set used (no CompanionClient(origins, pins), no mutual-TLS login)"
# ---- Swift (generation only) ----------------------------------------------------------
step "Swift: generated files (not compiled: no Swift toolchain on Linux CI)"
for f in swift/cie_core.swift swift/cie_coreFFI.h swift/cie_coreFFI.modulemap swift/card_sim.swift \
    swift-xcframework/Sources/cie_core.swift swift-xcframework/Headers/cie_coreFFI.h \
    swift-xcframework/Headers/module.modulemap; do
    [ -s "$OUT/$f" ] || fail "Swift file not generated: build/bindings/$f"
done
grep -q 'public protocol CardTransport' "$OUT/swift/cie_core.swift" || fail "no protocol CardTransport"
grep -q 'func transmit(apdu: Data) async throws' "$OUT/swift/cie_core.swift" || fail "no async transmit(apdu: Data)"
# (unformatted output: `public` and `enum` may sit on separate lines)
tr '\n' ' ' <"$OUT/swift/cie_core.swift" | grep -Eq 'public +enum CardError: Swift.Error' || fail "no public enum CardError"
tr '\n' ' ' <"$OUT/swift/cie_core.swift" | grep -Eq 'public +enum TransportError: Swift.Error' || fail "no public enum TransportError"
grep -q 'func probe() async throws' "$OUT/swift/cie_core.swift" || fail "no async CardSession.probe()"
grep -q 'import cie_coreFFI' "$OUT/swift/cie_core.swift" || fail "Swift does not import cie_coreFFI"
grep -q 'framework module cie_coreFFI' "$OUT/swift-xcframework/Headers/module.modulemap" \
    || fail "XCFramework modulemap is not 'framework module cie_coreFFI'"
# The iOS shell's Swift (ios/Sources) against the generated API it uses.
python3 tests/bindings/check_swift_shell.py "$OUT/swift/cie_core.swift" ios/Sources \
    || fail "ios/Sources uses generated Swift API that does not exist (see above)"

step "bindings OK (Python, Kotlin/JVM run; Swift generated) in $((SECONDS - T0))s"
