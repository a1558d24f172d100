//! `cie-companion qr decode` and `qr show`: the real binary on images made here (PNG in
//! colour, JPEG in grey, a blank one, a missing file), and the terminal drawing read back
//! into pixels and decoded again.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output, Stdio};

use image::{GrayImage, Luma, Rgb, RgbImage};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `text` as a grey QR, `scale` pixels a module, on a `pad`-pixel white margin.
fn qr_gray(text: &str, scale: u32, pad: u32) -> GrayImage {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let n = code.width() as u32;
    let colors = code.to_colors();
    let side = n * scale + 2 * pad;
    GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x.checked_sub(pad), y.checked_sub(pad));
        let dark = match (mx, my) {
            (Some(mx), Some(my)) if mx < n * scale && my < n * scale => {
                colors[((my / scale) * n + mx / scale) as usize] == qrcode::Color::Dark
            }
            _ => false,
        };
        Luma([if dark { 20 } else { 235 }])
    })
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn decode_prints_one_line_per_image_and_fails_when_one_has_no_code() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let url = "https://login.example.it/q#v1.AbCdEf.123456";
    // Colour PNG: dark blue modules, the code off-centre on a wider cream canvas.
    let g = qr_gray(url, 5, 12);
    let mut rgb = RgbImage::from_pixel(g.width() + 300, g.height() + 40, Rgb([250, 244, 230]));
    for (x, y, px) in g.enumerate_pixels() {
        let c = if px[0] < 128 {
            Rgb([20, 30, 90])
        } else {
            Rgb([px[0]; 3])
        };
        rgb.put_pixel(x + 250, y + 20, c);
    }
    rgb.save(p("colour.png")).unwrap();
    // Grey JPEG, 3 px a module.
    qr_gray(
        "otpauth://totp/INPS:mario?secret=GEZDGNBV&issuer=INPS",
        3,
        8,
    )
    .save(p("grey.jpg"))
    .unwrap();
    GrayImage::from_pixel(200, 120, Luma([255]))
        .save(p("blank.png"))
        .unwrap();

    let ok = bin(&["qr", "decode", &p("colour.png"), &p("grey.jpg")]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert_eq!(
        lines(&ok),
        [url, "otpauth://totp/INPS:mario?secret=GEZDGNBV&issuer=INPS"]
    );

    let mixed = bin(&[
        "qr",
        "decode",
        &p("blank.png"),
        &p("colour.png"),
        &p("missing.png"),
    ]);
    assert_eq!(mixed.status.code(), Some(1), "{mixed:?}");
    let l = lines(&mixed);
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(l[0], "no QR found");
    assert_eq!(l[1], url);
    assert!(l[2].starts_with("no QR found (cannot read image"), "{l:?}");

    // No image at all: usage error from clap.
    assert_eq!(bin(&["qr", "decode"]).status.code(), Some(2));
}

/// The terminal drawing (Unicode half blocks, two rows a character) back into pixels.
fn from_terminal(art: &str, dir: &Path) -> std::path::PathBuf {
    let rows: Vec<Vec<char>> = art.lines().map(|l| l.chars().collect()).collect();
    let w = rows.iter().map(Vec::len).max().unwrap() as u32;
    let h = rows.len() as u32 * 2;
    let scale = 4;
    let img = GrayImage::from_fn(w * scale, h * scale, |x, y| {
        let (cx, cy) = ((x / scale) as usize, (y / scale) as usize);
        let c = rows[cy / 2].get(cx).copied().unwrap_or(' ');
        let top = cy % 2 == 0;
        // Dense1x2: '█' both halves dark, '▀' top, '▄' bottom, ' ' none.
        let dark = match c {
            '█' => true,
            '▀' => top,
            '▄' => !top,
            _ => false,
        };
        Luma([if dark { 0 } else { 255 }])
    });
    let path = dir.join("terminal.png");
    img.save(&path).unwrap();
    path
}

#[test]
fn show_draws_a_code_that_decodes_back() {
    let text = "https://login.example.it/q#v1.ShowMe.42";
    let out = bin(&["qr", "show", text]);
    assert_eq!(out.status.code(), Some(0));
    let art = String::from_utf8(out.stdout).unwrap();
    assert!(art.contains('█') || art.contains('▀'), "{art}");
    let dir = tempfile::tempdir().unwrap();
    let png = from_terminal(&art, dir.path());
    let back = bin(&["qr", "decode", &png.display().to_string()]);
    assert_eq!(back.status.code(), Some(0), "{back:?}\n{art}");
    assert_eq!(lines(&back), [text]);
}
