//! Secure messaging against an independent card-side implementation written here from the
//! raw RustCrypto block ciphers (manual CBC, manual retail MAC, hand-parsed APDUs), plus the
//! error paths and the channel's chaining, limits and concurrency rules.
//! Published vectors (ICAO D.4, BAC, PACE, gmrtd AES) are in `tests/tests/sm_vectors.rs`.

use super::cipher::{pad, unpad};
use super::*;
use crate::apdu::{ApduChannel, ApduError, CardChannel, Command, Limits, Response, Sw};
use crate::tlv::DecodeError;
use crate::transport::{CardTransport, TransportError, TransportInfo, TransportKind};
use ::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

fn run<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

// ---------------------------------------------------------------------------------------
// The card side, independent of `super`: its own CBC, MAC, padding and APDU parsing.

#[derive(Clone, Copy, Debug)]
enum Alg {
    Tdes,
    Aes128,
    Aes256,
}

impl Alg {
    fn block(self) -> usize {
        match self {
            Alg::Tdes => 8,
            _ => 16,
        }
    }
    fn key_len(self) -> usize {
        match self {
            Alg::Tdes | Alg::Aes128 => 16,
            Alg::Aes256 => 32,
        }
    }
}

struct Card {
    alg: Alg,
    k_enc: Vec<u8>,
    k_mac: Vec<u8>,
    ssc: Vec<u8>,
}

fn ecb_enc(alg: Alg, key: &[u8], block: &mut [u8]) {
    match alg {
        Alg::Tdes => des::TdesEde2::new_from_slice(key)
            .unwrap()
            .encrypt_block(block.try_into().unwrap()),
        Alg::Aes128 => aes::Aes128::new_from_slice(key)
            .unwrap()
            .encrypt_block(block.try_into().unwrap()),
        Alg::Aes256 => aes::Aes256::new_from_slice(key)
            .unwrap()
            .encrypt_block(block.try_into().unwrap()),
    }
}

fn ecb_dec(alg: Alg, key: &[u8], block: &mut [u8]) {
    match alg {
        Alg::Tdes => des::TdesEde2::new_from_slice(key)
            .unwrap()
            .decrypt_block(block.try_into().unwrap()),
        Alg::Aes128 => aes::Aes128::new_from_slice(key)
            .unwrap()
            .decrypt_block(block.try_into().unwrap()),
        Alg::Aes256 => aes::Aes256::new_from_slice(key)
            .unwrap()
            .decrypt_block(block.try_into().unwrap()),
    }
}

fn card_pad(data: &[u8], b: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    v.push(0x80);
    v.resize(v.len().div_ceil(b) * b, 0);
    v
}

fn single_des(key: &[u8], block: &mut [u8], encrypt: bool) {
    let d = des::Des::new_from_slice(key).unwrap();
    if encrypt {
        d.encrypt_block(block.try_into().unwrap());
    } else {
        d.decrypt_block(block.try_into().unwrap());
    }
}

impl Card {
    fn new(alg: Alg, seed: u8) -> Self {
        let k_enc: Vec<u8> = (0..alg.key_len() as u8).map(|i| i ^ seed).collect();
        let k_mac: Vec<u8> = (0..alg.key_len() as u8)
            .map(|i| i.wrapping_mul(7) ^ seed)
            .collect();
        Self {
            alg,
            k_enc,
            k_mac,
            ssc: vec![0; alg.block()],
        }
    }

    fn host_cipher(&self) -> Box<dyn SmCipher> {
        match self.alg {
            Alg::Tdes => Box::new(Tdes::new(&self.k_enc, &self.k_mac).unwrap()),
            _ => Box::new(Aes::new(&self.k_enc, &self.k_mac).unwrap()),
        }
    }

    fn bump(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }

    fn iv(&self) -> Vec<u8> {
        let mut iv = self.ssc.clone();
        match self.alg {
            Alg::Tdes => iv.fill(0),
            _ => ecb_enc(self.alg, &self.k_enc, &mut iv),
        }
        iv
    }

    fn cbc(&self, data: &[u8], encrypt: bool) -> Vec<u8> {
        let b = self.alg.block();
        let mut prev = self.iv();
        let mut out = Vec::new();
        for chunk in data.chunks(b) {
            let mut blk = chunk.to_vec();
            if encrypt {
                blk.iter_mut().zip(&prev).for_each(|(x, p)| *x ^= p);
                ecb_enc(self.alg, &self.k_enc, &mut blk);
                prev = blk.clone();
            } else {
                ecb_dec(self.alg, &self.k_enc, &mut blk);
                blk.iter_mut().zip(&prev).for_each(|(x, p)| *x ^= p);
                prev = chunk.to_vec();
            }
            out.extend_from_slice(&blk);
        }
        out
    }

