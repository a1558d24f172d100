//! Registration with the CIE (issue 12) end to end without the network: the core reads the
//! virtual CIE (card-sim) in one tap with the CAN — NIS internal authentication over the
//! challenge, the IAS SOD, PACE-CAN and the eMRTD files — and the server's pure
//! verification (`companion_server::registration`) accepts it; then every attack the issue
//! names is refused with its own reason: a forged challenge signature, a clone's key, an
//! altered or substituted data group, a SOD not chaining to the configured CSCA, and a DG12
//! mismatch without (or with a forged, or an unrelated) deviation-list entry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use card_sim::emrtd::{self as chip, EmrtdBuilder, FaceImage};
use card_sim::{CardConfig, CieVariant};
use cie_core::apdu::CardChannel;
use cie_core::applets::emrtd::{Can, OsRandomness};
use cie_core::flows::document::NoProgress;
use cie_core::flows::registration::{RegistrationDraft, RegistrationError, RegistrationRead};
use cie_core::flows::registration_wire::{RegistrationRequest, registration_challenge};
use cie_core::flows::wire::{ErrorCode, Origin, b64, unb64};
use companion_server::registration::{
    RegistrationRefusal, RegistrationTrust, TrustError, verify_registration,
};

const CHALLENGE: &str = "c2VydmVyLWNoYWxsZW5nZS0zMi1ieXRlcy1sb25nISE";

fn origin() -> Origin {
    Origin::parse("https://id.example.test").unwrap()
}

fn trust() -> RegistrationTrust {
    let mut t = RegistrationTrust::new();
    t.add_csca_der(chip::CSCA_CERT_DER).unwrap();
    t
}

/// One tap on a virtual CIE made by `builder`, signing the registration challenge.
fn read(builder: &EmrtdBuilder) -> Result<RegistrationDraft, RegistrationError> {
    read_with_can(builder, chip::TEST_CAN)
}

fn read_with_can(
    builder: &EmrtdBuilder,
    can: &str,
) -> Result<RegistrationDraft, RegistrationError> {
    let card = Arc::new(card_sim::cie::virtual_cie_with(
        CieVariant::default(),
        CardConfig::extended(1024),
        builder,
    ));
    let to_sign = registration_challenge(&origin(), CHALLENGE);
    let mut r = RegistrationRead::new(Can::new(can).unwrap(), &to_sign);
    pollster_block_on(r.tap(&CardChannel::new(card), &OsRandomness, &NoProgress))
}

fn pollster_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn cie_request() -> RegistrationRequest {
    read(&EmrtdBuilder::cie()).unwrap().request("ch-1")
}

fn verify(trust: &RegistrationTrust, req: &RegistrationRequest) -> Result<(), RegistrationRefusal> {
    verify_registration(trust, &origin(), CHALLENGE, req).map(|_| ())
}

fn flip_last(b64_text: &str) -> String {
    let mut bytes = unb64(b64_text).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    b64(&bytes)
}

