//! The token's objects and their attributes, as byte strings in the caller's ABI (CK_ULONG
//! native-endian, CK_BBOOL one byte), so a search template compares bytes with bytes.

use crate::card::Token;
use cryptoki_sys as ck;
use sha1::{Digest, Sha1};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// Object handles: fixed per token (one authentication key on a CIE).
pub const H_CERT: ck::CK_OBJECT_HANDLE = 1;
/// The public key.
pub const H_PUBLIC: ck::CK_OBJECT_HANDLE = 2;
/// The private key (listed after login only).
pub const H_PRIVATE: ck::CK_OBJECT_HANDLE = 3;
/// The profile object that makes NSS list certificates before login.
pub const H_PROFILE: ck::CK_OBJECT_HANDLE = 4;

/// Attributes a private key never reveals.
const SENSITIVE: &[ck::CK_ATTRIBUTE_TYPE] = &[
    ck::CKA_PRIVATE_EXPONENT,
    ck::CKA_PRIME_1,
    ck::CKA_PRIME_2,
    ck::CKA_EXPONENT_1,
    ck::CKA_EXPONENT_2,
    ck::CKA_COEFFICIENT,
];

/// One object: its handle and attributes.
#[derive(Debug, Clone)]
pub struct Object {
    /// The handle.
    pub handle: ck::CK_OBJECT_HANDLE,
    attrs: Vec<(ck::CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    private: bool,
}

/// What reading one attribute gives.
#[derive(Debug, PartialEq, Eq)]
pub enum AttrValue<'a> {
    /// The value.
    Value(&'a [u8]),
    /// A private key's secret part.
    Sensitive,
    /// Not an attribute of this object.
    Invalid,
}

impl Object {
    /// The value of `ty`.
    pub fn get(&self, ty: ck::CK_ATTRIBUTE_TYPE) -> AttrValue<'_> {
        if self.private && SENSITIVE.contains(&ty) {
            return AttrValue::Sensitive;
        }
        match self.attrs.iter().find(|(t, _)| *t == ty) {
            Some((_, v)) => AttrValue::Value(v),
            None => AttrValue::Invalid,
        }
    }

