//! Section 6 (issue #10): the desktop PKCS#11 module over the link model. Ours is the real
//! module (`cie_companion_pkcs11::module::Module`) with the virtual CIE as its only reader;
//! the peer replays what the official desktop module sends (cie.md §9): every C_Login and
//! every C_Sign opens a new secure channel (SELECTs, DH, DAPP) and VERIFYs the PIN, and
//! C_Sign then adds MSE SET + INTERNAL AUTHENTICATE. Both run on a fresh card of each
//! field variant in the same run; both must produce the same (deterministic) signature.
//!
//! What is counted, so the two are compared fairly:
//! - "Token open" (ours only): from a card just placed on the reader to an open session —
//!   the slot list that finds the token, C_GetTokenInfo, C_OpenSession. Our module opens
//!   the card's secure channel here (select, NIS, DH, DAPP, certificate, PIN tries read
//!   without spending one), once per card, which is why C_Login and C_Sign are short.
//!   cie.md §9 does not record what the official module sends before C_Login.
//! - "Login + sign": C_Login, C_SignInit, C_Sign — the measure. The peer's is
//!   C_Login then C_Sign as §9 lists them. Generous to the peer: its pairing cache already
//!   holds the certificate and the chip's DAPP key (EF 1004), so neither is read; DH is
//!   the core's three GET DATA on every family (the official client asks Gemalto chips
//!   once).
//! - "Further sign": a second C_SignInit + C_Sign in the same logged-in session.

use std::sync::Arc;

use card_sim::{CardConfig, CieVariant, LinkModel, LinkStats, Vendor, VirtualCard};
use cie_companion_pkcs11::card::{Connection, ReaderState, Readers};
use cie_companion_pkcs11::module::Module;
use cie_companion_pkcs11::objects::H_PRIVATE;
use cie_core::applets::ias::constants::AID_CIE;
use cie_core::applets::ias::digest_info::{DigestAlgorithm, digest_info};
use cryptoki_sys as ck;

use crate::common::{
    BenchResult, PIN, Rate, SEED, SeededRandomness, channel_over, digest, fail, link_config,
};
use crate::official;

/// The official module's measured counts (cie.md §9: GET RESPONSE included; the range is
/// over chip families and `61xx` answers).
pub const OFFICIAL_LOGIN_SIGN: (u64, u64) = (43, 51);
/// The same, per C_Sign.
pub const OFFICIAL_SIGN: (u64, u64) = (20, 21);
/// Issue #10's targets: login + sign ≤ 20 APDUs, a further sign ≤ 3.
pub const TARGET_LOGIN_SIGN: u64 = 20;
/// See [`TARGET_LOGIN_SIGN`].
pub const TARGET_FURTHER_SIGN: u64 = 3;

/// The field variants card-sim models (cie.md §2.3), the permissive default first.
pub fn variants() -> Vec<(&'static str, CieVariant)> {
    let mut v = vec![("default (NXP data, permissive)", CieVariant::default())];
    for (name, vendor) in [
        ("Gemalto", Vendor::Gemalto),
        ("Gemalto 2", Vendor::Gemalto2),
        ("NXP", Vendor::Nxp),
        ("ST", Vendor::St),
        ("Actalis", Vendor::Actalis),
        ("Actalis 2023", Vendor::Actalis2023),
        ("Bit4id", Vendor::Bit4id),
        ("Bit4id 2023", Vendor::Bit4id2023),
        ("Bit4id B9547", Vendor::Bit4idB9547),
        ("Actalis B946", Vendor::ActalisB946),
    ] {
        v.push((name, CieVariant::for_vendor(vendor)));
    }
    v
}

/// One terminal's figures on one card.
#[derive(Debug, Clone)]
pub struct Counts {
    /// From the card placed on the reader to the token shown with an open session (slot
    /// list, token info, C_OpenSession). `None` for the peer (§9 does not record it).
    pub token_open: Option<LinkStats>,
    /// C_Login + C_SignInit + C_Sign.
    pub login_sign: LinkStats,
    /// A second C_SignInit + C_Sign in the same session.
    pub further_sign: LinkStats,
    /// The first signature (both terminals sign the same DigestInfo).
    pub signature: Vec<u8>,
}

