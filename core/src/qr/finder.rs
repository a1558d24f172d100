//! The cheap pre-pass: is there a QR finder pattern (the 1:1:3:1:1 bull's-eye) in the
//! frame at all, and where? A few rows are scanned with a local threshold, every hit is
//! cross-checked along its column, and the frame is given up at once when nothing is
//! confirmed, before any binarisation of the whole plane.

use super::Plane;

/// A confirmed finder-pattern centre, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finder {
    pub x: f32,
    pub y: f32,
    /// Estimated module size (pixels), from the horizontal and vertical crossings.
    pub module: f32,
    /// Scanned rows that crossed it.
    pub hits: u32,
}

/// Rows between scanned rows: a finder's 3-module core is at least 9 px tall at 3 px per
/// module, so a step of 4 crosses it at least twice.
const ROW_STEP: usize = 4;
/// The running-mean window that sets each row's threshold (a power of two: a shift).
const WINDOW_SHIFT: u32 = 6;
const WINDOW: usize = 1 << WINDOW_SHIFT;
/// Hysteresis around the mean, in grey levels.
const HYSTERESIS: i32 = 8;
/// Scale of the 3×3 (1-2-1 ⊗ 1-2-1) smoothed values.
const SCALE: i32 = 16;
/// Smallest pattern width we look for (3 px would be under 0.5 px per module).
const MIN_PATTERN: u32 = 10;
/// Smallest module (pixels) a confirmed pattern may have: below it, sensor noise forms
/// 1:1:3:1:1 runs by chance, and no decoder reads such a code anyway.
const MIN_MODULE: f32 = 2.5;
/// Whether five runs (black, white, black, white, black) look like 1:1:3:1:1.
fn is_finder_runs(r: &[u32; 5]) -> bool {
    let total: u32 = r.iter().sum();
    if total < MIN_PATTERN {
        return false;
    }
    let m = total as f32 / 7.0;
    let one = |v: u32| (v as f32) > m * 0.35 && (v as f32) < m * 2.0;
    let three = (r[2] as f32) > m * 2.0 && (r[2] as f32) < m * 4.5;
    one(r[0]) && one(r[1]) && one(r[3]) && one(r[4]) && three
}

/// Runs along the column `x` up and down from (x, y), which must be dark: the vertical
/// 1:1:3:1:1 check. Returns the centre row and the pattern's height.
fn cross_check_vertical(
    plane: &Plane<'_>,
    x: usize,
    y: usize,
    threshold: i32,
    max_run: u32,
) -> Option<(f32, u32)> {
    let (x0, x2) = (x.saturating_sub(1), (x + 1).min(plane.width - 1));
    let dark = |yy: usize| {
        let v = i32::from(plane.px(x0, yy))
            + 2 * i32::from(plane.px(x, yy))
            + i32::from(plane.px(x2, yy));
        v * (SCALE / 4) < threshold
    };
    // Upwards: centre dark part, white ring, outer dark ring.
    let mut counts = [0u32; 5];
    let mut yy = y as isize;
    for (idx, want_dark) in [(2usize, true), (1, false), (0, true)] {
        while yy >= 0 && dark(yy as usize) == want_dark {
            counts[idx] += 1;
            if counts[idx] > max_run {
                return None;
            }
            yy -= 1;
        }
        if counts[idx] == 0 {
            return None;
        }
    }
    if yy < 0 {
        // The outer ring ran into the frame's edge: not a whole pattern.
        return None;
    }
    let top = yy + 1;
    let mut yy = y + 1;
    for (idx, want_dark) in [(2usize, true), (3, false), (4, true)] {
        let start = counts[idx];
        while yy < plane.height && dark(yy) == want_dark {
            counts[idx] += 1;
            if counts[idx] > max_run {
                return None;
            }
            yy += 1;
        }
        if idx != 2 && counts[idx] == start {
            return None;
        }
    }
    if yy >= plane.height {
        return None;
    }
    if !is_finder_runs(&counts) {
        return None;
    }
    let total: u32 = counts.iter().sum();
    let centre_start = top as f32 + (counts[0] + counts[1]) as f32;
    Some((centre_start + counts[2] as f32 / 2.0, total))
}

/// At this many distinct candidates the frame is sensor noise or texture: give up.
const MAX_CANDIDATES: usize = 56;