    /// MAC of already padded data.
    fn mac(&self, data: &[u8]) -> Vec<u8> {
        match self.alg {
            Alg::Tdes => {
                let (k1, k2) = self.k_mac.split_at(8);
                let mut state = [0u8; 8];
                for chunk in data.chunks(8) {
                    state.iter_mut().zip(chunk).for_each(|(s, c)| *s ^= c);
                    single_des(k1, &mut state, true);
                }
                single_des(k2, &mut state, false);
                single_des(k1, &mut state, true);
                state.to_vec()
            }
            _ => {
                use cmac::Mac;
                let tag = if self.k_mac.len() == 16 {
                    let mut m =
                        <cmac::Cmac<aes::Aes128> as KeyInit>::new_from_slice(&self.k_mac).unwrap();
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                } else {
                    let mut m =
                        <cmac::Cmac<aes::Aes256> as KeyInit>::new_from_slice(&self.k_mac).unwrap();
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                };
                tag[..8].to_vec()
            }
        }
    }

    /// Parse one BER object from `b` (tags are single bytes in SM).
    fn take_do(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, hdr) = match b[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(b[2]), 3),
            0x82 => (usize::from(b[2]) << 8 | usize::from(b[3]), 4),
            _ => panic!("bad length"),
        };
        (tag, &b[hdr..hdr + len], &b[hdr + len..])
    }

    /// Verify and decrypt a protected command APDU (raw bytes); returns header, data, Ne.
    fn unprotect(&mut self, apdu: &[u8]) -> ([u8; 4], Vec<u8>, Option<usize>) {
        let b = self.alg.block();
        let header: [u8; 4] = apdu[..4].try_into().unwrap();
        assert_eq!(header[0] & 0x0C, 0x0C, "CLA must say SM");
        // Lc and the body: short (1 byte) or extended (00 hi lo), then Le.
        let (body, le_bytes) = if apdu[4] == 0 && apdu.len() > 7 {
            let lc = usize::from(apdu[5]) << 8 | usize::from(apdu[6]);
            (&apdu[7..7 + lc], &apdu[7 + lc..])
        } else {
            let lc = usize::from(apdu[4]);
            (&apdu[5..5 + lc], &apdu[5 + lc..])
        };
        assert!(
            le_bytes == [0] || le_bytes == [0, 0],
            "protected Le must be 00/0000"
        );
        self.bump();
        let mut rest = body;
        let mut data = Vec::new();
        let mut ne = None;
        let mut mac_in = self.ssc.clone();
        mac_in.extend_from_slice(&card_pad(&header, b));
        loop {
            let before = rest;
            let (tag, value, after) = Self::take_do(rest);
            rest = after;
            match tag {
                0x87 | 0x85 => {
                    mac_in.extend_from_slice(&before[..before.len() - after.len()]);
                    let crypt = if tag == 0x87 {
                        assert_eq!(value[0], 1);
                        assert_eq!(header[1] & 1, 0, "DO87 only for even INS");
                        &value[1..]
                    } else {
                        assert_eq!(header[1] & 1, 1, "DO85 only for odd INS");
                        value
                    };
                    let plain = self.cbc(crypt, false);
                    let end = plain.iter().rposition(|x| *x == 0x80).unwrap();
                    data = plain[..end].to_vec();
                }
                0x97 => {
                    mac_in.extend_from_slice(&before[..before.len() - after.len()]);
                    ne = Some(match value {
                        [0] => 256,
                        [n] => usize::from(*n),
                        [0, 0] => 65536,
                        [hi, lo] => usize::from(*hi) << 8 | usize::from(*lo),
                        _ => panic!("bad DO97"),
                    });
                }
                0x8E => {
                    assert!(rest.is_empty());
                    assert_eq!(value, self.mac(&card_pad(&mac_in, b)), "command MAC");
                    return (header, data, ne);
                }
                t => panic!("unexpected tag {t:02X}"),
            }
        }
    }

    /// A protected response carrying `data` and `sw` (odd INS → DO85).
    fn protect(&mut self, data: &[u8], sw: u16, odd: bool) -> Vec<u8> {
        let b = self.alg.block();
        self.bump();
        let mut out = Vec::new();
        if !data.is_empty() {
            let crypt = self.cbc(&card_pad(data, b), true);
            let mut value = if odd { vec![] } else { vec![1] };
            value.extend_from_slice(&crypt);
            out.push(if odd { 0x85 } else { 0x87 });
            match value.len() {
                n if n < 0x80 => out.push(n as u8),
                n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
                n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
            }
            out.extend_from_slice(&value);
        }
        out.extend_from_slice(&[0x99, 2, (sw >> 8) as u8, sw as u8]);
        let mut mac_in = self.ssc.clone();
        mac_in.extend_from_slice(&out);
        let mac = self.mac(&card_pad(&mac_in, b));
        out.extend_from_slice(&[0x8E, 8]);
        out.extend_from_slice(&mac);
        out.extend_from_slice(&sw.to_be_bytes());
        out
    }
}

