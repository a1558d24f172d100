//! The frame pipeline: the finder pre-pass (give up fast), then decoding attempts on the
//! region the finders outline before the whole frame. The detector's sampling, the format
//! checks and the Reed-Solomon decoding are rxing's (a Rust port of ZXing and of
//! zxing-cpp's QR detector); what it is given is a zero-copy view of the camera plane.

use std::borrow::Cow;

use rxing::common::{DetectorRXingResult, HybridBinarizer};
use rxing::qrcode::cpp_port::{decoder, detector};
use rxing::{Binarizer, LuminanceSource};

use super::Plane;
use super::finder::{self, Finder};

/// A region of the plane as rxing's luminance source: rows are borrowed from the camera
/// buffer, padding and all; only a whole-matrix request packs a copy.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    plane: Plane<'a>,
    inverted: bool,
}

impl LuminanceSource for View<'_> {
    fn get_row(&self, y: usize) -> Option<Cow<'_, [u8]>> {
        if y >= self.plane.height {
            return None;
        }
        let row = self.plane.row(y);
        Some(if self.inverted {
            Cow::Owned(row.iter().map(|v| 255 - v).collect())
        } else {
            Cow::Borrowed(row)
        })
    }

    fn get_column(&self, x: usize) -> Cow<'_, [u8]> {
        if x >= self.plane.width {
            return Cow::Owned(Vec::new());
        }
        Cow::Owned(
            (0..self.plane.height)
                .map(|y| self.get_luma8_point(x, y))
                .collect(),
        )
    }

    fn get_matrix(&self) -> Cow<'_, [u8]> {
        if !self.inverted
            && self.plane.stride == self.plane.width
            && let Some(all) = self.plane.bytes.get(..self.plane.width * self.plane.height)
        {
            return Cow::Borrowed(all);
        }
        let mut out = Vec::with_capacity(self.plane.width * self.plane.height);
        for y in 0..self.plane.height {
            out.extend_from_slice(self.plane.row(y));
        }
        if self.inverted {
            out.iter_mut().for_each(|v| *v = 255 - *v);
        }
        Cow::Owned(out)
    }

    fn get_width(&self) -> usize {
        self.plane.width
    }

    fn get_height(&self) -> usize {
        self.plane.height
    }

    fn invert(&mut self) {
        self.inverted = !self.inverted;
    }

    fn get_luma8_point(&self, x: usize, y: usize) -> u8 {
        let v = self.plane.px(x, y);
        if self.inverted { 255 - v } else { v }
    }
}

/// Most finder-pattern triples one attempt samples and decodes, the likeliest first.
/// rxing's `QrReader`, like zxing-cpp, tries every triple its detector proposes, each a grid
/// sample and a Reed-Solomon decode; a periodic texture (fabric, a tiled floor, a halftone
/// print) proposes thousands: 0.7 s for one 1280×720 frame, the camera preview stalled
/// (found by the `qr_frame` fuzz target's slow inputs). On the shared bench's frames the
/// triple that decodes is among the first 5 and a failing attempt proposes at most 8.
pub(crate) const MAX_TRIPLES: usize = 32;

/// One decoding attempt on `plane` (already cropped): rxing's QR reader, step by step
/// (zxing-cpp's `QRCode::Reader::decode`, QR symbols only, the first one found), with at
/// most [`MAX_TRIPLES`] triples tried. A text only from a symbol whose format information
/// and Reed-Solomon blocks checked out.
/// The binarisation is ZXing's hybrid one (8×8 blocks thresholded by their 5×5 block
/// neighbourhood), zxing-cpp's default too; `try_harder` makes the detector scan every row.
pub(crate) fn attempt(plane: Plane<'_>, try_harder: bool) -> Option<String> {
    attempt_counted(plane, try_harder).0
}

/// [`attempt`] and the number of triples it sampled.
fn attempt_counted(plane: Plane<'_>, try_harder: bool) -> (Option<String>, usize) {
    let binarizer = HybridBinarizer::new(View {
        plane,
        inverted: false,
    });
    let Ok(bits) = binarizer.get_black_matrix() else {
        return (None, 0);
    };
    let mut patterns = detector::FindFinderPatterns(bits, try_harder, 0);
    let mut tried = 0;
    for triple in detector::GenerateFinderPatternSets(&mut patterns)
        .iter()
        .take(MAX_TRIPLES)
    {
        tried += 1;
        let Ok(sampled) = detector::SampleQR(bits, triple) else {
            continue;
        };
        if let Ok(decoded) = decoder::Decode(sampled.getBits())
            && decoded.isValid()
        {
            return (Some(decoded.text()), tried);
        }
    }
    (None, tried)
}

