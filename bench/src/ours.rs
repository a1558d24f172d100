//! "Ours": the core's public API exactly as an app calls it, no bench-side shortcuts: the
//! IAS applet step by step, and the one-tap login flow (`flows::login::LoginTap`).

use crate::common::{
    BenchResult, CHALLENGE, GENUINE_CHALLENGE, PIN, Recorder, SEED, SeededRandomness, TapOutput,
    digest,
};
use cie_core::apdu::CardChannel;
use cie_core::applets::ias::IasApplet;
use cie_core::applets::ias::digest_info::DigestAlgorithm;
use cie_core::applets::ias::pin::Pin;
use cie_core::flows::login::{LoginTap, NoProgress, PinEntry};
use cie_core::flows::pairing::{Protection, SecretStore, SharedStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Which of the core's tap shapes to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Select, NIS, secure channel, PIN, certificate, one signature.
    Full,
    /// As `Full` without the certificate read: a paired device cached it (cie.md §3.5).
    Paired,
    /// As `Full` with the anti-clone check (`verify_card_genuine`, which reads the NIS itself)
    /// before the secure channel.
    Genuine,
    /// `LoginTap` with the full PIN on an unpaired device (it pairs the card).
    LoginFlow,
    /// `LoginTap` with the last 4 digits on a device the card was paired with (the pairing
    /// tap runs first, on another link, and is not counted).
    LoginFlowPaired,
}

impl Variant {
    /// Row label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "ours: full tap",
            Self::Paired => "ours: paired (certificate cached)",
            Self::Genuine => "ours: full tap + verify_card_genuine",
            Self::LoginFlow => "ours: LoginTap flow, full PIN",
            Self::LoginFlowPaired => "ours: LoginTap flow, paired, last 4 digits",
        }
    }
}

/// Run one tap of `variant` on `ch`, recording phases.
pub async fn tap(
    ch: &CardChannel,
    rec: &mut Recorder<'_>,
    variant: Variant,
) -> BenchResult<TapOutput> {
    match variant {
        Variant::LoginFlow => return login_flow(ch, rec, MemoryStore::shared(), full_pin()?).await,
        Variant::LoginFlowPaired => {
            let store = MemoryStore::shared();
            pair(store.clone()).await?;
            let last = Zeroizing::new(String::from_utf8(PIN[4..].to_vec())?);
            return login_flow(ch, rec, store, PinEntry::LastFour(last)).await;
        }
        Variant::Full | Variant::Paired | Variant::Genuine => {}
    }
    let rng = SeededRandomness::new(SEED);
    let ias = IasApplet::select(ch).await?;
    let nis = if variant == Variant::Genuine {
        let proof = ias.verify_card_genuine(GENUINE_CHALLENGE).await?;
        rec.mark("select + NIS + genuine check");
        proof.nis
    } else {
        let nis = ias.read_nis().await?;
        rec.mark("select + NIS");
        nis
    };
    let secure = ias.open_secure(&rng).await?;
    rec.mark("secure channel (DH + DAPP)");
    // `verify_pin` reads the tries left first (VERIFY with no data), so that the last try is
    // never spent without the user's confirmation: one APDU the official SDK does not send.
    secure.verify_pin(&full_pin_value()?, false).await?;
    rec.mark("PIN");
    let certificate = if variant == Variant::Paired {
        Vec::new()
    } else {
        let der = secure.read_certificate().await?;
        rec.mark("certificate");
        der
    };
    let signature = secure.sign(DigestAlgorithm::Sha256, &digest()).await?;
    rec.mark("signature");
    Ok(TapOutput {
        nis: nis.as_bytes().to_vec(),
        certificate,
        signature,
    })
}

fn full_pin_value() -> BenchResult<Pin> {
    Ok(Pin::new(std::str::from_utf8(PIN)?)?)
}

fn full_pin() -> BenchResult<PinEntry> {
    Ok(PinEntry::Full(full_pin_value()?))
}

async fn login_flow(
    ch: &CardChannel,
    rec: &mut Recorder<'_>,
    store: SharedStore,
    pin: PinEntry,
) -> BenchResult<TapOutput> {
    let rng = SeededRandomness::new(SEED);
    let mut login = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        pin,
        Some(store),
    );
    let out = login.run(ch, &rng, &NoProgress).await?;
    rec.mark("whole LoginTap");
    Ok(TapOutput {
        nis: out.nis.as_bytes().to_vec(),
        certificate: out.certificate.der,
        signature: out.signature,
    })
}

/// The uncounted first login that pairs the card with `store`.
async fn pair(store: SharedStore) -> BenchResult<()> {
    let card = Arc::new(card_sim::VirtualCard::cie());
    let ch = CardChannel::new(card);
    let mut login = LoginTap::new(
        CHALLENGE.to_vec(),
        DigestAlgorithm::Sha256,
        full_pin()?,
        Some(store),
    );
    let out = login
        .run(&ch, &SeededRandomness::new(SEED), &NoProgress)
        .await?;
    if !out.paired_now {
        return crate::common::fail("the pairing tap did not pair");
    }
    Ok(())
}

/// The platform keystore, in memory.
#[derive(Default)]
struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);

impl MemoryStore {
    fn shared() -> SharedStore {
        Arc::new(Self::default())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemoryStore {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(&name).cloned())
    }

    fn save(&self, name: String, value: Vec<u8>, _: Protection) -> Result<(), StoreError> {
        self.map().insert(name, value);
        Ok(())
    }

    fn remove(&self, name: String) -> Result<(), StoreError> {
        self.map().remove(&name);
        Ok(())
    }
}
