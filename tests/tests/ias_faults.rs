//! The full CIE login (select → NIS → secure session → PIN status → VERIFY → certificate →
//! signature) against the virtual CIE with a link fault injected on one APDU at a time.
//!
//! For every injected fault the login must end in a typed error or in a correct result
//! (never a panic, never wrong data, never a signature that does not verify), the card's
//! PIN counter must stay safe (see [`check_pin_safety`]), and a retry on the same card (new
//! tap, no fault) must complete with a signature that verifies with the certificate key.
//!
//! Faults per APDU (see [`faults_for`]): TagLost, Timeout, Empty, CorruptByte at 0 and at
//! the last SW byte, Truncate to 1, 2 and len-1 bytes, and on protected responses a byte
//! flipped inside the MAC and a cut that drops the MAC. A debug login costs about 0.3 s of
//! CPU here (2048-bit DH and RSA on both sides), and every case is an attempt plus a retry,
//! so the default tests run a stratified subset (see [`stratified`], [`around_verify`]):
//! - right PIN (91 cases): TagLost on every APDU (40); a MAC tamper on every protected
//!   response (20); one other fault in rotation on every clear APDU (20) and on every other
//!   protected one (11);
//! - wrong PIN (30 cases): every fault on the three APDUs that decide the PIN counter (the
//!   28 before them are the right-PIN login's);
//! - answers split by `61xx` into 64-byte parts (77 APDUs): TagLost, a flipped byte or a
//!   cut on every third APDU (26 cases), GET RESPONSE parts included.
//!
//! And the full matrix (632 cases: every APDU × every fault, both PINs) runs too, in
//! `full_matrix`; the big-integer and cipher crates are optimised in debug builds (root
//! `Cargo.toml`) so it takes seconds.
//!
//! One allowance: a flipped byte in the clear NIS answer yields another NIS (the NFC link's
//! CRC catches that in the field; the SOD and the NIS internal authentication bind it).
//!
//! All cases use one deterministic RNG per test, so failures reproduce exactly.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::Counter;

use card_sim::VirtualCard;
use card_sim::faulty::{Fault, FaultyTransport};
use cie_core::apdu::{ApduError, CardChannel};
use cie_core::applets::ias::digest_info::DigestAlgorithm;
use cie_core::applets::ias::pin::Pin;
use cie_core::applets::ias::secure::PinStatus;
use cie_core::applets::ias::{IasApplet, IasError};
use cie_core::sm::SmError;
use cie_core::transport::{CardTransport, TransportError, TransportInfo};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// The virtual CIE's synthetic PIN, and a wrong one.
const PIN: &str = "12345678";
const WRONG_PIN: &str = "11112222";
const NIS: &str = "000011112222";
const CHALLENGE: &[u8] = b"server nonce fetched before the tap";

/// What one login attempt saw.
#[derive(Debug, Default)]
struct Trace {
    /// What `pin_status()` reported before any VERIFY with data was sent.
    status_before_verify: Option<PinStatus>,
}

/// The login sequence the app runs in one tap.
async fn login(
    ch: &CardChannel,
    rng: &Counter,
    pin: &str,
    trace: &mut Trace,
) -> Result<Login, IasError> {
    let ias = IasApplet::select(ch).await?;
    let nis = ias.read_nis().await?.text();
    let secure = ias.open_secure(rng).await?;
    trace.status_before_verify = Some(secure.pin_status().await?);
    secure.verify_pin(&Pin::new(pin).unwrap(), false).await?;
    let cert = secure.read_certificate().await?;
    let digest = Sha256::digest(CHALLENGE);
    let sig = secure.sign(DigestAlgorithm::Sha256, &digest).await?;
    Ok(Login { nis, cert, sig })
}

/// What a completed login returns.
#[derive(Debug, PartialEq, Eq)]
struct Login {
    nis: String,
    cert: Vec<u8>,
    sig: Vec<u8>,
}

fn verifying_key() -> VerifyingKey<Sha256> {
    VerifyingKey::new(common::cert_public_key(card_sim::ias::pki::AUTH_CERT_DER))
}

