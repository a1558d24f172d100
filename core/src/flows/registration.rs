//! Registration with the CIE (issue 12), the card side: one tap with the CAN, no PIN.
//!
//! 1. IAS application, in clear (cie.md §3.6): NIS, the NIS key (EF 1005), the card
//!    signs the server's challenge with it (INTERNAL AUTHENTICATE, key `83`), then the IAS
//!    EF.SOD (1006) that binds NIS and key to the State's signature; then, under the
//!    secure session without the PIN, the authentication certificate (EF 1003, `A3` in
//!    the IAS SOD), whose codice fiscale ties this card to the eMRTD side.
//! 2. eMRTD application over PACE-CAN: EF.SOD, DG1, DG11, DG12, DG14 and DG2 (last: a
//!    lost tag during the photo keeps the rest), read by [`DocumentRead`].
//!
//! The tap yields a [`RegistrationDraft`]: what the citizen is shown
//! ([`RegistrationDraft::summary`]) and, only once they confirm, the request to post
//! ([`RegistrationDraft::request`]). Nothing here touches the network; the posting is
//! `register.rs` (feature `net`).
//!
//! A lost tag keeps what was read: the NIS part is not redone once signed, the eMRTD
//! files already read are kept by [`DocumentRead`].

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::document::{DocumentProgress, DocumentRead};
use super::registration_wire::RegistrationRequest;
use super::wire::b64;
use crate::apdu::{ApduChannel, ApduError, Sw};
use crate::applets::emrtd::lds::{self, File, LdsError};
use crate::applets::emrtd::{Can, EmrtdError, PacePassword, Randomness};
use crate::applets::ias::{IasApplet, IasError};

/// The eMRTD files a registration reads, photo last.
pub const REGISTRATION_FILES: [File; 6] = [
    File::Dg(1),
    File::Dg(11),
    File::Dg(12),
    File::Dg(14),
    File::Sod,
    File::Dg(2),
];

/// Why a registration tap failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The CIE application (NIS, its key, the IAS SOD, the signature).
    #[error(transparent)]
    Ias(#[from] IasError),
    /// The travel-document application (PACE with the CAN, the files).
    #[error(transparent)]
    Emrtd(#[from] EmrtdError),
    /// A file registration needs is not on the card.
    #[error("the card does not hold {0}: it cannot be used to register")]
    Missing(&'static str),
    /// A file read does not parse.
    #[error("the data read from the card is not readable: {0}")]
    Data(#[from] LdsError),
}

impl RegistrationError {
    /// The message in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::Ias(IasError::NotACie) => {
                "questa carta non è una Carta d'Identità Elettronica (CIE)".into()
            }
            Self::Ias(IasError::NotGenuine) => {
                "la carta non ha dimostrato di essere autentica: potrebbe essere una copia".into()
            }
            Self::Ias(e) => format!("errore nella lettura della CIE: {e}"),
            Self::Emrtd(e) => e.message_it(),
            Self::Missing(what) => {
                format!("la carta non contiene {what}: non può essere usata per registrarsi")
            }
            Self::Data(e) => format!("i dati letti dalla carta non sono leggibili: {e}"),
        }
    }

    /// Whether the CAN was refused (PACE); the card counts the tries.
    pub fn is_wrong_can(&self) -> bool {
        matches!(self, Self::Emrtd(e) if e.is_wrong_secret())
    }
}

/// The IAS part of the tap.
#[derive(Clone)]
struct IasPart {
    nis: [u8; 12],
    nis_public_key: Vec<u8>,
    ias_sod: Vec<u8>,
    signature: Vec<u8>,
    certificate: Option<Vec<u8>>,
}

/// One registration read, kept across taps.
pub struct RegistrationRead {
    to_sign: Vec<u8>,
    ias: Option<IasPart>,
    document: DocumentRead,
}

impl std::fmt::Debug for RegistrationRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationRead")
            .field("ias_done", &self.ias.is_some())
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}

impl RegistrationRead {
    /// A read with the card's `can` in which the card signs `to_sign` (1 to 64 bytes: the
    /// [`super::registration_wire::registration_challenge`] of the server's challenge).
    pub fn new(can: Can, to_sign: &[u8]) -> Self {
        Self {
            to_sign: to_sign.to_vec(),
            ias: None,
            document: DocumentRead::new(PacePassword::Can(can)).with_files(&REGISTRATION_FILES),
        }
    }

