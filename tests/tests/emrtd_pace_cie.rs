//! PACE as the CIE advertises it (id-PACE-DH-GM-3DES-CBC-CBC, RFC 5114 2048/256, CAN), for
//! which no published worked example exists: a minimal chip written here from 9303-11
//! §4.4 answers the four GENERAL AUTHENTICATE steps. It checks the framing the CIE needs
//! (MSE:Set AT without `84`, one extended APDU per 256-byte key, CLA `10`/`00`) and that
//! both sides derive the same keys and accept each other's tokens. The chip reuses the
//! core's group arithmetic (checked separately against App. G), so this is a consistency
//! test of the protocol flow, not a second implementation of the maths.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use cie_core::apdu::{ApduChannel, ApduError, Command, Limits, Response, Sw};
use cie_core::applets::emrtd::card_access::SecurityInfos;
use cie_core::applets::emrtd::domain::MODP_2048_256;
use cie_core::applets::emrtd::pace::{pace_with_card_access, token};
use cie_core::applets::emrtd::{Can, EmrtdError, PacePassword, Randomness};
use cie_core::applets::ias::IasError;
use cie_core::sm::kdf::{self, KDF_PACE, KeyAlgorithm};
use cie_core::sm::{SmCipher, Ssc, Tdes};
use cie_core::tlv::{Tag, Tlv, encode_to_vec};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

/// The CIE's EF.CardAccess (cie.md §4).
const CIE_CARD_ACCESS: &str = "31143012060A04007F00070202040101020102020102";
const OID: &str = "04007F00070202040101";

struct Rng(AtomicU8);

impl Randomness for Rng {
    fn fill(&self, buf: &mut [u8]) -> Result<(), IasError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8)
                .wrapping_mul(31)
                .wrapping_add(n)
                .wrapping_add(0x40);
        }
        Ok(())
    }
}

#[derive(Default)]
struct ChipState {
    step: usize,
    g_hat: Vec<u8>,
    ifd_pk: Vec<u8>,
    chip_pk: Vec<u8>,
    secret: Vec<u8>,
    sent: Vec<Vec<u8>>,
}

struct CieChip {
    can: &'static str,
    limits: Limits,
    state: Mutex<ChipState>,
}

const NONCE: [u8; 16] = [0x5A; 16];
const CHIP_MAP_SK: [u8; 32] = [0x21; 32];
const CHIP_EPH_SK: [u8; 32] = [0x37; 32];

impl CieChip {
    fn new(can: &'static str, extended: bool) -> Self {
        let limits = if extended {
            Limits {
                extended: true,
                max_command_data: 65_535,
                max_response_data: 65_536,
            }
        } else {
            Limits {
                extended: false,
                max_command_data: 255,
                max_response_data: 256,
            }
        };
        Self {
            can,
            limits,
            state: Mutex::default(),
        }
    }

