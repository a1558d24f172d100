//! The virtual CIE's IAS application driven with hand-built APDUs by the tiny terminal in
//! `common/terminal.rs`: DH + DAPP + PIN + signature, PIN/PUK counters, SM tampering,
//! clear commands, power cycles, NIS internal authentication, vendor variants.
#![allow(clippy::unwrap_used)]

mod common;
use card_sim::ias::pki;
use card_sim::{CardConfig, CieVariant, Vendor, VirtualCard};
use common::terminal::{CA_D, DAPP_D, DAPP_N, Terminal, child, clear, int, tlvs};
use common::{h, sw};
use der::{Decode, Encode};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

const PIN: &[u8] = b"12345678";
const DIGEST_INFO_SHA256: &str = "3031300D060960864801650304020105000420";

fn verify_pin(t: &mut Terminal<'_>, pin: &[u8]) -> u16 {
    t.sm(0x20, 0x00, 0x81, pin, None).1
}

/// Trim a DER object's trailing padding.
fn der_prefix(b: &[u8]) -> &[u8] {
    let len = match b[1] {
        0x82 => 4 + ((b[2] as usize) << 8 | b[3] as usize),
        0x81 => 3 + b[2] as usize,
        n => 2 + n as usize,
    };
    &b[..len]
}

fn auth_key(cert_der: &[u8]) -> RsaPublicKey {
    let cert = Certificate::from_der(cert_der).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key;
    RsaPublicKey::from_pkcs1_der(spki.raw_bytes()).unwrap()
}

#[test]
fn published_constants_match_research_hashes() {
    // cie.md Appendix A lists SHA-256 of the raw bytes.
    let digest = |hex: &str| hex::encode(Sha256::digest(int(hex).to_bytes_be()));
    assert_eq!(
        digest(DAPP_N),
        "47a94894e991d2123f4523774ce7950eada53b53984385050db0567be791be65"
    );
    assert_eq!(
        digest(DAPP_D),
        "b90dda3054804479af44b5e8e82f063363b1e8450fc00252abe839d5eaa1b087"
    );
    assert_eq!(
        digest(CA_D),
        "34360f30fc6c138b9289b5650ea432b6a5f88c0dfca08455a56e3e658bc96fd2"
    );
}

#[test]
fn login_happy_path_signature_verifies_with_the_certificate() {
    let card = VirtualCard::cie();
    let mut t = Terminal::open(&card);
    // VERIFY with no data: tries left, none spent.
    assert_eq!(t.sm(0x20, 0x00, 0x81, &[], None).1, 0x63C3);
    assert_eq!(verify_pin(&mut t, PIN), 0x9000);
    assert_eq!(
        t.sm(0x20, 0x00, 0x81, &[], None).1,
        0x9000,
        "already verified"
    );
    let cert = t.read_file_sm(0x1003);
    let cert = der_prefix(&cert).to_vec();
    assert_eq!(cert, pki::AUTH_CERT_DER);
    // Sign: MSE SET (84 before 80 also accepted), INTERNAL AUTHENTICATE with a DigestInfo.
    let digest = Sha256::digest(b"server nonce");
    let mut di = h(DIGEST_INFO_SHA256);
    di.extend(digest);
    for mse in ["800102840181", "840181800102"] {
        assert_eq!(t.sm(0x22, 0x41, 0xA4, &h(mse), None).1, 0x9000);
        let (sig, s) = t.sm(0x88, 0, 0, &di, Some(0));
        assert_eq!((sig.len(), s), (256, 0x9000));
        auth_key(&cert)
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
            .expect("signature verifies with the certificate key");
    }
}

#[test]
fn works_through_61xx_and_a_small_buffer() {
    let config = CardConfig {
        get_response_chunk: Some(100),
        max_response_data: 200,
        ..CardConfig::default()
    };
    let card = VirtualCard::cie_variant(CieVariant::default(), config);
    let mut t = Terminal::open(&card);
    assert_eq!(verify_pin(&mut t, PIN), 0x9000);
    assert!(
        card.log().iter().any(|a| a[1] == 0xC0),
        "GET RESPONSE was used"
    );
    let cert = t.read_file_sm(0x1003);
    assert_eq!(der_prefix(&cert), pki::AUTH_CERT_DER);
}

