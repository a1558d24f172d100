//! `cie-companion doctor` without pcscd (the pcscd line fails with the fix, exit status 9)
//! and `--server` against the reference server in-process: its TLS-1.2-only card-login
//! origin (the CIE and the CNS log in), its TLS 1.2 + 1.3 one (a CIE cannot), its main
//! origin (no client certificate asked), and a port where nothing listens.

use std::path::Path;
use std::process::{Command, Output};

use companion_server::{Config, RunningServer};

fn doctor(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .arg("doctor")
        .args(args)
        .env("HOME", home)
        // No pcscd for this process, whatever runs on the machine.
        .env("PCSCLITE_CSOCK_NAME", home.join("no-pcscd.sock"))
        .output()
        .expect("run cie-companion doctor")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The line of check `name` (plain output).
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(&format!(" {name}: ")))
        .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
}

async fn server(dir: &Path) -> RunningServer {
    let mut config = Config::new(format!("sqlite:{}", dir.join("s.db").display()));
    config
        .card_cas
        .push(card_sim::ias::pki::TEST_CA_CERT_DER.to_vec());
    config.mtls_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.mtls_tls12_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    companion_server::serve(config, listener)
        .await
        .expect("server starts")
}

#[test]
fn no_pcscd_fails_with_the_fix() {
    let home = tempfile::tempdir().expect("tempdir");
    let o = doctor(home.path(), &["--plain"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(9), "{out}");
    let pcscd = line(&out, "pcscd");
    assert!(pcscd.starts_with("[FAIL] pcscd:"), "{out}");
    assert!(
        out.contains("systemctl start pcscd") && out.contains("apt install pcscd"),
        "{out}"
    );
    assert!(out.contains("avvialo"), "{out}");
    // Not a terminal: ASCII marks.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with('[') || l.starts_with("    -> ")),
        "{stdout}"
    );
    assert!(out.contains("Errore:"), "{out}");
}

#[test]
fn server_tls_versions_and_client_certificate() {
    let home = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(server(home.path()));
    let tls12 = s.mtls_tls12_addr().expect("TLS 1.2 origin");
    let both = s.mtls_addr().expect("TLS 1.2+1.3 origin");

    let o = doctor(
        home.path(),
        &[
            "--plain",
            "--server",
            &format!("https://{tls12}/login/card"),
        ],
    );
    let out = text(&o);
    let l = line(&out, "server");
    assert!(l.starts_with("[OK]   server:"), "{out}");
    assert!(
        l.contains("TLS 1.2 offered, asks for a client certificate"),
        "{l}"
    );
    assert!(
        l.contains("TLS 1.3 not offered") && l.contains("a browser gets TLS 1.2"),
        "{l}"
    );
    assert!(l.contains("the CIE and the CNS can log in"), "{l}");

    // No CIE in a reader here: a warning, not a failure.
    let o = doctor(
        home.path(),
        &["--plain", "--server", &format!("https://{both}/")],
    );
    let out = text(&o);
    let l = line(&out, "server");
    assert!(l.starts_with("[WARN] server:"), "{out}");
    assert!(
        l.contains("TLS 1.3 offered, asks for a client certificate"),
        "{l}"
    );
    assert!(
        l.contains("a browser gets TLS 1.3") && l.contains("a CIE cannot"),
        "{l}"
    );
    assert!(out.contains("--mtls-tls12-listen"), "{out}");

    // JSON for support tools.
    let o = doctor(
        home.path(),
        &["--json", "--server", &format!("https://{both}/")],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    let checks = v["checks"].as_array().expect("checks");
    let srv = checks
        .iter()
        .find(|c| c["check"] == "server")
        .expect("server check");
    assert_eq!(srv["status"], "warn");
    assert!(
        srv["fix_it"]
            .as_str()
            .is_some_and(|f| f.contains("TLS 1.2"))
    );

    // The main origin asks for no card.
    let main = s.local_addr();
    let o = doctor(
        home.path(),
        &["--plain", "--server", &format!("https://{main}")],
    );
    let out = text(&o);
    let l = line(&out, "server");
    assert!(
        l.starts_with("[FAIL] server:") && l.contains("does not ask for a card"),
        "{out}"
    );

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let o = doctor(
        home.path(),
        &["--plain", "--server", &format!("https://127.0.0.1:{port}/")],
    );
    let out = text(&o);
    assert!(line(&out, "server").starts_with("[FAIL] server:"), "{out}");
    assert!(out.contains("cannot connect"), "{out}");
    let o = doctor(home.path(), &["--plain", "--server", "http://example.it/"]);
    assert!(text(&o).contains("use an https:// address"), "{}", text(&o));
    rt.block_on(s.shutdown());
}
