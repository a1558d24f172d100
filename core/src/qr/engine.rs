//! The frame pipeline: the finder pre-pass (give up fast), then decoding attempts on the
//! region the finders outline before the whole frame. The detector's sampling, the format
//! checks and the Reed-Solomon decoding are rxing's (a Rust port of ZXing and of
//! zxing-cpp's QR detector); what it is given is a zero-copy view of the camera plane.

use std::borrow::Cow;
use std::collections::HashSet;

use rxing::common::HybridBinarizer;
use rxing::qrcode::cpp_port::QrReader;
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, LuminanceSource, Reader};

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

fn hints(try_harder: bool) -> DecodeHints {
    DecodeHints {
        PossibleFormats: Some(HashSet::from([BarcodeFormat::QR_CODE])),
        TryHarder: Some(try_harder),
        ..DecodeHints::default()
    }
}

/// One decoding attempt on `plane` (already cropped). rxing's QR reader only returns a
/// result whose format information and Reed-Solomon blocks checked out.
/// The binarisation is ZXing's hybrid one (8×8 blocks thresholded by their 5×5 block
/// neighbourhood), zxing-cpp's default too; `try_harder` makes the detector scan every row.
pub(crate) fn attempt(plane: Plane<'_>, try_harder: bool) -> Option<String> {
    let view = View {
        plane,
        inverted: false,
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(view));
    let result = QrReader.decode_with_hints(&mut bitmap, &hints(try_harder));
    result.ok().map(|r| r.getText().to_owned())
}

/// The square region around the finders that must hold the whole symbol, clipped to the
/// frame: (left, top, width, height).
pub(crate) fn region(
    plane: &Plane<'_>,
    finders: &[Finder],
) -> Option<(usize, usize, usize, usize)> {
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
    if let Some(corners) = symbol_corners(fs) {
        // Three finders at the corners of a square: the symbol is their parallelogram.
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in corners {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let margin = 6.0 * module + 0.08 * (x1 - x0).max(y1 - y0);
        let left = (x0 - margin).max(0.0) as usize;
        let top = (y0 - margin).max(0.0) as usize;
        let right = ((x1 + margin) as usize).min(plane.width);
        let bottom = ((y1 + margin) as usize).min(plane.height);
        return (right > left + 21 && bottom > top + 21)
            .then(|| (left, top, right - left, bottom - top));
    }
    let cx = fs.iter().map(|f| f.x).sum::<f32>() / n as f32;
    let cy = fs.iter().map(|f| f.y).sum::<f32>() / n as f32;
    let half = if n >= 3 { 0.8 * max_d } else { 1.15 * max_d } + 8.0 * module;
    let left = (cx - half).max(0.0) as usize;
    let top = (cy - half).max(0.0) as usize;
    let right = ((cx + half) as usize).min(plane.width);
    let bottom = ((cy + half) as usize).min(plane.height);
    (right > left + 21 && bottom > top + 21).then(|| (left, top, right - left, bottom - top))
}

/// When the three finders sit like a symbol's corners (a near right angle, near equal
/// sides), the symbol's four finder-centre corners.
fn symbol_corners(fs: &[Finder]) -> Option<[(f32, f32); 4]> {
    let [a, b, c] = fs else {
        return None;
    };
    for (corner, p, q) in [(a, b, c), (b, a, c), (c, a, b)] {
        let (ux, uy) = (p.x - corner.x, p.y - corner.y);
        let (vx, vy) = (q.x - corner.x, q.y - corner.y);
        let (lu, lv) = (ux.hypot(uy), vx.hypot(vy));
        if lu < 1.0 || lv < 1.0 {
            return None;
        }
        let cos = (ux * vx + uy * vy) / (lu * lv);
        if cos.abs() < 0.35 && (0.6..=1.6).contains(&(lu / lv)) {
            return Some([
                (corner.x, corner.y),
                (p.x, p.y),
                (q.x, q.y),
                (p.x + q.x - corner.x, p.y + q.y - corner.y),
            ]);
        }
    }
    None
}

/// The whole pipeline for one frame: give up when the pre-pass confirms no finder
/// pattern; else the region the finders outline, then the whole frame denoised, then the
/// whole frame with the detector's exhaustive row scan.
pub(crate) fn scan(plane: Plane<'_>) -> Option<String> {
    let finders = finder::find(&plane, 6);
    if finders.is_empty() {
        return None;
    }
    if let Some((x, y, w, h)) = region(&plane, &finders) {
        let roi = plane.crop(x, y, w, h);
        if let Some(text) = attempt(roi, false) {
            return Some(text);
        }
    }
    let denoised = smoothed(&plane);
    let denoised_plane = Plane::new(&denoised, plane.width, plane.height, plane.width);
    if let Some(text) = attempt(denoised_plane, false) {
        return Some(text);
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
