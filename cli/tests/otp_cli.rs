//! `cie-companion otp …` as a user runs it: the real binary, an encrypted store in a
//! temporary folder, the passphrase from the environment, no terminal.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cie-companion"));
    c.stdin(Stdio::null())
        .env_remove("CIE_COMPANION_STORE")
        .env_remove("CIE_COMPANION_PASSPHRASE");
    c
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cie-otp-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(store: &Path, pass: &str, args: &[&str]) -> Output {
    bin()
        .env("CIE_COMPANION_STORE", store)
        .env("CIE_COMPANION_PASSPHRASE", pass)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SHA1_URI: &str =
    "otpauth://totp/RFC:sha1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8&issuer=RFC";

#[test]
fn code_for_a_uri_matches_rfc6238_and_stores_nothing() {
    // RFC 6238 App. B: SHA-1, 8 digits, t = 59 → 94287082; t = 20000000000 → 65353130.
    let o = bin()
        .args(["otp", "code", "--uri", SHA1_URI, "--at", "59"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("94287082  (1 s left"),
        "{}",
        stdout(&o)
    );
    let o = bin()
        .args(["otp", "code", "--uri", SHA1_URI, "--at", "20000000000"])
        .output()
        .unwrap();
    assert!(stdout(&o).starts_with("65353130"), "{}", stdout(&o));
    let sha512 = "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA%3D&algorithm=SHA512&digits=8";
    let o = bin()
        .args(["otp", "code", "--uri", sha512, "--at", "1234567890"])
        .output()
        .unwrap();
    assert!(stdout(&o).starts_with("93441116"), "{}", stdout(&o));
}

#[test]
fn a_refused_uri_exits_2_with_one_line() {
    for (uri, needle) in [
        (
            "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=MD5",
            "MD5",
        ),
        (
            "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=9",
            "9",
        ),
        ("otpauth://totp/x?secret=MFRGGZDFMZTWQ2I", "72 bits"),
        ("https://example.it", "otpauth"),
    ] {
        let o = bin()
            .args(["otp", "code", "--uri", uri, "--at", "59"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{uri}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle) && err.contains("Errore:"), "{err}");
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn add_list_code_remove_with_an_encrypted_store() {
    let d = dir("store");
    let store = d.join("secrets.enc");
    let o = run(&store, "pw", &["otp", "add", SHA1_URI]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("RFC:sha1"));
    // 80-bit secret: added, with the warning.
    let o = run(
        &store,
        "pw",
        &[
            "otp",
            "add",
            "otpauth://hotp/Lab:bench?secret=MFRGGZDFMZTWQ2LK&counter=1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("80 bits") && stdout(&o).contains("segreto corto"),
        "{}",
        stdout(&o)
    );

    let o = run(&store, "pw", &["otp", "list"]);
    assert!(
        stdout(&o).contains("RFC:sha1  (TOTP 30s, 8 digits, SHA1)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("Lab:bench  (HOTP counter 1"),
        "{}",
        stdout(&o)
    );
    let o = run(&store, "pw", &["otp", "code", "RFC", "--at", "1111111109"]);
    assert!(
        stdout(&o).starts_with("07081804"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );

    // The file holds no secret in any readable form.
    let raw = std::fs::read(&store).unwrap();
    for needle in [
        &b"12345678901234567890"[..],
        b"GEZDGNBV",
        b"3132333435",
        b"RFC:sha1",
    ] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "{:?} on disk",
            String::from_utf8_lossy(needle)
        );
    }
    // Wrong passphrase: exit 6, nothing printed on stdout.
    let o = run(&store, "nope", &["otp", "list"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrong passphrase") && stdout(&o).is_empty());
    // No passphrase and no terminal: a clear refusal, not a hang.
    let o = bin()
        .env("CIE_COMPANION_STORE", &store)
        .args(["otp", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6));
    assert!(
        stderr(&o).contains("CIE_COMPANION_PASSPHRASE"),
        "{}",
        stderr(&o)
    );

    let o = run(&store, "pw", &["otp", "code", "Nobody"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&store, "pw", &["otp", "remove", "RFC:sha1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&store, "pw", &["otp", "list"]);
    assert!(!stdout(&o).contains("RFC:sha1"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn add_from_a_qr_image() {
    let d = dir("qr");
    let store = d.join("secrets.enc");
    let uri = "otpauth://totp/Comune%20di%20Forl%C3%AC:mario%2Btag?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Comune%20di%20Forl%C3%AC";
    let qr = qrcode::QrCode::new(uri.as_bytes()).unwrap();
    let w = qr.width();
    let scale = 6;
    let side = ((w + 8) * scale) as u32;
    let colors = qr.to_colors();
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (
            (x as usize / scale).wrapping_sub(4),
            (y as usize / scale).wrapping_sub(4),
        );
        let dark = mx < w && my < w && colors[my * w + mx] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let png = d.join("token.png");
    img.save(&png).unwrap();
    let o = run(&store, "pw", &["otp", "add", "--qr", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Comune di Forlì:mario+tag"),
        "{}",
        stdout(&o)
    );
    let o = run(&store, "pw", &["otp", "code", "mario+tag", "--at", "59"]);
    assert!(stdout(&o).starts_with("287082"), "{}", stdout(&o));
    // An image without a QR code: exit 2, one line.
    let blank = d.join("blank.png");
    image::GrayImage::from_pixel(64, 64, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let o = run(
        &store,
        "pw",
        &["otp", "add", "--qr", blank.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no QR code"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}