/// A rectangle of the frame: (left, top, width, height).
pub(crate) type Rect = (usize, usize, usize, usize);

/// Regions that may hold the whole symbol, best first, at most `limit`: the bounding boxes
/// of the likeliest finder triples, then a square around the candidates seen most.
pub(crate) fn regions(plane: &Plane<'_>, finders: &[Finder], limit: usize) -> Vec<Rect> {
    let mut out: Vec<Rect> = Vec::new();
    for (corners, module) in symbol_corners(finders) {
        if out.len() == limit {
            break;
        }
        if let Some(r) = triple_region(plane, &corners, module)
            && !out.iter().any(|o| overlap(o, &r) > 0.7)
        {
            out.push(r);
        }
    }
    // Squares around the best-seen candidates: right when a finder was missed.
    for n in [3, 2] {
        if let Some(r) = region(plane, &finders[..n.min(finders.len())])
            && !out.iter().any(|o| overlap(o, &r) > 0.7)
        {
            out.push(r);
        }
    }
    out
}

/// Intersection over union.
fn overlap(a: &Rect, b: &Rect) -> f32 {
    let x = (a.0 + a.2).min(b.0 + b.2).saturating_sub(a.0.max(b.0));
    let y = (a.1 + a.3).min(b.1 + b.3).saturating_sub(a.1.max(b.1));
    let inter = x * y;
    inter as f32 / (a.2 * a.3 + b.2 * b.3 - inter).max(1) as f32
}

