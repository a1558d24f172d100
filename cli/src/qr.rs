//! `cie-companion qr decode IMAGE…` and `qr show TEXT`: the core's scanner on image files,
//! and a QR drawn in the terminal (the `qrcode` crate, Unicode half blocks).

use std::path::{Path, PathBuf};

use crate::error::CliError;

fn input(reason: String) -> CliError {
    CliError::Input { reason }
}

/// The text of the QR code in an image file (PNG or JPEG, colour or grey, any size), or
/// `None` when the core finds none.
pub fn decode_file(path: &Path) -> Result<Option<String>, CliError> {
    let img = image::open(path)
        .map_err(|e| input(format!("cannot read image {}: {e}", path.display())))?
        .to_luma8();
    let (w, h) = img.dimensions();
    let frame = cie_core::qr::LumaFrame {
        width: w,
        height: h,
        row_stride: w,
        bytes: img.as_raw(),
    };
    cie_core::qr::scan_luma(&frame).map_err(|e| input(e.to_string()))
}

/// `qr decode`: one line per image, the text or `no QR found` (or why the image could not be
/// read); `Ok(true)` when every image decoded.
pub fn decode(images: &[PathBuf]) -> Result<bool, CliError> {
    let mut all = true;
    for path in images {
        let line = match decode_file(path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                all = false;
                "no QR found".to_string()
            }
            Err(e) => {
                all = false;
                format!("no QR found ({})", e.message_en().trim_end_matches('.'))
            }
        };
        // One line per image, whatever the payload holds.
        println!("{}", line.replace(['\n', '\r'], " "));
    }
    Ok(all)
}

/// `qr show`: `text` as a QR code in the terminal, with its quiet zone, indented by `indent`.
pub fn show(text: &str, indent: &str) -> Result<(), CliError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| input(format!("QR: {e}")))?;
    let art = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    for line in art.lines() {
        println!("{indent}{line}");
    }
    Ok(())
}
