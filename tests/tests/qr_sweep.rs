//! The QR engine over a synthetic camera sweep (issue #7): codes rendered with the `qrcode`
//! crate, rotated, tilted in perspective, blurred and noised (seeded), then scanned. Any
//! text the scanner returns must be the encoded one (never a wrong payload), the easy part
//! of the sweep must decode, and most of the rest, and padded rows (a row stride wider than the width, as camera
//! buffers have) must not change the result.

use cie_core::qr::{LumaFrame, scan_luma};

const W: usize = 640;
const H: usize = 480;

/// Seeded xorshift, for the noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    /// About N(0, 1) (Irwin–Hall of four uniforms).
    fn normal(&mut self) -> f32 {
        ((0..4).map(|_| self.next()).sum::<f32>() - 2.0) * 1.732
    }
}

struct Shot {
    angle_deg: f32,
    tilt: f32,
    px_per_module: f32,
    blur: f32,
    noise: f32,
    seed: u64,
}

/// The module matrix with a 4-module quiet zone: `true` is dark.
fn modules(text: &str, ec: qrcode::EcLevel) -> (Vec<bool>, usize) {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), ec)
        .expect("the payload fits a QR code");
    let n = code.width();
    let side = n + 8;
    let mut m = vec![false; side * side];
    for (i, c) in code.to_colors().iter().enumerate() {
        m[(i / n + 4) * side + i % n + 4] = *c == qrcode::Color::Dark;
    }
    (m, side)
}

/// A W×H luma frame of the code as a camera would see it.
fn render(text: &str, ec: qrcode::EcLevel, shot: &Shot) -> Vec<u8> {
    let (m, side) = modules(text, ec);
    let (sin, cos) = shot.angle_deg.to_radians().sin_cos();
    let size = side as f32 * shot.px_per_module;
    let (cx, cy) = (W as f32 / 2.0 + 17.0, H as f32 / 2.0 - 9.0);
    let (dark, light) = (50.0f32, 190.0f32);
    let mut img = vec![0f32; W * H];
    for y in 0..H {
        for x in 0..W {
            // 2×2 supersampling of the inverse mapping: rotate back, scale, then a
            // projective tilt (one side of the code farther from the camera).
            let mut acc = 0.0;
            for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (dx, dy) = (x as f32 + sx - cx, y as f32 + sy - cy);
                let (u, v) = ((cos * dx + sin * dy) / size, (-sin * dx + cos * dy) / size);
                let w = 1.0 + shot.tilt * u;
                let (u, v) = (u / w + 0.5, v / w + 0.5);
                let background = 120.0 + 40.0 * (x as f32 / W as f32);
                acc += if (0.0..1.0).contains(&u) && (0.0..1.0).contains(&v) {
                    let (mx, my) = ((u * side as f32) as usize, (v * side as f32) as usize);
                    if m[my * side + mx] { dark } else { light }
                } else {
                    background
                };
            }
            img[y * W + x] = acc / 4.0;
        }
    }
    if shot.blur > 0.0 {
        img = gaussian_blur(&img, shot.blur);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ shot.seed);
    img.iter()
        .map(|v| (v + shot.noise * rng.normal()).round().clamp(0.0, 255.0) as u8)
        .collect()
}

fn gaussian_blur(img: &[f32], sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let pass = |src: &[f32], horizontal: bool| {
        let mut out = vec![0f32; W * H];
        for y in 0..H as isize {
            for x in 0..W as isize {
                let mut acc = 0.0;
                for (k, i) in kernel.iter().zip(-r..=r) {
                    let (xx, yy) = if horizontal {
                        ((x + i).clamp(0, W as isize - 1), y)
                    } else {
                        (x, (y + i).clamp(0, H as isize - 1))
                    };
                    acc += k * src[yy as usize * W + xx as usize];
                }
                out[y as usize * W + x as usize] = acc / total;
            }
        }
        out
    };
    pass(&pass(img, true), false)
}

fn scan(frame: &[u8]) -> Option<String> {
    scan_luma(&LumaFrame {
        width: W as u32,
        height: H as u32,
        row_stride: W as u32,
        bytes: frame,
    })
    .expect("a well-formed frame")
}

const URL: &str = "https://approve.example.it/qr/v1?sid=Q7ZkP0x-mN3_bYt8LwV2cRj5aH9sD1fG&n=3f9a0c7e1b2d4f6a8c0e2b4d6f8a0c1e&exp=1767225600";

fn long_payload() -> String {
    // A compact-JWS-shaped text of ~330 characters (version 12–13 at level L).
    let b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = Rng(42);
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| b64[(rng.next() * 64.0) as usize % 64] as char)
            .collect()
    };
    format!(
        "eyJhbGciOiJFUzI1NiIsInR5cCI6InFyLWFwcHJvdmFsK2p3dCJ9.{}.{}",
        part(190),
        part(86)
    )
}