    /// One tap: the IAS part (once), then the eMRTD files still missing.
    pub async fn tap<C: ApduChannel>(
        &mut self,
        ch: &C,
        rng: &dyn Randomness,
        progress: &dyn DocumentProgress,
    ) -> Result<RegistrationDraft, RegistrationError> {
        if self.ias.is_none() {
            let ias = IasApplet::select(ch).await?;
            // Reads NIS and EF 1005, has the card sign, and checks the answer with the key
            // here too: a clone is told at once, not after the upload.
            let proof = ias.verify_card_genuine(&self.to_sign).await?;
            let sod = ias.read_sod().await?;
            // The authentication certificate, under the secure session (DH + device
            // authentication, no PIN): its hash is in the IAS SOD (`A3`) and its subject
            // names the codice fiscale, which ties this card to the eMRTD data groups.
            // A card that wants the PIN first answers 6982: the read goes on without it
            // and the server decides whether that is enough.
            let certificate = match ias.open_secure(rng).await {
                Ok(secure) => match secure.read_certificate().await {
                    Ok(der) => Some(der),
                    Err(IasError::Apdu(ApduError::Status { sw, .. }))
                        if sw == Sw::SECURITY_STATUS_NOT_SATISFIED =>
                    {
                        None
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(e) => return Err(e.into()),
            };
            self.ias = Some(IasPart {
                nis: *proof.nis.as_bytes(),
                nis_public_key: proof.public_key.der.clone(),
                ias_sod: sod.der,
                signature: proof.signature,
                certificate,
            });
        }
        let document = self.document.tap(ch, rng, progress).await?;
        let ias = self.ias.clone().ok_or(RegistrationError::Missing("NIS"))?;
        let mut files = BTreeMap::new();
        for f in REGISTRATION_FILES {
            if let Some(bytes) = document.file(f) {
                files.insert(f, bytes.to_vec());
            }
        }
        RegistrationDraft::new(ias, files)
    }
}

/// What the chip says about its holder, as shown before sending and as the server keeps
/// it once verified.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, uniffi::Record)]
pub struct RegistrationAttributes {
    /// Surname (DG11 full name, else the MRZ primary identifier).
    pub surname: String,
    /// Given names.
    pub given_names: String,
    /// Codice fiscale (DG11 personal number).
    pub codice_fiscale: Option<String>,
    /// Date of birth, `YYYYMMDD` from DG11, else the MRZ's `YYMMDD`.
    pub date_of_birth: String,
    /// Place of birth (DG11).
    pub place_of_birth: Option<String>,
    /// Address of residence (DG11).
    pub address: Option<String>,
    /// Document number (the card number, e.g. `CA00000AA`).
    pub document_number: String,
    /// Date of expiry, `YYMMDD` as in the MRZ.
    pub date_of_expiry: String,
    /// Sex as in the MRZ (`M`, `F`, `<`).
    pub sex: String,
    /// Nationality (3 letters).
    pub nationality: String,
    /// Issuing authority (DG12), when DG12 is kept.
    pub issuing_authority: Option<String>,
    /// Date of issue (DG12), when DG12 is kept.
    pub date_of_issue: Option<String>,
    /// SHA-256 of DG2 as read (hex): the photo is identified, not stored.
    pub photo_sha256: Option<String>,
}

// Personal data: Debug names no value.
impl std::fmt::Debug for RegistrationAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationAttributes")
            .field("codice_fiscale", &self.codice_fiscale.is_some())
            .finish_non_exhaustive()
    }
}

/// Split a DG11 full name (`SURNAME<<GIVEN<NAMES`) into surname and given names.
fn split_full_name(full: &str) -> Option<(String, String)> {
    let (s, g) = full.split_once("<<")?;
    let clean = |t: &str| t.replace('<', " ").trim().to_string();
    Some((clean(s), clean(g)))
}