#[test]
fn signing_needs_the_pin() {
    let card = VirtualCard::cie();
    let mut t = Terminal::open(&card);
    assert_eq!(t.sm(0x22, 0x41, 0xA4, &h("800102840181"), None).1, 0x9000);
    let mut di = h(DIGEST_INFO_SHA256);
    di.extend([0u8; 32]);
    assert_eq!(t.sm(0x88, 0, 0, &di, Some(0)).1, 0x6982);
}

#[test]
fn wrong_pin_until_blocked_then_puk() {
    let card = VirtualCard::cie();
    let mut t = Terminal::open(&card);
    assert_eq!(verify_pin(&mut t, b"00000000"), 0x63C2);
    assert_eq!(verify_pin(&mut t, b"00000000"), 0x63C1);
    assert_eq!(verify_pin(&mut t, b"00000000"), 0x6983);
    assert_eq!(
        verify_pin(&mut t, PIN),
        0x6983,
        "blocked even with the right PIN"
    );
    assert_eq!(t.sm(0x20, 0x00, 0x81, &[], None).1, 0x6983);
    assert_eq!(card.pin_tries_left(), Some(0));
    // RESET RETRY COUNTER needs the PUK first.
    assert_eq!(t.sm(0x2C, 0x03, 0x81, &[], None).1, 0x6982);
    assert_eq!(t.sm(0x20, 0x00, 0x82, b"00000000", None).1, 0x63C9);
    assert_eq!(t.sm(0x20, 0x00, 0x82, pki::TEST_PUK, None).1, 0x9000);
    assert_eq!(card.puk_tries_left(), Some(10));
    assert_eq!(t.sm(0x2C, 0x02, 0x81, b"11223344", None).1, 0x9000);
    assert_eq!(verify_pin(&mut t, PIN), 0x63C2, "old PIN replaced");
    assert_eq!(verify_pin(&mut t, b"11223344"), 0x9000);
    // CHANGE REFERENCE DATA old‖new, then unblock-only RESET RETRY COUNTER.
    assert_eq!(t.sm(0x24, 0x00, 0x81, b"1122334412345678", None).1, 0x9000);
    assert_eq!(t.sm(0x24, 0x00, 0x81, b"0000000012345678", None).1, 0x63C2);
    assert_eq!(t.sm(0x2C, 0x03, 0x81, &[], None).1, 0x9000);
    assert_eq!(verify_pin(&mut t, PIN), 0x9000);
}

#[test]
fn sm_mac_tampering_is_rejected_and_ends_the_session() {
    let card = VirtualCard::cie();
    let mut t = Terminal::open(&card);
    t.tamper_next = true;
    assert_eq!(verify_pin(&mut t, PIN), 0x6988);
    assert_eq!(card.pin_tries_left(), Some(3), "no try spent");
    assert_eq!(verify_pin(&mut t, PIN), 0x6882, "no SM session any more");
}

#[test]
fn clear_verify_and_clear_certificate_read_are_refused() {
    let card = VirtualCard::cie();
    assert_eq!(
        sw(&card, &format!("00A4040C06{}", common::terminal::CIE_AID)),
        0x9000
    );
    assert_eq!(sw(&card, "00 20 00 81 08 3132333435363738"), 0x6982);
    assert_eq!(sw(&card, "00 A4 02 0C 02 1003"), 0x9000);
    assert_eq!(
        sw(&card, "00 B0 00 00 80"),
        0x6982,
        "EF 1003 only under SM after DAPP"
    );
    let mut t = Terminal::open(&card);
    // A clear command after SM use ends the session; VERIFY in clear is still refused.
    assert_eq!(sw(&card, "00 20 00 81 08 3132333435363738"), 0x6982);
    assert_eq!(verify_pin(&mut t, PIN), 0x6882);
    assert_eq!(card.pin_tries_left(), Some(3));
}

