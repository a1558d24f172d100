//! The virtual CNS's file system and EF_DatiPersonali, encoded here (6 hex characters of
//! length, then "2 hex characters + value" per field, OpenSC `pkcs15-itacns.c`).

use super::app::CnsApp;
use super::{ATR_STINCARD, AUTH_CERT_DER, CARD_ID, HOLDER_CF};
use crate::card::{CardConfig, VirtualCard};
use crate::fs::{Df, Ef, FileSystem};

/// The holder's fields in file order: issuer, issue date, expiry, surname, given name,
/// birth date, sex, height, codice fiscale, citizenship, birth municipality, birth country,
/// birth act, residence municipality, address, notes. Dates `ddmmyyyy`.
const FIELDS: [&str; 16] = [
    "cie-companion TEST",
    "01012025",
    "01012031",
    "PROVA",
    "LUCA",
    "10121985",
    "M",
    "",
    HOLDER_CF,
    "ITA",
    "A662",
    "",
    "",
    "A662",
    "VIA DI PROVA 1",
    "",
];

/// EF_DatiPersonali contents, padded with zeros to `size` bytes as a fixed-size EF is.
pub fn personal_data(size: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for f in FIELDS {
        body.extend_from_slice(format!("{:02X}", f.len()).as_bytes());
        body.extend_from_slice(f.as_bytes());
    }
    let mut out = format!("{:06X}", body.len()).into_bytes();
    out.extend(body);
    out.resize(size.max(out.len()), 0x00);
    out
}

/// The certificate EF: the DER, then zeros up to the EF's fixed size.
fn certificate_ef() -> Vec<u8> {
    let mut out = AUTH_CERT_DER.to_vec();
    out.resize(2048.max(out.len()), 0x00);
    out
}

fn file_system() -> FileSystem {
    let card = Df::new()
        .with_fid(0x1000)
        .with_ef(Ef::new(0x1002, b"SYNTHETIC CPU".to_vec()))
        .with_ef(Ef::new(0x1003, CARD_ID.to_vec()));
    let holder = Df::new()
        .with_fid(0x1100)
        .with_ef(Ef::new(0x1101, certificate_ef()))
        .with_ef(Ef::new(0x1102, personal_data(400)));
    FileSystem::new(Df::mf().with_df(card).with_df(holder))
}

/// The virtual CNS with the STIncard ATR, short APDUs (chaining for the 256-byte PSO).
pub fn virtual_cns() -> VirtualCard {
    virtual_cns_with(CardConfig::short())
}

/// The virtual CNS with `config` (its ATR set unless `config` has one).
pub fn virtual_cns_with(mut config: CardConfig) -> VirtualCard {
    if config.atr.is_none() {
        config.atr = Some(ATR_STINCARD.to_vec());
    }
    VirtualCard::with_cns(file_system(), config, CnsApp::new())
}
