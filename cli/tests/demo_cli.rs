//! `cie-companion demo` as the README runs it: the real binary, no terminal, the embedded
//! server (SQLite, and PostgreSQL when the test database is there), the virtual CIE.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};

fn demo(extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .arg("demo")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_the_logins(stdout: &str) {
    let logins: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("Accesso effettuato"))
        .collect();
    assert_eq!(
        logins.len(),
        7,
        "phone, desktop QR by card, app approval, desktop QR by device key, PIN abroad, PIN + OTP, PIN + app:\n{stdout}"
    );
    for login in &logins[..4] {
        assert!(
            login.contains("MARIA TESTER (TSTTST80A01H501X), livello"),
            "{stdout}"
        );
    }
    assert!(
        logins[0].starts_with("[telefono]") && logins[0].contains("livello 3"),
        "{stdout}"
    );
    assert!(
        logins[1].starts_with("[computer]") && logins[1].ends_with("livello 3"),
        "{stdout}"
    );
    assert!(
        logins[2].starts_with("[computer]") && logins[2].ends_with("livello 2"),
        "{stdout}"
    );
    assert!(
        logins[3].starts_with("[computer]") && logins[3].ends_with("livello 2"),
        "{stdout}"
    );
    // Residents abroad, after the main flows: the PIN issued, one half from each outbox,
    // the first login leads to the forced change, then the new PIN logs in at level 1; then
    // PIN + OTP, and the phone enrolled with a one-time code approves the last PIN login.
    assert!(
        logins[4].starts_with("[computer]")
            && logins[4].contains("con il PIN")
            && logins[4].contains("MARIO ROSSI (RSSMRA80A")
            && logins[4].ends_with("livello 1"),
        "{stdout}"
    );
    // An authenticator app added there (seed as QR and text, the first code confirms it):
    // PIN + the next code (level 2).
    assert!(
        logins[5].starts_with("[computer]")
            && logins[5].contains("con PIN + OTP")
            && logins[5].contains("MARIO ROSSI (RSSMRA80A")
            && logins[5].ends_with("livello 2"),
        "{stdout}"
    );
    assert!(
        logins[6].starts_with("[computer]")
            && logins[6].contains("con PIN + app")
            && logins[6].contains("MARIO ROSSI (RSSMRA80A")
            && logins[6].ends_with("livello 2"),
        "{stdout}"
    );
    let abroad = &stdout[stdout
        .find("== 4. Residenti all'estero")
        .unwrap_or_else(|| panic!("no residents-abroad step:\n{stdout}"))..];
    for step in [
        "PIN di 16 caratteri emesso",
        "prime 8 per e-mail a mario.rossi@example.org",
        "ultime 8 per posta a Calle Florida 100, Buenos Aires",
        "primo accesso: scegli un PIN di 8 caratteri",
        "PIN cambiato",
        "codice monouso",
        "dispositivo registrato con il codice, senza carta",
        "ora serve anche il telefono",
        "which number does the computer show?",
        "stato / state: consumed",
        "codice OTP attivo",
    ] {
        assert!(abroad.contains(step), "{step}:\n{stdout}");
    }
    assert!(
        !abroad.contains("K7W9X2QZ"),
        "the new PIN is not shown: {stdout}"
    );
    // Registration first (virtual card): the chip's data shown, then the server's verdict
    // (a database that saw this card before says so, and the demo goes on).
    let registered = stdout
        .lines()
        .position(|l| {
            l.contains("Registrazione completata: MARIA TESTER (TSTTST80A01H501X), livello 3")
                || l.contains("carta già registrata")
        })
        .unwrap_or_else(|| panic!("no registration:\n{stdout}"));
    let first_login = stdout
        .lines()
        .position(|l| l.contains("Accesso effettuato"))
        .unwrap();
    assert!(registered < first_login, "{stdout}");
    assert!(
        stdout.contains("codice fiscale TSTTST80A01H501X"),
        "{stdout}"
    );
    // Number matching: the number the desktop showed is among the phone's three choices.
    let shown = stdout
        .lines()
        .find_map(|l| l.split("pick this number in the app: ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let choices = stdout
        .lines()
        .find_map(|l| l.split("which number does the computer show? ").nth(1))
        .unwrap();
    assert_eq!(choices.split_whitespace().count(), 3, "{stdout}");
    assert!(choices.split_whitespace().any(|c| c == shown), "{stdout}");
    // The code the phone showed is what the desktop typed; the QR was drawn and scanned.
    assert_eq!(
        stdout.matches("Codice da digitare sul computer").count(),
        2,
        "{stdout}"
    );
    assert_eq!(stdout.matches("QR inquadrato").count(), 2, "{stdout}");
    assert!(stdout.contains("Demo completata"), "{stdout}");
    // Nothing secret on the screen: the PIN is never echoed.
    assert!(
        !stdout.contains("12345678") && !stdout.contains(" 5678"),
        "{stdout}"
    );
}

#[test]
fn demo_runs_the_three_flows_on_sqlite() {
    let (ok, stdout, stderr) = demo(&[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert_the_logins(&stdout);
    // A fresh database: the registration made the identity every login then reaches.
    assert!(stdout.contains("identità nuova"), "{stdout}");
}

#[test]
fn the_demo_runs_twice_on_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("twice.sqlite").display());
    let (ok, stdout, stderr) = demo(&["--database", &url]);
    assert!(ok, "{stdout}\n{stderr}");
    let (ok, stdout, stderr) = demo(&["--database", &url]);
    assert!(ok, "{stdout}\n{stderr}");
    assert_the_logins(&stdout);
    assert!(stdout.contains("carta già registrata"), "{stdout}");
}

#[test]
fn demo_runs_the_three_flows_on_postgresql() {
    let Ok(url) = std::env::var("CIE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CIE_TEST_POSTGRES_URL is not set"
        );
        eprintln!("NOTICE: CIE_TEST_POSTGRES_URL not set, skipping the PostgreSQL demo");
        return;
    };
    let (ok, stdout, stderr) = demo(&["--database", &url]);
    assert!(ok, "{stdout}\n{stderr}");
    assert_the_logins(&stdout);
    assert!(
        !stdout.contains(":cie@"),
        "the database password is not shown: {stdout}"
    );
}

#[test]
fn a_missing_reader_is_a_clear_error_not_a_hang() {
    let (ok, _, stderr) = demo(&["--reader", "usb"]);
    assert!(!ok);
    assert!(stderr.contains("is not a reader"), "{stderr}");
}
