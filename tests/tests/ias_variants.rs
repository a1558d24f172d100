//! The full CIE login (select → NIS → secure session → PIN status → VERIFY → certificate →
//! signature) against every field variant the virtual CIE offers (cie.md §2.3): each chip
//! vendor, `6A82` on the IAS AID (MF fallback), the reordered `7F49` CA key template, the
//! single and three-request DH GET DATA, `61xx` splitting, small card buffers, an
//! extended-length link, and an ST chip that refuses the CHR by `B6`. Each must end with a
//! signature that verifies with the certificate key, in a bounded number of APDUs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::Counter;

use card_sim::ias::{CieVariant, Vendor};
use card_sim::{CardConfig, VirtualCard};
use cie_core::apdu::CardChannel;
use cie_core::applets::ias::digest_info::DigestAlgorithm;
use cie_core::applets::ias::pin::Pin;
use cie_core::applets::ias::secure::PinStatus;
use cie_core::applets::ias::{IasApplet, IasError};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use std::sync::Arc;

const PIN: &str = "12345678";
const CHALLENGE: &[u8] = b"server nonce fetched before the tap";

/// APDUs of the login over the default short link (256-byte answers, 231 bytes of plaintext
/// per protected answer), measured: 40, of which the 1.9 kB certificate takes 10 reads.
/// The MF fallback adds 1 (the `6A82` select stays). The other bounds below are the measured
/// counts rounded up a little: 64-byte `61xx` parts 77 (bound 80), a 128-byte card buffer
/// 58 (60), a 231-byte one 44 (45), extended length 27 (30: certificate and EF 1004 in one
/// read each).
const SHORT_LINK_APDUS: usize = 40;

fn verifying_key() -> VerifyingKey<Sha256> {
    VerifyingKey::new(common::cert_public_key(card_sim::ias::pki::AUTH_CERT_DER))
}

/// Run the login on `card` and return its APDU count; panics unless the signature verifies.
fn login(card: &Arc<VirtualCard>, rng: &Counter, what: &str) -> usize {
    card.power_cycle();
    card.clear_log();
    let ch = CardChannel::new(card.clone());
    let (cert, sig) = pollster::block_on(async {
        let ias = IasApplet::select(&ch).await?;
        assert_eq!(ias.read_nis().await?.text(), "000011112222", "{what}");
        let secure = ias.open_secure(rng).await?;
        assert_eq!(
            secure.pin_status().await?,
            PinStatus::TriesLeft(3),
            "{what}"
        );
        secure.verify_pin(&Pin::new(PIN).unwrap(), false).await?;
        let cert = secure.read_certificate().await?;
        let sig = secure
            .sign(DigestAlgorithm::Sha256, &Sha256::digest(CHALLENGE))
            .await?;
        Ok::<_, IasError>((cert, sig))
    })
    .unwrap_or_else(|e| panic!("{what}: login failed: {e:?}"));
    assert_eq!(cert, card_sim::ias::pki::AUTH_CERT_DER, "{what}");
    verifying_key()
        .verify(CHALLENGE, &Signature::try_from(sig.as_slice()).unwrap())
        .unwrap_or_else(|e| panic!("{what}: signature does not verify: {e}"));
    assert_eq!(card.pin_tries_left(), Some(3), "{what}");
    card.apdu_count()
}

fn rng() -> Counter {
    Counter::new(0x7A21)
}

const VENDORS: [Vendor; 10] = [
    Vendor::Gemalto,
    Vendor::Gemalto2,
    Vendor::Nxp,
    Vendor::St,
    Vendor::Actalis,
    Vendor::Actalis2023,
    Vendor::Bit4id,
    Vendor::Bit4id2023,
    Vendor::Bit4idB9547,
    Vendor::ActalisB946,
];

#[test]
fn every_vendor_logs_in() {
    let rng = rng();
    for vendor in VENDORS {
        let variant = CieVariant::for_vendor(vendor);
        let fallback = !variant.ias_aid_selectable;
        let card = Arc::new(VirtualCard::cie_variant(variant, CardConfig::short()));
        let n = login(&card, &rng, &format!("{vendor:?}"));
        let mf_selected = card.log().iter().any(|c| c.starts_with(&[0, 0xA4, 0, 0]));
        assert_eq!(
            mf_selected, fallback,
            "{vendor:?}: MF fallback only after 6A82"
        );
        assert_eq!(
            n,
            SHORT_LINK_APDUS + usize::from(fallback),
            "{vendor:?}: APDU count"
        );
    }
}

#[test]
fn protocol_switches_one_at_a_time() {
    let rng = rng();
    let base = CieVariant::default();
    let cases = [
        (
            "6A82 on the IAS AID",
            CieVariant {
                ias_aid_selectable: false,
                ..base.clone()
            },
            1,
        ),
        (
            "reordered 7F49",
            CieVariant {
                reordered_ca_key_template: true,
                ..base.clone()
            },
            0,
        ),
        (
            "three-request DH only",
            CieVariant {
                dh_single_get_data: false,
                ..base.clone()
            },
            0,
        ),
        (
            "single DH GET DATA accepted too",
            CieVariant {
                dh_single_get_data: true,
                ..base.clone()
            },
            0,
        ),
        (
            "ST: CHR only by A4",
            CieVariant {
                chr_via_dst: false,
                ..base.clone()
            },
            0,
        ),
        (
            "all 2023+ switches at once",
            CieVariant {
                ias_aid_selectable: false,
                dh_single_get_data: false,
                reordered_ca_key_template: true,
                chr_via_dst: false,
                ..base.clone()
            },
            1,
        ),
    ];
    for (what, variant, extra) in cases {
        let card = Arc::new(VirtualCard::cie_variant(variant, CardConfig::short()));
        assert_eq!(login(&card, &rng, what), SHORT_LINK_APDUS + extra, "{what}");
    }
}

#[test]
fn link_and_buffer_variants() {
    let rng = rng();
    let cases: [(&str, CardConfig, usize); 5] = [
        (
            "61xx splitting in 64-byte parts",
            CardConfig {
                get_response_chunk: Some(64),
                ..CardConfig::short()
            },
            // Every answer over 64 bytes comes in ceil(len / 64) parts.
            80,
        ),
        (
            "128-byte card buffer",
            CardConfig {
                max_response_data: 128,
                ..CardConfig::short()
            },
            60,
        ),
        (
            "231-byte card buffer",
            CardConfig {
                max_response_data: 231,
                ..CardConfig::short()
            },
            45,
        ),
        (
            "extended length, 1 KiB buffer",
            CardConfig::extended(1024),
            30,
        ),
        (
            "extended length, 64 KiB buffer",
            CardConfig::extended(65_536),
            30,
        ),
    ];
    for (what, config, bound) in cases {
        let card = Arc::new(VirtualCard::cie_variant(CieVariant::default(), config));
        let n = login(&card, &rng, what);
        eprintln!("{what}: {n} APDUs");
        assert!(n <= bound, "{what}: {n} APDUs, bound {bound}");
    }
}