/// The DigestInfo both terminals sign (TLS 1.2 client authentication sends this shape).
fn signed_digest_info() -> BenchResult<Vec<u8>> {
    Ok(digest_info(DigestAlgorithm::Sha256, &digest())?)
}

fn card(variant: CieVariant) -> Arc<VirtualCard> {
    Arc::new(VirtualCard::cie_variant(variant, CardConfig::default()))
}

/// One reader holding the card behind the link model.
struct LinkReader(Arc<LinkModel>);

impl Readers for LinkReader {
    fn list(&mut self) -> Result<Vec<ReaderState>, ck::CK_RV> {
        Ok(vec![ReaderState {
            name: "link model".into(),
            card_present: true,
        }])
    }

    fn connect(&mut self, _name: &str) -> Result<Connection, ck::CK_RV> {
        Ok(Connection::unshared(self.0.clone()))
    }
}

fn rv<T>(what: &str, r: Result<T, ck::CK_RV>) -> BenchResult<T> {
    r.or_else(|rv| fail(format!("module {what}: CKR {rv:#x}")))
}

/// Ours: the module on a fresh card of `variant`.
pub fn ours(variant: CieVariant, rate: Rate) -> BenchResult<Counts> {
    let link = Arc::new(LinkModel::new(card(variant), link_config(rate.bit_rate)));
    let mut m = Module::new(Box::new(LinkReader(link.clone())));
    let di = signed_digest_info()?;
    let Some(&slot) = m.slot_list(true, true).first() else {
        return fail("the module found no token");
    };
    rv("C_GetTokenInfo", m.token_info(slot))?;
    let h = rv(
        "C_OpenSession",
        m.open_session(slot, ck::CKF_SERIAL_SESSION),
    )?;
    let token_open = link.stats();
    link.reset();
    rv("C_Login", m.login(h, ck::CKU_USER, Some(PIN)))?;
    rv(
        "C_SignInit",
        m.sign_init(h, ck::CKM_RSA_PKCS, None, H_PRIVATE),
    )?;
    let signature = rv("C_Sign", m.sign(h, Some(&di)))?;
    let login_sign = link.stats();
    link.reset();
    rv(
        "C_SignInit",
        m.sign_init(h, ck::CKM_RSA_PKCS, None, H_PRIVATE),
    )?;
    if rv("C_Sign", m.sign(h, Some(&di)))? != signature {
        return fail("ours: the second signature differs");
    }
    Ok(Counts {
        token_open: Some(token_open),
        login_sign,
        further_sign: link.stats(),
        signature,
    })
}

/// The peer: the official module's sequence (cie.md §9) on a fresh card of `variant`.
pub fn official(variant: CieVariant, rate: Rate) -> BenchResult<Counts> {
    pollster::block_on(async {
        let (link, ch) = channel_over(card(variant), rate.bit_rate);
        let rng = SeededRandomness::new(SEED);
        let di = signed_digest_info()?;
        // The pairing cache (not counted).
        cie_core::apdu::files::select_aid(&ch, AID_CIE).await?;
        let chip_key = official::read_chip_key(&ch).await?;
        link.reset();
        // C_Login.
        {
            let sm = official::secure_channel(&ch, &rng, Some(&chip_key)).await?;
            official::verify_pin(&sm).await?;
        }
        // C_Sign: the same again, then the signature.
        let sign = || async {
            let sm = official::secure_channel(&ch, &rng, Some(&chip_key)).await?;
            official::verify_pin(&sm).await?;
            official::sign(&sm, &di).await
        };
        let signature = sign().await?;
        let login_sign = link.stats();
        link.reset();
        if sign().await? != signature {
            return fail("official: the second signature differs");
        }
        Ok(Counts {
            token_open: None,
            login_sign,
            further_sign: link.stats(),
            signature,
        })
    })
}
