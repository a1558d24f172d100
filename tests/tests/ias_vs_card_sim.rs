//! The core's IAS applet against the independent virtual CIE: NIS, secure channel (DH +
//! DAPP), PIN with its counters, certificate, signature checked with the certificate's key.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::Counter;

use card_sim::VirtualCard;
use cie_core::apdu::CardChannel;
use cie_core::applets::ias::digest_info::DigestAlgorithm;
use cie_core::applets::ias::pin::Pin;
use cie_core::applets::ias::secure::PinStatus;
use cie_core::applets::ias::{IasApplet, IasError};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use std::sync::Arc;

fn rng() -> Counter {
    Counter::new(7)
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// The virtual CIE's synthetic PIN.
const PIN: &str = "12345678";

#[test]
fn full_tap_read_secure_channel_pin_certificate_and_signature() {
    let card = Arc::new(VirtualCard::cie());
    let ch = CardChannel::new(card.clone());
    block(async {
        let ias = IasApplet::select(&ch).await.unwrap();
        let nis = ias.read_nis().await.unwrap();
        assert_eq!(nis.text(), "000011112222");
        let secure = ias.open_secure(&rng()).await.unwrap();
        assert_eq!(secure.pin_status().await.unwrap(), PinStatus::TriesLeft(3));
        secure
            .verify_pin(&Pin::new(PIN).unwrap(), false)
            .await
            .unwrap();
        assert_eq!(secure.pin_status().await.unwrap(), PinStatus::Verified);

        let cert_der = secure.read_certificate().await.unwrap();
        assert_eq!(cert_der, card_sim::ias::pki::AUTH_CERT_DER);

        let challenge = b"server nonce fetched before the tap";
        let digest = Sha256::digest(challenge);
        let sig = secure.sign(DigestAlgorithm::Sha256, &digest).await.unwrap();
        let key = common::cert_public_key(&cert_der);
        VerifyingKey::<Sha256>::new(key)
            .verify(challenge, &Signature::try_from(sig.as_slice()).unwrap())
            .expect("the card's signature verifies with its certificate key");
    });
}

#[test]
fn wrong_pins_count_down_block_and_puk_unblocks() {
    let card = Arc::new(VirtualCard::cie());
    let wrong = Pin::new("11112222").unwrap();
    let tap = |card: &Arc<VirtualCard>| {
        card.power_cycle();
        CardChannel::new(card.clone())
    };
    block(async {
        let ch = tap(&card);
        let ias = IasApplet::select(&ch).await.unwrap();
        let s = ias.open_secure(&rng()).await.unwrap();
        assert_eq!(
            s.verify_pin(&wrong, false).await,
            Err(IasError::WrongPin { remaining: 2 })
        );
        assert_eq!(
            s.verify_pin(&wrong, false).await,
            Err(IasError::WrongPin { remaining: 1 })
        );
        // One try left: nothing is sent until the user confirms.
        assert_eq!(
            s.verify_pin(&wrong, false).await,
            Err(IasError::LastTryNeedsConfirmation)
        );
        assert_eq!(
            card.pin_tries_left(),
            Some(1),
            "no try spent without confirmation"
        );
    });
    block(async {
        // Counters persist across taps.
        let ch = tap(&card);
        let ias = IasApplet::select(&ch).await.unwrap();
        let s = ias.open_secure(&rng()).await.unwrap();
        assert_eq!(s.pin_status().await.unwrap(), PinStatus::TriesLeft(1));
        assert_eq!(s.verify_pin(&wrong, true).await, Err(IasError::PinBlocked));
        assert_eq!(
            s.verify_pin(&Pin::new(PIN).unwrap(), true).await,
            Err(IasError::PinBlocked)
        );
        assert_eq!(s.pin_status().await.unwrap(), PinStatus::Blocked);
        // Signing without the PIN is refused.
        assert_eq!(
            s.sign(DigestAlgorithm::Sha256, &[0; 32]).await,
            Err(IasError::PinRequired)
        );
    });
    block(async {
        let ch = tap(&card);
        let ias = IasApplet::select(&ch).await.unwrap();
        let s = ias.open_secure(&rng()).await.unwrap();
        let new_pin = Pin::new("24681357").unwrap();
        s.unblock_pin(&Pin::new(card_sim_puk()).unwrap(), &new_pin, false)
            .await
            .unwrap();
        s.verify_pin(&new_pin, false).await.unwrap();
        assert_eq!(card.pin_tries_left(), Some(3));
    });
}

fn card_sim_puk() -> &'static str {
    std::str::from_utf8(card_sim::ias::pki::TEST_PUK).unwrap()
}

#[test]
fn certificate_names_the_holder() {
    use cie_core::applets::ias::certificate::CieCertificate;
    let cert = CieCertificate::from_der(card_sim::ias::pki::AUTH_CERT_DER).unwrap();
    assert_eq!(cert.codice_fiscale.as_deref(), Some("TSTTST80A01H501X"));
    assert_eq!(cert.given_name.as_deref(), Some("MARIA"));
    assert_eq!(cert.surname.as_deref(), Some("TESTER"));
    assert!(cert.issuer.contains("TEST CA"), "{}", cert.issuer);
    assert!(cert.not_before < cert.not_after);
    assert!(cert.is_valid_at(cert.not_before + 1));
    assert!(!cert.is_valid_at(cert.not_after + 1));
    assert_eq!(cert.public_key.bits(), 2048);
}