    fn answer(&self, cmd: &Command) -> Response {
        let g = &MODP_2048_256;
        let mut st = self.state.lock().unwrap();
        st.sent.push(cmd.encode(self.limits.extended).unwrap());
        let step = st.step;
        st.step += 1;
        let ok = |v: Vec<u8>| Response {
            data: encode_to_vec(Tag::new(0x7C), &v),
            sw: Sw::OK,
        };
        let inner = |tag: u32| -> Vec<u8> {
            let obj = Tlv::from_bytes(&cmd.data).unwrap();
            obj.find(Tag::new(tag)).unwrap().unwrap().value.to_vec()
        };
        match step {
            0 => {
                assert_eq!(
                    hex::encode_upper(cmd.encode(false).unwrap()),
                    format!("0022C1A40F800A{OID}830102"),
                    "MSE:Set AT as the CIE logs show it"
                );
                Response {
                    data: vec![],
                    sw: Sw::OK,
                }
            }
            1 => {
                let k_pi = kdf::kdf(self.can.as_bytes(), KDF_PACE, KeyAlgorithm::Tdes);
                let mut z = NONCE.to_vec();
                Tdes::new(&k_pi, &k_pi)
                    .unwrap()
                    .encrypt(&Ssc::zero(8).unwrap(), &mut z)
                    .unwrap();
                ok(encode_to_vec(Tag::new(0x80), &z))
            }
            2 => {
                let ifd_map = inner(0x81);
                let h = g.pow(&ifd_map, &CHIP_MAP_SK).unwrap();
                // The chip's nonce is the real one: with a wrong CAN the terminal maps with
                // a different s and the tokens will not match.
                st.g_hat = g.map(&NONCE, &h).unwrap();
                ok(encode_to_vec(
                    Tag::new(0x82),
                    &g.pow(g.g, &CHIP_MAP_SK).unwrap(),
                ))
            }
            3 => {
                st.ifd_pk = inner(0x83);
                st.chip_pk = g.pow(&st.g_hat.clone(), &CHIP_EPH_SK).unwrap();
                st.secret = g.pow(&st.ifd_pk, &CHIP_EPH_SK).unwrap();
                ok(encode_to_vec(Tag::new(0x84), &st.chip_pk))
            }
            _ => {
                let session = kdf::icao_session(&st.secret, KeyAlgorithm::Tdes);
                let oid = hex::decode(OID).unwrap();
                let expected = token(&*session, &oid, 0x84, &st.chip_pk);
                if inner(0x85) != expected {
                    return Response {
                        data: vec![],
                        sw: Sw(0x6300),
                    };
                }
                ok(encode_to_vec(
                    Tag::new(0x86),
                    &token(&*session, &oid, 0x84, &st.ifd_pk),
                ))
            }
        }
    }
}

#[async_trait::async_trait]
impl ApduChannel for CieChip {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        Ok(self.answer(cmd))
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

fn run(chip: &CieChip, can: &str) -> Result<Ssc, EmrtdError> {
    let infos = SecurityInfos::parse(&hex::decode(CIE_CARD_ACCESS).unwrap()).unwrap();
    let password = PacePassword::Can(Can::new(can).unwrap());
    let rng = Rng(AtomicU8::new(0));
    let sm = pollster::block_on(pace_with_card_access(chip, &infos, &password, &rng))?;
    Ok(sm.ssc())
}

#[test]
fn cie_pace_dh_2048_3des_with_can() {
    let chip = CieChip::new("123456", true);
    let ssc = run(&chip, "123456").unwrap();
    assert_eq!(ssc.as_bytes(), &[0; 8]);
    let st = chip.state.lock().unwrap();
    assert_eq!(st.sent.len(), 5);
    // GA2/GA3: one extended APDU each, chained CLA 10, 7C 82 0104 { 81|83 82 0100 <256> },
    // extended Le 0000.
    for (apdu, tag) in [(&st.sent[2], "81"), (&st.sent[3], "83")] {
        let text = hex::encode_upper(apdu);
        assert!(
            text.starts_with(&format!("10860000000108 7C820104 {tag}820100").replace(' ', "")),
            "{}",
            &text[..30]
        );
        assert_eq!(apdu.len(), 7 + 264 + 2);
        assert!(text.ends_with("0000"));
    }
    assert_eq!(
        hex::encode_upper(&st.sent[1]),
        "10860000027C0000",
        "GA1 short"
    );
    assert!(hex::encode_upper(&st.sent[4]).starts_with("008600000C7C0A8508"));
}

#[test]
fn cie_pace_wrong_can_is_reported_once() {
    let chip = CieChip::new("123456", true);
    let err = run(&chip, "654321").unwrap_err();
    assert!(err.is_wrong_secret(), "{err:?}");
    assert_eq!(
        err.message_it(),
        "CAN errato: controlla le 6 cifre stampate sulla carta."
    );
    assert_eq!(chip.state.lock().unwrap().sent.len(), 5, "no retry");
}

#[test]
fn cie_pace_needs_extended_length() {
    let chip = CieChip::new("123456", false);
    let err = run(&chip, "123456").unwrap_err();
    assert_eq!(err, EmrtdError::Apdu(ApduError::ExtendedLengthUnsupported));
    // MSE:Set AT and GA1 went out; the 264-byte GA2 was never split with ISO chaining.
    assert_eq!(chip.state.lock().unwrap().sent.len(), 2);
}