#[test]
fn the_virtual_cie_registers_and_the_server_keeps_the_verified_attributes() {
    let builder = EmrtdBuilder::cie();
    let draft = read(&builder).unwrap();
    // What the citizen is shown before anything is sent.
    let shown = draft.summary().clone();
    assert_eq!(shown.surname, "TESTER");
    assert_eq!(shown.given_names, "MARIA");
    assert_eq!(shown.codice_fiscale.as_deref(), Some("TSTTST80A01H501X"));
    assert_eq!(shown.date_of_birth, "19800101");
    assert_eq!(shown.place_of_birth.as_deref(), Some("ROMA, (RM)"));
    assert_eq!(shown.document_number, "CA00000AA");
    assert_eq!(shown.date_of_expiry, "350101");
    assert_eq!(
        shown.issuing_authority.as_deref(),
        Some("COMUNE DI ROMA (TEST)")
    );
    assert_eq!(draft.nis(), "000011112222");
    assert!(draft.faces().unwrap().unwrap().len() == 1);

    let req = draft.request("ch-1");
    assert_eq!(req.challenge_id, "ch-1");
    let v = verify_registration(&trust(), &origin(), CHALLENGE, &req).unwrap();
    assert_eq!(v.codice_fiscale, "TSTTST80A01H501X");
    assert_eq!(v.nis, "000011112222");
    assert_eq!(v.level, 3);
    assert!(v.bound, "the card's certificate ties it to the data groups");
    assert!(req.certificate.is_some());
    assert!(v.deviations.is_empty());
    // The server's attributes are the ones shown (same parser, verified bytes).
    assert_eq!(v.attributes, shown);
    let photo = builder.files().dg(2).unwrap().to_vec();
    use sha2_10::Digest;
    let want: String = sha2_10::Sha256::digest(&photo)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v.attributes.photo_sha256.as_deref(), Some(want.as_str()));
    assert_eq!(v.evidence.verified_data_groups, vec![1, 2, 11, 12, 14]);
    assert!(v.evidence.emrtd_csca.contains("TEST CSCA"));
    assert!(v.evidence.ias_csca.contains("TEST CSCA"));
    assert_eq!(v.evidence.challenge, CHALLENGE);
}

#[test]
fn a_forged_or_replayed_challenge_signature_is_refused() {
    let req = cie_request();
    let mut forged = req.clone();
    forged.challenge_signature = flip_last(&req.challenge_signature);
    assert_eq!(
        verify(&trust(), &forged),
        Err(RegistrationRefusal::ChallengeSignature)
    );
    // The same signature for another challenge, or at another server, is worthless.
    assert_eq!(
        verify_registration(&trust(), &origin(), "b3RoZXItY2hhbGxlbmdl", &req).map(|_| ()),
        Err(RegistrationRefusal::ChallengeSignature)
    );
    let elsewhere = Origin::parse("https://other.example.test").unwrap();
    assert_eq!(
        verify_registration(&trust(), &elsewhere, CHALLENGE, &req).map(|_| ()),
        Err(RegistrationRefusal::ChallengeSignature)
    );
}

#[test]
fn a_clone_signing_with_its_own_key_is_refused() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::DecodePrivateKey;
    // A clone copies every file but cannot have the NIS private key: it brings its own and
    // puts the matching public key in place of EF 1005.
    let key = rsa::RsaPrivateKey::from_pkcs8_der(include_bytes!(
        "../../card-sim/testdata/auth_key.pk8.der"
    ))
    .unwrap();
    let mut req = cie_request();
    let to_sign = registration_challenge(&origin(), CHALLENGE);
    let sig = key
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &to_sign)
        .unwrap();
    req.challenge_signature = b64(&sig);
    req.nis_public_key = b64(key.to_public_key().to_pkcs1_der().unwrap().as_bytes());
    assert_eq!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::IasHashMismatch("NIS key"))
    );
    // Another NIS in front of the genuine key: the SOD's A1 does not match.
    let mut other_nis = cie_request();
    other_nis.nis = b64(b"999911112222");
    assert_eq!(
        verify(&trust(), &other_nis),
        Err(RegistrationRefusal::IasHashMismatch("NIS"))
    );
}

#[test]
fn an_altered_or_substituted_data_group_is_refused() {
    // Altered on the chip after signing (card-sim serves a forged DG11).
    let forged = read(&EmrtdBuilder::cie().forge_dg(11))
        .unwrap()
        .request("c");
    assert_eq!(
        verify(&trust(), &forged),
        Err(RegistrationRefusal::DataGroupMismatch(11))
    );
    // Altered in transit.
    let mut req = cie_request();
    req.dg1 = flip_last(&req.dg1);
    assert_eq!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::DataGroupMismatch(1))
    );
    // A genuine photo from another card (another face image, same State signature).
    let other = EmrtdBuilder::cie().face(FaceImage::Jpeg).files();
    let mut req = cie_request();
    req.dg2 = b64(other.dg(2).unwrap());
    assert_eq!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::DataGroupMismatch(2))
    );
    // A data group the SOD does not cover is not accepted either.
    let no_dg14 = EmrtdBuilder::cie().data_groups(&[1, 2, 11, 12]).files();
    let mut req = cie_request();
    req.emrtd_sod = b64(&no_dg14.sod);
    assert_eq!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::DataGroupNotSigned(14))
    );
}