#[test]
fn counters_persist_over_power_cycle() {
    let card = VirtualCard::cie();
    let mut t = Terminal::open(&card);
    assert_eq!(verify_pin(&mut t, b"99999999"), 0x63C2);
    card.power_cycle();
    assert_eq!(
        verify_pin(&mut t, PIN),
        0x6882,
        "the session did not survive"
    );
    let mut t = Terminal::open(&card);
    assert_eq!(t.sm(0x20, 0x00, 0x81, &[], None).1, 0x63C2);
    assert_eq!(card.pin_tries_left(), Some(2));
    assert_eq!(verify_pin(&mut t, PIN), 0x9000);
    card.reset();
    let mut t = Terminal::open(&card);
    assert_eq!(
        t.sm(0x20, 0x00, 0x81, &[], None).1,
        0x63C3,
        "PIN not verified after a tap"
    );
}

#[test]
fn nis_internal_authentication_in_clear() {
    let card = VirtualCard::cie();
    assert_eq!(
        sw(&card, &format!("00A4040C06{}", common::terminal::CIE_AID)),
        0x9000
    );
    let (nis, s) = clear(&card, &h("00B081000C"));
    assert_eq!((nis.as_slice(), s), (&b"000011112222"[..], 0x9000));
    let (mut k, s) = clear(&card, &h("00B0850000"));
    assert_eq!(s, 0x9000);
    let (rest, s) = clear(&card, &h("00B0010000"));
    assert_eq!(s, 0x6282, "end of file");
    k.extend(rest);
    assert_eq!(k, pki::EF_1005);
    assert_eq!(sw(&card, "00 22 41 A4 06 800102 840183"), 0x9000);
    let challenge = h("00112233445566778899AABBCCDDEEFF");
    let mut apdu = h("0088000010");
    apdu.extend(&challenge);
    apdu.push(0);
    let (sig, s) = clear(&card, &apdu);
    assert_eq!(s, 0x9000);
    let key = RsaPublicKey::from_pkcs1_der(&k).unwrap();
    key.verify(Pkcs1v15Sign::new_unprefixed(), &challenge, &sig)
        .expect("PKCS#1 v1.5 over the raw challenge");
    // The auth key is not usable in clear.
    assert_eq!(sw(&card, "00 22 41 A4 06 800102 840181"), 0x9000);
    assert_eq!(sw(&card, "00 88 00 00 04 01020304 00"), 0x6982);
}

#[test]
fn nxp_variant_answers_6a82_on_the_ias_aid_and_refuses_single_get_data() {
    let card = VirtualCard::cie_variant(CieVariant::for_vendor(Vendor::Nxp), CardConfig::default());
    assert_eq!(
        sw(&card, &format!("00A4040C0D{}", common::terminal::IAS_AID)),
        0x6A82
    );
    assert_eq!(sw(&card, "00 A4 00 00"), 0x9000);
    assert_eq!(
        sw(&card, "00 A4 02 0C 02 D004"),
        0x9000,
        "IAS files in the MF"
    );
    assert_eq!(sw(&card, "00CB3FFF0A4D087006BFA10102A380"), 0x6A88);
    let mut t = Terminal::open(&card);
    assert_eq!(verify_pin(&mut t, PIN), 0x9000);
}

#[test]
fn gemalto_single_get_data_and_2023_reordered_template() {
    let card = VirtualCard::cie_variant(
        CieVariant::for_vendor(Vendor::Gemalto),
        CardConfig::default(),
    );
    let (r, s) = clear(&card, &h("00CB3FFF0A4D087006BFA10102A380"));
    assert_eq!(s, 0x9000);
    let a3 = child(&child(&child(&r, &[0x70]), &[0xBF, 0xA1, 0x01]), &[0xA3]);
    let tags: Vec<_> = tlvs(&a3).into_iter().map(|(t, _)| t[0]).collect();
    assert_eq!(tags, vec![0x97, 0x98, 0x99]);
    assert_eq!(card.variant().unwrap().vendor, Vendor::Gemalto);
    assert_eq!(card.config().atr, Some(Vendor::Gemalto.atr()));
    let card = VirtualCard::cie_variant(
        CieVariant::for_vendor(Vendor::Actalis2023),
        CardConfig::default(),
    );
    let (r, s) = clear(&card, &h("00CB3FFF0B4D097007BFA004037F4980"));
    assert_eq!(s, 0x9000);
    let key = child(
        &child(&child(&r, &[0x70]), &[0xBF, 0xA0, 0x04]),
        &[0x7F, 0x49],
    );
    assert_ne!(
        tlvs(&key)[0].0,
        vec![0x81],
        "modulus not first on 2023 chips"
    );
    let mut t = Terminal::open(&card);
    assert_eq!(verify_pin(&mut t, PIN), 0x9000);
    let ef_atr = {
        assert_eq!(sw(&card, "00 A4 00 0C 02 2F01"), 0x9000);
        clear(&card, &h("00B0000000")).0
    };
    assert_eq!(ef_atr, Vendor::Actalis2023.ef_atr());
}

