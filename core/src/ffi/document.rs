//! `DocumentReader`: the chip's travel-document side on the UniFFI surface, for the shells'
//! "show my card" screen. Built with the CAN (or the MRZ data) and the trusted CSCAs; `tap`
//! is called each time the card is presented and resumes after a lost tag.

use std::sync::{Arc, Mutex, PoisonError};

use super::CardError;
use crate::apdu::CardChannel;
use crate::applets::emrtd::lds::File;
use crate::applets::emrtd::lds::dg2::ImageFormat;
use crate::applets::emrtd::passive::{HashCheck, TrustStore};
use crate::applets::emrtd::{Can, Mrz, OsRandomness, PacePassword};
use crate::flows::document::{Access, CloneCheck, DocumentProgress, DocumentRead};
use crate::transport::CardTransport;

/// Progress of a document read, implemented by the shell (a progress bar for the photo).
#[uniffi::export(foreign)]
pub trait DocumentListener: Send + Sync {
    /// `done` bytes of file `name` ("DG2", "EF.SOD", …) read, of `total` (0 when unknown).
    fn on_progress(&self, name: String, done: u64, total: u64);
}

pub(super) struct Forward(pub(super) Option<Arc<dyn DocumentListener>>);

impl DocumentProgress for Forward {
    fn on_file(&self, file: File, done: usize, total: Option<usize>) {
        if let Some(l) = &self.0 {
            l.on_progress(file.to_string(), done as u64, total.unwrap_or(0) as u64);
        }
    }
}

/// The photo, as stored and decoded.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Portrait {
    /// JPEG or JPEG 2000.
    pub format: ImageFormat,
    /// The bytes as stored on the chip.
    pub encoded: Vec<u8>,
    /// Decoded width (0 when the image could not be decoded).
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// 8-bit RGB pixels, rows top to bottom (empty when not decodable).
    pub rgb: Vec<u8>,
}

impl Portrait {
    /// The first face of DG2, decoded when the decoder can.
    pub(super) fn from_face(f: crate::applets::emrtd::lds::dg2::FaceImage) -> Self {
        let decoded = f.decode().ok();
        Self {
            format: f.format,
            width: decoded.as_ref().map_or(0, |d| d.width),
            height: decoded.as_ref().map_or(0, |d| d.height),
            rgb: decoded.map(|d| d.pixels).unwrap_or_default(),
            encoded: f.data,
        }
    }
}

/// The outcome of a clone check (chip or active authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CloneStatus {
    /// The chip proved it holds its private key: not a copy.
    Verified,
    /// The chip does not offer this check.
    NotOffered,
    /// Not run (the other check failed first).
    NotRun,
    /// The chip failed it: possibly a clone.
    Failed,
}

impl From<&CloneCheck> for CloneStatus {
    fn from(c: &CloneCheck) -> Self {
        match c {
            CloneCheck::Verified => Self::Verified,
            CloneCheck::NotOffered => Self::NotOffered,
            CloneCheck::NotRun => Self::NotRun,
            CloneCheck::Failed(_) => Self::Failed,
        }
    }
}

/// Whether the chip's data is what the issuing State signed, on the chip it was issued on.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Verification {
    /// Passive authentication passed and no clone check failed.
    pub genuine: bool,
    /// Chip authentication (DG14 key).
    pub chip_authentication: CloneStatus,
    /// Active authentication (DG15 key).
    pub active_authentication: CloneStatus,
    /// The security object's signature verifies with its signer's certificate.
    pub signature_valid: bool,
    /// The signer's certificate was issued by a trusted CSCA.
    pub signer_trusted: bool,
    /// Files whose content differs from what was signed (e.g. `DG11`).
    pub altered: Vec<String>,
    /// Files read that the security object does not cover.
    pub not_covered: Vec<String>,
}

/// What the chip says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DocumentData {
    /// True for PACE, false for BAC.
    pub pace: bool,
    /// Document code (`C`, `P`, `ID`).
    pub document_code: String,
    /// Document number.
    pub document_number: String,
    /// Issuing State.
    pub issuing_state: String,
    /// Surname.
    pub surname: String,
    /// Given names.
    pub given_names: String,
    /// Nationality.
    pub nationality: String,
    /// Date of birth `YYMMDD`.
    pub date_of_birth: String,
    /// `M`, `F` or `<`.
    pub sex: String,
    /// Date of expiry `YYMMDD`.
    pub date_of_expiry: String,
    /// The codice fiscale (DG11 personal number) when present.
    pub codice_fiscale: Option<String>,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Residence address.
    pub address: Option<String>,
    /// Issuing authority (the Comune).
    pub issuing_authority: Option<String>,
    /// Date of issue `YYYYMMDD`.
    pub date_of_issue: Option<String>,
    /// The photo.
    pub portrait: Option<Portrait>,
    /// Passive authentication.
    pub verification: Verification,
}

