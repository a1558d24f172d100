//! The core's eMRTD reader against card-sim's independent chip: PACE with the CAN on the
//! virtual CIE (DH-GM 3DES on the 2048/256 group, as the real card advertises) and on ECDH
//! variants, BAC on the virtual passport, every data group read under secure messaging,
//! parsed, and passive authentication against the test CSCA — including forged data.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use card_sim::emrtd::{self as chip, EmrtdBuilder, EmrtdFiles, PaceVariant};
use card_sim::{CardConfig, CieVariant, VirtualCard};
use cie_core::apdu::{ApduChannel, ApduError, CardChannel, Sw, files};
use cie_core::applets::emrtd::lds::{com, dg1, dg2, dg11, dg12, sod};
use cie_core::applets::emrtd::passive::{HashCheck, PaError, TrustStore, verify};
use cie_core::applets::emrtd::{self, Can, EmrtdError, Mrz, PacePassword, bac, pace};
use common::Counter;

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn rng() -> Counter {
    Counter::new(42)
}

fn trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_der(chip::CSCA_CERT_DER).unwrap();
    t
}

fn cie_with(builder: &EmrtdBuilder) -> Arc<VirtualCard> {
    // DH PACE on parameter 2 sends 264 bytes: extended length, as the real CIE needs.
    Arc::new(card_sim::cie::virtual_cie_with(
        CieVariant::default(),
        CardConfig::extended(4096),
        builder,
    ))
}

/// Read every file EF.COM lists, plus EF.SOD, over `ch` (already authenticated).
async fn read_all<C: ApduChannel>(ch: &C) -> (Vec<u8>, Vec<u8>, Vec<(u8, Vec<u8>)>) {
    emrtd::select_applet(ch).await.unwrap();
    let com_bytes = files::read_ef(ch, [0x01, 0x1E]).await.unwrap();
    let sod_bytes = files::read_ef(ch, [0x01, 0x1D]).await.unwrap();
    let listed = com::parse(&com_bytes).unwrap().files;
    let mut dgs = Vec::new();
    for f in listed {
        if let emrtd::lds::File::Dg(n) = f {
            dgs.push((n, files::read_ef(ch, [0x01, n]).await.unwrap()));
        }
    }
    (com_bytes, sod_bytes, dgs)
}

fn check_against(expected: &EmrtdFiles, com_bytes: &[u8], sod_bytes: &[u8], dgs: &[(u8, Vec<u8>)]) {
    assert_eq!(com_bytes, expected.com.as_slice());
    assert_eq!(sod_bytes, expected.sod.as_slice());
    assert_eq!(
        dgs.len(),
        expected.dgs.len(),
        "EF.COM lists what the chip holds"
    );
    for (n, bytes) in dgs {
        assert_eq!(Some(bytes.as_slice()), expected.dg(*n), "DG{n}");
    }
}

fn pa(sod_bytes: &[u8], dgs: &[(u8, Vec<u8>)]) -> cie_core::applets::emrtd::passive::PassiveReport {
    let s = sod::parse(sod_bytes).unwrap();
    let refs: Vec<(u8, &[u8])> = dgs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    verify(&s, &refs, &trust())
}

