//! The CNS applet against constructed exchanges: each test lists the exact command APDUs
//! (as OpenSC's itacns driver sends them, see `constants.rs`) and the card's answers.

use super::atr::ChipFamily;
use super::pin::CnsPin;
use super::{CnsApplet, CnsError, PinStatus};
use crate::apdu::{ApduChannel, ApduError, Command, Limits, Response};
use std::collections::VecDeque;
use std::sync::Mutex;

/// A channel that expects exact commands (short encoding) and gives canned answers.
struct Script(Mutex<VecDeque<(String, String)>>);

impl Script {
    fn new(steps: &[(&str, &str)]) -> Self {
        let clean = |s: &str| s.replace(' ', "").to_uppercase();
        Self(Mutex::new(
            steps.iter().map(|(c, r)| (clean(c), clean(r))).collect(),
        ))
    }
    fn done(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}

#[async_trait::async_trait]
impl ApduChannel for Script {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        let (want, resp) = self.0.lock().unwrap().pop_front().expect("extra APDU");
        assert_eq!(hex::encode_upper(cmd.encode(true).unwrap()), want);
        Response::from_bytes(hex::decode(resp).unwrap())
    }
    fn limits(&self) -> Limits {
        Limits {
            extended: true,
            max_command_data: 65535,
            max_response_data: 65536,
        }
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

const SELECT_ID: [(&str, &str); 3] = [
    ("00A4000C023F00", "9000"),
    ("00A4010C021000", "9000"),
    ("00A4020402100300", "6207 8002 0010 8201 01 9000"),
];
const SELECT_CERT: [(&str, &str); 3] = [
    ("00A4000C023F00", "9000"),
    ("00A4010C021100", "9000"),
    ("00A4020402110100", "6204 8002 0008 9000"),
];

fn selected(extra: &[(&str, &str)]) -> Script {
    let mut steps: Vec<(&str, &str)> = SELECT_ID.to_vec();
    steps.extend(SELECT_CERT);
    steps.extend_from_slice(extra);
    Script::new(&steps)
}

#[test]
fn recognised_by_its_files_and_read() {
    let s = selected(&[]);
    let cns = run(CnsApplet::select(&s, Some(ChipFamily::Athena))).unwrap();
    assert_eq!(cns.pin_reference(), 0x10);
    assert!(s.done());

    // Card id: 16 bytes, padding cut.
    let answer = format!("{}9000", hex::encode_upper(b"1234567890AB\0\0\0\0"));
    let read_id: Vec<(&str, &str)> = SELECT_ID
        .iter()
        .copied()
        .chain([("00B0000010", answer.as_str())])
        .collect();
    let s = selected(&read_id);
    let cns = run(CnsApplet::select(&s, None)).unwrap();
    assert_eq!(run(cns.read_card_id()).unwrap().as_str(), "1234567890AB");
    assert!(s.done());

    // Certificate: the DER SEQUENCE, the padding after it cut.
    let s = selected(
        &SELECT_CERT
            .iter()
            .copied()
            .chain([("00B0000008", "3003020101 000000 9000")])
            .collect::<Vec<_>>(),
    );
    let cns = run(CnsApplet::select(&s, None)).unwrap();
    assert_eq!(run(cns.read_certificate()).unwrap(), [0x30, 3, 2, 1, 1]);
    assert!(s.done());
}

#[test]
fn a_card_without_the_layout_is_not_a_cns() {
    let s = Script::new(&[("00A4000C023F00", "9000"), ("00A4010C021000", "6A82")]);
    assert_eq!(
        run(CnsApplet::select(&s, None)).unwrap_err(),
        CnsError::NotACns
    );
}

#[test]
fn pin_status_spends_nothing_and_finds_the_stincard_reference() {
    // Mask says Athena (ref 10) but the card only knows 90: the empty VERIFY finds it.
    let s = selected(&[("00200010", "6A88"), ("00200090", "63C2")]);
    let mut cns = run(CnsApplet::select(&s, Some(ChipFamily::Athena))).unwrap();
    assert_eq!(run(cns.pin_status()).unwrap(), PinStatus::TriesLeft(2));
    assert_eq!(cns.pin_reference(), 0x90);
    assert!(s.done());

    let s = selected(&[("00200010", "6700")]);
    let mut cns = run(CnsApplet::select(&s, None)).unwrap();
    assert_eq!(run(cns.pin_status()).unwrap(), PinStatus::Unknown);

    let s = selected(&[("00200090", "6983")]);
    let mut cns = run(CnsApplet::select(&s, Some(ChipFamily::StIncard))).unwrap();
    assert_eq!(run(cns.pin_status()).unwrap(), PinStatus::Blocked);
}

#[test]
fn verify_pads_with_ff_and_reports_tries() {
    let pin = CnsPin::new(b"12345").unwrap();
    let s = selected(&[
        ("00200010083132333435FFFFFF", "63C2"),
        ("00200010083132333435FFFFFF", "9000"),
        ("00200010083132333435FFFFFF", "63C0"),
    ]);
    let cns = run(CnsApplet::select(&s, None)).unwrap();
    let wrong = run(cns.verify_pin(&pin, PinStatus::Unknown, false));
    assert_eq!(wrong, Err(CnsError::WrongPin { remaining: 2 }));
    assert_eq!(
        run(cns.verify_pin(&pin, PinStatus::TriesLeft(2), false)),
        Ok(())
    );
    let blocked = run(cns.verify_pin(&pin, PinStatus::TriesLeft(3), false));
    assert_eq!(blocked, Err(CnsError::PinBlocked));
    assert!(s.done());
    // No APDU for a blocked PIN or an unconfirmed last try.
    assert_eq!(
        run(cns.verify_pin(&pin, PinStatus::TriesLeft(1), false)),
        Err(CnsError::LastTryNeedsConfirmation)
    );
    assert_eq!(
        run(cns.verify_pin(&pin, PinStatus::Blocked, true)),
        Err(CnsError::PinBlocked)
    );
}

#[test]
fn signing_is_restore_set_pso() {
    let block = "00".repeat(127) + "01";
    let sig = "AB".repeat(128);
    let pso = format!("002A9E9A80{block}80");
    let answer = format!("{sig}9000");
    let s = selected(&[
        ("0022F30300", "9000"),
        ("0022F1B603830101", "9000"),
        (&pso, &answer),
        ("0022F30300", "9000"),
        ("0022F1B603830101", "6982"),
    ]);
    let cns = run(CnsApplet::select(&s, None)).unwrap();
    let block = hex::decode(&block).unwrap();
    assert_eq!(
        run(cns.sign_raw(&block)).unwrap(),
        hex::decode(&sig).unwrap()
    );
    assert_eq!(run(cns.sign_raw(&block)), Err(CnsError::PinRequired));
    assert!(s.done());
}

#[test]
fn errors_speak_both_languages() {
    let e = CnsError::WrongPin { remaining: 1 };
    assert!(e.to_string().contains("1 tries left"));
    assert!(e.message_it().contains("restano 1 tentativi"));
    assert!(CnsError::PinBlocked.message_it().contains("PUK"));
}
