#!/usr/bin/env python3
"""QR decoding benchmark: the core's frame scanner beside zxing-cpp, same frames, same run.

zxing-cpp runs in this Python process through its PyPI wheel (`zxingcpp.read_barcodes`, QR
only, its defaults; numpy frames pass without a copy). Ours is timed twice: in-process in
Rust (`core/examples/qr_bench.rs`, a release build, `scan_luma` on a frame in memory: the
decode time the phone pays, and the figure compared with zxing-cpp), and through the core's
Python bindings (`scan_qr_frame(width, height, row_stride, luma)`), which adds UniFFI's
copy of the 0.9 MB plane into each call (~3 ms in Python) and must decode the same frames.
One thread each.

Frames: a directory written by the shared generator (gen_frames.py: the main set and the
blur x noise x angle sweep) and, when given, a second one with its module-size sweep; plus
frames with no code made here (seeded) for the give-up time. A decode counts only when the
text equals the expected payload; any other text is a *wrong* decode, reported apart.

    python3 bench_qr.py BINDINGS_DIR RUST_BENCH FRAMES_DIR [MODSIZE_DIR] [--runs N]

Prints a Markdown table (the figures BENCHMARKS.md keeps).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

cv2.setNumThreads(1)


def load_set(directory):
    meta = json.load(open(os.path.join(directory, "frames.json")))
    frames = []
    for name in sorted(meta):
        img = cv2.imread(os.path.join(directory, name + ".png"), cv2.IMREAD_GRAYSCALE)
        frames.append((name, np.ascontiguousarray(img), meta[name]["text"]))
    return frames


def no_code_frames(count=12, w=1280, h=720):
    """Frames a camera sees between codes: flat grey, sensor noise, a cluttered desk with
    edges and text-like stripes. Seeded, so every run measures the same pixels."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            img = np.full((h, w), 100 + 10 * i, np.float32) + rng.normal(0, 2, (h, w))
        elif kind == 1:
            img = rng.normal(128, 40, (h, w))
        else:
            img = cv2.resize(rng.normal(120, 30, (h // 32, w // 32)), (w, h), interpolation=cv2.INTER_CUBIC)
            for _ in range(40):
                x, y = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 30))
                cv2.rectangle(img, (x, y), (x + int(rng.integers(8, 120)), y + int(rng.integers(4, 30))),
                              float(rng.integers(0, 255)), int(rng.choice([-1, 1, 2])))
            img = cv2.GaussianBlur(img, (0, 0), 1.0)
        out.append((f"nocode_{i}", np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8)), None))
    return out


