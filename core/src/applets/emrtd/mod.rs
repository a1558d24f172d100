//! The ICAO 9303 eMRTD application (passports, the CIE's travel-document side): access
//! control (this module), the files (`lds`) and passive authentication (`passive`).
//!
//! - [`card_access`]: EF.CardAccess / DG14 / EF.CardSecurity `SecurityInfos`;
//! - [`domain`]: standardized PACE domain parameters and their group operations;
//! - [`password`]: the CAN and the MRZ data, zeroized;
//! - [`pace`]: PACE Generic Mapping, DH and ECDH, 3DES and AES;
//! - [`bac`]: Basic Access Control;
//! - [`lds`]: the files (EF.COM, DG1, DG2, DG11, DG12, EF.SOD), each its own type;
//! - [`passive`]: passive authentication (SOD signature, CSCA chain, data-group hashes);
//! - [`chip_auth`]: Chip Authentication v1 with the DG14 key (new SM keys, anti-clone);
//! - [`active_auth`]: Active Authentication with the DG15 key (anti-clone).
//!
//! Typical use: [`read_card_access`] (MF), [`pace::pace_with_card_access`] with the CAN,
//! then [`select_applet`] over the returned secure channel; or, for documents without PACE,
//! [`select_applet`] then [`bac::bac`] with the MRZ.
//! Then, to tell a genuine chip from a clone: read DG14 ([`chip_auth::parse_dg14`]) and
//! run [`chip_auth::chip_authentication`], which replaces the secure channel; and/or
//! [`active_auth::active_authentication`] (DG15). Both keys are trusted only once passive
//! authentication has verified DG14/DG15.

pub mod active_auth;
pub mod bac;
pub mod card_access;
pub mod chip_auth;
pub mod deviation;
pub mod domain;
mod error;
pub mod lds;
pub mod pace;
pub mod passive;
pub mod password;
pub mod trust_files;

pub use crate::applets::ias::secure::{OsRandomness, Randomness};
pub use error::{EmrtdError, SecretKind};
pub use password::{Can, Mrz, PacePassword};

use crate::apdu::{ApduChannel, ApduError, Command, files};
use card_access::SecurityInfos;

/// The eMRTD LDS1 application identifier.
pub const EMRTD_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
/// EF.CardAccess, in the MF.
pub const FID_CARD_ACCESS: [u8; 2] = [0x01, 0x1C];

/// Select the eMRTD application.
pub async fn select_applet<C: ApduChannel + ?Sized>(ch: &C) -> Result<(), EmrtdError> {
    Ok(files::select_aid(ch, &EMRTD_AID).await?)
}

/// Select the MF and read EF.CardAccess. `Ok(None)` when the card has no EF.CardAccess
/// (`6A82`): it does not do PACE, only BAC. Some chips accept only `00 A4 00 0C` without
/// data, others only with `3F00` (emrtd.md §1.1): both are tried.
pub async fn read_card_access<C: ApduChannel + ?Sized>(
    ch: &C,
) -> Result<Option<SecurityInfos>, EmrtdError> {
    match files::select_df(ch, [0x3F, 0x00]).await {
        Ok(()) => {}
        // Only a refusal means "try the other form"; a lost tag must reach the user.
        Err(ApduError::Status { .. }) => {
            ch.transmit(&Command::new(0x00, 0xA4, 0x00, 0x0C))
                .await?
                .check(0xA4)?;
        }
        Err(e) => return Err(e.into()),
    }
    match files::read_ef(ch, FID_CARD_ACCESS).await {
        Ok(bytes) => Ok(Some(SecurityInfos::parse(&bytes)?)),
        Err(ApduError::Status { sw, .. }) if sw == crate::apdu::Sw::FILE_NOT_FOUND => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A DER `SubjectPublicKeyInfo` split into its algorithm OID (content bytes), a reader over
/// the algorithm parameters, and the key bits (no unused bits allowed). Shared by the DG14
/// (chip authentication) and DG15 (active authentication) key decoders.
pub(crate) fn split_spki<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<(&'a [u8], crate::tlv::Reader<'a>, &'a [u8]), EmrtdError> {
    use crate::tlv::{Reader, Tag, Tlv};
    let bad = |reason| EmrtdError::malformed(what, reason);
    let spki = Tlv::from_bytes(der)?;
    if spki.tag != Tag::new(0x30) {
        return Err(bad("not a SEQUENCE"));
    }
    let mut r = Reader::new(spki.value);
    let alg = r.expect_tlv(Tag::new(0x30))?;
    let bits = r.expect_tlv(Tag::new(0x03))?;
    r.expect_empty("SubjectPublicKeyInfo")?;
    let key = match bits.value {
        [0x00, rest @ ..] => rest,
        _ => return Err(bad("BIT STRING with unused bits")),
    };
    let mut a = Reader::new(alg.value);
    let oid = a.expect_tlv(Tag::new(0x06))?.value;
    Ok((oid, a, key))
}
