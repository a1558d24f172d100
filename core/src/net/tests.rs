//! The client against a tiny TLS listener (rcgen certificate, tokio-rustls): real
//! handshakes for the pin check, counted requests for the retry policy.

use super::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the listener answers.
#[derive(Clone, Copy)]
enum Reply {
    /// Status and body.
    With(u16, &'static str),
    /// Read the request, then close without answering (the answer is lost).
    Drop,
}

struct Server {
    origin: String,
    pin: String,
    requests: Arc<AtomicUsize>,
}

fn pin_of(key: &rcgen::KeyPair) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&Sha256::digest(
        rcgen::PublicKeyData::subject_public_key_info(key),
    ))
}

async fn serve(reply: Reply) -> Server {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if read_request(&mut tls).await.is_none() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                if let Reply::With(status, body) = reply {
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\ndate: {}\r\nconnection: close\r\n\r\n",
                        body.len(),
                        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90)),
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(body.as_bytes()).await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    Server {
        origin: format!("https://127.0.0.1:{port}"),
        pin: pin_of(&key),
        requests,
    }
}

/// Read one HTTP/1.1 request (head and `content-length` body); `None` on EOF.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

fn client(server: &Server, pin: &str) -> ApiClient {
    ApiClient::new(std::slice::from_ref(&server.origin), &[pin.to_owned()])
        .unwrap()
        .with_backoff(Duration::from_millis(10))
}

#[derive(Debug, serde::Deserialize)]
struct Ok_ {
    ok: bool,
}

#[tokio::test]
async fn right_pin_connects_and_records_the_server_clock() {
    let server = serve(Reply::With(200, r#"{"ok":true}"#)).await;
    let api = client(&server, &server.pin);
    let origin = api.origin(&server.origin).unwrap();
    assert!(api.clock_offset().is_none());
    let answer: Ok_ = api.get(&origin, "/x", REQUEST_TIMEOUT).await.unwrap();
    assert!(answer.ok);
    let offset = api.clock_offset().expect("Date recorded").offset_seconds;
    assert!((85..=95).contains(&offset), "{offset}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn wrong_pin_is_refused_in_the_handshake() {
    let server = serve(Reply::With(200, r#"{"ok":true}"#)).await;
    let other = pin_of(&rcgen::KeyPair::generate().unwrap());
    let api = client(&server, &other);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .post::<_, Ok_>(&origin, "/x", &(), Retry::Idempotent)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::UntrustedServer { .. }), "{err:?}");
    assert!(err.message_it().contains("non proseguire"));
    // Not retried, and no request ever reached the listener.
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn origins_off_the_list_are_refused_before_connecting() {
    let server = serve(Reply::With(200, r#"{"ok":true}"#)).await;
    let api = client(&server, &server.pin);
    assert!(matches!(
        api.origin("https://evil.example"),
        Err(NetError::UntrustedOrigin { .. })
    ));
    let listed = api.origin(&server.origin).unwrap();
    let other = Origin::parse("https://127.0.0.1:1").unwrap();
    let err = api
        .get::<Ok_>(&other, "/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::UntrustedOrigin { .. }), "{err:?}");
    for path in ["//evil.example/x", "@evil.example/x", "x"] {
        let err = api
            .get::<Ok_>(&listed, path, REQUEST_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, NetError::UntrustedOrigin { .. }), "{path}");
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn error_bodies_become_typed_refusals() {
    let server = serve(Reply::With(
        400,
        r#"{"error":"wrong_code","message":"wrong code","message_it":"codice errato: riprova","tries_left":2}"#,
    ))
    .await;
    let api = client(&server, &server.pin);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .post::<_, Ok_>(&origin, "/x", &(), Retry::Never)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        NetError::Refused(ServerRefusal {
            status: 400,
            code: ErrorCode::WrongCode,
            message: "wrong code".into(),
            message_it: "codice errato: riprova".into(),
            tries_left: Some(2),
            retry_after: None,
        })
    );
    assert_eq!(err.message_it(), "codice errato: riprova");
}

#[test]
fn bodies_map_without_panics() {
    assert_eq!(
        refusal_from_body(502, b"<html>Bad gateway</html>"),
        NetError::Status { status: 502 }
    );
    assert_eq!(
        refusal_from_body(500, b""),
        NetError::Status { status: 500 }
    );
    let limited = refusal_from_body(
        429,
        br#"{"error":"rate_limited","message":"slow down","message_it":"","retry_after":30}"#,
    );
    let NetError::Refused(r) = &limited else {
        panic!("{limited:?}")
    };
    assert_eq!((r.code, r.retry_after), (ErrorCode::RateLimited, Some(30)));
    // An empty Italian text falls back to ours.
    assert!(limited.message_it().contains("attendi"));
    // An unknown code is not an `ApiError`: a bare status.
    assert_eq!(
        refusal_from_body(
            400,
            br#"{"error":"brand_new","message":"x","message_it":"y"}"#
        ),
        NetError::Status { status: 400 }
    );
}

#[tokio::test]
async fn bad_success_bodies_are_bad_responses() {
    let server = serve(Reply::With(200, r#"{"ok":"yes"}"#)).await;
    let api = client(&server, &server.pin);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .get::<Ok_>(&origin, "/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::BadResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn only_idempotent_requests_are_retried() {
    let server = serve(Reply::With(503, "overloaded")).await;
    let api = client(&server, &server.pin);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .post::<_, Ok_>(&origin, "/api/v1/card/login", &(), Retry::Never)
        .await
        .unwrap_err();
    assert_eq!(err, NetError::Status { status: 503 });
    assert_eq!(server.requests.load(Ordering::SeqCst), 1, "sent once");

    let err = api
        .post::<_, Ok_>(&origin, "/api/v1/card/challenge", &(), Retry::Idempotent)
        .await
        .unwrap_err();
    assert_eq!(err, NetError::Status { status: 503 });
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1 + IDEMPOTENT_ATTEMPTS as usize
    );
}

#[tokio::test]
async fn a_lost_answer_is_not_resent() {
    let server = serve(Reply::Drop).await;
    let api = client(&server, &server.pin);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .post::<_, Ok_>(&origin, "/api/v1/rendezvous/r/approve", &(), Retry::Never)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Offline { .. }), "{err:?}");
    assert!(err.message_it().contains("controlla la connessione"));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    let _ = api
        .get::<Ok_>(&origin, "/api/v1/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1 + IDEMPOTENT_ATTEMPTS as usize
    );
}

#[test]
fn configuration_is_checked() {
    let pin = data_encoding::BASE64URL_NOPAD.encode(&[0u8; 32]);
    assert!(ApiClient::new(&["http://a.it".into()], std::slice::from_ref(&pin)).is_err());
    assert!(ApiClient::new(&["https://a.it".into()], &["short".into()]).is_err());
    assert!(ApiClient::new(&[], std::slice::from_ref(&pin)).is_err());
    assert!(ApiClient::new(&["https://a.it".into()], &[pin]).is_ok());
}