    /// Whether every (type, value) of a search template matches.
    pub fn matches(&self, template: &[(ck::CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template
            .iter()
            .all(|(ty, want)| matches!(self.get(*ty), AttrValue::Value(v) if v == want))
    }
}

fn ulong(v: ck::CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn bool_(v: bool) -> Vec<u8> {
    vec![u8::from(v)]
}

/// CKA_ID shared by the certificate and its keys: SHA-1 of the modulus (as OpenSC and
/// most card modules derive it), stable across sessions and machines.
pub fn key_id(modulus: &[u8]) -> Vec<u8> {
    Sha1::digest(modulus).to_vec()
}

/// "NAME SURNAME (CODICEFISCALE)" or what the certificate has of it.
pub fn holder_label(token: &Token) -> String {
    let c = token.certificate();
    let name = match (&c.given_name, &c.surname) {
        (Some(g), Some(s)) => Some(format!("{g} {s}")),
        _ => c.common_name.clone(),
    };
    match (name, &c.codice_fiscale) {
        (Some(n), Some(cf)) if !n.contains(cf.as_str()) => format!("{n} ({cf})"),
        (Some(n), _) => n,
        (None, Some(cf)) => cf.clone(),
        (None, None) => format!("{} {}", token.kind(), token.serial()),
    }
}

/// The token label (32 characters at most): "CIE" and the codice fiscale (or the NIS); for
/// a CNS the holder's name from EF_DatiPersonali and the codice fiscale when they fit, as
/// OpenSC names CNS tokens by the holder, else "CNS" and the codice fiscale.
pub fn token_label(token: &Token) -> String {
    let cf = token.certificate().codice_fiscale.as_deref();
    if let Token::Cns(cns) = token
        && let Some(p) = &cns.personal
    {
        let full = format!("{} {}", p.display_name(), p.codice_fiscale.as_str());
        if full.len() <= 32 {
            return full;
        }
        return format!("CNS {}", p.codice_fiscale.as_str());
    }
    format!("{} {}", token.kind(), cf.unwrap_or(token.serial()))
}

/// The objects of `token`; the private key only when `logged_in`.
pub fn objects(token: &Token, logged_in: bool) -> Vec<Object> {
    let cert = token.certificate();
    let key = &cert.public_key;
    let id = key_id(&key.modulus);
    let label = holder_label(token).into_bytes();
    // Subject, issuer and serial in DER, as NSS matches certificates to keys with them.
    let (subject, issuer, serial) = Certificate::from_der(&cert.der)
        .ok()
        .map(|c| {
            let tbs = c.tbs_certificate();
            (
                tbs.subject().to_der().unwrap_or_default(),
                tbs.issuer().to_der().unwrap_or_default(),
                tbs.serial_number().to_der().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let bits = ulong(ck::CK_ULONG::try_from(key.bits()).unwrap_or(0));
    let common = |class: ck::CK_OBJECT_CLASS, private: bool| {
        vec![
            (ck::CKA_CLASS, ulong(class)),
            (ck::CKA_TOKEN, bool_(true)),
            (ck::CKA_PRIVATE, bool_(private)),
            (ck::CKA_MODIFIABLE, bool_(false)),
            (ck::CKA_COPYABLE, bool_(false)),
            (ck::CKA_DESTROYABLE, bool_(false)),
            (ck::CKA_LABEL, label.clone()),
        ]
    };
    let mut list = Vec::with_capacity(4);
    let mut c = common(ck::CKO_CERTIFICATE, false);
    c.extend([
        (ck::CKA_CERTIFICATE_TYPE, ulong(ck::CKC_X_509)),
        (ck::CKA_TRUSTED, bool_(false)),
        // 1 = token user (PKCS#11 2.40 §4.6.2).
        (ck::CKA_CERTIFICATE_CATEGORY, ulong(1)),
        (ck::CKA_ID, id.clone()),
        (ck::CKA_VALUE, cert.der.clone()),
        (ck::CKA_SUBJECT, subject.clone()),
        (ck::CKA_ISSUER, issuer),
        (ck::CKA_SERIAL_NUMBER, serial),
    ]);
    list.push(Object {
        handle: H_CERT,
        attrs: c,
        private: false,
    });
    let key_common = |attrs: &mut Vec<(ck::CK_ATTRIBUTE_TYPE, Vec<u8>)>| {
        attrs.extend([
            (ck::CKA_KEY_TYPE, ulong(ck::CKK_RSA)),
            (ck::CKA_ID, id.clone()),
            (ck::CKA_SUBJECT, subject.clone()),
            (ck::CKA_MODULUS, key.modulus.clone()),
            (ck::CKA_PUBLIC_EXPONENT, key.exponent.clone()),
            (ck::CKA_MODULUS_BITS, bits.clone()),
            (ck::CKA_LOCAL, bool_(true)),
            (ck::CKA_DERIVE, bool_(false)),
            (ck::CKA_ENCRYPT, bool_(false)),
            (ck::CKA_DECRYPT, bool_(false)),
            (ck::CKA_WRAP, bool_(false)),
            (ck::CKA_UNWRAP, bool_(false)),
            (ck::CKA_SIGN_RECOVER, bool_(false)),
            (ck::CKA_VERIFY_RECOVER, bool_(false)),
        ]);
    };
    let mut p = common(ck::CKO_PUBLIC_KEY, false);
    key_common(&mut p);
    p.extend([(ck::CKA_VERIFY, bool_(true)), (ck::CKA_SIGN, bool_(false))]);
    list.push(Object {
        handle: H_PUBLIC,
        attrs: p,
        private: false,
    });
    if logged_in {
        let mut k = common(ck::CKO_PRIVATE_KEY, true);
        key_common(&mut k);
        k.extend([
            (ck::CKA_SIGN, bool_(true)),
            (ck::CKA_VERIFY, bool_(false)),
            (ck::CKA_SENSITIVE, bool_(true)),
            (ck::CKA_ALWAYS_SENSITIVE, bool_(true)),
            (ck::CKA_EXTRACTABLE, bool_(false)),
            (ck::CKA_NEVER_EXTRACTABLE, bool_(true)),
            (ck::CKA_ALWAYS_AUTHENTICATE, bool_(false)),
        ]);
        list.push(Object {
            handle: H_PRIVATE,
            attrs: k,
            private: true,
        });
    }
    list.push(Object {
        handle: H_PROFILE,
        attrs: vec![
            (ck::CKA_CLASS, ulong(ck::CKO_PROFILE)),
            (ck::CKA_TOKEN, bool_(true)),
            (ck::CKA_PRIVATE, bool_(false)),
            (ck::CKA_PROFILE_ID, ulong(ck::CKP_PUBLIC_CERTIFICATES_TOKEN)),
        ],
        private: false,
    });
    list
}