/// Reads an identity document's chip. One per reading; `tap` again after a lost tag.
#[derive(uniffi::Object)]
pub struct DocumentReader {
    read: Mutex<Option<DocumentRead>>,
    trust: TrustStore,
}

fn trust_from(csca_der: Vec<Vec<u8>>) -> Result<TrustStore, CardError> {
    let mut trust = TrustStore::new();
    for der in csca_der {
        trust
            .add_certificate_or_master_list(&der)
            .map_err(|e| CardError::InvalidAccessKey {
                reason: format!("trusted CSCA: {e}"),
            })?;
    }
    Ok(trust)
}

#[uniffi::export]
impl DocumentReader {
    /// With the CAN (6 digits on the front of the CIE). `csca_der`: trusted CSCA
    /// certificates or ICAO master lists (DER).
    #[uniffi::constructor]
    pub fn with_can(can: String, csca_der: Vec<Vec<u8>>) -> Result<Arc<Self>, CardError> {
        let can = Can::new(&zeroize::Zeroizing::new(can))?;
        Ok(Arc::new(Self {
            read: Mutex::new(Some(DocumentRead::new(PacePassword::Can(can)))),
            trust: trust_from(csca_der)?,
        }))
    }

    /// With the MRZ data (passports without a CAN): dates `YYMMDD`.
    #[uniffi::constructor]
    pub fn with_mrz(
        document_number: String,
        date_of_birth: String,
        date_of_expiry: String,
        csca_der: Vec<Vec<u8>>,
    ) -> Result<Arc<Self>, CardError> {
        let mrz = Mrz::new(&document_number, &date_of_birth, &date_of_expiry)?;
        Ok(Arc::new(Self {
            read: Mutex::new(Some(DocumentRead::new(PacePassword::Mrz(mrz)))),
            trust: trust_from(csca_der)?,
        }))
    }

    /// Read (or go on reading) the document on `transport`.
    pub async fn tap(
        &self,
        transport: Arc<dyn CardTransport>,
        listener: Option<Arc<dyn DocumentListener>>,
    ) -> Result<DocumentData, CardError> {
        let mut read = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(CardError::Busy)?;
        let ch = CardChannel::new(transport);
        let result = read.tap(&ch, &OsRandomness, &Forward(listener)).await;
        *self.read.lock().unwrap_or_else(PoisonError::into_inner) = Some(read);
        let doc = result?;
        let bad = |e: crate::applets::emrtd::lds::LdsError| CardError::InvalidResponse {
            reason: e.to_string(),
        };
        let mrz = doc.mrz().ok_or(CardError::NotFound)?.map_err(bad)?;
        let personal = doc
            .personal_details()
            .transpose()
            .map_err(bad)?
            .unwrap_or_default();
        let details = doc
            .document_details()
            .transpose()
            .map_err(bad)?
            .unwrap_or_default();
        let portrait = match doc.faces().transpose().map_err(bad)? {
            Some(faces) => faces.into_iter().next().map(Portrait::from_face),
            None => None,
        };
        let pa = doc.passive(&self.trust).map_err(bad)?;
        let files = |want: HashCheck| {
            pa.data_groups
                .iter()
                .filter(|(_, c)| *c == want)
                .map(|(f, _)| f.to_string())
                .collect()
        };
        Ok(DocumentData {
            pace: doc.access == Access::Pace,
            document_code: mrz.document_code,
            document_number: mrz.document_number,
            issuing_state: mrz.issuing_state,
            surname: mrz.primary_identifier,
            given_names: mrz.secondary_identifier,
            nationality: mrz.nationality,
            date_of_birth: mrz.date_of_birth,
            sex: mrz.sex.to_string(),
            date_of_expiry: mrz.date_of_expiry,
            codice_fiscale: personal.personal_number,
            place_of_birth: personal.place_of_birth,
            address: personal.address,
            issuing_authority: details.issuing_authority,
            date_of_issue: details.date_of_issue,
            portrait,
            verification: Verification {
                genuine: pa.is_valid()
                    && !matches!(doc.chip_authentication, CloneCheck::Failed(_))
                    && !matches!(doc.active_authentication, CloneCheck::Failed(_)),
                chip_authentication: (&doc.chip_authentication).into(),
                active_authentication: (&doc.active_authentication).into(),
                signature_valid: pa.signature.is_ok(),
                signer_trusted: pa.chain.is_ok(),
                altered: files(HashCheck::Mismatch),
                not_covered: files(HashCheck::NotInSod),
            },
        })
    }
}
