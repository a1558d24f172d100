//! The desktop page: plain HTML, one static script and one style sheet (no inline script or
//! style, no third-party resources), so the Content-Security-Policy can forbid all else.
//! The headers every response carries (HSTS, framing, sniffing, referrer, opener,
//! permissions) come from crate::headers; here only what the page needs beyond them.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::AppState;

const INDEX: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");
const LANDING: &str = include_str!("../static/q.html");
/// Served with or without the OpenID Provider: index.html always loads it, and it does
/// nothing unless the page was opened with a `return=` to a consent page.
const OIDC_RETURN_JS: &str = include_str!("../static/oidc-return.js");

/// Scripts and styles from this origin only, as files (no inline script, no `eval`, no
/// inline style); images from this origin and `data:` (the QR is an SVG `data:` URL the
/// script builds from the API's answer); fetches to this origin only; no plugins, no
/// `<base>`, no form posts (the page's forms are sent by its script), no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn with_headers(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(crate) fn routes() -> Router<AppState> {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    Router::new()
        .route("/", get(|| async { with_headers(INDEX, HTML) }))
        .route("/static/app.js", get(|| async { with_headers(APP_JS, JS) }))
        .route(
            "/static/oidc-return.js",
            get(|| async { with_headers(OIDC_RETURN_JS, JS) }),
        )
        .route(
            "/static/app.css",
            get(|| async { with_headers(APP_CSS, "text/css; charset=utf-8") }),
        )
        // Where the QR URL leads a phone without the app.
        .route("/q", get(|| async { with_headers(LANDING, HTML) }))
}

/// The dark modules of `text` as a QR code (level M), row by row, and its width. The
/// `qrcode` crate encodes (segments, version, error correction, placement); the mask is
/// chosen here, by the same rule (ISO/IEC 18004 §7.8.3: lowest penalty, first on a tie),
/// because the crate's scoring of the eight candidates was a third of the server's time per
/// desktop login.
pub(crate) fn qr_modules(text: &str) -> Option<(Vec<bool>, usize)> {
    use qrcode::canvas::{Canvas, MaskPattern};
    const EC: qrcode::EcLevel = qrcode::EcLevel::M;
    let bits = qrcode::bits::encode_auto(text.as_bytes(), EC).ok()?;
    let version = bits.version();
    let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC).ok()?;
    let mut canvas = Canvas::new(version, EC);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    let n = usize::try_from(version.width()).ok()?;
    [
        MaskPattern::Checkerboard,
        MaskPattern::HorizontalLines,
        MaskPattern::VerticalLines,
        MaskPattern::DiagonalLines,
        MaskPattern::LargeCheckerboard,
        MaskPattern::Fields,
        MaskPattern::Diamonds,
        MaskPattern::Meadow,
    ]
    .into_iter()
    .map(|m| {
        let mut c = canvas.clone();
        c.apply_mask(m);
        let dark: Vec<bool> = c
            .into_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        (penalty(&dark, n), dark)
    })
    .min_by_key(|(p, _)| *p)
    .map(|(_, dark)| (dark, n))
}