#[test]
fn sweep_decodes_only_the_encoded_text() {
    let long = long_payload();
    let payloads = [
        (URL, qrcode::EcLevel::M, 4.0f32),
        (long.as_str(), qrcode::EcLevel::L, 3.6),
    ];
    let mut seed = 0;
    let (mut decoded, mut easy, mut easy_decoded, mut total) = (0, 0, 0, 0);
    for (text, ec, px) in payloads {
        for blur in [0.0f32, 1.0, 1.8] {
            for noise in [0.0f32, 6.0, 14.0] {
                for (angle_deg, tilt) in [(0.0f32, 0.0f32), (15.0, 0.1), (40.0, 0.25)] {
                    seed += 1;
                    let shot = Shot {
                        angle_deg,
                        tilt,
                        px_per_module: px,
                        blur,
                        noise,
                        seed,
                    };
                    let frame = render(text, ec, &shot);
                    let got = scan(&frame);
                    total += 1;
                    if let Some(got) = &got {
                        assert_eq!(
                            got, text,
                            "wrong text at blur {blur} noise {noise} angle {angle_deg}"
                        );
                        decoded += 1;
                    }
                    if blur <= 1.0 && noise <= 6.0 && angle_deg <= 15.0 {
                        easy += 1;
                        easy_decoded += usize::from(got.is_some());
                    }
                }
            }
        }
    }
    eprintln!("sweep: {decoded}/{total} decoded, easy part {easy_decoded}/{easy}");
    assert_eq!(
        easy_decoded, easy,
        "every mildly blurred, mildly noisy, mildly turned frame decodes"
    );
    // 38 of the 54 at the first landing (the rest: strong blur with noise, or 40° with a
    // strong tilt on the long payload at 3.6 px per module).
    assert!(decoded >= 36, "{decoded}/{total} decoded");
}

#[test]
fn padded_rows_decode_the_same() {
    let shot = Shot {
        angle_deg: 15.0,
        tilt: 0.1,
        px_per_module: 4.0,
        blur: 1.0,
        noise: 6.0,
        seed: 7,
    };
    let frame = render(URL, qrcode::EcLevel::M, &shot);
    assert_eq!(scan(&frame).as_deref(), Some(URL));
    // Rows padded to a 64-byte multiple plus 64 (CameraX / AVFoundation style), the
    // padding dark, and the last row unpadded (the plane may end right after it).
    let stride = W.next_multiple_of(64) + 64;
    let mut padded = vec![0u8; stride * (H - 1) + W];
    for y in 0..H {
        padded[y * stride..y * stride + W].copy_from_slice(&frame[y * W..(y + 1) * W]);
    }
    let got = scan_luma(&LumaFrame {
        width: W as u32,
        height: H as u32,
        row_stride: stride as u32,
        bytes: &padded,
    })
    .expect("a padded frame is well-formed");
    assert_eq!(got.as_deref(), Some(URL));
}

#[test]
fn frames_without_a_code_give_nothing() {
    let mut rng = Rng(3);
    let noise: Vec<u8> = (0..W * H)
        .map(|_| (128.0 + 40.0 * rng.normal()).clamp(0.0, 255.0) as u8)
        .collect();
    assert_eq!(scan(&noise), None);
    let flat = vec![200u8; W * H];
    assert_eq!(scan(&flat), None);
}

#[test]
fn damaged_frames_give_the_text_or_nothing() {
    // A clean code, then seeded damage: blocks of noise, stripes, flipped areas. Reed-Solomon
    // may repair some; whatever decodes must be the encoded text.
    let shot = Shot {
        angle_deg: 10.0,
        tilt: 0.05,
        px_per_module: 4.0,
        blur: 0.8,
        noise: 4.0,
        seed: 11,
    };
    let clean = render(URL, qrcode::EcLevel::M, &shot);
    let mut rng = Rng(0x00DA_3A6E);
    let (mut decoded, mut runs) = (0, 0);
    for damage in 0..24 {
        let mut frame = clean.clone();
        for _ in 0..(1 + damage / 4) {
            let (bw, bh) = (
                8 + (rng.next() * 60.0) as usize,
                8 + (rng.next() * 60.0) as usize,
            );
            let x0 = 200 + (rng.next() * 200.0) as usize;
            let y0 = 120 + (rng.next() * 200.0) as usize;
            let kind = damage % 3;
            for y in y0..(y0 + bh).min(H) {
                for x in x0..(x0 + bw).min(W) {
                    let v = &mut frame[y * W + x];
                    *v = match kind {
                        0 => (rng.next() * 255.0) as u8,
                        1 => {
                            if (x / 3) % 2 == 0 {
                                30
                            } else {
                                220
                            }
                        }
                        _ => 255 - *v,
                    };
                }
            }
        }
        runs += 1;
        if let Some(text) = scan(&frame) {
            assert_eq!(text, URL, "damage pattern {damage}");
            decoded += 1;
        }
    }
    eprintln!("damaged: {decoded}/{runs} decoded");
    assert!(decoded > 0, "light damage is repaired");
}
