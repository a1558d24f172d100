//! The virtual CNS with hand-built APDUs (the card alone), then driven by the core's `cns`
//! applet (the two sides written separately must agree): files, the STIncard PIN reference,
//! the PIN counter through to blocked, MSE + PSO raw RSA.
#![allow(clippy::unwrap_used)]

mod common;
use card_sim::cns::{self, AUTH_CERT_DER, HOLDER_CF};
use card_sim::{CardConfig, VirtualCard};
use cie_core::apdu::CardChannel;
use cie_core::applets::cns::atr::CnsAtr;
use cie_core::applets::cns::pin::CnsPin;
use cie_core::applets::cns::{CnsApplet, CnsError, PinStatus, padding};
use cie_core::applets::ias::digest_info::{DigestAlgorithm, digest_info};
use common::send;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const PIN_PADDED: &str = "3133353739FFFFFF";

fn public_key() -> RsaPublicKey {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(AUTH_CERT_DER).unwrap();
    let key = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key;
    RsaPublicKey::from_pkcs1_der(key.raw_bytes()).unwrap()
}

#[test]
fn apdus_by_hand() {
    let card = cns::virtual_cns();
    assert_eq!(send(&card, "00A4000C023F00").1, 0x9000);
    assert_eq!(send(&card, "00A4010C021000").1, 0x9000);
    assert_eq!(send(&card, "00A4020C021003").1, 0x9000);
    assert_eq!(send(&card, "00B0000010"), (cns::CARD_ID.to_vec(), 0x9000));
    // Reference 10 is unknown to the STIncard mask; 90 answers with the count.
    assert_eq!(send(&card, "00200010").1, 0x6A88);
    assert_eq!(
        send(&card, &("0020001008".to_owned() + PIN_PADDED)).1,
        0x6A88
    );
    assert_eq!(send(&card, "00200090").1, 0x63C3);
    // Signing needs the PIN, then RESTORE before SET.
    let block = "00".repeat(255) + "01";
    assert_eq!(send(&card, &format!("002A9E9A000100{block}0100")).1, 0x6700);
    assert_eq!(
        send(&card, &("0020009008".to_owned() + PIN_PADDED)).1,
        0x9000
    );
    assert_eq!(send(&card, "00200090").1, 0x9000);
    assert_eq!(send(&card, "0022F1B603830101").1, 0x6985);
    assert_eq!(send(&card, "0022F30300").1, 0x9000);
    assert_eq!(send(&card, "0022F1B603830102").1, 0x6A88);
    assert_eq!(send(&card, "0022F1B603830101").1, 0x9000);
    // Chained in two short APDUs.
    let (part1, part2) = block.split_at(2 * 200);
    assert_eq!(send(&card, &format!("102A9E9AC8{part1}")).1, 0x9000);
    let (sig, sw) = send(&card, &format!("002A9E9A38{part2}00"));
    assert_eq!(sw, 0x9000);
    assert_eq!(sig.len(), 256);
    // A reset forgets the PIN.
    card.power_cycle();
    assert_eq!(send(&card, "00200090").1, 0x63C3);
}

#[test]
fn pin_counts_down_to_blocked_and_persists() {
    let card = cns::virtual_cns();
    let wrong = "0020009008".to_owned() + "3030303030FFFFFF";
    assert_eq!(send(&card, &wrong).1, 0x63C2);
    card.power_cycle();
    assert_eq!(card.pin_tries_left(), Some(2));
    assert_eq!(send(&card, &wrong).1, 0x63C1);
    assert_eq!(send(&card, &wrong).1, 0x6983);
    assert_eq!(
        send(&card, &("0020009008".to_owned() + PIN_PADDED)).1,
        0x6983
    );
    assert_eq!(send(&card, "00200090").1, 0x6983);
    assert_eq!(card.pin_tries_left(), Some(0));
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[test]
fn the_core_applet_reads_logs_in_and_signs() {
    let card = Arc::new(cns::virtual_cns());
    let family = CnsAtr::parse(&cns::ATR_STINCARD).map(|a| a.family);
    let ch = CardChannel::new(card.clone());
    let mut applet = run(CnsApplet::select(&ch, family)).unwrap();
    assert_eq!(
        run(applet.read_card_id()).unwrap().as_str(),
        "7420000000000042"
    );
    let personal = run(applet.read_personal_data()).unwrap();
    assert_eq!(personal.codice_fiscale.as_str(), HOLDER_CF);
    assert_eq!(personal.display_name(), "LUCA PROVA");
    assert_eq!(run(applet.read_certificate()).unwrap(), AUTH_CERT_DER);
    assert_eq!(run(applet.pin_status()).unwrap(), PinStatus::TriesLeft(3));

    let wrong = CnsPin::new(b"00000").unwrap();
    let err = run(applet.verify_pin(&wrong, PinStatus::TriesLeft(3), false)).unwrap_err();
    assert_eq!(err, CnsError::WrongPin { remaining: 2 });
    let pin = CnsPin::new(cns::PIN).unwrap();
    run(applet.verify_pin(&pin, PinStatus::TriesLeft(2), false)).unwrap();
    assert_eq!(card.pin_tries_left(), Some(3));

    let key = public_key();
    let digest = Sha256::digest(b"hello CNS");
    let di = digest_info(DigestAlgorithm::Sha256, &digest).unwrap();
    let block = padding::pkcs1_v15(&di, 256).unwrap();
    let sig = run(applet.sign_raw(&block)).unwrap();
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
        .unwrap();

    let salt = [7u8; 32];
    let em = padding::pss(
        &digest,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha256,
        &salt,
        2048,
    )
    .unwrap();
    let sig = run(applet.sign_raw(&em)).unwrap();
    key.verify(rsa::Pss::new::<Sha256>(), &digest, &sig)
        .unwrap();
}

#[test]
fn the_family_guess_does_not_matter() {
    // The mask byte says Athena (ref 10); the empty VERIFY finds 90 without a try.
    let card = Arc::new(cns::virtual_cns_with(CardConfig::extended(1024)));
    let ch = CardChannel::new(card.clone());
    let mut applet = run(CnsApplet::select(
        &ch,
        Some(cie_core::applets::cns::atr::ChipFamily::Athena),
    ))
    .unwrap();
    assert_eq!(run(applet.pin_status()).unwrap(), PinStatus::TriesLeft(3));
    assert_eq!(applet.pin_reference(), 0x90);
    assert_eq!(card.pin_tries_left(), Some(3));
    let _: &VirtualCard = &card;
}
