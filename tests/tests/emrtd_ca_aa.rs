//! Chip Authentication and Active Authentication in the core against card-sim's chip:
//! CA DH/3DES on the virtual CIE (Set KAT, extended length) and ECDH P-256/AES (Set AT +
//! GENERAL AUTHENTICATE), then data read under the new keys; AA RSA ISO 9796-2 on the BAC
//! passport and ECDSA P-256; a tampered AA answer is the clone error; no DG15 is "not
//! offered".

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use card_sim::emrtd::{self as chip, ActiveAuth, ChipAuth, EmrtdBuilder, Holder};
use card_sim::{CardConfig, CieVariant, VirtualCard};
use cie_core::apdu::{ApduChannel, ApduError, CardChannel, Command, Limits, Response, files};
use cie_core::applets::emrtd::active_auth::{self, AaError, AaOutcome};
use cie_core::applets::emrtd::chip_auth::{self, CaPublicKey, ChipAuthConfig};
use cie_core::applets::emrtd::{self, Can, EmrtdError, Mrz, PacePassword, bac, pace};
use cie_core::sm::KeyAlgorithm;
use common::Counter;

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn rng() -> Counter {
    Counter::new(7)
}

fn cie_with(builder: &EmrtdBuilder) -> Arc<VirtualCard> {
    Arc::new(card_sim::cie::virtual_cie_with(
        CieVariant::default(),
        CardConfig::extended(4096),
        builder,
    ))
}

const DG1: [u8; 2] = [0x01, 0x01];
const DG14: [u8; 2] = [0x01, 0x0E];

/// PACE with the CAN, the eMRTD application selected, CA as DG14 says, DG1 read under the
/// new keys.
fn ca_on_cie(ca: ChipAuth, cipher: KeyAlgorithm) {
    let builder = EmrtdBuilder::cie().chip_auth(Some(ca));
    let card = cie_with(&builder);
    let ch = CardChannel::new(card);
    block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        emrtd::select_applet(&sm).await.unwrap();
        let dg14 = chip_auth::parse_dg14(&files::read_ef(&sm, DG14).await.unwrap()).unwrap();
        let config = ChipAuthConfig::from_dg14(&dg14).unwrap().unwrap();
        assert_eq!(config.cipher, cipher);
        let ssc_before = sm.ssc();
        let sm = chip_auth::chip_authentication(sm, &dg14, &rng())
            .await
            .unwrap();
        assert_ne!(sm.ssc(), ssc_before);
        let dg1 = files::read_ef(&sm, DG1).await.unwrap();
        assert_eq!(Some(dg1.as_slice()), builder.files().dg(1), "{ca:?}");
    });
}

#[test]
fn ca_dh_3des_on_the_virtual_cie_then_dg1_under_the_new_keys() {
    ca_on_cie(ChipAuth::Dh3desParam2, KeyAlgorithm::Tdes);
}

#[test]
fn ca_ecdh_p256_aes() {
    ca_on_cie(ChipAuth::EcdhP256Aes128, KeyAlgorithm::Aes128);
}

#[test]
fn ca_with_a_key_the_chip_does_not_hold_is_the_clone_error() {
    // The DG14 key replaced by g itself: the chip agrees with its real key, so it cannot
    // answer under the keys derived here — what a clone with a copied DG14 looks like.
    let builder = EmrtdBuilder::cie();
    let card = cie_with(&builder);
    let ch = CardChannel::new(card);
    block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        emrtd::select_applet(&sm).await.unwrap();
        let dg14 = chip_auth::parse_dg14(&files::read_ef(&sm, DG14).await.unwrap()).unwrap();
        let mut config = ChipAuthConfig::from_dg14(&dg14).unwrap().unwrap();
        let CaPublicKey::Dh { g, y, .. } = &mut config.public_key else {
            panic!("the CIE's CA key is DH");
        };
        *y = g.clone();
        let err = chip_auth::chip_authentication_with(sm, &config, &rng())
            .await
            .unwrap_err();
        assert_eq!(err, EmrtdError::ChipAuthenticationFailed);
        assert!(!err.message_it().is_empty());
    });
}

#[test]
fn chip_without_ca_has_no_config() {
    let builder = EmrtdBuilder::new(Holder::icao_specimen_passport())
        .active_auth(Some(ActiveAuth::EcdsaP256Sha256));
    let dg14 = chip_auth::parse_dg14(builder.files().dg(14).unwrap()).unwrap();
    assert_eq!(ChipAuthConfig::from_dg14(&dg14), Ok(None));
}

async fn bac_session(ch: &CardChannel) -> cie_core::sm::SecureChannel<&CardChannel> {
    emrtd::select_applet(ch).await.unwrap();
    bac::bac(
        ch,
        &Mrz::new("L898902C<", "690806", "940623").unwrap(),
        &rng(),
    )
    .await
    .unwrap()
}

#[test]
fn aa_rsa_iso9796_2_on_the_bac_passport() {
    let card = Arc::new(chip::virtual_passport_bac(CardConfig::default()));
    let ch = CardChannel::new(card);
    block(async {
        let sm = bac_session(&ch).await;
        let outcome = active_auth::active_authentication(&sm, None, &rng())
            .await
            .unwrap();
        assert_eq!(outcome, AaOutcome::Verified);
        // Twice: a fresh challenge each time.
        let outcome = active_auth::active_authentication(&sm, None, &rng())
            .await
            .unwrap();
        assert_eq!(outcome, AaOutcome::Verified);
    });
}