// Index loops: several row buffers are read at the same x.
#[allow(clippy::needless_range_loop)]
/// Confirmed finder centres in `plane` (merged: one per pattern), at most `limit`.
pub(crate) fn find(plane: &Plane<'_>, limit: usize) -> Vec<Finder> {
    let (w, h) = (plane.width, plane.height);
    let mut found: Vec<Finder> = Vec::new();
    if w < 21 || h < 21 {
        return Vec::new();
    }
    let mut vert = vec![0i32; w];
    let mut smooth = vec![0i32; w];
    let mut prefix = vec![0i32; w + 1];
    let max_run = (w.max(h) / 7) as u32;
    let window = WINDOW.min(w);
    let hyst = HYSTERESIS * SCALE;
    let mut y = 1 + ROW_STEP / 2;
    while y + 1 < h && found.len() < MAX_CANDIDATES {
        let (r0, r1, r2) = (plane.row(y - 1), plane.row(y), plane.row(y + 1));
        for x in 0..w {
            vert[x] = i32::from(r0[x]) + 2 * i32::from(r1[x]) + i32::from(r2[x]);
        }
        smooth[0] = 4 * vert[0];
        smooth[w - 1] = 4 * vert[w - 1];
        for x in 1..w - 1 {
            smooth[x] = vert[x - 1] + 2 * vert[x] + vert[x + 1];
        }
        for x in 0..w {
            prefix[x + 1] = prefix[x] + smooth[x];
        }
        let mean_at = |x: usize| {
            let lo = x.saturating_sub(window / 2).min(w - window);
            let sum = prefix[lo + window] - prefix[lo];
            if window == WINDOW {
                sum >> WINDOW_SHIFT
            } else {
                sum / window as i32
            }
        };
        // Runs with hysteresis around the running mean.
        let mut runs = [0u32; 5];
        let mut run_ends = [0usize; 5];
        let mut dark = false;
        let mut len = 0u32;
        let mut filled = 0usize;
        for x in 0..w {
            let mean = mean_at(x);
            let v = smooth[x];
            let now_dark = if dark {
                v < mean + hyst
            } else {
                v < mean - hyst
            };
            if now_dark == dark {
                len += 1;
                continue;
            }
            // A run ended at x - 1.
            runs.rotate_left(1);
            run_ends.rotate_left(1);
            runs[4] = len;
            run_ends[4] = x;
            filled = (filled + 1).min(5);
            dark = now_dark;
            len = 1;
            // The pattern ends with a dark run, which just closed (we are now light).
            if !now_dark && filled == 5 && is_finder_runs(&runs) {
                let cx = run_ends[2] - runs[2] as usize / 2 - 1;
                let threshold = mean_at(cx);
                let total: u32 = runs.iter().sum();
                if let Some((cy, vtotal)) = cross_check_vertical(plane, cx, y, threshold, max_run) {
                    let ratio = vtotal as f32 / total as f32;
                    let (mh, mv) = (total as f32 / 7.0, vtotal as f32 / 7.0);
                    if (0.4..=2.5).contains(&ratio)
                        && (MIN_MODULE..=w.min(h) as f32 / 21.0).contains(&((mh + mv) / 2.0))
                    {
                        let module = (total + vtotal) as f32 / 14.0;
                        let f = Finder {
                            x: cx as f32,
                            y: cy,
                            module,
                            hits: 1,
                        };
                        merge(&mut found, f);
                    }
                }
            }
        }
        y += ROW_STEP;
    }
    if found.len() >= MAX_CANDIDATES {
        // Noise or texture, not a code (frames with one show at most ~30).
        return Vec::new();
    }
    // Patterns seen on more rows first: the real ones.
    found.sort_by_key(|f| std::cmp::Reverse(f.hits));
    found.truncate(limit);
    found
}

fn merge(found: &mut Vec<Finder>, f: Finder) {
    for g in found.iter_mut() {
        let d = (g.x - f.x).abs().max((g.y - f.y).abs());
        if d < 2.0 * g.module.max(f.module) {
            let k = g.hits as f32;
            g.x = (g.x * k + f.x) / (k + 1.0);
            g.y = (g.y * k + f.y) / (k + 1.0);
            g.module = (g.module * k + f.module) / (k + 1.0);
            g.hits += 1;
            return;
        }
    }
    found.push(f);
}

/// Sensor noise estimate (grey levels, about σ): the mean absolute second difference
/// across rows, on every 16th row. Edges add a little; a flat noisy area gives ≈ 1.95 σ.
pub(crate) fn noise_level(plane: &Plane<'_>) -> f32 {
    let (mut sum, mut n) = (0u64, 0u64);
    let mut y = 1;
    while y + 1 < plane.height {
        let (r0, r1, r2) = (plane.row(y - 1), plane.row(y), plane.row(y + 1));
        for ((a, b), c) in r0.iter().zip(r1).zip(r2) {
            sum += u64::from((2 * i32::from(*b) - i32::from(*a) - i32::from(*c)).unsigned_abs());
        }
        n += plane.width as u64;
        y += 16;
    }
    if n == 0 {
        0.0
    } else {
        sum as f32 / n as f32 / 1.95
    }
}
