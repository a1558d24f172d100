//! The one-tap login flow against the virtual CIE: pairing, the 4-digit login, resuming
//! after a lost tag without asking for the PIN again, and never retrying a PIN try whose
//! outcome was lost.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::{Counter, MemoryStore};

use card_sim::{Fault, FaultyTransport, VirtualCard};
use cie_core::apdu::CardChannel;
use cie_core::applets::ias::IasError;
use cie_core::applets::ias::digest_info::DigestAlgorithm;
use cie_core::applets::ias::pin::Pin;
use cie_core::flows::login::{LoginError, LoginTap, NoProgress, PinEntry};
use cie_core::flows::pairing::Protection;
use cie_core::transport::CardTransport;
use std::sync::Arc;
use zeroize::Zeroizing;

fn rng() -> Counter {
    Counter::new(11)
}

fn run(
    tap: &mut LoginTap,
    transport: Arc<dyn CardTransport>,
) -> Result<cie_core::flows::login::LoginOutcome, LoginError> {
    let ch = CardChannel::new(transport);
    pollster::block_on(tap.run(&ch, &rng(), &NoProgress))
}

const CHALLENGE: &[u8] = b"nonce from the server, fetched before the tap";

/// A login with the full PIN and no pairing store.
fn full_pin_tap() -> LoginTap {
    LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        full_pin(),
        None,
    )
}

fn full_pin() -> PinEntry {
    PinEntry::Full(Pin::new("12345678").unwrap())
}

/// Count APDUs whose INS is `ins` and whose length is above `min_len` in the card log.
fn count(card: &VirtualCard, ins: u8, min_len: usize) -> usize {
    card.log()
        .iter()
        .filter(|a| a.len() > min_len && a[1] == ins)
        .count()
}

#[test]
fn pair_then_log_in_with_four_digits_and_no_certificate_read() {
    let card = Arc::new(VirtualCard::cie());
    let store = Arc::new(MemoryStore::default());
    let mut first = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        full_pin(),
        Some(store.clone()),
    );
    let out = run(&mut first, card.clone()).unwrap();
    assert!(out.paired_now);
    assert!(!out.certificate_from_cache);
    assert_eq!(
        out.certificate.codice_fiscale.as_deref(),
        Some("TSTTST80A01H501X")
    );
    let first_apdus = card.apdu_count();
    {
        let saved = store.0.lock().unwrap();
        let (half, protection) = saved.get("cie/000011112222/pin-first-half").unwrap();
        assert_eq!(half, b"1234");
        assert_eq!(*protection, Protection::UserPresence);
        assert_eq!(
            saved.get("cie/000011112222/certificate").unwrap().1,
            Protection::Public
        );
    }

    card.power_cycle();
    card.clear_log();
    let last4 = PinEntry::LastFour(Zeroizing::new("5678".into()));
    let mut second = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        last4,
        Some(store.clone()),
    );
    let out = run(&mut second, card.clone()).unwrap();
    assert!(out.certificate_from_cache);
    assert_eq!(out.signature.len(), 256);
    assert!(
        card.apdu_count() < first_apdus,
        "{} vs {first_apdus}",
        card.apdu_count()
    );
    // No certificate SELECT (1003) on the paired tap.
    assert!(
        !card
            .log()
            .iter()
            .any(|a| a.windows(2).any(|w| w == [0x10, 0x03]) && a[1] == 0xA4 && a[0] == 0)
    );
}

#[test]
fn four_digits_without_pairing_is_refused_before_any_pin_try() {
    let card = Arc::new(VirtualCard::cie());
    let last4 = PinEntry::LastFour(Zeroizing::new("5678".into()));
    let mut tap = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        last4,
        Some(Arc::new(MemoryStore::default())),
    );
    assert_eq!(
        run(&mut tap, card.clone()).unwrap_err(),
        LoginError::NotPaired
    );
    assert_eq!(card.pin_tries_left(), Some(3));
}

#[test]
fn lost_tag_during_the_certificate_read_resumes_without_a_second_verify() {
    let card = Arc::new(VirtualCard::cie());
    // Find the first certificate READ BINARY of a clean run: cut the tag there.
    let mut clean = full_pin_tap();
    run(&mut clean, card.clone()).unwrap();
    let log = card.log();
    let verify_at = log
        .iter()
        .position(|a| a[1] == 0x20 && a.len() > 20)
        .unwrap();
    let read_after = log
        .iter()
        .skip(verify_at)
        .position(|a| a[1] == 0xB0)
        .unwrap()
        + verify_at;
    card.power_cycle();
    card.clear_log();

    let mut tap = full_pin_tap();
    let faulty = Arc::new(FaultyTransport::new(card.clone()).fail_at(read_after, Fault::TagLost));
    let err = run(&mut tap, faulty).unwrap_err();
    assert_eq!(
        err,
        LoginError::Card(IasError::Apdu(cie_core::apdu::ApduError::Transport(
            cie_core::transport::TransportError::TagLost
        )))
    );
    assert_eq!(count(&card, 0x20, 20), 1, "one VERIFY so far");

    card.power_cycle();
    card.clear_log();
    let out = run(&mut tap, card.clone()).unwrap();
    assert_eq!(count(&card, 0x20, 20), 0, "the resumed tap sends no VERIFY");
    assert_eq!(out.signature.len(), 256);
}