def texture_frames(w=1280, h=720):
    """A patterned surface filling the frame: the 127×127 tile of the `qr_frame` fuzz
    target's slowest input (core/src/qr/testdata/periodic_texture.fuzz, read as the target
    reads it: 6 header bytes, rows 142 bytes apart, the pixel bytes repeated) at 1, 2 and 3
    camera pixels a tile pixel. Its finder-like patterns make QR detectors propose thousands
    of finder triples (core/src/qr/engine.rs MAX_TRIPLES)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "core", "src",
                        "qr", "testdata", "periodic_texture.fuzz")
    pixels = np.frombuffer(open(path, "rb").read()[6:], np.uint8)
    side, stride = 127, 142
    idx = (np.arange(side)[:, None] * stride + np.arange(side)[None, :]) % len(pixels)
    tile = pixels[idx]
    out = []
    for scale in (1, 2, 3):
        ys = (np.arange(h) // scale) % side
        xs = (np.arange(w) // scale) % side
        out.append((f"texture_x{scale}", np.ascontiguousarray(tile[ys[:, None], xs[None, :]]), None))
    return out


def group(name):
    if name.startswith("texture"):
        return "patterned surface (give up)"
    if name.startswith("nocode"):
        return "no code (give up)"
    if name.startswith("ms_"):
        return "module-size sweep"
    if name.startswith("sweep_"):
        return "sweep, " + name.split("_")[1] + " payload"
    return name.split("_")[-1] + " frames"


def timed(fn, runs):
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        ts.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bindings")
    ap.add_argument("rust_bench")
    ap.add_argument("frames")
    ap.add_argument("modsize", nargs="?")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    sys.path.insert(0, args.bindings)
    import cie_core  # noqa: E402
    import zxingcpp  # noqa: E402

    def ours(img):
        h, w = img.shape
        data = img.tobytes()
        return lambda: cie_core.scan_qr_frame(w, h, w, data)

    def zxing(img):
        return lambda: [b.text for b in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]

    frames = load_set(args.frames)
    if args.modsize:
        frames += load_set(args.modsize)
    frames += no_code_frames()
    frames += texture_frames()
    sweep_runs = max(1, args.runs // 3)

    # Ours in Rust, in-process: frames as raw planes in a scratch directory.
    rust = {}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "manifest.txt"), "w") as manifest:
            for name, img, _ in frames:
                img.tofile(os.path.join(tmp, name + ".gray"))
                manifest.write(f"{name} {img.shape[1]} {img.shape[0]}\n")
        out = subprocess.run([args.rust_bench, tmp, str(args.runs), str(sweep_runs)],
                             check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, ms, text = line.split("\t", 2)
        rust[name] = (float(ms), None if text == "-" else text)

    stats = {}
    for name, img, expected in frames:
        g = stats.setdefault(group(name), {"n": 0, "ours": [], "zxing": [], "binding": []})
        g["n"] += 1
        # Sweeps are many frames: fewer timed runs each, the same for both sides.
        runs = sweep_runs if name.startswith(("sweep_", "ms_")) else args.runs
        ms, text = rust[name]
        g["ours"].append((expected is not None and text == expected, text is not None and text != expected, ms))
        for side, make in (("binding", ours), ("zxing", zxing)):
            call = make(img)
            got = call()
            texts = [got] if isinstance(got, str) else (got or [])
            ok = expected is not None and expected in texts
            wrong = any(t != expected for t in texts)
            g[side].append((ok, wrong, timed(call, runs)))

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    print("| frames | n | ours decoded | zxing-cpp decoded | ours median ms | zxing-cpp median ms | time ratio ours/zxing | wrong texts ours / zxing | ours via Python binding: decoded, median ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = ["screen frames", "mild frames", "hard frames", "sweep, url payload", "sweep, jws payload",
             "module-size sweep", "no code (give up)", "patterned surface (give up)"]
    for key in sorted(stats, key=lambda k: order.index(k) if k in order else len(order)):
        g = stats[key]
        o, z, b = g["ours"], g["zxing"], g["binding"]
        mo, mz, mb = med([t for _, _, t in o]), med([t for _, _, t in z]), med([t for _, _, t in b])
        decoded = (lambda r: "—") if key.endswith("(give up)") else (lambda r: f"{sum(ok for ok, _, _ in r)}/{g['n']}")
        print(f"| {key} | {g['n']} | {decoded(o)} | {decoded(z)} | {mo:.2f} | {mz:.2f} | "
              f"{mo / mz:.2f}× | {sum(w for _, w, _ in o)} / {sum(w for _, w, _ in z)} | "
              f"{decoded(b)}, {mb:.2f} |")
    print()
    print(f"Median over the frames of each frame's median of {args.runs} timed calls "
          f"({max(1, args.runs // 3)} for sweep frames), one thread, decode only (frames loaded "
          f"beforehand); zxing-cpp {getattr(zxingcpp, '__version__', '3.1.1')} with its defaults. A time "
          "ratio above 1× means ours is slower. Wrong texts: decodes whose text differs from "
          "the encoded one (must stay 0). Ours is timed in Rust on the frame in memory; the last "
          "column is the same scanner through its Python binding, UniFFI's copy of the plane "
          "into the call included.")


if __name__ == "__main__":
    main()
