#!/usr/bin/env bash
# Type-check the core for the mobile targets: catches target-specific code and any
# dependency that builds C (or needs desktop libraries), which would break the shells.
# Only `cargo check`: linking needs the Android NDK / Xcode, not available on Linux CI.
# The checks run with the apps' features, `--no-default-features --features net` (as
# android/core/build.gradle.kts and ios/build-xcframework.sh build the library): every flow,
# its requests through the platform's HTTPS. Only the desktop feature `rustls-https` brings
# rustls on *ring*, which compiles C and assembly; the apps' library must stay C-free, and
# that is what the ban below checks.
#   bash scripts/cross-check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=(aarch64-linux-android aarch64-apple-ios)

installed="$(rustup target list --installed)"
for t in "${TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

for t in "${TARGETS[@]}"; do
    echo "---- cargo check -p cie-core --no-default-features --features net --target $t"
    cargo check -p cie-core --lib --no-default-features --features net --target "$t"
done

# The core must stay free of build scripts that compile C or probe system libraries, on each
# mobile target (not `--target all`: rxing's chrono brings iana-time-zone, whose Haiku-only
# helper builds C; no phone ever builds it).
for t in "${TARGETS[@]}"; do
    deps="$(cargo tree -p cie-core --no-default-features --features net -e normal,build --prefix none --target "$t" \
        | awk '{print $1}')"
    for bad in cc cmake pkg-config bindgen pcsc pcsc-sys nfc1 nfc1-sys openssl-sys ring aws-lc-sys; do
        if grep -qx "$bad" <<<"$deps"; then
            echo "cross-check: cie-core depends on $bad for $t (C build or desktop library)" >&2
            exit 1
        fi
    done
done
echo "cross-check OK: ${TARGETS[*]}"
