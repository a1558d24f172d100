//! "Sblocca carta" and "Cambia PIN": one tap each, with the CIE's own commands (VERIFY PUK
//! then RESET RETRY COUNTER; CHANGE REFERENCE DATA) inside the secure channel. Blocked PINs
//! are the commonest CIE failure in the field (cie.md §10, item 6): the official answer is
//! another app; this puts it where the user already is.
//!
//! The new PIN's rules are checked before the card is touched (no try spent); the tries of
//! the PIN and of the PUK are read before a VERIFY, and the last one of either is spent only
//! after the user confirmed (`last_try_confirmed`). A pairing on this device keeps the old
//! PIN's first half: it is forgotten *before* the card is asked to change the PIN (a
//! keystore that fails stops here, with nothing sent), so no later 4-digit login can spend a
//! try on stale digits; if the change then fails, the next login just asks for the whole PIN
//! once and pairs again.

use super::CardError;
use crate::apdu::CardChannel;
use crate::applets::ias::IasApplet;
use crate::applets::ias::pin::{Pin, PinFormatError};
use crate::applets::ias::secure::OsRandomness;
use crate::flows::pairing::{SecretStore, pin_half_key};
use crate::transport::CardTransport;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Unblock a blocked PIN with the PUK (8 digits) and set `new_pin` (typed twice: `new_pin`
/// and `new_pin_again` must match), in one tap. After
/// `LastPukTryNeedsConfirmation`, call again with `last_try_confirmed` once the user agreed.
/// `store`: the app's keystore, to forget this card's pairing (the old PIN's first half).
#[uniffi::export]
pub async fn unblock_card_pin(
    transport: Arc<dyn CardTransport>,
    puk: String,
    new_pin: String,
    new_pin_again: String,
    last_try_confirmed: bool,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<(), CardError> {
    let puk = Zeroizing::new(puk);
    let new_pin = new_pin_typed_twice(new_pin, new_pin_again)?;
    let puk = Pin::new(&puk).map_err(|_| CardError::InvalidPuk)?;
    new_pin.check_rules()?;
    let ch = CardChannel::new(transport);
    let ias = IasApplet::select(&ch).await?;
    forget_pin_half(store, &ias.read_nis().await?.text())?;
    let secure = ias.open_secure(&OsRandomness).await?;
    Ok(secure
        .unblock_pin(&puk, &new_pin, last_try_confirmed)
        .await?)
}

/// Change the PIN (`old_pin` → `new_pin`, typed twice), in one tap. The new PIN must differ
/// from the old one and be neither one repeated digit nor a run (the official apps' rules).
#[uniffi::export]
pub async fn change_card_pin(
    transport: Arc<dyn CardTransport>,
    old_pin: String,
    new_pin: String,
    new_pin_again: String,
    last_try_confirmed: bool,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<(), CardError> {
    let old_pin = Zeroizing::new(old_pin);
    let new_pin = new_pin_typed_twice(new_pin, new_pin_again)?;
    let old_pin = Pin::new(&old_pin).map_err(|e| CardError::InvalidPin {
        reason: e.to_string(),
    })?;
    new_pin.check_new(&old_pin)?;
    let ch = CardChannel::new(transport);
    let ias = IasApplet::select(&ch).await?;
    forget_pin_half(store, &ias.read_nis().await?.text())?;
    let secure = ias.open_secure(&OsRandomness).await?;
    Ok(secure
        .change_pin(&old_pin, &new_pin, last_try_confirmed)
        .await?)
}

/// The new PIN, checked typed the same twice and 8 digits (both shells' forms ask twice; the
/// rule is here once).
fn new_pin_typed_twice(new_pin: String, again: String) -> Result<Pin, CardError> {
    let (new_pin, again) = (Zeroizing::new(new_pin), Zeroizing::new(again));
    if new_pin.as_bytes() != again.as_bytes() {
        return Err(PinFormatError::Mismatch.into());
    }
    Ok(Pin::new(&new_pin)?)
}

/// The PIN is about to change: a stored first half would be stale.
fn forget_pin_half(store: Option<Arc<dyn SecretStore>>, nis: &str) -> Result<(), CardError> {
    match store {
        Some(store) => store
            .remove(pin_half_key(nis))
            .map_err(|e| CardError::Storage {
                reason: e.to_string(),
            }),
        None => Ok(()),
    }
}
