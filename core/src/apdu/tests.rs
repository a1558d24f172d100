//! Byte-exact encoding tests and channel behaviour against a scripted card.
//! (The independent virtual card in `card-sim` checks the same behaviour from the other side,
//! in `tests/`.)

use super::*;
use crate::transport::{CardTransport, TransportError, TransportInfo, TransportKind};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

#[test]
fn every_case_encodes_byte_exact() {
    let d3 = vec![0xA, 0xB, 0xC];
    let cases: Vec<(Command, bool, &str)> = vec![
        // Case 1
        (Command::new(0x00, 0xA4, 0x00, 0x00), false, "00A40000"),
        // Case 2 short: Le 1, 255, 256 (→ 00)
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(1),
            false,
            "00B0000001",
        ),
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(255),
            false,
            "00B00000FF",
        ),
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(256),
            false,
            "00B0000000",
        ),
        // Case 3 short
        (
            Command::new(0x00, 0xA4, 4, 0x0C).with_data(d3.clone()),
            false,
            "00A4040C030A0B0C",
        ),
        // Case 4 short
        (
            Command::new(0x00, 0xA4, 4, 0)
                .with_data(d3.clone())
                .with_le(256),
            false,
            "00A40400030A0B0C00",
        ),
        // Case 2 extended: Le 257, 65535, 65536 (→ 0000)
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(257),
            true,
            "00B00000000101",
        ),
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(65535),
            true,
            "00B0000000FFFF",
        ),
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(65536),
            true,
            "00B00000000000",
        ),
        // Short-form commands stay short even when extended is allowed.
        (
            Command::new(0x00, 0xB0, 0, 0).with_le(256),
            true,
            "00B0000000",
        ),
    ];
    for (cmd, ext, want) in cases {
        assert_eq!(hex::encode_upper(cmd.encode(ext).unwrap()), want, "{cmd:?}");
    }
    // Case 3 and 4 extended, with 256 and 300 data bytes.
    let d256 = vec![0x55u8; 256];
    let enc = Command::new(0x00, 0xD6, 0, 0)
        .with_data(d256.clone())
        .encode(true)
        .unwrap();
    assert_eq!(&enc[..7], &h("00D60000 000100")[..]);
    assert_eq!(enc.len(), 7 + 256);
    let enc = Command::new(0x80, 0x2A, 0x9E, 0x9A)
        .with_data(vec![1u8; 300])
        .with_le(65536)
        .encode(true)
        .unwrap();
    assert_eq!(&enc[..7], &h("802A9E9A 00012C")[..]);
    assert_eq!(&enc[7 + 300..], &h("0000")[..]);
    // Case 4 extended with a short Le: both lengths use the extended form.
    let enc = Command::new(0, 0x88, 0, 0)
        .with_data(vec![2u8; 256])
        .with_le(4)
        .encode(true)
        .unwrap();
    assert_eq!(&enc[enc.len() - 2..], &h("0004")[..]);
}

#[test]
fn encoding_rejects_what_cannot_be_sent() {
    let long = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 256]);
    assert_eq!(
        long.encode(false),
        Err(ApduError::ExtendedLengthUnsupported)
    );
    let big_le = Command::new(0, 0xB0, 0, 0).with_le(257);
    assert_eq!(
        big_le.encode(false),
        Err(ApduError::ExtendedLengthUnsupported)
    );
    assert_eq!(
        Command::new(0, 0xB0, 0, 0).with_le(0).encode(true),
        Err(ApduError::InvalidLe { ne: 0 })
    );
    assert_eq!(
        Command::new(0, 0xB0, 0, 0).with_le(65537).encode(true),
        Err(ApduError::InvalidLe { ne: 65537 })
    );
    assert!(matches!(
        Command::new(0, 0xD6, 0, 0)
            .with_data(vec![0; 65536])
            .encode(true),
        Err(ApduError::CommandTooLong { len: 65536, .. })
    ));
}

#[test]
fn debug_never_shows_command_data() {
    let verify = Command::new(0x00, 0x20, 0x00, 0x81).with_data(b"12345678".to_vec());
    let shown = format!("{verify:?}");
    assert!(
        !shown.contains("31") && !shown.contains("12345678"),
        "{shown}"
    );
}