/// A completed login has the card's certificate and a signature that verifies with its key
/// (the NIS is checked by the callers: it is read in clear, see `run_matrix`).
fn assert_good_login(login: &Login, key: &VerifyingKey<Sha256>, what: &str) {
    assert_eq!(
        login.cert,
        card_sim::ias::pki::AUTH_CERT_DER,
        "{what}: wrong certificate"
    );
    let sig = Signature::try_from(login.sig.as_slice()).unwrap();
    key.verify(CHALLENGE, &sig)
        .unwrap_or_else(|e| panic!("{what}: signature does not verify: {e}"));
}

/// Records what the card answered, to place faults (response lengths, protected or not).
struct Recorder {
    inner: Arc<VirtualCard>,
    log: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

#[async_trait::async_trait]
impl CardTransport for Recorder {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let answer = self.inner.transmit(apdu.clone()).await?;
        self.log.lock().unwrap().push((apdu, answer.clone()));
        Ok(answer)
    }

    fn info(&self) -> TransportInfo {
        self.inner.info()
    }
}

/// One APDU of a clean run: its response length and whether it went under SM.
#[derive(Debug, Clone)]
struct Step {
    response_len: usize,
    protected: bool,
}

/// A clean login (right or wrong PIN) on a fresh tap, recorded APDU by APDU.
fn clean_run(card: &Arc<VirtualCard>, rng: &Counter, pin: &str) -> Vec<Step> {
    card.power_cycle();
    let rec = Arc::new(Recorder {
        inner: card.clone(),
        log: Mutex::new(Vec::new()),
    });
    let ch = CardChannel::new(rec.clone());
    let result = block(login(&ch, rng, pin, &mut Trace::default()));
    if pin == PIN {
        let login = result.unwrap();
        assert_eq!(login.nis, NIS);
        assert_good_login(&login, &verifying_key(), "clean run");
    } else {
        assert_eq!(result, Err(IasError::WrongPin { remaining: 2 }));
        // Restore the counter for the cases that follow.
        retry(card, rng, &verifying_key(), "restore");
    }
    let log = rec.log.lock().unwrap();
    log.iter()
        .map(|(cmd, resp)| Step {
            response_len: resp.len(),
            // CLA bits 3-2 = 11: SM with the header authenticated.
            protected: cmd.first().is_some_and(|c| c & 0x0C == 0x0C),
        })
        .collect()
}

/// A new tap with no fault, right PIN: must complete, and must report the card's real
/// counter before spending a try.
fn retry(card: &Arc<VirtualCard>, rng: &Counter, key: &VerifyingKey<Sha256>, what: &str) {
    card.power_cycle();
    let on_card = card.pin_tries_left().unwrap();
    let ch = CardChannel::new(card.clone());
    let mut trace = Trace::default();
    let result = block(login(&ch, rng, PIN, &mut trace));
    let result = result.unwrap_or_else(|e| panic!("{what}: retry failed: {e:?}"));
    assert_eq!(
        trace.status_before_verify,
        Some(PinStatus::TriesLeft(on_card)),
        "{what}: the retry must show the tries the card holds before a new VERIFY"
    );
    assert_eq!(result.nis, NIS, "{what}: retry NIS");
    assert_good_login(&result, key, &format!("{what}, retry"));
    assert_eq!(card.pin_tries_left(), Some(3), "{what}: right PIN resets");
}

/// The faults tried on APDU `n` of a run whose clean APDU there was `step`.
fn faults_for(step: &Step) -> Vec<Fault> {
    let len = step.response_len;
    let mut faults = vec![
        Fault::TagLost,
        Fault::Timeout,
        Fault::Empty,
        Fault::CorruptByte { index: 0 },
        Fault::CorruptByte {
            index: len.saturating_sub(1),
        },
        Fault::Truncate { len: 1 },
        Fault::Truncate { len: 2 },
        Fault::Truncate {
            len: len.saturating_sub(1),
        },
    ];
    if step.protected && len >= 12 {
        // `… 8E 08 MAC(8) SW1 SW2`: byte len-5 is inside the MAC; cutting 12 bytes drops
        // the MAC and its header.
        faults.push(Fault::CorruptByte { index: len - 5 });
        faults.push(Fault::Truncate { len: len - 12 });
    }
    faults
}

