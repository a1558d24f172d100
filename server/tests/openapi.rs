//! `/openapi.json` (src/openapi.rs) against the code: every route the routers declare is
//! documented, with the method it is served on, and nothing else is; the document is
//! OpenAPI 3.1 that reads back into utoipa's model unchanged, every `$ref` resolves, and
//! every `/api/v1` operation documents its `ApiError` refusals. The live server serves the
//! same document (with the OpenID Provider's part only when it runs one).
//!
//! The routes are read from the source (every `.route(PATH, method(..)…)` in server/src,
//! its path a literal, a `const` or a `format!` of consts), so a route added without its
//! `#[utoipa::path]` fails here without anyone keeping a second list.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use companion_server::oidc::{OidcConfig, OpKey};
use serde_json::Value;

/// Files whose routes are served on other listeners, not by the router this document
/// describes: the mutual-TLS ones (their own origin) and the metrics one (`--metrics-listen`,
/// plain HTTP for a scraper; docs/operations.md).
const OTHER_LISTENER: &[&str] = &["mtls.rs", "mtls/", "observability/"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` without comments and with string literals kept whole (so a `(` in a string or a
/// comment does not count).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str(&text[start..i.min(b.len())]);
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The argument list starting just after an opening `(` at `from`: the top-level
/// arguments and where the list ends.
fn arguments(text: &str, from: usize) -> (Vec<String>, usize) {
    let mut args = vec![String::new()];
    let mut depth = 0i32;
    let mut in_str = false;
    let mut chars = text[from..].char_indices();
    while let Some((i, c)) = chars.next() {
        if in_str {
            args.last_mut().unwrap().push(c);
            if c == '\\' {
                if let Some((_, n)) = chars.next() {
                    args.last_mut().unwrap().push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' if depth == 0 => return (args, from + i),
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                args.push(String::new());
                continue;
            }
            _ => {}
        }
        args.last_mut().unwrap().push(c);
    }
    panic!("unbalanced .route( call");
}

/// The HTTP methods of a method router expression (`get(a).post(b)`): the calls at its top
/// level.
fn methods(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut depth = 0i32;
    let mut in_str = false;
    let b = expr.as_bytes();
    for (i, c) in expr.char_indices() {
        if in_str {
            in_str = c != '"' || b[i - 1] == b'\\';
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '{' | '[' => {
                if depth == 0 {
                    let word: String = expr[..i]
                        .chars()
                        .rev()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    let method = word.to_ascii_lowercase();
                    assert!(
                        ["get", "post", "put", "delete", "patch", "head", "options"]
                            .contains(&method.as_str()),
                        "unexpected call {word:?} in a method router: {expr}"
                    );
                    found.push(method);
                }
                depth += 1;
            }
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    found
}

/// Resolve a route's path expression: a literal, a `const` (possibly qualified), or
/// `&format!("{CONST}/{{id}}")`.
fn resolve(expr: &str, consts: &BTreeMap<String, String>) -> String {
    let expr = expr.trim();
    let literal = |s: &str| s.trim().trim_matches('"').to_owned();
    if expr.starts_with('"') {
        return literal(expr);
    }
    if let Some(inner) = expr
        .strip_prefix("&format!(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let template = literal(inner);
        let mut out = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            if rest[open..].starts_with("{{") {
                let close = rest[open..].find("}}").unwrap() + open;
                out.push('{');
                out.push_str(&rest[open + 2..close]);
                out.push('}');
                rest = &rest[close + 2..];
            } else {
                let close = rest[open..].find('}').unwrap() + open;
                out.push_str(&consts[&rest[open + 1..close]]);
                rest = &rest[close + 1..];
            }
        }
        out.push_str(rest);
        return out;
    }
    let name = expr.rsplit("::").next().unwrap();
    consts
        .get(name)
        .unwrap_or_else(|| panic!("route path {expr} is not a known &str const"))
        .clone()
}

/// (method, path) of every route the main router serves, from the source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // Paths the app shares with the server are consts of the core.
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src/flows");
    let mut core_files = Vec::new();
    rust_files(&core, &mut core_files);
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, strip_comments(&std::fs::read_to_string(f).unwrap()))
        })
        .collect();
    // Every `const NAME: &str = "/…";`; a name with two values would be ambiguous.
    let core_texts: Vec<String> = core_files
        .iter()
        .map(|f| strip_comments(&std::fs::read_to_string(f).unwrap()))
        .collect();
    let mut consts = BTreeMap::new();
    for text in texts.iter().map(|(_, t)| t).chain(&core_texts) {
        for line in text.lines() {
            let Some(rest) = line.trim().split("const ").nth(1) else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            let value = value.trim_end_matches("\";").to_owned();
            if !value.starts_with('/') {
                continue;
            }
            if let Some(old) = consts.insert(name.to_owned(), value.clone()) {
                assert_eq!(old, value, "const {name} has two values");
            }
        }
    }
    let mut routes = BTreeSet::new();
    for (rel, text) in &texts {
        if OTHER_LISTENER.iter().any(|o| rel.starts_with(o)) {
            continue;
        }
        for (at, _) in text.match_indices(".route(") {
            let (mut args, _) = arguments(text, at + ".route(".len());
            args.retain(|a| !a.trim().is_empty()); // a trailing comma
            assert_eq!(
                args.len(),
                2,
                "{rel}: .route( with {} arguments",
                args.len()
            );
            let path = resolve(&args[0], &consts);
            for m in methods(&args[1]) {
                routes.insert((m, path.clone()));
            }
        }
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "delete", "patch", "head", "options"] {
            if item.get(m).is_some() {
                ops.insert((m.to_owned(), path.clone()));
            }
        }
    }
    ops
}

fn document(oidc: bool) -> Value {
    serde_json::from_str(&companion_server::openapi::document(oidc).to_json().unwrap()).unwrap()
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let served = routes_in_source();
    // The scanner itself must see the routes it is meant to guard.
    for expected in [
        ("post", "/api/v1/card/challenge"),
        ("get", "/api/v1/desktop/rendezvous/{rid}"),
        ("post", "/api/v1/abroad/login"),
        ("get", "/oidc/consent/{id}"),
        ("post", "/oidc/userinfo"),
        ("get", "/openapi.json"),
        ("get", "/static/app.js"),
    ] {
        assert!(
            served.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not found in the source: {served:?}"
        );
    }
    let doc = documented(&document(true));
    let missing: Vec<_> = served.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes without an OpenAPI operation (add #[utoipa::path] and list it in ApiDoc/OidcDoc): {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}

/// Every `{"$ref": "#/components/…"}` in `v` names something that exists.
fn check_refs(v: &Value, doc: &Value, at: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let pointer = r.strip_prefix('#').expect("local $ref");
                assert!(doc.pointer(pointer).is_some(), "{at}: dangling $ref {r}");
            }
            for (k, v) in m {
                check_refs(v, doc, &format!("{at}/{k}"));
            }
        }
        Value::Array(a) => a.iter().for_each(|v| check_refs(v, doc, at)),
        _ => {}
    }
}

/// The JSON pointer of the first place `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, format!("{at}/{k}")),
                _ => Some(format!("{at}/{k}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}"))),
        _ => (a != b).then_some(at),
    }
}

