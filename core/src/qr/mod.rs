//! QR scanning: camera frames (the Y plane) in, decoded text out.
//!
//! The shells hand over the camera's Y plane as it is ([`LumaFrame`] with its row stride:
//! Android's `ImageProxy` planes and iOS's `CVPixelBuffer` luma pass without a copy). The
//! engine (issue #7): a cheap finder-pattern pre-pass that gives up on frames without a
//! code in well under a millisecond ([`finder`]), then decoding attempts on the region the
//! finders outline before the whole frame ([`engine`]); sampling, format checks and
//! Reed-Solomon decoding are rxing's, so a text comes out only when its checks passed.

mod engine;
mod finder;

/// A borrowed rectangle of a strided 8-bit plane (a camera frame or a crop of it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plane<'a> {
    /// Starts at the rectangle's top-left pixel.
    bytes: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
}

impl<'a> Plane<'a> {
    /// `bytes` must hold `stride × (height − 1) + width` bytes (checked by the caller).
    pub(crate) fn new(bytes: &'a [u8], width: usize, height: usize, stride: usize) -> Self {
        Self {
            bytes,
            width,
            height,
            stride,
        }
    }

    #[inline]
    fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.bytes[start..start + self.width]
    }

    #[inline]
    fn px(&self, x: usize, y: usize) -> u8 {
        self.bytes[y * self.stride + x]
    }

    /// The sub-rectangle (clipped by the caller to lie inside), without copying.
    fn crop(&self, left: usize, top: usize, width: usize, height: usize) -> Self {
        Self {
            bytes: &self.bytes[top * self.stride + left..],
            width,
            height,
            stride: self.stride,
        }
    }
}

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
    let plane = Plane::new(
        frame.bytes,
        frame.width as usize,
        frame.height as usize,
        frame.row_stride as usize,
    );
    Ok(engine::scan(plane))
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random frames, padded rows included: never a panic, and a text only if one is
        /// really there (random pixels hold none).
        #[test]
        fn random_frames_never_panic(
            w in 1u32..160,
            h in 1u32..160,
            pad in 0u32..20,
            seed in proptest::prelude::any::<u64>(),
            blocky in proptest::prelude::any::<bool>(),
        ) {
            let stride = w + pad;
            let len = (stride * (h - 1) + w) as usize;
            let mut x = seed | 1;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Blocky frames: 4×4-pixel cells, so runs and patterns appear.
                    let cell = if blocky { ((i % stride as usize) / 4 + (i / stride as usize) / 4 * 64) as u64 } else { x };
                    if blocky { ((cell.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed) >> 60) as u8 * 17 } else { (x >> 56) as u8 }
                })
                .collect();
            let frame = LumaFrame { width: w, height: h, row_stride: stride, bytes: &bytes };
            proptest::prop_assert_eq!(scan_luma(&frame), Ok(None));
        }
    }
}
