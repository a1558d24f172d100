//! The desktop page: plain HTML, one static script and one style sheet (no inline script or
//! style, no third-party resources), so the Content-Security-Policy can forbid all else.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::AppState;

const INDEX: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");
const LANDING: &str = include_str!("../static/q.html");

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
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { with_headers(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/static/app.js",
            get(|| async { with_headers(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/static/app.css",
            get(|| async { with_headers(APP_CSS, "text/css; charset=utf-8") }),
        )
        // Where the QR URL leads a phone without the app.
        .route(
            "/q",
            get(|| async { with_headers(LANDING, "text/html; charset=utf-8") }),
        )
}

/// The desktop QR as a small SVG: one path of horizontal runs in module units, scaled by
/// whole pixels per module (at least 240 px). The `qrcode` crate's SVG renderer writes a
/// subpath per dark module in pixel units (~20 bytes each, ~800 of them in a rendezvous QR),
/// encrypted and parsed on every rendezvous; runs make it ~4 KB. The code itself (version,
/// best mask) is still the crate's.
pub(crate) fn qr_svg(text: &str) -> Option<String> {
    use std::fmt::Write as _;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let n = code.width();
    let dark: Vec<bool> = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
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
            let _ = write!(
                svg,
                "M{} {}h{}v1h-{}z",
                start + QUIET,
                y + QUIET,
                x - start,
                x - start
            );
        }
    }
    svg.push_str("\"/></svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path paints exactly the code's dark modules, offset by the quiet zone.
    #[test]
    fn qr_svg_paints_exactly_the_dark_modules() {
        let text = "https://login.example.it/q#v1.AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB";
        let svg = qr_svg(text).unwrap();
        let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).unwrap();
        let n = code.width();
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
        let colors = code.to_colors();
        for y in 0..size {
            for x in 0..size {
                let inside = (4..n + 4).contains(&x) && (4..n + 4).contains(&y);
                let want = inside && colors[(y - 4) * n + (x - 4)] == qrcode::Color::Dark;
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
}
