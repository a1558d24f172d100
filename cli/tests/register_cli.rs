//! `cie-companion register` (issue 12): the real binary, no terminal, against the reference
//! server on loopback (real TLS, pinned key, SQLite) that trusts the virtual CIE's test
//! CSCA. One card registers once; the second time the server refuses it; a wrong CAN stops
//! at the chip with the Italian message and sends nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::sync::Arc;

use companion_server::registration::RegistrationTrust;
use companion_server::{Config, RunningServer};

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn register(server: &RunningServer, extra: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .args(["register", "--server"])
        .arg(server.origin().as_string())
        .arg("--server-key")
        .arg(format!("sha256/{}", server.spki_pin()))
        .args(extra)
        .env_remove("CIE_COMPANION_CAN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn server(rt: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> RunningServer {
    let mut config = Config::new(format!(
        "sqlite:{}",
        dir.path().join("register.sqlite").display()
    ));
    config
        .card_cas
        .push(card_sim::ias::pki::TEST_CA_CERT_DER.to_vec());
    let mut trust = RegistrationTrust::new();
    trust.add_csca_der(card_sim::emrtd::CSCA_CERT_DER).unwrap();
    config.registration = Some(Arc::new(trust));
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        companion_server::serve(config, listener).await.unwrap()
    })
}

#[test]
fn the_virtual_cie_registers_once_and_the_second_time_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = server(&rt, &dir);

    // No terminal and no --yes: refused before the card is touched (usage, exit 2).
    let o = register(&server, &["--can", "123456"]);
    assert_eq!(o.code, Some(2), "{}\n{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("--yes"), "{}", o.stderr);

    // A wrong CAN: PACE fails on the chip, the message says so, nothing is sent (the right
    // CAN registers afterwards as a new identity).
    let o = register(&server, &["--can", "654321", "--yes"]);
    assert_eq!(o.code, Some(7), "{}\n{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("CAN"), "{}", o.stderr);
    assert!(
        !o.stdout.contains("Registrazione completata"),
        "{}",
        o.stdout
    );

    let o = register(&server, &["--can", "123456", "--yes"]);
    assert_eq!(o.code, Some(0), "{}\n{}", o.stdout, o.stderr);
    for shown in [
        "MARIA TESTER",
        "codice fiscale TSTTST80A01H501X",
        "documento CA00000AA",
        "con foto",
        "Confermi? sì (--yes)",
        "identità nuova",
        "Registrazione completata: MARIA TESTER (TSTTST80A01H501X), livello 3",
    ] {
        assert!(o.stdout.contains(shown), "{shown:?} missing:\n{}", o.stdout);
    }

    // The same card again: the server refuses it, exit 7, in both languages.
    let o = register(&server, &["--can", "123456", "--yes"]);
    assert_eq!(o.code, Some(7), "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("carta già registrata"), "{}", o.stdout);
    assert!(o.stderr.contains("Errore:"), "{}", o.stderr);
    assert!(
        !o.stdout.contains("Registrazione completata"),
        "{}",
        o.stdout
    );

    // A key that is not the server's (the pin with its first character changed): refused
    // before anything is sent.
    let pin = server.spki_pin();
    let other = format!(
        "{}{}",
        if pin.starts_with('A') { 'B' } else { 'A' },
        &pin[1..]
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .args(["register", "--yes", "--can", "123456", "--server"])
        .arg(server.origin().as_string())
        .arg("--server-key")
        .arg(other)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not be verified"), "{stderr}");
}