#[test]
fn genuine_card_passes_and_a_clone_with_another_key_fails() {
    let card = Arc::new(VirtualCard::cie());
    let ch = CardChannel::new(card.clone());
    let proof = block(async {
        let ias = IasApplet::select(&ch).await.unwrap();
        ias.verify_card_genuine(b"0123456789abcdef").await.unwrap()
    });
    assert_eq!(proof.signature.len(), 256);
    assert_eq!(proof.public_key.der, card_sim::ias::pki::EF_1005);

    // A clone: the same files, copied, but the private key stayed in the real chip, so the
    // cloner answers the challenge with a key of their own (here the test CA's).
    struct Clone(Arc<VirtualCard>);
    #[async_trait::async_trait]
    impl cie_core::transport::CardTransport for Clone {
        async fn transmit(
            &self,
            apdu: Vec<u8>,
        ) -> Result<Vec<u8>, cie_core::transport::TransportError> {
            let is_int_auth = apdu.starts_with(&[0x00, 0x88, 0x00, 0x00]);
            let answer = self.0.transmit(apdu.clone()).await?;
            if !is_int_auth {
                return Ok(answer);
            }
            use rsa::pkcs8::DecodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(include_bytes!(
                "../../card-sim/testdata/test_ca_key.pk8.der"
            ))
            .unwrap();
            let challenge = &apdu[5..5 + usize::from(apdu[4])];
            let mut forged = key
                .sign(rsa::Pkcs1v15Sign::new_unprefixed(), challenge)
                .unwrap();
            forged.extend_from_slice(&[0x90, 0x00]);
            Ok(forged)
        }
        fn info(&self) -> cie_core::transport::TransportInfo {
            self.0.info()
        }
    }
    let clone = CardChannel::new(Arc::new(Clone(Arc::new(VirtualCard::cie()))));
    let result = block(async {
        let ias = IasApplet::select(&clone).await.unwrap();
        ias.verify_card_genuine(b"0123456789abcdef").await
    });
    assert_eq!(result.map(|_| ()), Err(IasError::NotGenuine));
}

#[test]
fn serial_and_chip_vendor() {
    use cie_core::applets::ias::vendor::ChipVendor;
    let card = Arc::new(VirtualCard::cie());
    let ch = CardChannel::new(card.clone());
    let (serial, ef_atr) = block(async {
        let ias = IasApplet::select(&ch).await.unwrap();
        let serial = ias.read_serial().await.unwrap();
        let ef_atr = cie_core::applets::probe::read_ef_atr(&ch)
            .await
            .unwrap()
            .unwrap();
        (serial, ef_atr)
    });
    assert_eq!(serial, "CA00000AA");
    // The default virtual CIE carries NXP's EF.ATR (card-sim's permissive default).
    assert_eq!(ChipVendor::from_ef_atr(&ef_atr), Some(ChipVendor::Nxp));
}

#[test]
fn change_pin_then_log_in_with_the_new_one() {
    let card = Arc::new(VirtualCard::cie());
    block(async {
        let ch = CardChannel::new(card.clone());
        let ias = IasApplet::select(&ch).await.unwrap();
        let s = ias.open_secure(&rng()).await.unwrap();
        let old = Pin::new(PIN).unwrap();
        // Rules checked before any try: a sequence is refused locally.
        assert!(
            s.change_pin(&old, &Pin::new("12345678").unwrap(), false)
                .await
                .is_err()
        );
        assert_eq!(card.pin_tries_left(), Some(3));
        s.change_pin(&old, &Pin::new("24681357").unwrap(), false)
            .await
            .unwrap();
    });
    card.power_cycle();
    block(async {
        let ch = CardChannel::new(card.clone());
        let ias = IasApplet::select(&ch).await.unwrap();
        let s = ias.open_secure(&rng()).await.unwrap();
        assert_eq!(
            s.verify_pin(&Pin::new(PIN).unwrap(), false).await,
            Err(IasError::WrongPin { remaining: 2 })
        );
        s.verify_pin(&Pin::new("24681357").unwrap(), false)
            .await
            .unwrap();
    });
}

#[test]
fn sod_hashes_bind_the_nis_and_the_nis_key() {
    let card = Arc::new(VirtualCard::cie());
    let ch = CardChannel::new(card.clone());
    let (nis, key, sod) = block(async {
        let ias = IasApplet::select(&ch).await.unwrap();
        (
            ias.read_nis().await.unwrap(),
            ias.read_nis_public_key().await.unwrap(),
            ias.read_sod().await.unwrap(),
        )
    });
    let hash = |data: &[u8]| -> Vec<u8> {
        match sod.digest_algorithm.last() {
            Some(0x01) => Sha256::digest(data).to_vec(),
            Some(0x03) => sha2::Sha512::digest(data).to_vec(),
            other => panic!("unexpected digest {other:?}"),
        }
    };
    assert_eq!(sod.hash_of(0xA1), Some(hash(nis.as_bytes()).as_slice()));
    assert_eq!(sod.hash_of(0xA5), Some(hash(&key.der).as_slice()));
    assert_ne!(sod.hash_of(0xA1), sod.hash_of(0xA5));
}
