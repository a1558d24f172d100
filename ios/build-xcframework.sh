#!/usr/bin/env bash
# Build CieCoreFFI.xcframework (device + simulator) and the Swift bindings for Package.swift.
# macOS with Xcode and the iOS Rust targets only:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/ios/build"
cd "$ROOT"
rm -rf "$OUT" && mkdir -p "$OUT"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    # The staticlib alone: in one rustc run with the rlib and cdylib that core/Cargo.toml also
    # names, the Android .so came out 29 % larger (docs/mobile.md, "Size of the core per ABI").
    # Without the core's own HTTPS client (`rustls-https`): the app sends requests through
    # URLSessionHttps.
    cargo rustc -p cie-core --profile dist --target "$t" --no-default-features --features net \
        --lib --crate-type staticlib
done
LIB=libcie_core.a
lipo -create target/aarch64-apple-ios-sim/dist/$LIB target/x86_64-apple-ios/dist/$LIB \
    -output "$OUT/libcie_core-sim.a"
# Bindings from the device build (library mode reads the UNIFFI_META symbols); the module
# name matches the header's `module cie_coreFFI` (core/uniffi.toml ffi_module_name).
BG=(cargo run -q -p uniffi-bindgen --bin uniffi-bindgen-swift --)
"${BG[@]}" target/aarch64-apple-ios/dist/$LIB "$OUT/Sources/cie_core" --swift-sources
"${BG[@]}" target/aarch64-apple-ios/dist/$LIB "$OUT/Headers" --headers
"${BG[@]}" target/aarch64-apple-ios/dist/$LIB "$OUT/Headers" --modulemap --xcframework \
    --module-name cie_coreFFI --modulemap-filename module.modulemap
xcodebuild -create-xcframework \
    -library target/aarch64-apple-ios/dist/$LIB -headers "$OUT/Headers" \
    -library "$OUT/libcie_core-sim.a" -headers "$OUT/Headers" \
    -output "$OUT/CieCoreFFI.xcframework"
echo "ios/build/CieCoreFFI.xcframework and ios/build/Sources/cie_core ready for Package.swift"