#[test]
fn another_persons_genuine_data_groups_on_a_genuine_card_are_refused() {
    // The attacker's own genuine card signs the challenge; the data groups are another
    // person's, genuine too (copied with that person's CAN), signed by the same State.
    let mut victim = card_sim::emrtd::Holder::test_cie();
    victim.personal_number = "RSSMRA80A01H501U".into();
    victim.surname = "ROSSI".into();
    let other = EmrtdBuilder::new(victim).files();
    let mut req = cie_request();
    req.emrtd_sod = b64(&other.sod);
    for (n, bytes) in &other.dgs {
        let text = Some(b64(bytes));
        match n {
            1 => req.dg1 = b64(bytes),
            2 => req.dg2 = b64(bytes),
            11 => req.dg11 = b64(bytes),
            12 => req.dg12 = text,
            14 => req.dg14 = text,
            _ => {}
        }
    }
    req.dg14 = other.dg(14).map(b64);
    assert_eq!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::CardMismatch)
    );
    // Without the certificate nothing ties the card to the data: refused by default…
    let mut unbound = cie_request();
    unbound.certificate = None;
    assert_eq!(
        verify(&trust(), &unbound),
        Err(RegistrationRefusal::NotBound)
    );
    // … accepted only where the server allows it, and then marked unbound.
    let mut lenient = trust();
    lenient.allow_unbound(true);
    let v = verify_registration(&lenient, &origin(), CHALLENGE, &unbound).unwrap();
    assert!(!v.bound);
    // A certificate that is not the card's (not A3 in the IAS SOD).
    let mut swapped = cie_request();
    swapped.certificate = Some(b64(card_sim::ias::pki::TEST_CA_CERT_DER));
    assert_eq!(
        verify(&trust(), &swapped),
        Err(RegistrationRefusal::IasHashMismatch("certificate"))
    );
}

#[test]
fn a_sod_not_chaining_to_the_configured_csca_is_refused() {
    let req = cie_request();
    // Another authority's certificate configured as the only CSCA.
    let mut wrong = RegistrationTrust::new();
    wrong
        .add_csca_der(card_sim::ias::pki::TEST_CA_CERT_DER)
        .unwrap();
    assert!(matches!(
        verify(&wrong, &req),
        Err(RegistrationRefusal::IasSodUntrusted(_))
    ));
    // No CSCA at all.
    assert!(matches!(
        verify(&RegistrationTrust::new(), &req),
        Err(RegistrationRefusal::IasSodUntrusted(_))
    ));
    // A forged eMRTD SOD signature.
    let forged = EmrtdBuilder::cie().forge_sod_signature().files();
    let mut req2 = req.clone();
    req2.emrtd_sod = b64(&forged.sod);
    assert!(matches!(
        verify(&trust(), &req2),
        Err(RegistrationRefusal::EmrtdSodSignature(_))
    ));
}

