#!/usr/bin/env bash
# QR decoding benchmark (issue 7): the core's scanner beside zxing-cpp on the shared
# generator's camera-like frames, in one run (bench/qr/bench_qr.py). Prints a Markdown
# section; `cargo xtask report` includes it in BENCHMARKS.md (section 5).
#
#   bash scripts/qr-bench.sh [--runs N]
#
# Needs the frame generator of the shared research folder (QRBENCH_DIR, default
# ../shared/qrbench beside the repository); without it the section says so and exits 0.
# Installs its Python packages (pinned) in a cached virtualenv. Honours CARGO_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GEN_DIR="${QRBENCH_DIR:-$ROOT/../shared/qrbench}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cie-companion"

echo "## 5. QR decoding: the core's scanner beside zxing-cpp"
echo
if [ ! -f "$GEN_DIR/gen_frames.py" ]; then
    echo "Skipped: the frame generator ($GEN_DIR/gen_frames.py) is not on this machine."
    exit 0
fi

VENV="$CACHE/qrbench-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import zxingcpp, cv2, numpy, segno' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        zxing-cpp==3.1.1 numpy==2.4.6 opencv-python-headless==5.0.0.93 segno==1.6.6 </dev/null >&2
fi

# Frames, generated once (seeded: the same pixels every time).
FRAMES="$CACHE/qrframes/main"
MODSIZE="$CACHE/qrframes/modsize"
[ -f "$FRAMES/frames.json" ] || "$VENV/bin/python" "$GEN_DIR/gen_frames.py" "$FRAMES" >&2
[ -f "$MODSIZE/frames.json" ] || "$VENV/bin/python" "$GEN_DIR/gen_frames.py" "$MODSIZE" modsize >&2

# Our scanner as the phone ships it: a release build, timed in-process (the example) and
# through its Python bindings.
cargo build -q --release -p cie-core --lib --example qr_bench >&2
cargo build -q -p uniffi-bindgen >&2
BINDINGS="$ROOT/build/qrbench"
rm -rf "$BINDINGS" && mkdir -p "$BINDINGS"
"$TARGET/debug/uniffi-bindgen" generate "$TARGET/release/libcie_core.so" --language python \
    --out-dir "$BINDINGS" >/dev/null 2>&1
cp "$TARGET/release/libcie_core.so" "$BINDINGS/"

echo "Frames: \`gen_frames.py\` of the shared QR bench (1280×720 luma: screen, mild and hard"
echo "camera frames of three payloads; the blur × noise × angle sweep on two payloads; the"
echo "module-size sweep), plus 12 seeded frames without a code and 3 of a patterned surface (the"
echo "\`qr_frame\` fuzz target's slowest input tiled at 1, 2 and 3 px a pixel). Command: \`bash scripts/qr-bench.sh\`."
echo
"$VENV/bin/python" bench/qr/bench_qr.py "$BINDINGS" "$TARGET/release/examples/qr_bench" \
    "$FRAMES" "$MODSIZE" "$@"
