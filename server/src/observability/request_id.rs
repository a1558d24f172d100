//! Request ids: the caller's `x-request-id` when it is one we can log safely, else ours.

use axum::http::HeaderMap;

/// The header read and echoed.
pub const HEADER: &str = "x-request-id";

/// Longest id taken from a caller (a UUID is 36, a W3C trace id 32).
pub const MAX_LEN: usize = 64;

/// The caller's id, if it is 1..=[`MAX_LEN`] characters of `A-Z a-z 0-9 - _ . :`: anything
/// else (a newline, a quote, a megabyte) could forge or bloat log lines, so it is replaced.
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(HEADER)?.to_str().ok()?;
    valid(value).then(|| value.to_owned())
}

/// Whether `id` may be logged as it is.
pub fn valid(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new id: 12 random bytes, base64url (16 characters); a process counter should the OS
/// have no randomness to give (the id only correlates lines, it guards nothing).
pub fn generate() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    crate::random_id::<12>()
        .unwrap_or_else(|_| format!("local-{}", FALLBACK.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn takes_only_safe_ids() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HEADER, HeaderValue::from_str(v).expect("header value"));
            from_headers(&h)
        };
        assert_eq!(
            with("3f2a9c1e-0b7d-4c55-9a61-2f7e8d9c0b1a").as_deref(),
            Some("3f2a9c1e-0b7d-4c55-9a61-2f7e8d9c0b1a")
        );
        assert_eq!(with("abc.DEF_1:2").as_deref(), Some("abc.DEF_1:2"));
        assert_eq!(with(""), None);
        assert_eq!(with("a b"), None);
        assert_eq!(with("a\"b"), None);
        assert_eq!(with("x=1"), None);
        assert_eq!(with(&"a".repeat(MAX_LEN)).map(|s| s.len()), Some(MAX_LEN));
        assert_eq!(with(&"a".repeat(MAX_LEN + 1)), None);
        assert_eq!(from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