#[test]
fn a_dg12_mismatch_is_accepted_only_for_a_document_on_a_csca_signed_deviation_list() {
    let req = read(&EmrtdBuilder::cie().forge_dg(12))
        .unwrap()
        .request("c");
    // No list: refused.
    assert_eq!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::DataGroupMismatch(12))
    );
    // A list naming other documents: refused.
    let mut unrelated = trust();
    unrelated
        .add_deviation_list(&chip::deviation_list(&["CA99999ZZ"], 12, false))
        .unwrap();
    assert_eq!(
        verify(&unrelated, &req),
        Err(RegistrationRefusal::DataGroupMismatch(12))
    );
    // A list for DG11 only does not excuse DG12.
    let mut dg11_only = trust();
    dg11_only
        .add_deviation_list(&chip::deviation_list(&["CA00000AA"], 11, false))
        .unwrap();
    assert_eq!(
        verify(&dg11_only, &req),
        Err(RegistrationRefusal::DataGroupMismatch(12))
    );
    // A forged list, or one whose signer is not a configured CSCA, is not loaded.
    let mut t = trust();
    assert!(matches!(
        t.add_deviation_list(&chip::deviation_list(&["CA00000AA"], 12, true)),
        Err(TrustError::Deviation(_))
    ));
    assert!(matches!(
        RegistrationTrust::new().add_deviation_list(&chip::deviation_list(
            &["CA00000AA"],
            12,
            false
        )),
        Err(TrustError::Deviation(_))
    ));
    assert_eq!(
        verify(&t, &req),
        Err(RegistrationRefusal::DataGroupMismatch(12))
    );
    // Listed: accepted, DG12 not kept, the deviation recorded.
    assert_eq!(
        t.add_deviation_list(&chip::deviation_list(
            &["CA11111BB", "CA00000AA"],
            12,
            false
        ))
        .unwrap(),
        2
    );
    let v = verify_registration(&t, &origin(), CHALLENGE, &req).unwrap();
    assert_eq!(v.deviations.len(), 1);
    assert_eq!(v.deviations[0].data_group, 12);
    assert_eq!(v.deviations[0].deviation_type, "2.23.136.1.1.7.2.2");
    assert!(v.deviations[0].list_signer.contains("TEST CSCA"));
    assert_eq!(v.attributes.issuing_authority, None);
    assert_eq!(v.attributes.date_of_issue, None);
    assert!(!v.evidence.verified_data_groups.contains(&12));
    assert_eq!(v.codice_fiscale, "TSTTST80A01H501X");
    // The list excuses DG12 only: a forged DG11 on a listed document is still refused.
    let both = read(&EmrtdBuilder::cie().forge_dg(12).forge_dg(11))
        .unwrap()
        .request("c");
    assert_eq!(
        verify(&t, &both),
        Err(RegistrationRefusal::DataGroupMismatch(11))
    );
}

#[test]
fn csca_publications_load_from_master_lists_zips_and_pem() {
    let req = cie_request();
    // An ICAO master list (.ml).
    let ml = chip::master_list(&[chip::CSCA_CERT_DER], chip::DS_CERT_DER);
    let mut t = RegistrationTrust::new();
    let info = t.add_master_list(&ml).unwrap();
    assert_eq!(info.added, 1);
    assert!(verify(&t, &req).is_ok());
    // The Italian publication: a ZIP holding the master list.
    let mut t = RegistrationTrust::new();
    assert_eq!(
        t.add_csca_file(&stored_zip(&[("IT_MasterListCSCA.ml", &ml)]))
            .unwrap(),
        1
    );
    assert!(verify(&t, &req).is_ok());
    // PEM, and bare DER.
    let pem = include_bytes!("../../card-sim/testdata/test_csca_cert.pem");
    let mut t = RegistrationTrust::new();
    assert_eq!(t.add_csca_file(pem).unwrap(), 1);
    assert!(verify(&t, &req).is_ok());
    let mut t = RegistrationTrust::new();
    assert_eq!(t.add_csca_file(chip::CSCA_CERT_DER).unwrap(), 1);
    assert!(verify(&t, &req).is_ok());
    // A ZIP with nothing usable, and garbage.
    let mut t = RegistrationTrust::new();
    assert!(
        t.add_csca_file(&stored_zip(&[("README", b"hello")]))
            .is_err()
    );
    assert!(t.add_csca_file(b"garbage").is_err());
    assert_eq!(t.csca_count(), 0);
}