#[test]
fn fixtures_are_consistent() {
    // The auth certificate is signed by the test CA.
    let ca = Certificate::from_der(pki::TEST_CA_CERT_DER).unwrap();
    let cert = Certificate::from_der(pki::AUTH_CERT_DER).unwrap();
    assert_eq!(cert.tbs_certificate.issuer, ca.tbs_certificate.subject);
    let tbs = cert.tbs_certificate.to_der().unwrap();
    auth_key(pki::TEST_CA_CERT_DER)
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs),
            cert.signature.raw_bytes(),
        )
        .expect("auth certificate signed by the test CA");
    let ds = Certificate::from_der(pki::DS_CERT_DER).unwrap();
    let tbs = ds.tbs_certificate.to_der().unwrap();
    auth_key(pki::TEST_CSCA_CERT_DER)
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs),
            ds.signature.raw_bytes(),
        )
        .expect("DS certificate signed by the test CSCA");
    // The published CA private exponent fits the modulus/exponent the card returns.
    let n = num_bigint_dig::BigUint::from_bytes_be(pki::CA_EXTAUTH_MODULUS);
    let e = num_bigint_dig::BigUint::from_bytes_be(pki::CA_EXTAUTH_PUBLIC_EXPONENT);
    let m = num_bigint_dig::BigUint::from_bytes_be(b"CIE");
    assert_eq!(m.modpow(&int(CA_D), &n).modpow(&e, &n), m);
    // Each card's SOD holds the SHA-256 of every file it covers, keyed as on real cards,
    // and not the other card's.
    for (card, other) in [
        (pki::CieCard::First, pki::CieCard::Renewed),
        (pki::CieCard::Renewed, pki::CieCard::First),
    ] {
        let sod = card.sod();
        for (file, data, other_data) in [
            ("1001", card.nis(), Some(other.nis())),
            ("1002", card.serial(), Some(other.serial())),
            ("1003", card.auth_cert_der(), Some(other.auth_cert_der())),
            ("1004", pki::EF_1004, None),
            ("1005", card.ef_1005(), Some(other.ef_1005())),
            ("D004", pki::EF_D004, None),
        ] {
            let d = Sha256::digest(data);
            assert!(
                sod.windows(32).any(|w| w == d.as_slice()),
                "{card:?}: hash of {file} in the SOD"
            );
            if let Some(o) = other_data {
                let d = Sha256::digest(o);
                assert!(
                    !sod.windows(32).any(|w| w == d.as_slice()),
                    "{card:?}: the other card's {file} in the SOD"
                );
            }
        }
    }
    assert_eq!(pki::CieCard::First.nis(), b"000011112222");
    // The renewed card's certificate: same holder, another key, the same test CA.
    let renewed = Certificate::from_der(pki::RENEWED_AUTH_CERT_DER).unwrap();
    let first = Certificate::from_der(pki::AUTH_CERT_DER).unwrap();
    assert_eq!(
        renewed.tbs_certificate.subject,
        first.tbs_certificate.subject
    );
    assert_ne!(
        renewed.tbs_certificate.subject_public_key_info,
        first.tbs_certificate.subject_public_key_info
    );
    auth_key(pki::TEST_CA_CERT_DER)
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(renewed.tbs_certificate.to_der().unwrap()),
            renewed.signature.raw_bytes(),
        )
        .expect("renewed certificate signed by the test CA");
}