#[test]
fn responses_split_and_malformed_ones_are_typed() {
    let r = Response::from_bytes(h("0102 9000")).unwrap();
    assert_eq!(r.data, vec![1, 2]);
    assert_eq!(r.sw, Sw::OK);
    assert_eq!(
        Response::from_bytes(vec![]),
        Err(ApduError::ResponseTooShort { len: 0 })
    );
    assert_eq!(
        Response::from_bytes(vec![0x90]),
        Err(ApduError::ResponseTooShort { len: 1 })
    );
}

#[test]
fn status_words_have_meanings_and_messages() {
    assert_eq!(Sw(0x63C2).kind(), SwKind::WrongPin { remaining: 2 });
    assert_eq!(Sw(0x6983).kind(), SwKind::AuthenticationBlocked);
    assert_eq!(Sw(0x6982).kind(), SwKind::SecurityStatusNotSatisfied);
    assert_eq!(Sw(0x6700).kind(), SwKind::WrongLength);
    assert_eq!(Sw(0x6A82).kind(), SwKind::FileNotFound);
    assert_eq!(Sw(0x6100).kind(), SwKind::BytesRemaining { remaining: 256 });
    assert_eq!(Sw(0x6C10).kind(), SwKind::WrongLe { exact: 16 });
    assert_eq!(Sw(0x6310).kind(), SwKind::Other);
    let e = ApduError::Status {
        sw: Sw(0x63C2),
        ins: 0x20,
    };
    assert_eq!(e.to_string(), "wrong PIN: 2 tries left (SW 63C2, INS 20)");
    assert!(
        e.message_it()
            .starts_with("PIN errato: restano 2 tentativi")
    );
    assert_eq!(e.sw_kind(), Some(SwKind::WrongPin { remaining: 2 }));
}

type Step = (Vec<u8>, Result<Vec<u8>, TransportError>);

/// A card that expects exact commands and gives canned answers.
struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    info: TransportInfo,
}

impl Scripted {
    fn new(info: TransportInfo, steps: &[(&str, &str)]) -> Arc<Self> {
        Arc::new(Self {
            steps: Mutex::new(steps.iter().map(|(c, r)| (h(c), Ok(h(r)))).collect()),
            info,
        })
    }
    fn done(&self) -> bool {
        self.steps.lock().unwrap().is_empty()
    }
}

#[async_trait::async_trait]
impl CardTransport for Scripted {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let (want, resp) = self
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .expect("unexpected extra APDU");
        assert_eq!(hex::encode_upper(&apdu), hex::encode_upper(&want));
        resp
    }
    fn info(&self) -> TransportInfo {
        self.info.clone()
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[test]
fn get_response_collects_61xx_parts() {
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Virtual),
        &[
            ("00CA010000", "AABB 6103"),
            ("00C0000003", "CCDDEE 6100"),
            ("00C0000000", "FF 9000"),
        ],
    );
    let ch = CardChannel::new(t.clone());
    let r = run(ch.transmit(&Command::new(0, 0xCA, 1, 0).with_le(256))).unwrap();
    assert_eq!(r.data, h("AABBCCDDEEFF"));
    assert_eq!(r.sw, Sw::OK);
    assert!(t.done());
}

#[test]
fn wrong_le_is_resent_once_with_the_cards_length() {
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Virtual),
        &[
            ("0084000000", "6C08"),
            ("0084000008", "0102030405060708 9000"),
        ],
    );
    let r = run(CardChannel::new(t.clone()).transmit(&Command::new(0, 0x84, 0, 0).with_le(256)))
        .unwrap();
    assert_eq!(r.data.len(), 8);
    assert!(t.done());
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Virtual),
        &[("0084000000", "6C08"), ("0084000008", "6C04")],
    );
    let e =
        run(CardChannel::new(t).transmit(&Command::new(0, 0x84, 0, 0).with_le(256))).unwrap_err();
    assert!(matches!(e, ApduError::CardMisbehaved(_)));
}

#[test]
fn long_data_is_chained_with_the_cla_bit() {
    let data: Vec<u8> = (0..=255u8).chain(0..50).collect();
    let first = format!("10D60000FF{}", hex::encode_upper(&data[..255]));
    let second = format!("00D6000033{}", hex::encode_upper(&data[255..]));
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Nfc),
        &[(&first, "9000"), (&second, "9000")],
    );
    let r = run(CardChannel::new(t.clone()).transmit(&Command::new(0, 0xD6, 0, 0).with_data(data)))
        .unwrap();
    assert_eq!(r.sw, Sw::OK);
    assert!(t.done());
}