/// The mask penalty of ISO/IEC 18004 §7.8.3 (N1 = 3, N2 = 3, N3 = 40, N4 = 10), modules
/// outside the symbol counting as light (the quiet zone). This runs for eight masks on
/// every rendezvous: rows and columns become 128-bit lines and the rules bit operations.
fn penalty(dark: &[bool], n: usize) -> u32 {
    /// Light margin below the symbol's first module in each line.
    const PAD: usize = 4;
    if n + 2 * PAD > 128 {
        return penalty_scalar(dark, n);
    }
    let mut rows = vec![0u128; n];
    let mut cols = vec![0u128; n];
    for y in 0..n {
        for x in 0..n {
            if dark[y * n + x] {
                rows[y] |= 1 << (x + PAD);
                cols[x] |= 1 << (y + PAD);
            }
        }
    }
    // Bits i of the symbol whose right neighbour i + 1 is also in it.
    let pairs: u128 = ((1u128 << (n - 1)) - 1) << PAD;
    let mut score = 0u32;
    for &l in rows.iter().chain(&cols) {
        // N1: runs between colour changes (a change at i: module i differs from i + 1).
        let mut changes = (l ^ (l >> 1)) & pairs;
        let mut start = PAD;
        loop {
            let end = if changes == 0 {
                PAD + n - 1
            } else {
                changes.trailing_zeros() as usize
            };
            let run = (end + 1 - start) as u32;
            if run >= 5 {
                score += run - 2;
            }
            if changes == 0 {
                break;
            }
            changes &= changes - 1;
            start = end + 1;
        }
        // N3: dark light dark dark dark light dark starting at bit i, with four light
        // modules before it or after it (outside the symbol is light).
        let finder = l & !(l >> 1) & (l >> 2) & (l >> 3) & (l >> 4) & !(l >> 5) & (l >> 6);
        let light_before = !((l << 1) | (l << 2) | (l << 3) | (l << 4));
        let light_after = !((l >> 7) | (l >> 8) | (l >> 9) | (l >> 10));
        score += 40 * (finder & (light_before | light_after)).count_ones();
    }
    // N2: 2×2 blocks of one colour.
    for w in rows.windows(2) {
        let same = !(w[0] ^ w[1]);
        let block = same & (same >> 1) & !(w[0] ^ (w[0] >> 1)) & pairs;
        score += 3 * block.count_ones();
    }
    // N4: 10 × the smallest k with (45 − 5k) % ≤ dark share ≤ (55 + 5k) %.
    let total = (n * n) as u64;
    let dark_count: u64 = rows.iter().map(|r| u64::from(r.count_ones())).sum();
    let k = ((dark_count * 20).abs_diff(total * 10))
        .div_ceil(total)
        .saturating_sub(1);
    score + 10 * u32::try_from(k).unwrap_or(u32::MAX / 20)
}

/// [`penalty`] a module at a time (symbols wider than 120 modules), with a rolling 15-bit
/// window for N3.
fn penalty_scalar(dark: &[bool], n: usize) -> u32 {
    const PAD: usize = 4;
    const FINDER: u16 = 0b101_1101;
    let mut score = 0u32;
    let mut line = vec![0u16; n + 2 * PAD];
    for transpose in [false, true] {
        for y in 0..n {
            for x in 0..n {
                line[PAD + x] = u16::from(if transpose {
                    dark[x * n + y]
                } else {
                    dark[y * n + x]
                });
            }
            let cells = &line[PAD..PAD + n];
            // N1: runs of five or more of one colour.
            let mut run = 1u32;
            for x in 1..n {
                if cells[x] == cells[x - 1] {
                    run += 1;
                } else {
                    if run >= 5 {
                        score += run - 2;
                    }
                    run = 1;
                }
            }
            if run >= 5 {
                score += run - 2;
            }
            // N3: 1:1:3:1:1 (dark light dark dark dark light dark) with four light modules
            // before or after: bits 14..11 before, 10..4 the pattern, 3..0 after.
            let mut reg = 0u16;
            for (i, &m) in line.iter().enumerate() {
                reg = ((reg << 1) | m) & 0x7FFF;
                if i >= 14 && (reg >> 4) & 0x7F == FINDER && (reg >> 11 == 0 || reg & 0xF == 0) {
                    score += 40;
                }
            }
        }
    }
    // N2: 2×2 blocks of one colour.
    for y in 0..n - 1 {
        for x in 0..n - 1 {
            let c = dark[y * n + x];
            if dark[y * n + x + 1] == c
                && dark[(y + 1) * n + x] == c
                && dark[(y + 1) * n + x + 1] == c
            {
                score += 3;
            }
        }
    }
    // N4: 10 × the smallest k with (45 − 5k) % ≤ dark share ≤ (55 + 5k) %.
    let total = (n * n) as u64;
    let dark_count = dark.iter().filter(|&&d| d).count() as u64;
    let k = ((dark_count * 20).abs_diff(total * 10))
        .div_ceil(total)
        .saturating_sub(1);
    score + 10 * u32::try_from(k).unwrap_or(u32::MAX / 20)
}

