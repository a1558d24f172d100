//! What the server logs about a request, at the most verbose level: the request id and the
//! route template, never the raw path (rendezvous ids, tokens) nor the values of a body it
//! could not parse (serde's messages quote them).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

/// Every log line of the process, in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_routes_and_request_ids_never_values() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let db = sqlite();
    let h = Harness::start(&db).await;
    let client = h.other_client();
    // Values of the wrong type: serde would quote them in its error.
    let (s, _) = h
        .post(
            &client,
            "/api/v1/abroad/login",
            &json!({"codice_fiscale": 4_711_080_815_u64, "pin": 87_654_321_u64}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .post(&client, "/api/v1/otp/login", &json!({"code": 918_273_u64}))
        .await;
    assert!(s == 400 || s == 404, "{s}");
    let r = client
        .post(h.url("/api/v1/abroad/login"))
        .header("x-request-id", "log-test-1")
        .header("content-type", "application/json")
        .body(r#"{"codice_fiscale": "RSSMRA80A01H501U", "pin": ["K7W9X2QZ"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A rendezvous id in the path.
    let rid = "Zm9yZ2VkLXJlbmRlenZvdXMtaWQ";
    let (s, _) = h
        .get(&client, &format!("/api/v1/desktop/rendezvous/{rid}"))
        .await;
    assert!(s >= 400);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("bad JSON body"), "{log}");
    assert!(
        log.lines().any(|l| l
            .contains("request{id=log-test-1 method=POST route=/api/v1/abroad/login}")
            && l.contains("answered status=400")),
        "{log}"
    );
    assert!(
        log.contains("route=/api/v1/desktop/rendezvous/{rid}"),
        "{log}"
    );
    for secret in [
        "4711080815",
        "87654321",
        "918273",
        "K7W9X2QZ",
        "RSSMRA80A01H501U",
        rid,
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