#[test]
fn pace_can_on_the_virtual_cie_reads_parses_and_verifies_every_file() {
    let builder = EmrtdBuilder::cie();
    let card = cie_with(&builder);
    let ch = CardChannel::new(card.clone());
    block(async {
        let infos = emrtd::read_card_access(&ch)
            .await
            .unwrap()
            .expect("the CIE has EF.CardAccess");
        assert_eq!(
            infos.pace_infos().count(),
            1,
            "one PACEInfo, DH-GM 3DES param 2"
        );
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        let (com_bytes, sod_bytes, dgs) = read_all(&sm).await;
        check_against(&builder.files(), &com_bytes, &sod_bytes, &dgs);

        let mrz = dg1::parse(&dgs.iter().find(|(n, _)| *n == 1).unwrap().1).unwrap();
        assert_eq!(mrz.format, dg1::MrzFormat::Td1);
        assert_eq!(mrz.document_number, "CA00000AA");
        assert_eq!(mrz.issuing_state, "ITA");
        assert_eq!(
            (mrz.date_of_birth.as_str(), mrz.date_of_expiry.as_str()),
            ("800101", "350101")
        );
        assert_eq!(
            (
                mrz.primary_identifier.as_str(),
                mrz.secondary_identifier.as_str()
            ),
            ("TESTER", "MARIA")
        );
        let details = dg11::parse(&dgs.iter().find(|(n, _)| *n == 11).unwrap().1).unwrap();
        assert_eq!(details.personal_number.as_deref(), Some("TSTTST80A01H501X"));
        assert!(details.address.is_some() && details.place_of_birth.is_some());
        let doc = dg12::parse(&dgs.iter().find(|(n, _)| *n == 12).unwrap().1).unwrap();
        assert!(doc.issuing_authority.is_some() && doc.date_of_issue.is_some());
        // The CIE's face is JPEG 2000; it must decode.
        let faces = dg2::parse(&dgs.iter().find(|(n, _)| *n == 2).unwrap().1).unwrap();
        assert_eq!(faces[0].format, dg2::ImageFormat::Jpeg2000);
        let rgb = faces[0].decode().unwrap();
        assert_eq!((rgb.width, rgb.height), (60, 80));
        assert_eq!(rgb.pixels.len(), 60 * 80 * 3);
        assert!(
            rgb.pixels.iter().any(|&p| p != rgb.pixels[0]),
            "a real picture, not a flat fill"
        );

        let report = pa(&sod_bytes, &dgs);
        assert!(report.signature.is_ok(), "{:?}", report.signature);
        assert!(report.chain.is_ok(), "{:?}", report.chain);
        assert!(
            report
                .data_groups
                .iter()
                .all(|(_, c)| *c == HashCheck::Match),
            "{:?}",
            report.data_groups
        );
        assert!(report.is_valid());
    });
}

#[test]
fn pace_ecdh_variants_and_mrz_password() {
    for variant in [
        PaceVariant::EcdhGmAes128P256,
        PaceVariant::EcdhGmAes128BrainpoolP256r1,
        PaceVariant::DhGmAes128Param0,
    ] {
        let builder = EmrtdBuilder::cie().pace_only(&[variant]);
        let card = cie_with(&builder);
        let ch = CardChannel::new(card);
        block(async {
            let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
            let info = builder.holder().mrz_information();
            for pw in [
                PacePassword::Can(Can::new(chip::TEST_CAN).unwrap()),
                PacePassword::Mrz(Mrz::from_information(&info).unwrap()),
            ] {
                let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
                    .await
                    .unwrap();
                emrtd::select_applet(&sm).await.unwrap();
                let dg1_bytes = files::read_ef(&sm, [0x01, 0x01]).await.unwrap();
                assert_eq!(
                    Some(dg1_bytes.as_slice()),
                    builder.files().dg(1),
                    "{variant:?}"
                );
            }
        });
    }
}

#[test]
fn bac_on_the_virtual_passport() {
    let card = Arc::new(chip::virtual_passport_bac(CardConfig::default()));
    let ch = CardChannel::new(card);
    block(async {
        assert!(
            emrtd::read_card_access(&ch).await.unwrap().is_none(),
            "no PACE: BAC only"
        );
        emrtd::select_applet(&ch).await.unwrap();
        let sm = bac::bac(
            &ch,
            &Mrz::new("L898902C<", "690806", "940623").unwrap(),
            &rng(),
        )
        .await
        .unwrap();
        let (_, sod_bytes, dgs) = read_all(&sm).await;
        let mrz = dg1::parse(&dgs[0].1).unwrap();
        assert_eq!(mrz.format, dg1::MrzFormat::Td3);
        assert_eq!(mrz.document_number, "L898902C");
        let faces = dg2::parse(&dgs.iter().find(|(n, _)| *n == 2).unwrap().1).unwrap();
        assert_eq!(faces[0].format, dg2::ImageFormat::Jpeg);
        assert!(faces[0].decode().is_ok());
        assert!(pa(&sod_bytes, &dgs).is_valid());
    });
}