#[test]
fn a_wrong_can_fails_the_read_and_says_so() {
    let e = read_with_can(&EmrtdBuilder::cie(), "654321").unwrap_err();
    assert!(e.is_wrong_can(), "{e:?}");
    assert!(!e.message_it().is_empty());
}

#[test]
fn malformed_fields_are_typed_refusals() {
    let mut req = cie_request();
    req.dg11 = "***".into();
    assert!(matches!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::Malformed { field: "dg11", .. })
    ));
    let mut req = cie_request();
    req.nis = b64(b"12");
    assert!(matches!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::Malformed { field: "nis", .. })
    ));
    let mut req = cie_request();
    req.ias_sod = b64(&[0x77, 0x01, 0x00]);
    assert!(matches!(
        verify(&trust(), &req),
        Err(RegistrationRefusal::Malformed {
            field: "ias_sod",
            ..
        })
    ));
    for r in [
        RegistrationRefusal::ChallengeSignature,
        RegistrationRefusal::DataGroupMismatch(12),
    ] {
        assert_ne!(r.message_it(), r.to_string());
        assert_eq!(r.error_code(), ErrorCode::BadSignature);
    }
    assert_eq!(
        RegistrationRefusal::IasSodUntrusted(String::new()).error_code(),
        ErrorCode::UntrustedCertificate
    );
    assert_eq!(
        RegistrationRefusal::MissingAttribute("codice fiscale").error_code(),
        ErrorCode::BadRequest
    );
}

/// A stored-only ZIP of `(name, data)` members (what `zip -0` writes).
fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let len = (data.len() as u32).to_le_bytes();
        out.extend(b"PK\x03\x04");
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(len);
        out.extend(len);
        out.extend((name.len() as u16).to_le_bytes());
        out.extend([0, 0]);
        out.extend(name.as_bytes());
        out.extend(*data);
        central.extend(b"PK\x01\x02");
        central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend(len);
        central.extend(len);
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 12]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let at = out.len() as u32;
    let size = central.len() as u32;
    out.extend(central);
    out.extend(b"PK\x05\x06\0\0\0\0");
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend(size.to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend([0, 0]);
    out
}

#[test]
fn a_lost_tag_anywhere_in_the_tap_resumes_and_the_result_still_verifies() {
    use card_sim::faulty::{Fault, FaultyTransport};
    let builder = EmrtdBuilder::cie();
    let to_sign = registration_challenge(&origin(), CHALLENGE);
    let new_card = || {
        Arc::new(card_sim::cie::virtual_cie_with(
            CieVariant::default(),
            CardConfig::extended(1024),
            &builder,
        ))
    };
    let clean = {
        let t = Arc::new(FaultyTransport::new(new_card()));
        let mut r = RegistrationRead::new(Can::new(chip::TEST_CAN).unwrap(), &to_sign);
        pollster_block_on(r.tap(&CardChannel::new(t.clone()), &OsRandomness, &NoProgress)).unwrap();
        t.apdu_count()
    };
    assert!(clean > 30, "{clean}");
    for n in (0..clean).step_by(3) {
        let card = new_card();
        let faulty = Arc::new(FaultyTransport::new(card.clone()).fail_at(n, Fault::TagLost));
        let mut r = RegistrationRead::new(Can::new(chip::TEST_CAN).unwrap(), &to_sign);
        let e = pollster_block_on(r.tap(&CardChannel::new(faulty), &OsRandomness, &NoProgress))
            .expect_err("a lost tag stops the tap");
        assert!(!e.message_it().is_empty());
        card.power_cycle();
        let draft = pollster_block_on(r.tap(&CardChannel::new(card), &OsRandomness, &NoProgress))
            .unwrap_or_else(|e| panic!("APDU {n}: second tap failed: {e:?}"));
        let v = verify_registration(&trust(), &origin(), CHALLENGE, &draft.request("c"))
            .unwrap_or_else(|e| panic!("APDU {n}: {e:?}"));
        assert!(v.bound);
    }
}
