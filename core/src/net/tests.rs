//! The client against a tiny TLS listener (rcgen certificate, tokio-rustls): real
//! handshakes for the pin check, counted requests for the retry policy. Both clients — the
//! core's own and a shell-like one through `platform` — so only with `rustls-https`.
#![cfg(feature = "rustls-https")]

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
    for path in [
        "//evil.example/x",
        "@evil.example/x",
        "x",
        "/\\evil.example/x",
        "/x#y",
        "/x y",
        "/x%",
        "/x%4",
        "/x%zz",
        "/è",
    ] {
        let err = api
            .get::<Ok_>(&listed, path, REQUEST_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, NetError::UntrustedOrigin { .. }), "{path}");
    }
    // Escapes and queries of RFC 3986 are fine.
    assert_eq!(
        api.url(&listed, "/a%2Fb?c=d&e=f~").unwrap(),
        format!("{}/a%2Fb?c=d&e=f~", server.origin)
    );
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

// ---- The platform's HTTPS stack (platform.rs), emulated as a shell would write it ----

/// What a shell does, in Rust: its own TLS client whose trust callback asks the core's
/// check about the leaf certificate, then the request as the core built it.
struct ShellTransport {
    check: Arc<platform::ServerKeyCheck>,
    /// A careless shell: trusts every server without asking the check.
    skip_check: bool,
    sent: Arc<Mutex<Vec<platform::HttpsRequest>>>,
}

