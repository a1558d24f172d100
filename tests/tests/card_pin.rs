//! "Cambia PIN" and "Sblocca carta" (`change_card_pin`, `unblock_card_pin`, the UniFFI
//! functions the apps call) against the virtual CIE: every try counted by the card itself,
//! no try spent by a malformed or weak PIN, the last try of the PIN and of the PUK spent only
//! once confirmed, the PUK's outcomes never reported as the PIN's, the pairing's stale PIN
//! half forgotten.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use card_sim::VirtualCard;
use cie_core::ffi::{CardError, change_card_pin, unblock_card_pin};
use cie_core::flows::pairing::{Protection, SecretStore};
use common::MemoryStore;
use std::sync::Arc;

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// The virtual CIE's synthetic PIN and PUK (card-sim's `pki::TEST_PIN`, `TEST_PUK`).
const PIN: &str = "12345678";
const PUK: &str = "87654321";
/// Where a pairing of the virtual CIE keeps the PIN's first half (keyed by its NIS, the
/// card's own `SYNTHETIC_NIS`).
fn half() -> String {
    let nis = std::str::from_utf8(card_sim::cie::SYNTHETIC_NIS).unwrap();
    format!("cie/{nis}/pin-first-half")
}

fn change(card: &Arc<VirtualCard>, old: &str, new: &str, confirmed: bool) -> Result<(), CardError> {
    block(change_card_pin(
        card.clone(),
        old.into(),
        new.into(),
        new.into(),
        confirmed,
        None,
    ))
}

fn unblock(
    card: &Arc<VirtualCard>,
    puk: &str,
    new: &str,
    confirmed: bool,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<(), CardError> {
    block(unblock_card_pin(
        card.clone(),
        puk.into(),
        new.into(),
        new.into(),
        confirmed,
        store,
    ))
}

#[test]
fn a_pin_blocked_by_wrong_tries_is_unblocked_with_the_puk() {
    let card = Arc::new(VirtualCard::cie());
    // Weak or malformed new PINs: refused before the card sees anything.
    for (new, rule) in [
        ("11111111", "repeat"),
        ("23456789", "sequence"),
        (PIN, "differ"),
        ("1234", "8 digits"),
    ] {
        match change(&card, PIN, new, false) {
            Err(CardError::NewPinRejected { reason, reason_it }) => {
                assert!(reason.contains(rule), "{new}: {reason}");
                assert!(!reason_it.is_empty());
            }
            other => panic!("{new}: {other:?}"),
        }
    }
    // Typed twice differently: refused, in Italian too.
    match block(change_card_pin(
        card.clone(),
        PIN.into(),
        "24681357".into(),
        "24681375".into(),
        false,
        None,
    )) {
        Err(CardError::NewPinRejected { reason_it, .. }) => {
            assert!(reason_it.contains("non coincidono"), "{reason_it}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(card.apdu_count(), 0, "a refused new PIN sends nothing");

    // A wrong current PIN spends tries, counted by the card; the last needs a yes.
    let new = "24681357";
    assert_eq!(
        change(&card, "00000000", new, false),
        Err(CardError::WrongPin { remaining: 2 })
    );
    assert_eq!(
        change(&card, "00000000", new, false),
        Err(CardError::WrongPin { remaining: 1 })
    );
    assert_eq!(
        change(&card, "00000000", new, false),
        Err(CardError::LastTryNeedsConfirmation)
    );
    assert_eq!(card.pin_tries_left(), Some(1), "nothing spent unconfirmed");
    assert_eq!(
        change(&card, "00000000", new, true),
        Err(CardError::PinBlocked)
    );
    assert_eq!(card.pin_tries_left(), Some(0));
    // Blocked: even the right PIN cannot change it.
    assert_eq!(change(&card, PIN, new, true), Err(CardError::PinBlocked));

    // Unblock. A PUK that is not 8 digits, or a weak new PIN: nothing spent.
    let store = Arc::new(MemoryStore::default());
    store
        .save(half(), b"1234".to_vec(), Protection::UserPresence)
        .unwrap();
    assert_eq!(
        unblock(&card, "8765", new, false, None),
        Err(CardError::InvalidPuk)
    );
    assert!(matches!(
        unblock(&card, PUK, "11111111", false, None),
        Err(CardError::NewPinRejected { .. })
    ));
    assert_eq!(card.puk_tries_left(), Some(10));
    // A wrong PUK is a PUK error with the PUK's own count, not the PIN's.
    assert_eq!(
        unblock(&card, "11223344", new, false, None),
        Err(CardError::WrongPuk { remaining: 9 })
    );
    assert_eq!(card.puk_tries_left(), Some(9));
    assert_eq!(card.pin_tries_left(), Some(0));
    // The right PUK: the new PIN is set, its tries restored, the stale pairing forgotten.
    unblock(&card, PUK, new, false, Some(store.clone())).unwrap();
    assert_eq!(card.pin_tries_left(), Some(3));
    assert!(store.load(half()).unwrap().is_none(), "pairing kept");
    // The old PIN no longer works; the new one does (and can be changed again).
    assert_eq!(
        change(&card, PIN, "13572468", false),
        Err(CardError::WrongPin { remaining: 2 })
    );
    change(&card, new, "13572468", false).unwrap();
    assert_eq!(card.pin_tries_left(), Some(3));
}

#[test]
fn the_last_puk_try_needs_a_yes_and_a_spent_puk_is_final() {
    let card = Arc::new(VirtualCard::cie());
    let new = "24681357";
    for left in (1..=9).rev() {
        assert_eq!(
            unblock(&card, "11223344", new, false, None),
            Err(CardError::WrongPuk { remaining: left })
        );
    }
    assert_eq!(
        unblock(&card, "11223344", new, false, None),
        Err(CardError::LastPukTryNeedsConfirmation)
    );
    assert_eq!(card.puk_tries_left(), Some(1), "nothing spent unconfirmed");
    assert_eq!(
        unblock(&card, "11223344", new, true, None),
        Err(CardError::PukBlocked)
    );
    // Final: the right PUK is refused too, and the message says what to do.
    assert_eq!(
        unblock(&card, PUK, new, true, None),
        Err(CardError::PukBlocked)
    );
    assert!(CardError::PukBlocked.message_it().contains("nuova carta"));
    assert_eq!(card.pin_tries_left(), Some(3), "the PIN itself untouched");
}

#[test]
fn a_keystore_that_cannot_forget_the_pairing_stops_before_the_card_changes() {
    struct Stuck;
    impl SecretStore for Stuck {
        fn load(&self, _: String) -> Result<Option<Vec<u8>>, cie_core::flows::pairing::StoreError> {
            Ok(None)
        }
        fn save(
            &self,
            _: String,
            _: Vec<u8>,
            _: Protection,
        ) -> Result<(), cie_core::flows::pairing::StoreError> {
            Ok(())
        }
        fn remove(&self, _: String) -> Result<(), cie_core::flows::pairing::StoreError> {
            Err(cie_core::flows::pairing::StoreError::Cancelled)
        }
    }
    let card = Arc::new(VirtualCard::cie());
    let r = block(change_card_pin(
        card.clone(),
        PIN.into(),
        "24681357".into(),
        "24681357".into(),
        false,
        Some(Arc::new(Stuck)),
    ));
    assert!(matches!(r, Err(CardError::Storage { .. })), "{r:?}");
    // The PIN is unchanged: the old one still changes it.
    change(&card, PIN, "24681357", false).unwrap();
}