#[test]
fn the_document_is_openapi_3_1_and_complete() {
    for oidc in [false, true] {
        let model = companion_server::openapi::document(oidc);
        let json = model.to_json().unwrap();
        // Round trip through utoipa's model of OpenAPI 3.1: nothing it cannot read.
        let back: utoipa::openapi::OpenApi = serde_json::from_str(&json).unwrap();
        let again: Value = serde_json::from_str(&back.to_json().unwrap()).unwrap();
        let doc: Value = serde_json::from_str(&json).unwrap();
        if let Some(at) = first_difference(&doc, &again, String::new()) {
            panic!("the document does not read back the same at {at}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
        // operationId is unique (OpenAPI 3.1 §4.8.10.1): handlers of different modules
        // share fn names.
        let mut ids = BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op.get("operationId") {
                    assert!(ids.insert(id.to_string()), "operationId {id} twice");
                }
            }
        }
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        check_refs(&doc, &doc, "");
        let has_oidc = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.starts_with("/oidc/"));
        assert_eq!(has_oidc, oidc);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path}: no response");
                if !path.starts_with("/api/v1/") {
                    continue;
                }
                // The API's refusals: storage failures always, malformed bodies where
                // there is a body, each an ApiError.
                let statuses: &[&str] = if op.get("requestBody").is_some() {
                    &["400", "500"]
                } else {
                    &["500"]
                };
                for &status in statuses {
                    let r = &responses
                        .get(status)
                        .unwrap_or_else(|| panic!("{method} {path}: no {status}"))["$ref"];
                    let r = r.as_str().unwrap().trim_start_matches('#');
                    assert_eq!(
                        doc.pointer(r).unwrap()["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ApiError",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    // The error body names every code the app maps.
    let doc = document(false);
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "bad_request",
        "not_this_browser",
        "rate_limited",
        "internal",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code}");
    }
}

#[tokio::test]
async fn the_server_serves_the_document_of_what_it_runs() {
    let db = sqlite();
    let plain = Harness::start(&db).await;
    let (status, body) = plain.get(&plain.browser(), "/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(body, document(false));
    drop(plain);
    let db = sqlite();
    let key = OpKey::generate().unwrap().0;
    let with_oidc = Harness::start_with(&db, |c| c.oidc = Some(OidcConfig::new(key))).await;
    let (status, body) = with_oidc.get(&with_oidc.browser(), "/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(body, document(true));
}

/// What schemathesis found: axum's own refusals of a form or query (plain-text 415, 422,
/// 400) were outside the contract. Now each is the endpoint's documented malformed-request
/// answer.
#[tokio::test]
async fn malformed_forms_and_queries_get_the_documented_answers() {
    let db = sqlite();
    let key = OpKey::generate().unwrap().0;
    let h = Harness::start_with(&db, |c| c.oidc = Some(OidcConfig::new(key))).await;
    let client = h.browser();
    // OAuth endpoints: invalid_request, a JSON body.
    for path in ["/oidc/token", "/oidc/revocation", "/oidc/introspection"] {
        let r = client.post(h.url(path)).body("x").send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    // Pages: the provider's 400 page.
    for (path, body) in [
        ("/oidc/authorization", None),
        ("/oidc/logout", None),
        ("/oidc/consent/x", Some("other=1")),
    ] {
        let mut req = client.post(h.url(path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
    }
    // The API's long polls: an ApiError.
    for path in [
        "/api/v1/desktop/rendezvous/x?after=a&after=b",
        "/api/v1/approvals/x?after=a&after=b",
    ] {
        let (status, body) = h.get(&client, path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"], "bad_request", "{path}");
    }
}