#[test]
fn a_wrong_pin_whose_answer_was_lost_is_reported_not_retried() {
    let card = Arc::new(VirtualCard::cie());
    let wrong = PinEntry::Full(Pin::new("11112222").unwrap());
    let mut clean = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        wrong.clone(),
        None,
    );
    assert_eq!(
        run(&mut clean, card.clone()).unwrap_err(),
        LoginError::Card(IasError::WrongPin { remaining: 2 })
    );
    let verify_at = card
        .log()
        .iter()
        .position(|a| a[1] == 0x20 && a.len() > 20)
        .unwrap();
    card.power_cycle();
    card.clear_log();

    // Same wrong PIN; the card's answer to VERIFY is lost (the try is spent on the card).
    let mut tap = LoginTap::new(CHALLENGE.to_vec(), DigestAlgorithm::Sha256, wrong, None);
    let faulty =
        Arc::new(FaultyTransport::new(card.clone()).fail_at(verify_at, Fault::Truncate { len: 0 }));
    assert!(run(&mut tap, faulty).is_err());
    assert_eq!(card.pin_tries_left(), Some(1));

    card.power_cycle();
    card.clear_log();
    // The next tap reads the counter, sees the spent try, tells the user, sends no VERIFY.
    assert_eq!(
        run(&mut tap, card.clone()).unwrap_err(),
        LoginError::Card(IasError::WrongPin { remaining: 1 })
    );
    assert_eq!(count(&card, 0x20, 20), 0);
    assert_eq!(card.pin_tries_left(), Some(1));
    // And the PIN is no longer held: the user must type it.
    card.power_cycle();
    assert_eq!(
        run(&mut tap, card.clone()).unwrap_err(),
        LoginError::PinNeeded
    );
}

#[test]
fn resuming_on_another_card_is_refused() {
    let card = Arc::new(VirtualCard::cie());
    let mut tap = full_pin_tap();
    // Lose the tag right after the NIS read.
    let faulty = Arc::new(FaultyTransport::new(card.clone()).fail_at(4, Fault::TagLost));
    assert!(run(&mut tap, faulty).is_err());
    // Another card: a virtual CIE whose NIS reads differently.
    struct OtherNis(Arc<VirtualCard>);
    #[async_trait::async_trait]
    impl CardTransport for OtherNis {
        async fn transmit(
            &self,
            apdu: Vec<u8>,
        ) -> Result<Vec<u8>, cie_core::transport::TransportError> {
            let mut r = self.0.transmit(apdu.clone()).await?;
            if apdu.starts_with(&[0x00, 0xB0, 0x81]) {
                r[0] = b'9';
            }
            Ok(r)
        }
        fn info(&self) -> cie_core::transport::TransportInfo {
            self.0.info()
        }
    }
    let other = Arc::new(OtherNis(Arc::new(VirtualCard::cie())));
    assert_eq!(run(&mut tap, other).unwrap_err(), LoginError::DifferentCard);
}

#[test]
fn a_phone_whose_link_is_too_small_is_told_before_the_pin() {
    let mut config = card_sim::CardConfig::short();
    config.max_command_len = 128;
    let card = Arc::new(VirtualCard::cie().with_config(config));
    let mut tap = full_pin_tap();
    assert_eq!(
        run(&mut tap, card.clone()).unwrap_err(),
        LoginError::PhoneUnsupported
    );
    assert_eq!(card.apdu_count(), 0);
}

#[test]
fn genuine_check_rides_in_the_same_tap() {
    let card = Arc::new(VirtualCard::cie());
    let mut tap = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha512,
        full_pin(),
        None,
    )
    .with_genuine_check();
    let out = run(&mut tap, card).unwrap();
    assert!(out.genuine.is_some());
    assert_eq!(out.algorithm, DigestAlgorithm::Sha512);
}

/// Records byte progress.
#[derive(Default)]
struct Bytes(std::sync::Mutex<Vec<(cie_core::flows::login::LoginStep, u32, u32)>>);

impl cie_core::flows::login::LoginProgress for Bytes {
    fn on_step(&self, _: cie_core::flows::login::LoginStep, _: u32, _: u32) {}
    fn on_bytes(&self, step: cie_core::flows::login::LoginStep, done: u32, total: u32) {
        self.0.lock().unwrap().push((step, done, total));
    }
}

#[test]
fn the_certificate_read_reports_its_bytes() {
    let card = Arc::new(VirtualCard::cie());
    let mut tap = full_pin_tap();
    let bytes = Bytes::default();
    let ch = CardChannel::new(card.clone());
    let out = pollster::block_on(tap.run(&ch, &rng(), &bytes)).unwrap();
    let seen = bytes.0.lock().unwrap().clone();
    let der_len = u32::try_from(out.certificate.der.len()).unwrap();
    // One report per READ BINARY of the certificate, rising to the whole object.
    let reads = card.log().iter().filter(|a| a[1] == 0xB0).count();
    assert!(
        seen.len() > 2 && seen.len() <= reads,
        "{} reports, {reads} reads",
        seen.len()
    );
    assert!(seen.iter().all(|(s, _, total)| {
        *s == cie_core::flows::login::LoginStep::ReadingCertificate && *total == der_len
    }));
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(seen.last().unwrap().1, der_len);
}