/// What the card saw: header, plaintext data, Ne, and the protected APDU.
type Seen = ([u8; 4], Vec<u8>, Option<usize>, Vec<u8>);
/// The card application: header and plaintext in, plaintext answer and SW out.
type Answer = fn(&[u8; 4], &[u8]) -> (Vec<u8>, u16);

/// A transport whose card is [`Card`]: it answers each protected command by echoing a
/// function of the command, and records what it saw.
struct CardTransportSim {
    card: Mutex<Card>,
    info: TransportInfo,
    seen: Mutex<Vec<Seen>>,
    answer: Answer,
}

#[async_trait::async_trait]
impl CardTransport for CardTransportSim {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let mut card = self.card.lock().unwrap();
        let (header, data, ne) = card.unprotect(&apdu);
        let (resp, sw) = (self.answer)(&header, &data);
        self.seen
            .lock()
            .unwrap()
            .push((header, data, ne, apdu.clone()));
        Ok(card.protect(&resp, sw, header[1] & 1 == 1))
    }
    fn info(&self) -> TransportInfo {
        self.info.clone()
    }
}

fn sim(alg: Alg, info: TransportInfo, answer: Answer) -> Arc<CardTransportSim> {
    Arc::new(CardTransportSim {
        card: Mutex::new(Card::new(alg, 0x5A)),
        info,
        seen: Mutex::new(Vec::new()),
        answer,
    })
}