/// The box around a symbol whose finder centres are `corners`, with a margin for the
/// finders' outer half, the quiet zone and perspective.
fn triple_region(plane: &Plane<'_>, corners: &Corners, module: f32) -> Option<Rect> {
    {
        // Three finders at the corners of a square: the symbol is their parallelogram.
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &(x, y) in corners {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let margin = 6.0 * module + 0.08 * (x1 - x0).max(y1 - y0);
        let left = (x0 - margin).max(0.0) as usize;
        let top = (y0 - margin).max(0.0) as usize;
        let right = ((x1 + margin) as usize).min(plane.width);
        let bottom = ((y1 + margin) as usize).min(plane.height);
        (right > left + 21 && bottom > top + 21).then(|| (left, top, right - left, bottom - top))
    }
}

/// The square around the first (up to three) candidates that must hold the symbol,
/// clipped to the frame.
fn region(plane: &Plane<'_>, finders: &[Finder]) -> Option<Rect> {
    if finders.len() < 2 {
        return None;
    }
    let n = finders.len().min(3);
    let fs = &finders[..n];
    let mut max_d = 0f32;
    for a in fs {
        for b in fs {
            max_d = max_d.max((a.x - b.x).hypot(a.y - b.y));
        }
    }
    let module = fs.iter().map(|f| f.module).sum::<f32>() / n as f32;
    let cx = fs.iter().map(|f| f.x).sum::<f32>() / n as f32;
    let cy = fs.iter().map(|f| f.y).sum::<f32>() / n as f32;
    let half = if n >= 3 { 0.8 * max_d } else { 1.15 * max_d } + 8.0 * module;
    let left = (cx - half).max(0.0) as usize;
    let top = (cy - half).max(0.0) as usize;
    let right = ((cx + half) as usize).min(plane.width);
    let bottom = ((cy + half) as usize).min(plane.height);
    (right > left + 21 && bottom > top + 21).then(|| (left, top, right - left, bottom - top))
}

/// Four finder-centre corners of a symbol (the fourth inferred).
type Corners = [(f32, f32); 4];

/// Among the candidates, the three that sit most like a symbol's finders (a near right
/// angle, near equal sides, similar module sizes, a side of 14 to 170 modules: versions 1
/// to 40): the symbol's four finder-centre corners and their mean module size.
fn symbol_corners(fs: &[Finder]) -> Vec<(Corners, f32)> {
    let mut all: Vec<(f32, Corners, f32)> = Vec::new();
    for i in 0..fs.len() {
        for j in i + 1..fs.len() {
            for k in j + 1..fs.len() {
                let (a, b, c) = (&fs[i], &fs[j], &fs[k]);
                let (lo, hi) = (
                    a.module.min(b.module).min(c.module),
                    a.module.max(b.module).max(c.module),
                );
                if hi > 1.6 * lo {
                    continue;
                }
                let module = (a.module + b.module + c.module) / 3.0;
                for (corner, p, q) in [(a, b, c), (b, a, c), (c, a, b)] {
                    let (ux, uy) = (p.x - corner.x, p.y - corner.y);
                    let (vx, vy) = (q.x - corner.x, q.y - corner.y);
                    let (lu, lv) = (ux.hypot(uy), vx.hypot(vy));
                    let side = (lu + lv) / 2.0 / module;
                    if !(12.0..=180.0).contains(&side) {
                        continue;
                    }
                    let cos = (ux * vx + uy * vy) / (lu * lv);
                    let skew = (lu / lv).ln().abs();
                    if cos.abs() >= 0.35 || skew >= 0.45 {
                        continue;
                    }
                    let score = cos.abs() + skew;
                    let corners = [
                        (corner.x, corner.y),
                        (p.x, p.y),
                        (q.x, q.y),
                        (p.x + q.x - corner.x, p.y + q.y - corner.y),
                    ];
                    all.push((score, corners, module));
                }
            }
        }
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all.into_iter()
        .map(|(_, corners, module)| (corners, module))
        .collect()
}

/// Module size (pixels) under which the regions are also tried at twice the size.
const SMALL_MODULE: f32 = 3.7;
/// Noise (grey levels, about σ) above which the exhaustive scan runs on the denoised
/// frame: on the raw one, noise makes the detector chase thousands of false finders.
const NOISY: f32 = 12.0;
/// Largest region side doubled (the detector's time grows fast with the area).
const MAX_DOUBLED: usize = 480;

/// The whole pipeline for one frame: give up when the pre-pass confirms no finder
/// pattern; else the regions the finders outline (again at twice the size when modules
/// are about 3 px), then the whole frame denoised, then the whole frame with the
/// detector's exhaustive row scan (denoised too when the frame is noisy).
pub(crate) fn scan(plane: Plane<'_>) -> Option<String> {
    // The centre first: where the user aims. Three finders there, and their region
    // decodes, without scanning the rest of the frame.
    let (cw, ch) = (plane.width / 2, plane.height / 2);
    let (cx, cy) = (plane.width / 4, plane.height / 4);
    let centre: Vec<Finder> = finder::find(&plane.crop(cx, cy, cw, ch), 8)
        .into_iter()
        .map(|f| Finder {
            x: f.x + cx as f32,
            y: f.y + cy as f32,
            ..f
        })
        .collect();
    if let Some((corners, module)) = symbol_corners(&centre).first()
        && let Some((x, y, w, h)) = triple_region(&plane, corners, *module)
        && let Some(text) = attempt(plane.crop(x, y, w, h), false)
    {
        return Some(text);
    }
    let finders = finder::find(&plane, 8);
    if finders.is_empty() {
        return None;
    }
    let rois = regions(&plane, &finders, 2);
    for &(x, y, w, h) in &rois {
        if let Some(text) = attempt(plane.crop(x, y, w, h), false) {
            return Some(text);
        }
    }
    // Modules of about 3 px: the regions again at twice the size.
    // (Only for finders crossed by two scanned rows or more: noise makes one-row ones.)
    let top = &finders[..finders.len().min(2)];
    let module = top.iter().map(|f| f.module).sum::<f32>() / (top.len() as f32);
    if module < SMALL_MODULE && top.iter().all(|f| f.hits >= 2) {
        for &(x, y, w, h) in rois.iter().filter(|r| r.2.max(r.3) <= MAX_DOUBLED) {
            let (big, bw, bh) = doubled(&plane.crop(x, y, w, h));
            if let Some(text) = attempt(Plane::new(&big, bw, bh, bw), false) {
                return Some(text);
            }
        }
    }
    let denoised = smoothed(&plane);
    let denoised_plane = Plane::new(&denoised, plane.width, plane.height, plane.width);
    if let Some(text) = attempt(denoised_plane, false) {
        return Some(text);
    }
    if finder::noise_level(&plane) > NOISY {
        return attempt(denoised_plane, true);
    }
    attempt(plane, true)
}

/// The plane filtered with a 3×3 binomial kernel (sensor noise down by about 2.7×), as a
/// packed buffer.
pub(crate) fn smoothed(plane: &Plane<'_>) -> Vec<u8> {
    let (w, h) = (plane.width, plane.height);
    let mut vert = vec![0u16; w * h];
    for y in 0..h {
        let (r0, r1, r2) = (
            plane.row(y.saturating_sub(1)),
            plane.row(y),
            plane.row((y + 1).min(h - 1)),
        );
        let out = &mut vert[y * w..(y + 1) * w];
        for x in 0..w {
            out[x] = u16::from(r0[x]) + 2 * u16::from(r1[x]) + u16::from(r2[x]);
        }
    }
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let v = &vert[y * w..(y + 1) * w];
        let o = &mut out[y * w..(y + 1) * w];
        for x in 0..w {
            let a = v[x.saturating_sub(1)];
            let c = v[(x + 1).min(w - 1)];
            o[x] = ((a + 2 * v[x] + c + 8) / 16) as u8;
        }
    }
    out
}

/// The plane at twice the size (bilinear), for modules of three pixels or less: the
/// binariser's 8×8 blocks and the detector's run checks need more than that.
pub(crate) fn doubled(plane: &Plane<'_>) -> (Vec<u8>, usize, usize) {
    let (w, h) = (plane.width * 2, plane.height * 2);
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        // Source row position (y + 0.5) / 2 − 0.5, between rows y0 and y0 + 1.
        let sy = (y as isize - 1).max(0) as usize / 2;
        let sy1 = (sy + 1).min(plane.height - 1);
        let fy = if y == 0 {
            0
        } else if y % 2 == 1 {
            1
        } else {
            3
        };
        let (r0, r1) = (plane.row(sy), plane.row(sy1));
        let o = &mut out[y * w..(y + 1) * w];
        for (x, px) in o.iter_mut().enumerate() {
            let sx = (x as isize - 1).max(0) as usize / 2;
            let sx1 = (sx + 1).min(plane.width - 1);
            let fx: u32 = if x == 0 {
                0
            } else if x % 2 == 1 {
                1
            } else {
                3
            };
            let top = u32::from(r0[sx]) * (4 - fx) + u32::from(r0[sx1]) * fx;
            let bottom = u32::from(r1[sx]) * (4 - fx) + u32::from(r1[sx1]) * fx;
            *px = ((top * (4 - fy) + bottom * fy + 8) / 16) as u8;
        }
    }
    (out, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A periodic texture: the 127×127 frame of a slow `qr_frame` fuzz input
    /// (`testdata/periodic_texture.fuzz`, read the way the target reads it: 6 header bytes,
    /// rows 142 bytes apart, the pixel bytes repeated), tiled at twice its size over a
    /// 1280×720 frame, as a patterned surface fills a camera frame.
    fn texture() -> Vec<u8> {
        let input = include_bytes!("testdata/periodic_texture.fuzz");
        let (side, stride) = (127, 142);
        let pixels = &input[6..];
        let tile = |x: usize, y: usize| pixels[(y * stride + x) % pixels.len()];
        (0..720)
            .flat_map(|y| (0..1280).map(move |x| tile((x / 2) % side, (y / 2) % side)))
            .collect()
    }

    #[test]
    fn a_periodic_texture_stops_each_attempt_after_max_triples() {
        let px = texture();
        let plane = Plane::new(&px, 1280, 720, 1280);
        // What rxing's detector proposes here: thousands of triples (each one a grid sample
        // and a Reed-Solomon decode when all are tried).
        let binarizer = HybridBinarizer::new(View {
            plane,
            inverted: false,
        });
        let bits = binarizer.get_black_matrix().unwrap();
        let mut patterns = detector::FindFinderPatterns(bits, true, 0);
        let proposed = detector::GenerateFinderPatternSets(&mut patterns).len();
        assert!(proposed > 1000, "{proposed} triples proposed");
        for try_harder in [false, true] {
            assert_eq!(attempt_counted(plane, try_harder), (None, MAX_TRIPLES));
        }
        assert_eq!(scan(plane), None);
    }
}