/// Whether `fault` on a response of `step` tampers with the MAC of a protected answer.
fn tampers_mac(step: &Step, fault: &Fault) -> bool {
    step.protected
        && step.response_len >= 12
        && *fault
            == Fault::CorruptByte {
                index: step.response_len - 5,
            }
}

/// PIN safety after a failed attempt: with the right PIN no try is lost (a VERIFY that
/// reached the card resets the counter); with a wrong PIN at most one is spent, and when
/// the attempt reports `WrongPin { remaining }` the number is the card's.
fn check_pin_safety(
    before: u8,
    after: u8,
    pin: &str,
    result: &Result<Login, IasError>,
    what: &str,
) {
    if pin == PIN {
        assert!(
            after >= before,
            "{what}: right PIN lost a try ({before} → {after})"
        );
        assert!(
            !matches!(
                result,
                Err(IasError::WrongPin { .. } | IasError::PinBlocked)
            ),
            "{what}: right PIN reported wrong or blocked: {result:?}"
        );
    } else {
        assert!(
            before - after <= 1,
            "{what}: wrong PIN spent {} tries in one attempt",
            before - after
        );
        assert!(result.is_err(), "{what}: wrong PIN accepted");
        if let Err(IasError::WrongPin { remaining }) = result {
            assert_eq!(
                *remaining, after,
                "{what}: reported tries differ from the card"
            );
        }
    }
}

/// Which faults to inject on APDU `n` (of `total`) whose clean answer was `step`.
type Plan = fn(n: usize, step: &Step, total: usize) -> Vec<Fault>;

/// Run the faults `plan` picks on each APDU index of a `pin` login (a wrong-PIN login ends
/// at the VERIFY, so its indices stop there).
fn run_matrix(pin: &str, plan: Plan) -> usize {
    run_matrix_on(VirtualCard::cie(), pin, plan)
}

/// [`run_matrix`] on a given card.
fn run_matrix_on(card: VirtualCard, pin: &str, plan: Plan) -> usize {
    let card = Arc::new(card);
    let rng = Counter::new(0xFA17);
    let key = verifying_key();
    let steps = clean_run(&card, &rng, pin);
    let mut cases = 0;
    let mut mac_cases = 0;
    let mut clear_nis_changed = 0;
    for (n, step) in steps.iter().enumerate() {
        for fault in plan(n, step, steps.len()) {
            let what = format!("{pin} APDU #{n} {fault:?}");
            card.power_cycle();
            let before = card.pin_tries_left().unwrap();
            let faulty = FaultyTransport::new(card.clone()).fail_at(n, fault.clone());
            let ch = CardChannel::new(Arc::new(faulty));
            let result = block(login(&ch, &rng, pin, &mut Trace::default()));
            let after = card.pin_tries_left().unwrap();
            if let Ok(ok) = &result {
                // Only a harmless fault may end well (e.g. in the certificate's padding).
                assert_eq!(pin, PIN, "{what}: wrong PIN led to a login");
                assert_good_login(ok, &key, &what);
                if ok.nis != NIS {
                    // The NIS is read in clear: nothing at the APDU level can tell a flipped
                    // bit in it (the NFC link's CRC does, and the SOD / NIS internal
                    // authentication bind it later). Only that case may change it.
                    assert!(
                        !step.protected && matches!(fault, Fault::CorruptByte { .. }),
                        "{what}: wrong NIS {} returned",
                        ok.nis
                    );
                    clear_nis_changed += 1;
                }
            }
            check_pin_safety(before, after, pin, &result, &what);
            if tampers_mac(step, &fault) {
                assert_eq!(
                    result.as_ref().err(),
                    Some(&IasError::Apdu(ApduError::SecureMessaging(
                        SmError::MacMismatch
                    ))),
                    "{what}: a tampered MAC must be a secure-messaging error"
                );
                mac_cases += 1;
            }
            retry(&card, &rng, &key, &what);
            cases += 1;
        }
    }
    let protected = steps
        .iter()
        .filter(|s| s.protected && s.response_len >= 12)
        .count();
    let tampers = (0..steps.len())
        .flat_map(|n| {
            plan(n, &steps[n], steps.len())
                .into_iter()
                .map(move |f| (n, f))
        })
        .filter(|(n, f)| tampers_mac(&steps[*n], f))
        .count();
    assert_eq!(mac_cases, tampers);
    eprintln!("{pin}: {protected} protected responses");
    eprintln!(
        "{pin}: {cases} cases over {} APDUs, {mac_cases} MAC tampers, {clear_nis_changed} clear NIS corruptions",
        steps.len()
    );
    cases
}