#[derive(Debug)]
struct AskTheCore {
    check: Arc<platform::ServerKeyCheck>,
    skip: bool,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for AskTheCore {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.skip || self.check.accepts(end_entity.to_vec()) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server key refused".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[async_trait::async_trait]
impl platform::HttpsTransport for ShellTransport {
    async fn send(
        &self,
        request: platform::HttpsRequest,
    ) -> Result<platform::HttpsAnswer, platform::HttpsFailure> {
        use platform::HttpsFailure as F;
        self.sent.lock().unwrap().push(request.clone());
        let url = reqwest::Url::parse(&request.url).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AskTheCore {
                check: self.check.clone(),
                skip: self.skip_check,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
            .await
            .map_err(|e| F::Offline {
                reason: e.to_string(),
            })?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| {
                if e.to_string().contains("server key refused") {
                    F::ServerKeyRefused
                } else {
                    F::Tls {
                        reason: e.to_string(),
                    }
                }
            })?;
        let body = request.body.unwrap_or_default();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n",
            match request.method {
                platform::HttpsMethod::Get => "GET",
                platform::HttpsMethod::Post => "POST",
            },
            url.path(),
            body.len()
        );
        for h in &request.headers {
            head.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        head.push_str("\r\n");
        let io = |e: std::io::Error| F::Offline {
            reason: e.to_string(),
        };
        tls.write_all(head.as_bytes()).await.map_err(io)?;
        tls.write_all(&body).await.map_err(io)?;
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Err(F::Offline {
                reason: "connection closed".into(),
            });
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let date = head
            .lines()
            .find_map(|l| l.strip_prefix("date: "))
            .map(str::to_owned);
        let body = raw[end + 4..].to_vec();
        if body.len() as u64 > request.max_body {
            return Err(F::TooLarge);
        }
        Ok(platform::HttpsAnswer { status, date, body })
    }
}

fn platform_client(
    server: &Server,
    pin: &str,
    skip_check: bool,
) -> (ApiClient, Arc<Mutex<Vec<platform::HttpsRequest>>>) {
    let check = Arc::new(
        platform::ServerKeyCheck::with_pins(parse_pins(&[pin.to_owned()]).unwrap()).unwrap(),
    );
    let sent = Arc::new(Mutex::new(Vec::new()));
    let transport = Arc::new(ShellTransport {
        check: check.clone(),
        skip_check,
        sent: sent.clone(),
    });
    let api = ApiClient::with_platform(std::slice::from_ref(&server.origin), check, transport)
        .unwrap()
        .with_backoff(Duration::from_millis(10));
    (api, sent)
}

#[tokio::test]
async fn through_the_platform_the_right_key_answers_and_the_clock_is_read() {
    let server = serve(Reply::With(200, r#"{"ok":true}"#)).await;
    let (api, sent) = platform_client(&server, &server.pin, false);
    let origin = api.origin(&server.origin).unwrap();
    let answer: Ok_ = api
        .post(
            &origin,
            "/api/v1/x",
            &serde_json::json!({"a": 1}),
            Retry::Never,
        )
        .await
        .unwrap();
    assert!(answer.ok);
    let offset = api.clock_offset().expect("Date recorded").offset_seconds;
    assert!((85..=95).contains(&offset), "{offset}");
    let sent = sent.lock().unwrap();
    let r = &sent[0];
    assert_eq!(r.method, platform::HttpsMethod::Post);
    assert_eq!(r.url, format!("{}/api/v1/x", server.origin));
    assert_eq!(r.body.as_deref(), Some(&br#"{"a":1}"#[..]));
    assert_eq!(r.max_body, MAX_BODY as u64);
    assert_eq!(r.timeout_ms, REQUEST_TIMEOUT.as_millis() as u64);
    assert!(
        r.headers
            .iter()
            .any(|h| h.name == "Content-Type" && h.value == "application/json")
    );
    // The request's Debug shows its size, never its body.
    assert!(!format!("{r:?}").contains("\"a\""));
}

#[tokio::test]
async fn through_the_platform_a_wrong_key_stops_the_handshake_before_any_request() {
    let server = serve(Reply::With(200, r#"{"ok":true}"#)).await;
    let other = pin_of(&rcgen::KeyPair::generate().unwrap());
    let (api, sent) = platform_client(&server, &other, false);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .get::<Ok_>(&origin, "/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::UntrustedServer { .. }), "{err:?}");
    // Not retried (not transient), and nothing reached the server.
    assert_eq!(sent.lock().unwrap().len(), 1);
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_shell_that_never_asks_the_core_about_the_key_gets_no_answer() {
    let server = serve(Reply::With(200, r#"{"ok":true}"#)).await;
    let (api, _) = platform_client(&server, &server.pin, true);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .get::<Ok_>(&origin, "/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::UntrustedServer { .. }), "{err:?}");
}

#[tokio::test]
async fn through_the_platform_refusals_and_retries_follow_the_same_rules() {
    let server = serve(Reply::With(503, "overloaded")).await;
    let (api, sent) = platform_client(&server, &server.pin, false);
    let origin = api.origin(&server.origin).unwrap();
    let err = api
        .post::<_, Ok_>(&origin, "/api/v1/card/login", &(), Retry::Never)
        .await
        .unwrap_err();
    assert_eq!(err, NetError::Status { status: 503 });
    assert_eq!(sent.lock().unwrap().len(), 1);
    let _ = api
        .get::<Ok_>(&origin, "/api/v1/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(sent.lock().unwrap().len(), 1 + IDEMPOTENT_ATTEMPTS as usize);
    // Off the list: refused before the shell is called.
    let err = api
        .get::<Ok_>(&origin, "//evil.example/x", REQUEST_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::UntrustedOrigin { .. }), "{err:?}");
    assert_eq!(sent.lock().unwrap().len(), 1 + IDEMPOTENT_ATTEMPTS as usize);
}

/// A shell that never answers: the core's own limit ends the wait.
struct Silent;

#[async_trait::async_trait]
impl platform::HttpsTransport for Silent {
    async fn send(
        &self,
        _: platform::HttpsRequest,
    ) -> Result<platform::HttpsAnswer, platform::HttpsFailure> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_shell_that_never_answers_times_out() {
    let check = Arc::new(platform::ServerKeyCheck::with_pins(vec![[7; 32]]).unwrap());
    let api =
        ApiClient::with_platform(&["https://a.example".into()], check, Arc::new(Silent)).unwrap();
    let origin = api.origin("https://a.example").unwrap();
    let err = api
        .post::<_, Ok_>(&origin, "/x", &(), Retry::Never)
        .await
        .unwrap_err();
    assert_eq!(err, NetError::Timeout);
}

#[test]
fn the_key_check_takes_certificates_not_bytes() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let check = platform::ServerKeyCheck::with_pins(parse_pins(&[pin_of(&key)]).unwrap()).unwrap();
    assert!(check.accepts(cert.der().to_vec()));
    assert!(!check.accepts(b"junk".to_vec()));
    assert!(!check.accepts(Vec::new()));
    let other = rcgen::KeyPair::generate().unwrap();
    let stranger = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&other)
        .unwrap();
    assert!(!check.accepts(stranger.der().to_vec()));
    assert_eq!(check.accepted_count(), 1);
    assert!(platform::ServerKeyCheck::with_pins(Vec::new()).is_err());
}
