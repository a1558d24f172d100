//! Times the core's QR scanner on raw luma frames, in-process (no binding copy): the Rust
//! half of `bench/qr/bench_qr.py`, which writes the frames and reads the results.
//!
//!     qr_bench DIR RUNS_MAIN RUNS_SWEEP
//!
//! DIR holds `manifest.txt` (one `name width height` line per frame) and `name.gray`
//! (width × height bytes). Prints one tab-separated line per frame: name, median
//! milliseconds over the timed calls (after one warm-up call), and the decoded text or `-`.

use std::time::Instant;

use cie_core::qr::{LumaFrame, scan_luma};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, runs_main, runs_sweep] = args.as_slice() else {
        return Err("usage: qr_bench DIR RUNS_MAIN RUNS_SWEEP".into());
    };
    let (runs_main, runs_sweep): (usize, usize) = (runs_main.parse()?, runs_sweep.parse()?);
    for line in std::fs::read_to_string(format!("{dir}/manifest.txt"))?.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(w), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (width, height): (u32, u32) = (w.parse()?, h.parse()?);
        let bytes = std::fs::read(format!("{dir}/{name}.gray"))?;
        let frame = LumaFrame {
            width,
            height,
            row_stride: width,
            bytes: &bytes,
        };
        let text = scan_luma(&frame)?;
        let runs = if name.starts_with("sweep_") || name.starts_with("ms_") {
            runs_sweep
        } else {
            runs_main
        };
        let mut times: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let t0 = Instant::now();
                std::hint::black_box(scan_luma(std::hint::black_box(&frame)).ok());
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let median = if n % 2 == 1 {
            times[n / 2]
        } else {
            (times[n / 2 - 1] + times[n / 2]) / 2.0
        };
        let shown = text.as_deref().unwrap_or("-").replace(['\t', '\n'], " ");
        println!("{name}\t{median:.4}\t{shown}");
    }
    Ok(())
}