/// Focused plan, right PIN: a MAC tamper on every protected response, plus
/// one of the other faults per APDU in rotation (TagLost on every APDU is its own test).
fn stratified(n: usize, step: &Step, _total: usize) -> Vec<Fault> {
    let (macs, others): (Vec<Fault>, Vec<Fault>) = faults_for(step)
        .into_iter()
        .filter(|f| *f != Fault::TagLost)
        .partition(|f| tampers_mac(step, f));
    let mut faults = Vec::new();
    if let Some(mac) = macs.first() {
        faults.push(mac.clone());
        // Protected answers: the rotation on every other one (the MAC covers the rest).
        if n.is_multiple_of(2) {
            faults.push(others[(n / 2) % others.len()].clone());
        }
    } else {
        faults.push(others[n % others.len()].clone());
    }
    faults
}

/// Wrong PIN: every fault on the APDUs that decide the counter (the status read, the
/// status read inside `verify_pin`, the VERIFY itself: the last three of the attempt). The
/// APDUs before them are the same as the right-PIN login's, covered above.
fn around_verify(n: usize, step: &Step, total: usize) -> Vec<Fault> {
    if n + 3 >= total {
        faults_for(step)
    } else {
        Vec::new()
    }
}

#[test]
fn right_pin_tag_lost_on_every_apdu() {
    let cases = run_matrix(PIN, |_, _, _| vec![Fault::TagLost]);
    // 40 APDUs over the virtual CIE's short link.
    assert!(cases >= 35, "{cases} cases");
}

#[test]
fn right_pin_mac_tamper_and_one_other_fault_per_apdu() {
    let cases = run_matrix(PIN, stratified);
    // 20 MAC tampers, 20 clear APDUs + 10 protected ones in the rotation.
    assert!(cases >= 45, "{cases} cases");
}

#[test]
fn wrong_pin_every_fault_on_the_verify_apdus() {
    let cases = run_matrix(WRONG_PIN, around_verify);
    assert!(cases >= 3 * 8, "{cases} cases");
}

/// Answers split by `61xx` into 64-byte parts, fetched by GET RESPONSE in clear under SM
/// (77 APDUs): a fault on a part must not slip through the MAC of the assembled answer.
/// Every third APDU, rotating TagLost, a flipped byte and a cut.
#[test]
fn right_pin_faults_inside_get_response_parts() {
    let config = card_sim::CardConfig {
        get_response_chunk: Some(64),
        ..card_sim::CardConfig::short()
    };
    let card = VirtualCard::cie_variant(card_sim::ias::CieVariant::default(), config);
    let cases = run_matrix_on(card, PIN, |n, step, _| {
        if !n.is_multiple_of(3) {
            return Vec::new();
        }
        let len = step.response_len;
        vec![match (n / 3) % 3 {
            0 => Fault::TagLost,
            1 => Fault::CorruptByte { index: len / 2 },
            _ => Fault::Truncate { len: len / 2 },
        }]
    });
    assert!(cases >= 20, "{cases} cases");
}

/// The full matrix: every APDU × every fault, both PINs (632 cases).
#[test]
fn full_matrix() {
    let cases = run_matrix(PIN, |_, step, _| faults_for(step))
        + run_matrix(WRONG_PIN, |_, step, _| faults_for(step));
    assert!(cases >= 600, "{cases} cases");
}