#[test]
fn chain_stops_at_the_first_refused_part() {
    let data = vec![7u8; 300];
    let first = format!("10D60000FF{}", hex::encode_upper(&data[..255]));
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Nfc),
        &[(&first, "6884")],
    );
    let r = run(CardChannel::new(t.clone()).transmit(&Command::new(0, 0xD6, 0, 0).with_data(data)))
        .unwrap();
    assert_eq!(r.sw, Sw::CHAINING_NOT_SUPPORTED);
    assert!(t.done());
}

#[test]
fn endless_get_response_is_cut() {
    struct Endless;
    #[async_trait::async_trait]
    impl CardTransport for Endless {
        async fn transmit(&self, _apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
            let mut v = vec![0u8; 256];
            v.extend_from_slice(&[0x61, 0x00]);
            Ok(v)
        }
        fn info(&self) -> TransportInfo {
            TransportInfo::short(TransportKind::Virtual)
        }
    }
    let e = run(
        CardChannel::new(Arc::new(Endless)).transmit(&Command::new(0, 0xCA, 0, 0).with_le(256))
    )
    .unwrap_err();
    assert_eq!(e, ApduError::CardMisbehaved("endless GET RESPONSE"));
}

#[test]
fn limits_follow_the_transport() {
    let mut info = TransportInfo::short(TransportKind::Nfc);
    assert_eq!(
        Limits::from_transport(&info),
        Limits {
            extended: false,
            max_command_data: 255,
            max_response_data: 256
        }
    );
    info.extended_length = true;
    info.max_command_len = 65_544;
    info.max_response_len = 65_538;
    assert_eq!(
        Limits::from_transport(&info),
        Limits {
            extended: true,
            max_command_data: 65_535,
            max_response_data: 65_536
        }
    );
    // An Android phone stating 1024-byte transceive with extended length.
    info.max_command_len = 1024;
    info.max_response_len = 1024;
    assert_eq!(
        Limits::from_transport(&info),
        Limits {
            extended: true,
            max_command_data: 1015,
            max_response_data: 1022
        }
    );
    // A link smaller than short APDUs.
    info.extended_length = false;
    info.max_command_len = 64;
    info.max_response_len = 34;
    assert_eq!(
        Limits::from_transport(&info),
        Limits {
            extended: false,
            max_command_data: 58,
            max_response_data: 32
        }
    );
}

#[test]
fn fcp_size_is_parsed() {
    assert_eq!(
        FileInfoT::parse(&h("62 04 80 02 5000")).unwrap().size,
        Some(0x5000)
    );
    assert_eq!(
        FileInfoT::parse(&h("6F 06 62 04 81 02 0100")).unwrap().size,
        Some(0x100)
    );
    assert_eq!(FileInfoT::parse(&[]).unwrap().size, None);
    assert!(FileInfoT::parse(&h("62 05 80 03 01")).is_err());
    assert!(FileInfoT::parse(&h("70 00")).is_err());
}

use files::FileInfo as FileInfoT;

#[test]
fn b1_read_sends_offset_object_and_unwraps_53() {
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Virtual),
        &[("00B1000004 54 02 8000 08", "53 03 010203 9000")],
    );
    let ch = CardChannel::new(t.clone());
    let r = run(files::read_binary(&ch, 0x8000, 8)).unwrap();
    assert_eq!(r.data, vec![1, 2, 3]);
    assert!(t.done());
    // A B1 answer that is not a single 53 object is malformed, not data.
    let t = Scripted::new(
        TransportInfo::short(TransportKind::Virtual),
        &[("00B1000005 54 03 010000 08", "54 01 00 9000")],
    );
    assert!(run(files::read_binary(&CardChannel::new(t), 0x10000, 8)).is_err());
}

#[test]
fn transport_errors_pass_through_typed() {
    let t = Arc::new(Scripted {
        steps: Mutex::new(VecDeque::from([(
            h("00B0000000"),
            Err(TransportError::TagLost),
        )])),
        info: TransportInfo::short(TransportKind::Nfc),
    });
    let e = run(files::read_to_end(&CardChannel::new(t), None)).unwrap_err();
    assert_eq!(e, ApduError::Transport(TransportError::TagLost));
}
