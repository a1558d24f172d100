//! QR frames from the camera (the Y plane), for the desktop-login QR and otpauth links.
//! The shells pass the plane with its row stride, unconverted; what the text means is
//! decided by the flow that receives it (`DesktopQr::parse`, `otp_inspect_uri`), so a
//! frame scan never acts on its own.

use crate::qr::{LumaFrame, QrError, scan_luma};

/// The text of the first QR code in an 8-bit luma frame, or `None` when there is none
/// (hand over the next frame). `row_stride` ≥ `width` (camera buffers pad rows).
///
/// The plane is borrowed, not copied: UniFFI passes a `&[u8]` argument as the caller's own
/// memory for the length of the call — Kotlin a *direct* `java.nio.ByteBuffer` (CameraX's
/// plane buffer as it is; from its position, `remaining()` bytes), Swift `Data` (an
/// AVFoundation plane wrapped with `bytesNoCopy`), Python `bytes`. Before, each frame (a
/// megabyte or two, up to 30 a second) was copied once or twice on its way in.
#[uniffi::export]
pub fn scan_qr_frame(
    width: u32,
    height: u32,
    row_stride: u32,
    luma: &[u8],
) -> Result<Option<String>, QrError> {
    scan_luma(&LumaFrame {
        width,
        height,
        row_stride,
        bytes: luma,
    })
}
