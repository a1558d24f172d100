//! Generate the virtual CIE's test PKI fixtures into `card-sim/testdata/`.
//!
//! Run once (RSA-2048 key generation is slow in debug builds):
//! `cargo run -p card-sim --bin gen-test-pki --release`. The output is committed; the card
//! loads it with `include_bytes!`. Deterministic keys (fixed ChaCha20 seed); certificate
//! and SOD signing times are fixed too, so a rerun reproduces the same files.
//!
//! Everything here is TEST material: the CA is "cie-companion TEST CA — not a real
//! authority", names and codice fiscale are synthetic.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use card_sim::cie::{RENEWED_NIS, RENEWED_SERIAL, SYNTHETIC_NIS, SYNTHETIC_SERIAL};
use card_sim::ias::DhGroup;
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{ObjectIdentifier, UtcTime};
use der::{Any, Decode, Encode, EncodePem, Tag};
use num_bigint_dig::{BigUint, ModInverse, RandPrime};
use num_integer::Integer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// The CA private exponent published in every open CIE reader (cie.md Appendix A; e.g.
/// pagopa/cie-sdk-ios `Sources/Constants.swift` `DH_EXT_AUTH_PRIVATE_EXP`).
const PUBLISHED_CA_PRIVATE_EXPONENT: &str = concat!(
    "186b31488c25dcf85d953d3630c0d073ba1c6aa24581ad254f3b6719c5d72cca",
    "3e5cdc5a1e5316578d75954ff73b237b532c9f8de4a2c4c911385a23e63e33e4",
    "7ee45e66efd49b18e02cff87598c39109e8f86a66bc330249ce3fcad655dcdbf",
    "98c9c5e479321af53b517d041061880a647bbe0ff813683470e6c50094ce81d0",
    "64e204e351bd3ae0a7947d8e91c3fd5c0a15233c349a5215a4e66e21c5d33498",
    "e71991ea24473b29f1475f6fd9be3996e19bd474fad1b41ea0dcd2fc16c9bffa",
    "071bfec1b22415184811c1985fbfe3e7b4f44a4b3c8dfab4d90cecfc5e608d67",
    "3e6762c62cb798341271149ba688162ec7d0e3468f65a94ab4ad1ab67e37bfc1",
);

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    std::fs::create_dir_all(&out)?;
    let write = |name: &str, bytes: &[u8]| -> Res<()> {
        std::fs::write(out.join(name), bytes)?;
        println!("wrote testdata/{name} ({} bytes)", bytes.len());
        Ok(())
    };
    let mut rng = ChaCha20Rng::seed_from_u64(0x000C_1EC0_3A41_0001);

    // 1. Ext-auth CA key matching the published private exponent.
    let d = BigUint::parse_bytes(PUBLISHED_CA_PRIVATE_EXPONENT.as_bytes(), 16).ok_or("d")?;
    let one = BigUint::from(1u8);
    let (n, e) = loop {
        let p: BigUint = rng.gen_prime(1024);
        let q: BigUint = rng.gen_prime(1024);
        let n = &p * &q;
        if p == q || n.bits() != 2048 {
            continue;
        }
        let lambda = (&p - &one).lcm(&(&q - &one));
        if d.gcd(&lambda) != one {
            continue;
        }
        let Some(e) = (&d).mod_inverse(&lambda).and_then(|e| e.to_biguint()) else {
            continue;
        };
        break (n, e);
    };
    let m = BigUint::from_bytes_be(b"consistency check of the ext-auth CA pair");
    assert_eq!(m.modpow(&d, &n).modpow(&e, &n), m, "(m^d)^e = m");
    write("ca_extauth_modulus.bin", &n.to_bytes_be())?;
    write("ca_extauth_pubexp.bin", &e.to_bytes_be())?;

    // 2. Card keys.
    let mut key = |name: &str| -> Res<RsaPrivateKey> {
        let k = RsaPrivateKey::new(&mut rng, 2048)?;
        write(&format!("{name}_key.pk8.der"), k.to_pkcs8_der()?.as_bytes())?;
        Ok(k)
    };
    let icc = key("icc_intauth")?;
    let nis = key("nis_intauth")?;
    let auth = key("auth")?;
    let ca = key("test_ca")?;
    let csca = key("test_csca")?;
    let ds = key("ds")?;
    let ef_1004 = RsaPublicKey::from(&icc).to_pkcs1_der()?.into_vec();
    let ef_1005 = RsaPublicKey::from(&nis).to_pkcs1_der()?.into_vec();
    write("ef_1004.der", &ef_1004)?;
    write("ef_1005.der", &ef_1005)?;

    // 3. Certificates.
    let validity = Validity {
        not_before: Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(
            1_735_689_600, // 2025-01-01
        ))?),
        not_after: Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(
            2_366_841_600, // 2045-01-01
        ))?),
    };
    let ca_name = Name::from_str(
        "CN=cie-companion TEST CA — not a real authority,O=cie-companion TEST,C=IT",
    )?;
    let csca_name = Name::from_str(
        "CN=cie-companion TEST CSCA — not a real authority,O=cie-companion TEST,C=IT",
    )?;
    let ds_name = Name::from_str(
        "CN=cie-companion TEST Document Signer — not a real authority,O=cie-companion TEST,C=IT",
    )?;
    // Shaped like a CIE authentication certificate subject: country, surname, givenName and
    // the holder's codice fiscale; all synthetic.
    let holder_name = Name::from_str(
        "CN=TSTTST80A01H501X,serialNumber=TINIT-TSTTST80A01H501X,givenName=MARIA,SN=TESTER,O=cie-companion TEST,C=IT",
    )?;
    let spki = |k: &RsaPrivateKey| -> Res<SubjectPublicKeyInfoOwned> {
        Ok(SubjectPublicKeyInfoOwned::from_der(
            RsaPublicKey::from(k).to_public_key_der()?.as_bytes(),
        )?)
    };
    let sign = |profile: Profile,
                serial: u32,
                subject: Name,
                subject_key: &RsaPrivateKey,
                issuer_key: &RsaPrivateKey,
                client_auth: bool|
     -> Res<Certificate> {
        let signer = SigningKey::<Sha256>::new(issuer_key.clone());
        let mut b = CertificateBuilder::new(
            profile,
            SerialNumber::from(serial),
            validity,
            subject,
            spki(subject_key)?,
            &signer,
        )?;
        if client_auth {
            b.add_extension(&ExtendedKeyUsage(vec![
                const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
            ]))?;
        }
        Ok(b.build::<rsa::pkcs1v15::Signature>()?)
    };
    let ca_cert = sign(Profile::Root, 1, ca_name.clone(), &ca, &ca, false)?;
    let csca_cert = sign(Profile::Root, 2, csca_name.clone(), &csca, &csca, false)?;
    let leaf = |issuer: &Name| Profile::Leaf {
        issuer: issuer.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let auth_cert = sign(
        leaf(&ca_name),
        0x1003,
        holder_name.clone(),
        &auth,
        &ca,
        true,
    )?;
    let ds_cert = sign(leaf(&csca_name), 0x1006, ds_name, &ds, &csca, false)?;
    for (name, cert) in [
        ("test_ca_cert", &ca_cert),
        ("test_csca_cert", &csca_cert),
        ("auth_cert", &auth_cert),
        ("ds_cert", &ds_cert),
    ] {
        write(&format!("{name}.der"), &cert.to_der()?)?;
        write(
            &format!("{name}.pem"),
            cert.to_pem(LineEnding::LF)?.as_bytes(),
        )?;
    }

    // 4. EF.DH (D004) and the SOD.
    let group = DhGroup::rfc5114_2048_256();
    let ef_d004 = tlv(
        0x30,
        &[int(&group.p), int(&group.g), int(&group.q)].concat(),
    );
    write("ef_d004.der", &ef_d004)?;
    let auth_der = auth_cert.to_der()?;
    let hashed: [(u8, &[u8]); 6] = [
        (0xA5, &ef_1005),
        (0x1B, &ef_d004),
        (0xA4, &ef_1004),
        (0xA3, &auth_der),
        (0xA2, SYNTHETIC_SERIAL),
        (0xA1, SYNTHETIC_NIS),
    ];
    let sod = ias_sod(&ds, &ds_cert, &hashed)?;
    write("sod_ias.der", &sod)?;

    // 5. eMRTD chip keys, from their own seed so the files above stay byte-identical: the
    // Active Authentication key (DG15; RSA-1024, the size most passports use with ISO 9796-2)
    // and the static Chip Authentication keys (DG14; ECDH on P-256, raw 32-byte scalar; DH
    // exponent, 32 bytes). The
    // eMRTD SOD itself is built when a virtual card is made (so tests can forge DGs), signed
    // by the Document Signer above.
    let mut rng = ChaCha20Rng::seed_from_u64(0x000C_1EC0_3A41_0002);
    let aa = RsaPrivateKey::new(&mut rng, 1024)?;
    write("emrtd_aa_key.pk8.der", aa.to_pkcs8_der()?.as_bytes())?;
    let chip_ca = p256::NonZeroScalar::random(&mut rng);
    write("emrtd_ca_p256_key.bin", &chip_ca.to_bytes())?;
    // Static DH Chip Authentication key in the RFC 5114 §2.3 group (the CIE's CA is DH):
    // x uniform in [2, q-2].
    let q = BigUint::from_bytes_be(&group.q);
    let x = loop {
        let mut b = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rng, &mut b);
        let x = BigUint::from_bytes_be(&b);
        if x >= BigUint::from(2u8) && x <= &q - 2u8 {
            break x;
        }
    };
    let mut xb = x.to_bytes_be();
    while xb.len() < 32 {
        xb.insert(0, 0);
    }
    write("emrtd_ca_dh_key.bin", &xb)?;
    // ECDSA Active Authentication key (P-256, raw scalar) for chips that sign plainly.
    let aa_ec = p256::NonZeroScalar::random(&mut rng);
    write("emrtd_aa_p256_key.bin", &aa_ec.to_bytes())?;

    // 6. The same holder's renewed card, from its own seed (the files above stay
    // byte-identical): another NIS and serial, its own NIS and authentication keys, a new
    // authentication certificate (same subject, serial 0x2003) and its IAS SOD by the same
    // Document Signer. Registration links it to the holder's existing identity.
    let mut rng = ChaCha20Rng::seed_from_u64(0x000C_1EC0_3A41_0003);
    let nis2 = RsaPrivateKey::new(&mut rng, 2048)?;
    let auth2 = RsaPrivateKey::new(&mut rng, 2048)?;
    write(
        "renewed_nis_intauth_key.pk8.der",
        nis2.to_pkcs8_der()?.as_bytes(),
    )?;
    write("renewed_auth_key.pk8.der", auth2.to_pkcs8_der()?.as_bytes())?;
    let ef_1005_2 = RsaPublicKey::from(&nis2).to_pkcs1_der()?.into_vec();
    write("renewed_ef_1005.der", &ef_1005_2)?;
    let auth_cert2 = sign(
        leaf(&ca_name),
        0x2003,
        holder_name.clone(),
        &auth2,
        &ca,
        true,
    )?;
    let auth2_der = auth_cert2.to_der()?;
    write("renewed_auth_cert.der", &auth2_der)?;
    let hashed2: [(u8, &[u8]); 6] = [
        (0xA5, &ef_1005_2),
        (0x1B, &ef_d004),
        (0xA4, &ef_1004),
        (0xA3, &auth2_der),
        (0xA2, RENEWED_SERIAL),
        (0xA1, RENEWED_NIS),
    ];
    write("renewed_sod_ias.der", &ias_sod(&ds, &ds_cert, &hashed2)?)?;

    // 7. The virtual CNS (TS-CNS) of another synthetic holder, from its own seed (the files
    // above stay byte-identical): its CNS0 authentication key and a certificate from the
    // same test CA, subject shaped like a CNS one (codice fiscale with a valid check letter).
    let mut rng = ChaCha20Rng::seed_from_u64(0x000C_1EC0_3A41_0004);
    let cns = RsaPrivateKey::new(&mut rng, 2048)?;
    write("cns_auth_key.pk8.der", cns.to_pkcs8_der()?.as_bytes())?;
    let cns_holder = Name::from_str(&format!(
        "CN={cf}/7420000000000042.TEST,serialNumber=IT:{cf},givenName=LUCA,SN=PROVA,O=cie-companion TEST,C=IT",
        cf = card_sim::cns::HOLDER_CF,
    ))?;
    let cns_cert = sign(leaf(&ca_name), 0x1101, cns_holder, &cns, &ca, true)?;
    write("cns_auth_cert.der", &cns_cert.to_der()?)?;
    write(
        "cns_auth_cert.pem",
        cns_cert.to_pem(LineEnding::LF)?.as_bytes(),
    )?;
    Ok(())
}

