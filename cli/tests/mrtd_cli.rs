//! `cie-companion mrtd read` as a user runs it, on the in-process virtual cards (the PC/SC
//! path is exercised by tests/pcsc/run.sh through real pcscd + vpcd).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output, Stdio};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .stdin(Stdio::null())
        .args(args)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn reads_the_virtual_cie_with_the_can_and_saves_the_photo() {
    let dir = std::env::temp_dir().join(format!("cie-mrtd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("face.png");
    let jp2 = dir.join("face.jp2");
    let o = run(&[
        "mrtd",
        "read",
        "--can",
        "123456",
        "--photo",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = out(&o);
    for needle in [
        "Access / accesso: Pace",
        "CA00000AA (ITA)",
        "Codice fiscale:             TSTTST80A01H501X",
        "GENUINE",
        "AUTENTICO",
        "DG2 matches",
        "(60×80 PNG)",
        "Chip authentication / autenticazione del chip: passed",
        "Active authentication / autenticazione attiva: passed",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (60, 80));
    // Any other extension keeps the chip's own JPEG 2000 bytes.
    let o = run(&[
        "mrtd",
        "read",
        "--can",
        "123456",
        "--photo",
        jp2.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        std::fs::read(&jp2)
            .unwrap()
            .starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_and_the_bac_passport() {
    let o = run(&[
        "mrtd",
        "read",
        "--reader",
        "sim:passport",
        "--mrz",
        "L898902C,690806,940623",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["mrz"]["document_number"], "L898902C");
    assert_eq!(v["mrz"]["surname"], "ERIKSSON");
    assert_eq!(v["passive_authentication"]["valid"], true);
    assert_eq!(v["passive_authentication"]["data_groups"]["DG1"], "match");
    assert_eq!(
        v["chip_authentication"], "not_offered",
        "the specimen passport has no DG14"
    );
    assert_eq!(v["active_authentication"], "verified");
}

#[test]
fn wrong_can_and_missing_key_exit_2_with_one_line() {
    for args in [
        &["mrtd", "read", "--can", "654321"][..],
        &["mrtd", "read", "--can", "12345"],
        &["mrtd", "read"],
        &[
            "mrtd",
            "read",
            "--reader",
            "sim:passport",
            "--can",
            "123456",
        ],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("Errore:"), "{err}");
        assert!(out(&o).is_empty());
    }
    let o = run(&["mrtd", "read", "--can", "654321"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("CAN errato"));
}

#[test]
fn csca_from_a_master_list_file() {
    let dir = std::env::temp_dir().join(format!("cie-mrtd-ml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ml = dir.join("IT_MasterListCSCA.ml");
    std::fs::write(
        &ml,
        card_sim::emrtd::master_list(
            &[card_sim::emrtd::CSCA_CERT_DER],
            card_sim::emrtd::DS_CERT_DER,
        ),
    )
    .unwrap();
    let o = run(&[
        "mrtd",
        "read",
        "--can",
        "123456",
        "--csca",
        ml.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = out(&o);
    assert!(
        text.contains("master list: 1 CSCAs, signature valid"),
        "{text}"
    );
    assert!(text.contains("GENUINE"), "{text}");
    // A file that is neither: exit 2, one line.
    let junk = dir.join("junk.der");
    std::fs::write(&junk, b"\x30\x03\x02\x01\x00").unwrap();
    let o = run(&[
        "mrtd",
        "read",
        "--can",
        "123456",
        "--csca",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither a certificate nor a master list"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    // The reader of our output is gone before we write (as with `| head` after one line).
    let mut child = Command::new(env!("CARGO_BIN_EXE_cie-companion"))
        .args(["mrtd", "read", "--can", "123456"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
}