#[test]
fn forged_data_group_and_forged_sod_signature_are_reported_as_such() {
    let builder = EmrtdBuilder::cie().forge_dg(11);
    let ch = CardChannel::new(cie_with(&builder));
    let report = block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &pw, &rng())
            .await
            .unwrap();
        let (_, sod_bytes, dgs) = read_all(&sm).await;
        pa(&sod_bytes, &dgs)
    });
    assert!(report.signature.is_ok() && report.chain.is_ok());
    for (f, c) in &report.data_groups {
        let want = if *f == emrtd::lds::File::Dg(11) {
            HashCheck::Mismatch
        } else {
            HashCheck::Match
        };
        assert_eq!(*c, want, "{f}");
    }
    assert!(!report.is_valid());

    let builder = EmrtdBuilder::cie().forge_sod_signature();
    let files = builder.files();
    let dgs: Vec<(u8, Vec<u8>)> = files.dgs.clone();
    let report = pa(&files.sod, &dgs);
    assert!(
        matches!(report.signature, Err(PaError::BadSignature(_))),
        "{:?}",
        report.signature
    );
    assert!(report.chain.is_ok(), "the DS certificate itself is genuine");
    assert!(
        report
            .data_groups
            .iter()
            .all(|(_, c)| *c == HashCheck::Match)
    );

    // And a trust store without the test CSCA: the chain is what fails.
    let s = sod::parse(&EmrtdBuilder::cie().files().sod).unwrap();
    let refs: Vec<(u8, &[u8])> = dgs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let r = verify(&s, &refs, &TrustStore::new());
    assert!(
        matches!(r.chain, Err(PaError::UntrustedIssuer { .. })),
        "{:?}",
        r.chain
    );
}

#[test]
fn wrong_can_is_a_clear_error_and_does_not_lock_the_card() {
    let ch = CardChannel::new(cie_with(&EmrtdBuilder::cie()));
    block(async {
        let infos = emrtd::read_card_access(&ch).await.unwrap().unwrap();
        let wrong = PacePassword::Can(Can::new("654321").unwrap());
        let e = pace::pace_with_card_access(&ch, &infos, &wrong, &rng())
            .await
            .unwrap_err();
        assert!(matches!(e, EmrtdError::WrongSecret { .. }), "{e:?}");
        assert!(e.message_it().contains("CAN"), "{}", e.message_it());
        // Before access control the data groups are refused.
        emrtd::select_applet(&ch).await.unwrap();
        match files::read_ef(&ch, [0x01, 0x01]).await {
            Err(ApduError::Status { sw, .. }) => assert_eq!(sw, Sw::SECURITY_STATUS_NOT_SATISFIED),
            other => panic!("DG1 in clear: {other:?}"),
        }
        // The right CAN right after works: nothing was blocked.
        let right = PacePassword::Can(Can::new(chip::TEST_CAN).unwrap());
        let sm = pace::pace_with_card_access(&ch, &infos, &right, &rng())
            .await
            .unwrap();
        emrtd::select_applet(&sm).await.unwrap();
        assert!(files::read_ef(&sm, [0x01, 0x01]).await.is_ok());
    });
}

#[test]
fn master_list_loads_its_cscas_and_checks_its_own_signature() {
    let other_csca = include_bytes!("../../card-sim/testdata/test_ca_cert.der");
    let ml = chip::master_list(&[chip::CSCA_CERT_DER, other_csca], chip::DS_CERT_DER);
    let mut trust = TrustStore::new();
    let info = trust.add_master_list(&ml).unwrap();
    assert_eq!((info.added, info.skipped, trust.len()), (2, 0, 2));
    assert!(info.signature.is_ok(), "{:?}", info.signature);
    assert!(
        info.signer_chains_to_listed_csca,
        "the list signer was issued by a listed CSCA"
    );
    // The CSCAs from the list verify the virtual CIE.
    let files = EmrtdBuilder::cie().files();
    let s = sod::parse(&files.sod).unwrap();
    let refs: Vec<(u8, &[u8])> = files.dgs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    assert!(verify(&s, &refs, &trust).is_valid());

    // A list altered after signing: the certificates still load (trust comes from where
    // the list was fetched) but its signature is reported bad.
    let mut tampered = ml.clone();
    let at = tampered.windows(4).position(|w| w == b"TEST").unwrap();
    tampered[at] = b'X';
    let info = TrustStore::new().add_master_list(&tampered).unwrap();
    assert!(
        matches!(info.signature, Err(PaError::Attributes(_))),
        "{:?}",
        info.signature
    );
    // An EF.SOD is not a master list.
    assert!(TrustStore::new().add_master_list(&files.sod[4..]).is_err());
    assert!(TrustStore::new().add_master_list(b"not cms").is_err());
}