impl RegistrationAttributes {
    /// From DG1, DG11 and (when trusted) DG12, and DG2's bytes for the photo hash.
    pub fn from_files(
        dg1: &[u8],
        dg11: Option<&[u8]>,
        dg12: Option<&[u8]>,
        dg2: Option<&[u8]>,
    ) -> Result<Self, LdsError> {
        let mrz = lds::dg1::parse(dg1)?;
        let personal = dg11.map(lds::dg11::parse).transpose()?.unwrap_or_default();
        let document = dg12.map(lds::dg12::parse).transpose()?.unwrap_or_default();
        // The parser turns fillers into spaces; the split needs the raw `<<`.
        let raw_name = dg11
            .and_then(|b| {
                crate::tlv::find_deep(b, crate::tlv::Tag::new(0x5F0E))
                    .ok()
                    .flatten()
            })
            .map(|t| lds::text(t.value));
        let (surname, given_names) = raw_name
            .as_deref()
            .and_then(split_full_name)
            .unwrap_or_else(|| {
                (
                    mrz.primary_identifier.clone(),
                    mrz.secondary_identifier.clone(),
                )
            });
        Ok(Self {
            surname,
            given_names,
            codice_fiscale: personal.personal_number,
            date_of_birth: personal
                .full_date_of_birth
                .unwrap_or_else(|| mrz.date_of_birth.clone()),
            place_of_birth: personal.place_of_birth,
            address: personal.address,
            document_number: mrz.document_number.clone(),
            date_of_expiry: mrz.date_of_expiry.clone(),
            sex: mrz.sex.to_string(),
            nationality: mrz.nationality.clone(),
            issuing_authority: document.issuing_authority,
            date_of_issue: document.date_of_issue,
            photo_sha256: dg2.map(|b| hex_lower(&Sha256::digest(b))),
        })
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What was read in the tap: shown to the citizen, sent only once they confirm.
#[derive(Clone)]
pub struct RegistrationDraft {
    ias: IasPart,
    files: BTreeMap<File, Vec<u8>>,
    attributes: RegistrationAttributes,
}

impl std::fmt::Debug for RegistrationDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationDraft")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RegistrationDraft {
    fn new(ias: IasPart, files: BTreeMap<File, Vec<u8>>) -> Result<Self, RegistrationError> {
        for (file, what) in [
            (File::Sod, "EF.SOD"),
            (File::Dg(1), "DG1 (MRZ)"),
            (File::Dg(2), "DG2 (foto / photo)"),
            (File::Dg(11), "DG11"),
        ] {
            if !files.contains_key(&file) {
                return Err(RegistrationError::Missing(what));
            }
        }
        let get = |f: File| files.get(&f).map(Vec::as_slice);
        let attributes = RegistrationAttributes::from_files(
            get(File::Dg(1)).unwrap_or_default(),
            get(File::Dg(11)),
            get(File::Dg(12)),
            get(File::Dg(2)),
        )?;
        Ok(Self {
            ias,
            files,
            attributes,
        })
    }

    /// The holder's data as read, for the confirmation screen.
    pub fn summary(&self) -> &RegistrationAttributes {
        &self.attributes
    }

    /// The card's NIS (12 digits), shown as the card's identifier.
    pub fn nis(&self) -> String {
        String::from_utf8_lossy(&self.ias.nis).into_owned()
    }

    /// The photo as stored on the chip (DG2 parsed), for display.
    pub fn faces(&self) -> Option<Result<Vec<lds::dg2::FaceImage>, LdsError>> {
        self.files.get(&File::Dg(2)).map(|b| lds::dg2::parse(b))
    }

    /// What will be sent, one line each, in Italian and English.
    pub fn sent_items(&self) -> Vec<(&'static str, &'static str)> {
        let mut items = vec![
            (
                "numero identificativo della carta (NIS)",
                "card number (NIS)",
            ),
            (
                "firma della carta sulla sfida del server",
                "the card's signature over the server's challenge",
            ),
            (
                "oggetti di sicurezza firmati dallo Stato",
                "security objects signed by the State",
            ),
            ("dati anagrafici (MRZ, DG11)", "personal data (MRZ, DG11)"),
            ("foto", "photo"),
        ];
        if self.files.contains_key(&File::Dg(12)) {
            items.push(("dati di rilascio (DG12)", "issuance data (DG12)"));
        }
        if self.ias.certificate.is_some() {
            items.push((
                "certificato di autenticazione della carta",
                "the card's authentication certificate",
            ));
        }
        items
    }

    /// The request to post, for the server's `challenge_id`. Call it only after the
    /// citizen confirmed the summary.
    pub fn request(&self, challenge_id: &str) -> RegistrationRequest {
        let f = |file: File| self.files.get(&file).map(|b| b64(b));
        RegistrationRequest {
            challenge_id: challenge_id.to_string(),
            nis: b64(&self.ias.nis),
            nis_public_key: b64(&self.ias.nis_public_key),
            ias_sod: b64(&self.ias.ias_sod),
            challenge_signature: b64(&self.ias.signature),
            certificate: self.ias.certificate.as_deref().map(b64),
            emrtd_sod: f(File::Sod).unwrap_or_default(),
            dg1: f(File::Dg(1)).unwrap_or_default(),
            dg2: f(File::Dg(2)).unwrap_or_default(),
            dg11: f(File::Dg(11)).unwrap_or_default(),
            dg12: f(File::Dg(12)),
            dg14: f(File::Dg(14)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_splits_on_the_double_filler() {
        assert_eq!(
            split_full_name("TESTER<<MARIA<ANNA"),
            Some(("TESTER".into(), "MARIA ANNA".into()))
        );
        assert_eq!(split_full_name("NOFILLER"), None);
    }

    #[test]
    fn bad_dg1_is_a_typed_error() {
        assert!(RegistrationAttributes::from_files(&[0x61, 0x00], None, None, None).is_err());
    }
}