/// The desktop QR as a small SVG: one path of horizontal runs in module units, scaled by
/// whole pixels per module (at least 240 px). The `qrcode` crate's SVG renderer writes a
/// subpath per dark module in pixel units (~20 bytes each, ~800 of them in a rendezvous QR),
/// encrypted and parsed on every rendezvous; runs make it ~4 KB.
pub(crate) fn qr_svg(text: &str) -> Option<String> {
    const QUIET: usize = 4;
    let (dark, n) = qr_modules(text)?;
    let size = n + 2 * QUIET;
    let px = size * 240usize.div_ceil(size);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{px}\" height=\"{px}\" \
         viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\""
    );
    for (y, row) in dark.chunks(n).enumerate() {
        let mut x = 0;
        while x < n {
            if !row[x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < n && row[x] {
                x += 1;
            }
            // Digits pushed by hand: `write!` was most of this function's time.
            for (prefix, v) in [('M', start + QUIET), (' ', y + QUIET), ('h', x - start)] {
                svg.push(prefix);
                push_number(&mut svg, v);
            }
            svg.push_str("v1h-");
            push_number(&mut svg, x - start);
            svg.push('z');
        }
    }
    svg.push_str("\"/></svg>");
    Some(svg)
}

/// `v` in decimal (a QR is at most 177 + 8 modules wide).
fn push_number(out: &mut String, v: usize) {
    if v >= 10 {
        push_number(out, v / 10);
    }
    out.push(char::from(b'0' + (v % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOADS: [&str; 3] = [
        "https://login.example.it/q#v1.AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB",
        "https://127.0.0.1:44321/q#v1.x3Yq0b-Kd9Zt1mPq2r_sTw.Qk8vN3p_L2mW5tYz0aBcDe",
        "otpauth://totp/INPS:RSSMRA80A01H501U?secret=JBSWY3DPEHPK3PXP&issuer=INPS",
    ];

    /// The path paints exactly the code's dark modules, offset by the quiet zone.
    #[test]
    fn qr_svg_paints_exactly_the_dark_modules() {
        let text = PAYLOADS[0];
        let svg = qr_svg(text).unwrap();
        let (dark, n) = qr_modules(text).unwrap();
        let size = n + 8;
        assert!(svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")));
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut painted = vec![false; size * size];
        for run in d.split('M').filter(|r| !r.is_empty()) {
            let (xy, rest) = run.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            let w: usize = rest.split_once('v').unwrap().0.parse().unwrap();
            assert!(rest.ends_with(&format!("v1h-{w}z")));
            for i in x..x + w {
                assert!(!painted[y * size + i], "module painted twice");
                painted[y * size + i] = true;
            }
        }
        for y in 0..size {
            for x in 0..size {
                let inside = (4..n + 4).contains(&x) && (4..n + 4).contains(&y);
                let want = inside && dark[(y - 4) * n + (x - 4)];
                assert_eq!(painted[y * size + x], want, "module ({x}, {y})");
            }
        }
        // Whole pixels per module, at least 240 px.
        let px: usize = svg
            .split("width=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(px >= 240 && px.is_multiple_of(size));
        assert!(svg.len() < 5000, "{} bytes", svg.len());
    }

    /// What we draw scans back to the text (the core's scanner, an independent decoder),
    /// and the mask is the one the crate's own scoring picks.
    #[test]
    fn qr_modules_scan_back_and_match_the_crates_choice() {
        for text in PAYLOADS {
            let (dark, n) = qr_modules(text).unwrap();
            let crate_choice: Vec<bool> =
                qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
                    .unwrap()
                    .to_colors()
                    .into_iter()
                    .map(|c| c == qrcode::Color::Dark)
                    .collect();
            assert_eq!(dark, crate_choice, "{text}");
            let (scale, quiet) = (4, 4);
            let side = (n + 2 * quiet) * scale;
            let mut luma = vec![255u8; side * side];
            for y in 0..side {
                for x in 0..side {
                    let (mx, my) = (x / scale, y / scale);
                    if (quiet..n + quiet).contains(&mx)
                        && (quiet..n + quiet).contains(&my)
                        && dark[(my - quiet) * n + (mx - quiet)]
                    {
                        luma[y * side + x] = 0;
                    }
                }
            }
            let side32 = u32::try_from(side).unwrap();
            let frame = cie_core::qr::LumaFrame {
                width: side32,
                height: side32,
                row_stride: side32,
                bytes: &luma,
            };
            assert_eq!(
                cie_core::qr::scan_luma(&frame).unwrap().as_deref(),
                Some(text)
            );
        }
    }

    /// §7.8.3 written plainly, module by module, to check the rolling-window version.
    fn penalty_reference(dark: &[bool], n: usize) -> u32 {
        let get = |x: isize, y: isize, t: bool| {
            let (x, y) = if t { (y, x) } else { (x, y) };
            (0..n as isize).contains(&x)
                && (0..n as isize).contains(&y)
                && dark[y as usize * n + x as usize]
        };
        let mut score = 0;
        for t in [false, true] {
            for y in 0..n as isize {
                let mut x = 0;
                while x < n as isize {
                    let start = x;
                    while x < n as isize && get(x, y, t) == get(start, y, t) {
                        x += 1;
                    }
                    if x - start >= 5 {
                        score += 3 + (x - start - 5) as u32;
                    }
                }
                let finder = [true, false, true, true, true, false, true];
                for x in 0..n as isize - 6 {
                    if (0..7).all(|i| get(x + i, y, t) == finder[i as usize])
                        && ((1..=4).all(|i| !get(x - i, y, t))
                            || (7..11).all(|i| !get(x + i, y, t)))
                    {
                        score += 40;
                    }
                }
            }
        }
        for y in 0..n as isize - 1 {
            for x in 0..n as isize - 1 {
                let c = get(x, y, false);
                if [(1, 0), (0, 1), (1, 1)]
                    .iter()
                    .all(|(dx, dy)| get(x + dx, y + dy, false) == c)
                {
                    score += 3;
                }
            }
        }
        let (d, t) = (dark.iter().filter(|&&d| d).count(), n * n);
        let k = (0..)
            .find(|k| 100 * d >= (45usize.saturating_sub(5 * k)) * t && 100 * d <= (55 + 5 * k) * t)
            .unwrap();
        score + 10 * k as u32
    }

    #[test]
    fn penalty_matches_the_plain_reading_of_the_rules() {
        // Deterministic pseudo-random grids (xorshift), dense and sparse, plus every mask of
        // real codes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..300 {
            // Up to 121 wide: past 120 the bit version hands over to the scalar one.
            let n = 11 + round % 111;
            let threshold = [2, 4, 6][round % 3];
            let grid: Vec<bool> = (0..n * n).map(|_| next() % 8 < threshold).collect();
            assert_eq!(
                penalty(&grid, n),
                penalty_reference(&grid, n),
                "round {round}"
            );
        }
        for text in PAYLOADS {
            let (dark, n) = qr_modules(text).unwrap();
            assert_eq!(penalty(&dark, n), penalty_reference(&dark, n));
        }
    }

    /// The penalty rules, each on a pattern built to trigger it alone.
    #[test]
    fn penalty_rules() {
        // 5×5 checkerboard: no runs, no blocks, no finder, 13 of 25 dark (52 %: N4 = 0).
        // (Exactly 45 % or 55 % is still k = 0: the bounds are inclusive.)
        let n = 5;
        let checker: Vec<bool> = (0..n * n).map(|i| (i / n + i % n) % 2 == 0).collect();
        assert_eq!(penalty(&checker, n), 0);
        // All light: every row and column a run of 5 (3 each: 30), 16 blocks (48),
        // 0 % dark (k = 9: 45 − 45 = 0 %; N4 = 90).
        assert_eq!(penalty(&[false; 25], 5), 30 + 48 + 90);
        // One row 1:1:3:1:1 in an 11-wide light symbol: N3 once (light beyond the edge
        // and after it), plus its runs and blocks.
        let n = 11;
        let mut finder = vec![false; n * n];
        for (x, d) in [true, false, true, true, true, false, true]
            .into_iter()
            .enumerate()
        {
            finder[5 * n + x] = d;
        }
        let without_n3 = {
            let mut f = finder.clone();
            f[5 * n + 6] = false; // 1:1:3:1:0 — no longer a finder
            penalty(&f, n)
        };
        assert!(penalty(&finder, n) > 40);
        assert_ne!(penalty(&finder, n), without_n3);
    }
}