/// DER `INTEGER` of unsigned big-endian `v`.
fn int(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

/// The IAS EF.SOD: CMS SignedData (eContentType 2.23.136.1.1.1) over the SHA-256 hashes of
/// `hashed` (tag, file bytes), signed by the Document Signer `ds`.
fn ias_sod(ds: &RsaPrivateKey, ds_cert: &Certificate, hashed: &[(u8, &[u8])]) -> Res<Vec<u8>> {
    let sha256_alg = tlv(0x30, &tlv(0x06, &SHA256_OID_BYTES));
    let entries: Vec<u8> = hashed
        .iter()
        .flat_map(|(n, data)| {
            tlv(
                0x30,
                &[int(&[*n]), tlv(0x04, &Sha256::digest(data))].concat(),
            )
        })
        .collect();
    let lds = tlv(
        0x30,
        &[tlv(0x02, &[0]), sha256_alg, tlv(0x30, &entries)].concat(),
    );
    let econtent = EncapsulatedContentInfo {
        econtent_type: ObjectIdentifier::new("2.23.136.1.1.1")?,
        econtent: Some(Any::new(Tag::OctetString, lds)?),
    };
    let digest_alg = AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_256,
        parameters: None,
    };
    let ds_signer = SigningKey::<Sha256>::new(ds.clone());
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: ds_cert.tbs_certificate.issuer.clone(),
        serial_number: ds_cert.tbs_certificate.serial_number.clone(),
    });
    let cms_err = |e: cms::builder::Error| format!("CMS builder: {e:?}");
    let signer_info = SignerInfoBuilder::new(&ds_signer, sid, digest_alg.clone(), &econtent, None)
        .map_err(cms_err)?;
    let mut builder = SignedDataBuilder::new(&econtent);
    builder.add_digest_algorithm(digest_alg).map_err(cms_err)?;
    builder
        .add_certificate(CertificateChoices::Certificate(ds_cert.clone()))
        .map_err(cms_err)?;
    builder
        .add_signer_info::<SigningKey<Sha256>, rsa::pkcs1v15::Signature>(signer_info)
        .map_err(cms_err)?;
    Ok(builder.build().map_err(cms_err)?.to_der()?)
}

/// DER encoding of the SHA-256 OID 2.16.840.1.101.3.4.2.1.
const SHA256_OID_BYTES: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// `tag ‖ DER length ‖ value` for one-byte tags.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}
