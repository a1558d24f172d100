//! What every response of the server must carry (src/headers.rs), written out here again
//! so a change there is a change the tests see: the values, the Content-Security-Policy
//! rules every page's policy keeps, and the attributes of every cookie.
#![allow(dead_code)]

/// The headers every response carries, exactly once, with exactly this value.
pub const COMMON: [(&str, &str); 7] = [
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), hid=(), \
         midi=(), display-capture=(), publickey-credentials-get=(), \
         clipboard-read=(), browsing-topics=()",
    ),
];

/// The policy of every response that is not a page with its own.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What is wrong with one response's headers (`values(name)`: every value of a header,
/// lower-case name), described for a failure message; empty when nothing is.
pub fn problems(values: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in COMMON {
        let got = values(name);
        if got != [want] {
            out.push(format!("{name}: {got:?}, want [{want:?}]"));
        }
    }
    let csp = values("content-security-policy");
    match csp.as_slice() {
        [one] => out.extend(csp_problems(one)),
        _ => out.push(format!("content-security-policy: {csp:?}, want one")),
    }
    for cookie in values("set-cookie") {
        let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
        let same_site = attrs
            .iter()
            .any(|a| matches!(*a, "SameSite=Strict" | "SameSite=Lax"));
        if !attrs.contains(&"Secure") || !attrs.contains(&"HttpOnly") || !same_site {
            out.push(format!(
                "set-cookie {cookie:?}: want Secure, HttpOnly, SameSite"
            ));
        }
    }
    out
}

/// The rules every policy keeps: no framing, no `<base>`, a default of nothing, no inline
/// or evaluated script, nothing from another origin (only `'self'`, `'none'` and `data:`
/// images; a form may post to the relying party's origin, the consent page's one
/// exception).
fn csp_problems(csp: &str) -> Vec<String> {
    let mut out = Vec::new();
    let directives: Vec<(&str, Vec<&str>)> = csp
        .split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace();
            words.next().map(|name| (name, words.collect()))
        })
        .collect();
    let get = |name: &str| {
        directives
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    for (name, want) in [
        ("default-src", "'none'"),
        ("frame-ancestors", "'none'"),
        ("base-uri", "'none'"),
    ] {
        if get(name) != Some(vec![want]) {
            out.push(format!("CSP {csp:?}: want {name} {want}"));
        }
    }
    for (name, sources) in &directives {
        for s in sources {
            let allowed = matches!(*s, "'self'" | "'none'")
                || (*name == "img-src" && *s == "data:")
                || (*name == "form-action" && s.starts_with("https://"));
            if !allowed {
                out.push(format!("CSP {csp:?}: {name} allows {s}"));
            }
        }
    }
    out
}

/// [`problems`] of a `reqwest` response's headers.
pub fn problems_of(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    problems(|name| {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    })
}

/// [`problems`] of a raw HTTP/1.1 response head (`name: value` lines).
pub fn problems_of_head(head: &str) -> Vec<String> {
    problems(|name| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    })
}