fn secure(t: &Arc<CardTransportSim>) -> SecureChannel<CardChannel> {
    let cipher = t.card.lock().unwrap().host_cipher();
    let len = cipher.ssc_len();
    SecureChannel::new(CardChannel::new(t.clone()), cipher, Ssc::zero(len).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Primitives.

#[test]
fn padding_adds_a_block_when_aligned_and_unpadding_is_strict() {
    assert_eq!(pad(&[], 8), h("8000000000000000"));
    assert_eq!(pad(&h("011E"), 8), h("011E800000000000"));
    assert_eq!(pad(&[1; 8], 8).len(), 16);
    assert_eq!(pad(&[1; 15], 16).len(), 16);
    assert_eq!(unpad(&h("011E800000000000"), 8).unwrap(), &h("011E")[..]);
    assert_eq!(unpad(&h("8000000000000000"), 8).unwrap(), &[] as &[u8]);
    for bad in [
        "0000000000000000",
        "011E000000000001",
        "",
        "80000000000000000000000000000000",
    ] {
        assert_eq!(unpad(&h(bad), 8), Err(SmError::BadPadding), "{bad}");
    }
}

#[test]
fn ssc_counts_big_endian_and_refuses_to_wrap() {
    let mut s = Ssc::from_bytes(&h("00000000000000FF")).unwrap();
    s.increment().unwrap();
    assert_eq!(s.as_bytes(), &h("0000000000000100")[..]);
    let mut s = Ssc::from_bytes(&h("FFFFFFFFFFFFFFFE")).unwrap();
    s.increment().unwrap();
    assert_eq!(s.increment(), Err(SmError::SscExhausted));
    assert_eq!(s.as_bytes(), &[0xFF; 8][..], "unchanged after exhaustion");
    let mut s = Ssc::zero(16).unwrap();
    s.increment().unwrap();
    assert_eq!(s.as_bytes()[15], 1);
    assert!(matches!(
        Ssc::zero(12),
        Err(SmError::SscLength { got: 12, .. })
    ));
    let rnd_ic = h("4608F91988702212").try_into().unwrap();
    let rnd_ifd = h("781723860C06C226").try_into().unwrap();
    assert_eq!(
        Ssc::from_challenges(&rnd_ic, &rnd_ifd).as_bytes(),
        &h("887022120C06C226")[..]
    );
    assert_eq!(
        format!("{:?}", Ssc::zero(8).unwrap()),
        "Ssc(0000000000000000)"
    );
}

#[test]
fn parity_is_odd_on_every_byte() {
    let mut k = h("AB94FCEDF2664EDFB9B291F85D7F77F2");
    kdf::adjust_parity(&mut k);
    assert_eq!(k, h("AB94FDECF2674FDFB9B391F85D7F76F2"));
}

#[test]
fn ias_kdf_is_sha256_of_secret_and_counter() {
    // Expected values computed with Python hashlib: sha256(bytes(range(256)) + c)[:16].
    let secret: Vec<u8> = (0..=255u8).collect();
    assert_eq!(
        &kdf::ias_kdf(&secret, 1)[..],
        &h("20D0CA4184B64CF791DA828CC135E354")[..]
    );
    assert_eq!(
        &kdf::ias_kdf(&secret, 2)[..],
        &h("9B0BB985660ADF0B819D798B8A6D9071")[..]
    );
    let suite = kdf::ias_session(&secret);
    let manual = Tdes::new(
        &h("20D0CA4184B64CF791DA828CC135E354"),
        &h("9B0BB985660ADF0B819D798B8A6D9071"),
    )
    .unwrap();
    assert_eq!(suite.mac(b"12345678"), manual.mac(b"12345678"));
}

#[test]
fn keys_are_checked_and_never_shown() {
    assert_eq!(
        Tdes::new(&[0; 8], &[0; 16]).unwrap_err(),
        SmError::InvalidKey(8)
    );
    assert_eq!(
        Aes::new(&[0; 16], &[0; 24]).unwrap_err(),
        SmError::InvalidKey(24)
    );
    assert!(Aes::new(&[0; 20], &[0; 20]).is_err());
    let t = Tdes::new(&[0x42; 16], &[0x43; 16]).unwrap();
    let a = Aes::new(&[0x42; 32], &[0x43; 32]).unwrap();
    for shown in [format!("{t:?}"), format!("{a:?}")] {
        assert!(
            !shown.contains("42") && !shown.contains("43") && !shown.contains("66"),
            "{shown}"
        );
    }
    assert_eq!(format!("{a:?}"), "Aes256 { keys: <redacted> }");
}

#[test]
fn limits_leave_room_for_sm_overhead() {
    let short = Limits {
        extended: false,
        max_command_data: 255,
        max_response_data: 256,
    };
    let l = sm_limits(short, 8);
    assert_eq!((l.max_command_data, l.max_response_data), (0xE7, 0xE7));
    let l = sm_limits(short, 16);
    assert_eq!((l.max_command_data, l.max_response_data), (0xDF, 0xDF));
    assert_eq!(wrap::max_short_response(8), 231);
    assert_eq!(wrap::max_short_response(16), 223);
    // 1 KiB extended link (Android): Nc 1015, Ne 1022.
    let kib = Limits {
        extended: true,
        max_command_data: 1015,
        max_response_data: 1022,
    };
    let l = sm_limits(kib, 8);
    assert_eq!((l.max_command_data, l.max_response_data), (231, 999));
    let l = sm_limits(kib, 16);
    assert_eq!((l.max_command_data, l.max_response_data), (231, 991));
    // Each limit is tight: one more byte would overflow the inner link.
    for (inner, block) in [(short, 8), (short, 16), (kib, 8), (kib, 16)] {
        let l = sm_limits(inner, block);
        let resp = |n| wrap::do87_len(n, block) + 4 + 10;
        assert!(resp(l.max_response_data) <= inner.max_response_data);
        assert!(resp(l.max_response_data + 1) > inner.max_response_data);
    }
}

// ---------------------------------------------------------------------------------------
// Wrap/unwrap round trips against the independent card.

fn roundtrip(alg: Alg, ins: u8, data: &[u8], le: Option<usize>, ext: bool, reply: &[u8]) {
    let mut card = Card::new(alg, 0x33);
    let host = card.host_cipher();
    let mut ssc = Ssc::zero(alg.block()).unwrap();
    let mut cmd = Command::new(0x00, ins, 0x12, 0x34).with_data(data);
    cmd.le = le;
    let protected = wrap(&*host, &mut ssc, &cmd, ext).unwrap();
    let bytes = protected.encode(true).unwrap();
    let (header, got, ne) = card.unprotect(&bytes);
    assert_eq!(header, [0x0C, ins, 0x12, 0x34]);
    assert_eq!(got, data);
    assert_eq!(ne, le);
    assert_eq!(ssc.as_bytes(), &card.ssc[..]);
    let raw = card.protect(reply, 0x9000, ins & 1 == 1);
    let resp = unwrap(&*host, &mut ssc, Response::from_bytes(raw).unwrap()).unwrap();
    assert_eq!(resp.data, reply);
    assert_eq!(resp.sw, Sw::OK);
    assert_eq!(ssc.as_bytes(), &card.ssc[..]);
}

fn any_alg() -> impl Strategy<Value = Alg> {
    prop_oneof![Just(Alg::Tdes), Just(Alg::Aes128), Just(Alg::Aes256)]
}

proptest! {
    #[test]
    fn wrap_then_card_unwrap_round_trips(
        alg in any_alg(),
        ins in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..600),
        le in proptest::option::of(1usize..=65536),
        ext in any::<bool>(),
        reply in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        roundtrip(alg, ins, &data, le, ext, &reply);
    }

    #[test]
    fn random_bytes_never_panic_unwrap(
        alg in any_alg(),
        bytes in proptest::collection::vec(any::<u8>(), 2..300),
    ) {
        let host = Card::new(alg, 1).host_cipher();
        let mut ssc = Ssc::zero(alg.block()).unwrap();
        let _ = unwrap(&*host, &mut ssc, Response::from_bytes(bytes).unwrap());
    }

    /// Random objects with a *valid* MAC appended reach the post-MAC code; it must still
    /// return a typed result, never panic.
    #[test]
    fn random_objects_with_a_valid_mac_never_panic(
        alg in any_alg(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let card = Card::new(alg, 2);
        let host = card.host_cipher();
        let mut mac_in = vec![0; alg.block()];
        *mac_in.last_mut().unwrap() = 1;
        mac_in.extend_from_slice(&body);
        let mut raw = body.clone();
        raw.extend_from_slice(&[0x8E, 8]);
        raw.extend_from_slice(&card.mac(&card_pad(&mac_in, alg.block())));
        raw.extend_from_slice(&[0x90, 0x00]);
        let mut ssc = Ssc::zero(alg.block()).unwrap();
        let _ = unwrap(&*host, &mut ssc, Response::from_bytes(raw).unwrap());
    }
}

#[test]
fn extended_form_only_when_needed() {
    let card = Card::new(Alg::Tdes, 9);
    let host = card.host_cipher();
    let mut ssc = Ssc::zero(8).unwrap();
    let read = |le| Command::new(0, 0xB0, 0, 0).with_le(le);
    // Short: Le fits a short protected answer, or the link is short (61xx will collect).
    assert_eq!(
        wrap(&*host, &mut ssc, &read(0xE7), true).unwrap().le,
        Some(256)
    );
    assert_eq!(
        wrap(&*host, &mut ssc, &read(256), false).unwrap().le,
        Some(256)
    );
    // Extended: the protected answer would not fit 256 bytes, or Le > 256 (DO97 of 2).
    assert_eq!(
        wrap(&*host, &mut ssc, &read(0xE8), true).unwrap().le,
        Some(65536)
    );
    let p = wrap(&*host, &mut ssc, &read(1000), true).unwrap();
    assert_eq!(p.le, Some(65536));
    assert_eq!(&p.data[..4], &h("970203E8")[..]);
    let p = wrap(&*host, &mut ssc, &read(65536), true).unwrap();
    assert_eq!(&p.data[..4], &h("97020000")[..]);
    assert_eq!(
        wrap(&*host, &mut ssc, &read(0), true).unwrap_err(),
        SmError::BadCommand("Le outside 1..=65536")
    );
}

// ---------------------------------------------------------------------------------------
// Responses that must be refused, and what is never touched when they are.

/// Counts decryptions, to prove that a refused response was never decrypted.
#[derive(Debug)]
struct Spy {
    inner: Box<dyn SmCipher>,
    decrypts: AtomicUsize,
}

impl SmCipher for Spy {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn encrypt(&self, ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError> {
        self.inner.encrypt(ssc, data)
    }
    fn decrypt(&self, ssc: &Ssc, data: &mut [u8]) -> Result<(), SmError> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        self.inner.decrypt(ssc, data)
    }
    fn mac(&self, data: &[u8]) -> [u8; 8] {
        self.inner.mac(data)
    }
}

fn spy(card: &Card) -> Spy {
    Spy {
        inner: card.host_cipher(),
        decrypts: AtomicUsize::new(0),
    }
}

/// A valid protected response from a fresh card (SSC 0 → 1) for `data`.
fn valid_response(alg: Alg, data: &[u8]) -> (Card, Vec<u8>) {
    let mut card = Card::new(alg, 7);
    let raw = card.protect(data, 0x9000, false);
    card.ssc.fill(0);
    (card, raw)
}

#[test]
fn tampered_responses_fail_the_mac_and_are_never_decrypted() {
    for alg in [Alg::Tdes, Alg::Aes128, Alg::Aes256] {
        let (card, raw) = valid_response(alg, b"personal data");
        // Flip one bit in the cryptogram, the status, and the MAC.
        for pos in [5, raw.len() - 14, raw.len() - 3] {
            let mut bad = raw.clone();
            bad[pos] ^= 0x01;
            let s = spy(&card);
            let mut ssc = Ssc::zero(alg.block()).unwrap();
            let r = unwrap(&s, &mut ssc, Response::from_bytes(bad).unwrap());
            assert_eq!(r, Err(SmError::MacMismatch), "{alg:?} byte {pos}");
            assert_eq!(s.decrypts.load(Ordering::SeqCst), 0);
        }
        // A wrong SSC (replayed answer) fails the same way.
        let s = spy(&card);
        let mut ssc = Ssc::zero(alg.block()).unwrap();
        ssc.increment().unwrap();
        let r = unwrap(&s, &mut ssc, Response::from_bytes(raw.clone()).unwrap());
        assert_eq!(r, Err(SmError::MacMismatch));
        assert_eq!(s.decrypts.load(Ordering::SeqCst), 0);
        // The untouched one decrypts.
        let s = spy(&card);
        let mut ssc = Ssc::zero(alg.block()).unwrap();
        let r = unwrap(&s, &mut ssc, Response::from_bytes(raw).unwrap()).unwrap();
        assert_eq!(r.data, b"personal data");
        assert_eq!(s.decrypts.load(Ordering::SeqCst), 1);
    }
}

fn unwrap_hex(card: &Card, raw: &str) -> Result<Response, SmError> {
    let mut ssc = Ssc::zero(card.alg.block()).unwrap();
    unwrap(
        &*card.host_cipher(),
        &mut ssc,
        Response::from_bytes(h(raw)).unwrap(),
    )
}

/// `objects` followed by a DO8E with the MAC the card would compute (SSC 1), and `9000`.
fn with_valid_mac(card: &Card, objects: &str) -> String {
    let mut mac_in = vec![0; card.alg.block()];
    *mac_in.last_mut().unwrap() = 1;
    mac_in.extend_from_slice(&h(objects));
    let mac = card.mac(&card_pad(&mac_in, card.alg.block()));
    format!("{objects}8E08{}9000", hex::encode(mac))
}

#[test]
fn malformed_responses_are_typed_errors() {
    let card = Card::new(Alg::Tdes, 3);
    let (_, raw) = valid_response(Alg::Tdes, b"abc");
    let raw = hex::encode(raw);
    // Truncated anywhere inside the objects: a decode error, never a panic.
    for cut in [3, 10, 20, raw.len() - 8] {
        let truncated = format!("{}9000", &raw[..cut - cut % 2]);
        let e = unwrap_hex(&card, &truncated).unwrap_err();
        assert!(
            matches!(
                e,
                SmError::Malformed(DecodeError::Truncated { .. }) | SmError::MissingObject("DO8E")
            ),
            "{cut}: {e:?}"
        );
    }
    assert!(matches!(
        unwrap_hex(&card, "99029000 87 9000"),
        Err(SmError::Malformed(DecodeError::Truncated {
            context: "length",
            ..
        }))
    ));
    assert!(matches!(
        unwrap_hex(&card, "99029000 8E04 01020304 9000"),
        Err(SmError::BadObjectLength("DO8E"))
    ));
    assert!(matches!(
        unwrap_hex(&card, "99029000 8E08 0102030405060708 99 9000"),
        Err(SmError::Malformed(DecodeError::TrailingData { .. }))
    ));
    assert!(matches!(
        unwrap_hex(&card, "99029000 99029000 9000"),
        Err(SmError::DuplicateObject(_))
    ));
    assert!(matches!(
        unwrap_hex(&card, "8701AA 850100 9000"),
        Err(SmError::DuplicateObject(_))
    ));
    assert!(matches!(
        unwrap_hex(&card, "53020102 9000"),
        Err(SmError::UnexpectedObject(_))
    ));
    assert_eq!(
        unwrap_hex(&card, "99029000 9000"),
        Err(SmError::MissingObject("DO8E"))
    );
    // With a valid MAC: the content rules after it.
    assert_eq!(
        unwrap_hex(&card, &with_valid_mac(&card, "")),
        Err(SmError::MissingObject("DO99"))
    );
    assert_eq!(
        unwrap_hex(&card, &with_valid_mac(&card, "9901 90")),
        Err(SmError::BadObjectLength("DO99"))
    );
    assert_eq!(
        unwrap_hex(
            &card,
            &with_valid_mac(&card, "8709 02 1122334455667788 99029000")
        ),
        Err(SmError::BadPadding),
        "DO87 without the 01 indicator"
    );
    assert_eq!(
        unwrap_hex(&card, &with_valid_mac(&card, "8706 01 1122334455 99029000")),
        Err(SmError::BadObjectLength("DO87"))
    );
    assert_eq!(
        unwrap_hex(&card, &with_valid_mac(&card, "8701 01 99029000")),
        Err(SmError::BadObjectLength("DO87"))
    );
    // A cryptogram that decrypts to no padding: encrypt 8 bytes of 0x11 unpadded.
    let mut c2 = Card::new(Alg::Tdes, 3);
    c2.ssc = vec![0, 0, 0, 0, 0, 0, 0, 1];
    let crypt = hex::encode(c2.cbc(&[0x11; 8], true));
    assert_eq!(
        unwrap_hex(
            &card,
            &with_valid_mac(&card, &format!("8709 01 {crypt} 99029000"))
        ),
        Err(SmError::BadPadding)
    );
    // DO85 (odd INS) and a warning status inside DO99 both pass through.
    let crypt = hex::encode(c2.cbc(&card_pad(b"xy", 8), true));
    let r = unwrap_hex(
        &card,
        &with_valid_mac(&card, &format!("8508 {crypt} 99026282")),
    )
    .unwrap();
    assert_eq!((r.data, r.sw), (b"xy".to_vec(), Sw(0x6282)));
}

#[test]
fn clear_error_status_passes_through_and_bare_9000_does_not() {
    let card = Card::new(Alg::Aes128, 4);
    for sw in ["6987", "6988", "6982", "6A82"] {
        let r = unwrap_hex(&card, sw).unwrap();
        assert!(r.data.is_empty());
        assert_eq!(format!("{}", r.sw), sw);
    }
    assert_eq!(
        unwrap_hex(&card, "9000"),
        Err(SmError::MissingObject("DO8E"))
    );
}

#[test]
fn errors_map_to_tap_again() {
    let e: ApduError = SmError::MacMismatch.into();
    assert!(e.message_it().contains("avvicina di nuovo la carta"));
    let c: crate::ffi::CardError = e.into();
    assert!(matches!(c, crate::ffi::CardError::InvalidResponse { .. }));
    assert!(c.message_it().contains("avvicinala di nuovo"));
}

// ---------------------------------------------------------------------------------------
// The channel.

fn echo(_h: &[u8; 4], data: &[u8]) -> (Vec<u8>, u16) {
    (data.iter().rev().copied().collect(), 0x9000)
}

#[test]
fn sm_chaining_splits_plaintext_into_231_byte_pieces() {
    let t = sim(Alg::Tdes, TransportInfo::short(TransportKind::Nfc), echo);
    let ch = secure(&t);
    let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let r = run(ch.transmit(
        &Command::new(0x00, 0x2A, 0x00, 0xAE)
            .with_data(data.clone())
            .with_le(16),
    ))
    .unwrap();
    assert_eq!(r.sw, Sw::OK);
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "300 bytes = 2 protected APDUs");
    assert_eq!(
        seen[0].0,
        [0x1C, 0x2A, 0x00, 0xAE],
        "chaining bit + SM on the first"
    );
    assert_eq!(seen[1].0, [0x0C, 0x2A, 0x00, 0xAE], "SM only on the last");
    assert_eq!(seen[0].1, &data[..231]);
    assert_eq!(seen[1].1, &data[231..]);
    assert_eq!(
        (seen[0].2, seen[1].2),
        (None, Some(16)),
        "Le only on the last"
    );
    assert!(
        seen.iter().all(|s| s.3.len() <= 261),
        "each piece is one short APDU"
    );
    assert_eq!(
        r.data,
        data[231..].iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(ch.ssc().as_bytes(), &h("0000000000000004")[..]);
}

#[test]
fn aes_channel_reads_through_the_card_and_files_layer() {
    fn file(h: &[u8; 4], _d: &[u8]) -> (Vec<u8>, u16) {
        if h[1] == 0xB0 {
            let off = usize::from(h[2]) << 8 | usize::from(h[3]);
            ((off..off + 223).map(|i| (i % 251) as u8).collect(), 0x9000)
        } else {
            (vec![], 0x9000)
        }
    }
    let t = sim(Alg::Aes256, TransportInfo::short(TransportKind::Nfc), file);
    let ch = secure(&t);
    assert_eq!(ch.limits().max_response_data, 223);
    let r = run(crate::apdu::files::read_binary(&ch, 0x0100, 0xDF)).unwrap();
    assert_eq!(r.data.len(), 223);
    assert_eq!(r.data[0], (0x100 % 251) as u8);
}

#[test]
fn card_status_inside_do99_is_the_answer() {
    fn wrong_pin(_h: &[u8; 4], _d: &[u8]) -> (Vec<u8>, u16) {
        (vec![], 0x63C2)
    }
    let t = sim(
        Alg::Tdes,
        TransportInfo::short(TransportKind::Nfc),
        wrong_pin,
    );
    let ch = secure(&t);
    let r =
        run(ch.transmit(&Command::new(0, 0x20, 0, 0x81).with_data(b"12345678".to_vec()))).unwrap();
    assert_eq!(r.sw, Sw(0x63C2));
    assert!(!ch.is_broken());
}

/// Inner channel that answers from a queue and can hold one call pending.
struct Gate {
    pending_once: Mutex<bool>,
    answers: Mutex<VecDeque<Response>>,
}

struct PendingOnce<'a>(&'a Mutex<bool>);
impl Future for PendingOnce<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let mut p = self.0.lock().unwrap();
        if *p {
            *p = false;
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[async_trait::async_trait]
impl ApduChannel for Gate {
    async fn transmit(&self, _cmd: &Command) -> Result<Response, ApduError> {
        PendingOnce(&self.pending_once).await;
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(ApduError::Transport(TransportError::TagLost))
    }
    fn limits(&self) -> Limits {
        Limits::from_transport(&TransportInfo::short(TransportKind::Nfc))
    }
}

fn gate(pending: bool, answers: Vec<Response>) -> SecureChannel<Gate> {
    SecureChannel::new(
        Gate {
            pending_once: Mutex::new(pending),
            answers: Mutex::new(answers.into()),
        },
        Box::new(Tdes::new(&[1; 16], &[2; 16]).unwrap()),
        Ssc::zero(8).unwrap(),
    )
    .unwrap()
}

#[test]
fn concurrent_use_is_refused_and_a_dropped_exchange_breaks_the_session() {
    let ch = gate(true, vec![]);
    let cmd = Command::new(0, 0x84, 0, 0).with_le(8);
    let mut first = Box::pin(ch.transmit(&cmd));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let second = run(ch.transmit(&cmd));
    assert_eq!(second, Err(ApduError::SecureMessaging(SmError::Busy)));
    assert!(!ch.is_broken(), "the refused call touched nothing");
    drop(first);
    assert!(ch.is_broken(), "SSC spent with no verified answer");
    assert_eq!(
        run(ch.transmit(&cmd)),
        Err(ApduError::SecureMessaging(SmError::SessionBroken))
    );
}

#[test]
fn a_mac_failure_ends_the_session() {
    let forged = Response::from_bytes(h("99029000 8E08 0000000000000000 9000")).unwrap();
    let ch = gate(false, vec![forged]);
    let cmd = Command::new(0, 0x84, 0, 0).with_le(8);
    assert_eq!(
        run(ch.transmit(&cmd)),
        Err(ApduError::SecureMessaging(SmError::MacMismatch))
    );
    assert!(ch.is_broken());
    assert_eq!(
        run(ch.transmit(&cmd)),
        Err(ApduError::SecureMessaging(SmError::SessionBroken))
    );
    // A lost card also ends it (the SSC was spent).
    let ch = gate(false, vec![]);
    assert_eq!(
        run(ch.transmit(&cmd)),
        Err(ApduError::Transport(TransportError::TagLost))
    );
    assert!(ch.is_broken());
    // A command refused before any SSC was spent does not.
    let ch = gate(false, vec![]);
    let bad = Command::new(0, 0xB0, 0, 0).with_le(0);
    assert!(matches!(
        run(ch.transmit(&bad)),
        Err(ApduError::SecureMessaging(SmError::BadCommand(_)))
    ));
    assert!(!ch.is_broken());
}