#[test]
fn aa_ecdsa_p256_with_the_hash_from_dg14() {
    let builder = EmrtdBuilder::new(Holder::icao_specimen_passport())
        .active_auth(Some(ActiveAuth::EcdsaP256Sha256));
    let card = Arc::new(builder.build(CardConfig::default()));
    let ch = CardChannel::new(card);
    block(async {
        let sm = bac_session(&ch).await;
        let dg14 = chip_auth::parse_dg14(&files::read_ef(&sm, DG14).await.unwrap()).unwrap();
        assert_eq!(
            active_auth::ecdsa_hash(&dg14).unwrap(),
            Some(cie_core::applets::emrtd::passive::HashAlg::Sha256)
        );
        let outcome = active_auth::active_authentication(&sm, Some(&dg14), &rng())
            .await
            .unwrap();
        assert_eq!(outcome, AaOutcome::Verified);
    });
}

#[test]
fn aa_on_the_virtual_cie_after_ca() {
    let builder = EmrtdBuilder::cie();
    let card = cie_with(&builder);
    let ch = CardChannel::new(card);
    block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        emrtd::select_applet(&sm).await.unwrap();
        let dg14 = chip_auth::parse_dg14(&files::read_ef(&sm, DG14).await.unwrap()).unwrap();
        let sm = chip_auth::chip_authentication(sm, &dg14, &rng())
            .await
            .unwrap();
        let outcome = active_auth::active_authentication(&sm, Some(&dg14), &rng())
            .await
            .unwrap();
        assert_eq!(outcome, AaOutcome::Verified);
    });
}

/// Flips one byte of the INTERNAL AUTHENTICATE answer after secure messaging verified it:
/// the chip's signature itself is wrong (a link fault would be a MAC error instead).
struct FlipAaAnswer<C>(C);

#[async_trait::async_trait]
impl<C: ApduChannel> ApduChannel for FlipAaAnswer<C> {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        let mut r = self.0.transmit(cmd).await?;
        if cmd.ins == 0x88
            && let Some(b) = r.data.get_mut(10)
        {
            *b ^= 0x01;
        }
        Ok(r)
    }

    fn limits(&self) -> Limits {
        self.0.limits()
    }
}

#[test]
fn tampered_aa_answers_are_the_clone_error() {
    for aa in [ActiveAuth::RsaIso9796_2, ActiveAuth::EcdsaP256Sha256] {
        let builder = EmrtdBuilder::new(Holder::icao_specimen_passport()).active_auth(Some(aa));
        let card = Arc::new(builder.build(CardConfig::default()));
        let ch = CardChannel::new(card);
        block(async {
            let sm = bac_session(&ch).await;
            let dg14 = match files::read_ef(&sm, DG14).await {
                Ok(b) => Some(chip_auth::parse_dg14(&b).unwrap()),
                Err(_) => None,
            };
            let err = active_auth::active_authentication(&FlipAaAnswer(&sm), dg14.as_ref(), &rng())
                .await
                .unwrap_err();
            // RSA: the recovered block is noise (trailer or header wrong); ECDSA: invalid.
            assert!(
                matches!(
                    err,
                    EmrtdError::ActiveAuthenticationFailed(
                        AaError::Mismatch | AaError::BadTrailer | AaError::BadHeader
                    )
                ),
                "{aa:?}: {err:?}"
            );
            assert!(err.to_string().contains("clone"));
            assert!(err.message_it().contains("clonato"));
        });
    }
}

#[test]
fn no_dg15_is_not_offered() {
    let builder = EmrtdBuilder::cie().active_auth(None);
    let card = cie_with(&builder);
    let ch = CardChannel::new(card);
    block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        emrtd::select_applet(&sm).await.unwrap();
        let outcome = active_auth::active_authentication(&sm, None, &rng())
            .await
            .unwrap();
        assert_eq!(outcome, AaOutcome::NotOffered);
    });
}

#[test]
fn ca_refused_by_the_chip_is_typed() {
    // A key reference the chip does not have: MSE:Set AT is refused, under the old keys.
    let builder = EmrtdBuilder::cie().chip_auth(Some(ChipAuth::EcdhP256Aes128));
    let card = cie_with(&builder);
    let ch = CardChannel::new(card);
    block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        emrtd::select_applet(&sm).await.unwrap();
        let dg14 = chip_auth::parse_dg14(&files::read_ef(&sm, DG14).await.unwrap()).unwrap();
        let mut config = ChipAuthConfig::from_dg14(&dg14).unwrap().unwrap();
        config.key_id = Some(5);
        let err = chip_auth::chip_authentication_with(sm, &config, &rng())
            .await
            .unwrap_err();
        assert!(
            matches!(err, EmrtdError::ChipAuthenticationRefused { sw: 0x6A88 }),
            "{err:?}"
        );
    });
}

#[test]
fn aa_answer_corrupted_on_the_link_is_a_secure_messaging_error() {
    use card_sim::{Fault, FaultyTransport};
    // APDUs: SELECT, GET CHALLENGE, EXTERNAL AUTHENTICATE, then INTERNAL AUTHENTICATE (3).
    let builder = EmrtdBuilder::new(Holder::icao_specimen_passport());
    let key = active_auth::parse_dg15(builder.files().dg(15).unwrap()).unwrap();
    let card: Arc<VirtualCard> = Arc::new(builder.build(CardConfig::default()));
    let faulty = FaultyTransport::new(card).fail_at(3, Fault::CorruptByte { index: 20 });
    let ch = CardChannel::new(Arc::new(faulty));
    block(async {
        let sm = bac_session(&ch).await;
        let err = active_auth::active_authentication_with(&sm, &key, None, &rng())
            .await
            .unwrap_err();
        // Not the clone error: the MAC check catches the link fault first.
        assert!(
            matches!(err, EmrtdError::Apdu(ApduError::SecureMessaging(_))),
            "{err:?}"
        );
    });
}
