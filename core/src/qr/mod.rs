//! QR scanning: camera frames (the Y plane) in, decoded text out.
//!
//! Today the decoding is rqrr's (a small pure-Rust decoder), behind the interface the
//! shells will keep: [`LumaFrame`] with its row stride, so Android's `ImageProxy` planes and
//! iOS's `CVPixelBuffer` luma pass without a copy. Our own camera-tuned engine (issue #7)
//! replaces the inside of [`scan_luma`] without changing callers.

/// One 8-bit luma frame. `row_stride` ≥ `width`: camera buffers pad rows.
#[derive(Debug, Clone, Copy)]
pub struct LumaFrame<'a> {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes from one row's start to the next's.
    pub row_stride: u32,
    /// The plane; at least `row_stride × (height − 1) + width` bytes.
    pub bytes: &'a [u8],
}

/// A frame the scanner cannot read at all (a shell bug, not a camera problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum QrError {
    /// Dimensions and buffer disagree.
    #[error("bad frame: {reason}")]
    BadFrame {
        /// Which check failed.
        reason: String,
    },
}

/// Largest side we accept (a 4K frame is 3840).
pub const MAX_SIDE: u32 = 8192;

impl LumaFrame<'_> {
    fn check(&self) -> Result<(), QrError> {
        let bad = |reason: String| Err(QrError::BadFrame { reason });
        if self.width == 0 || self.height == 0 || self.width > MAX_SIDE || self.height > MAX_SIDE {
            return bad(format!(
                "size {}×{} outside 1..={MAX_SIDE}",
                self.width, self.height
            ));
        }
        if self.row_stride < self.width {
            return bad(format!(
                "row stride {} below width {}",
                self.row_stride, self.width
            ));
        }
        let need = u64::from(self.row_stride) * u64::from(self.height - 1) + u64::from(self.width);
        if (self.bytes.len() as u64) < need {
            return bad(format!("{} bytes, {need} needed", self.bytes.len()));
        }
        Ok(())
    }
}

/// The text of the first QR code found in `frame`, or `None` (try the next frame).
pub fn scan_luma(frame: &LumaFrame<'_>) -> Result<Option<String>, QrError> {
    frame.check()?;
    let stride = frame.row_stride as usize;
    let bytes = frame.bytes;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(
        frame.width as usize,
        frame.height as usize,
        |x, y| bytes.get(y * stride + x).copied().unwrap_or(255),
    );
    for grid in img.detect_grids() {
        if let Ok((_meta, text)) = grid.decode() {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_frames_are_typed_errors() {
        let px = [0u8; 16];
        for (w, h, s) in [(0, 4, 4), (4, 0, 4), (4, 4, 3), (4, 5, 4), (9000, 1, 9000)] {
            let f = LumaFrame {
                width: w,
                height: h,
                row_stride: s,
                bytes: &px,
            };
            assert!(scan_luma(&f).is_err(), "{w}×{h}/{s}");
        }
        let f = LumaFrame {
            width: 4,
            height: 4,
            row_stride: 4,
            bytes: &px,
        };
        assert_eq!(scan_luma(&f).unwrap(), None);
    }
}
