//! Reading an identity document's chip (the CIE's eMRTD side, or a passport) in one tap,
//! resumable: files already read survive a lost tag, and the next tap reads only what is
//! missing (after a new PACE/BAC: secure messaging sessions never outlive the field).
//!
//! Order: EF.CardAccess, access control, EF.COM, then the small files (DG1, DG11, DG12,
//! DG14, DG15, EF.SOD) and DG2 last: a tap lost during the 20 KB photo keeps everything
//! else.

use std::collections::BTreeMap;

use crate::apdu::{ApduChannel, ApduError, Sw, files};
use crate::applets::emrtd::card_access::SecurityInfos;
use crate::applets::emrtd::lds::{self, File, LdsError};
use crate::applets::emrtd::passive::{PassiveReport, TrustStore};
use crate::applets::emrtd::{
    self, EmrtdError, PacePassword, Randomness, active_auth, bac, chip_auth, pace,
};

/// Progress of a read, for a progress bar: called after each chunk.
pub trait DocumentProgress: Send + Sync {
    /// `done` bytes of `file` read so far, of `total` when the chip said.
    fn on_file(&self, file: File, done: usize, total: Option<usize>);
}

/// No progress reporting.
pub struct NoProgress;

impl DocumentProgress for NoProgress {
    fn on_file(&self, _: File, _: usize, _: Option<usize>) {}
}

/// How access was gained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// PACE (the chip advertised it in EF.CardAccess).
    Pace,
    /// Basic Access Control (no EF.CardAccess).
    Bac,
}

/// The outcome of a clone check (chip or active authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneCheck {
    /// The chip proved it holds the private key of its DG14 (CA) or DG15 (AA) public key.
    Verified,
    /// The chip does not offer it (no DG14 key / no DG15).
    NotOffered,
    /// Not run (the other check failed first and closed the session).
    NotRun,
    /// The chip failed it: possibly a clone.
    Failed(String),
}

/// The data groups read when the chip lists them: everything a citizen's app shows and
/// verifies (DG13 is kept raw: its content is each State's own). DG3/DG4 (fingerprints,
/// iris) need terminal authentication and are not asked for.
pub const DEFAULT_FILES: [File; 8] = [
    File::Dg(1),
    File::Dg(11),
    File::Dg(12),
    File::Dg(13),
    File::Dg(14),
    File::Dg(15),
    File::Sod,
    File::Dg(2),
];

/// A read in progress, kept across taps.
pub struct DocumentRead {
    password: PacePassword,
    wanted: Vec<File>,
    card_access: Option<Option<SecurityInfos>>,
    done: BTreeMap<File, Vec<u8>>,
    absent: Vec<File>,
    checks: Option<(CloneCheck, CloneCheck)>,
}

impl std::fmt::Debug for DocumentRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentRead")
            .field("done", &self.done.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The files read.
#[derive(Debug, Clone)]
pub struct Document {
    /// How access was gained.
    pub access: Access,
    /// Each file, as the chip holds it (tag and length included).
    pub files: BTreeMap<File, Vec<u8>>,
    /// Chip authentication (DG14). Meaningful once passive authentication has shown DG14
    /// is genuine: a cloned chip can copy the files but not the private key.
    pub chip_authentication: CloneCheck,
    /// Active authentication (DG15), likewise after passive authentication of DG15.
    pub active_authentication: CloneCheck,
}

impl Document {
    /// The bytes of `file`.
    pub fn file(&self, file: File) -> Option<&[u8]> {
        self.files.get(&file).map(Vec::as_slice)
    }

    /// DG1 parsed.
    pub fn mrz(&self) -> Option<Result<lds::dg1::Mrz, LdsError>> {
        self.file(File::Dg(1)).map(lds::dg1::parse)
    }

    /// DG11 parsed.
    pub fn personal_details(&self) -> Option<Result<lds::dg11::PersonalDetails, LdsError>> {
        self.file(File::Dg(11)).map(lds::dg11::parse)
    }

    /// DG12 parsed.
    pub fn document_details(&self) -> Option<Result<lds::dg12::DocumentDetails, LdsError>> {
        self.file(File::Dg(12)).map(lds::dg12::parse)
    }

    /// DG2's face images.
    pub fn faces(&self) -> Option<Result<Vec<lds::dg2::FaceImage>, LdsError>> {
        self.file(File::Dg(2)).map(lds::dg2::parse)
    }

    /// Passive authentication of every data group read, against `trust`.
    pub fn passive(&self, trust: &TrustStore) -> Result<PassiveReport, LdsError> {
        let sod_bytes = self
            .file(File::Sod)
            .ok_or_else(|| LdsError::invalid("EF.SOD", "not read"))?;
        let sod = lds::sod::parse(sod_bytes)?;
        let dgs: Vec<(u8, &[u8])> = self
            .files
            .iter()
            .filter_map(|(f, b)| match f {
                File::Dg(n) => Some((*n, b.as_slice())),
                _ => None,
            })
            .collect();
        Ok(emrtd::passive::verify(&sod, &dgs, trust))
    }
}

impl DocumentRead {
    /// A read with the CAN or the MRZ data, of [`DEFAULT_FILES`].
    pub fn new(password: PacePassword) -> Self {
        Self {
            password,
            wanted: DEFAULT_FILES.to_vec(),
            card_access: None,
            done: BTreeMap::new(),
            absent: Vec::new(),
            checks: None,
        }
    }

    /// Read only `files` (EF.COM is always read).
    pub fn with_files(mut self, files: &[File]) -> Self {
        self.wanted = files.to_vec();
        self
    }

    /// Files already read (kept for the next tap).
    pub fn completed(&self) -> Vec<File> {
        self.done.keys().copied().collect()
    }

    /// One tap: authenticate, then read what is still missing. On error the files read so
    /// far are kept; call again on the next tap.
    pub async fn tap<C: ApduChannel>(
        &mut self,
        ch: &C,
        rng: &dyn Randomness,
        progress: &dyn DocumentProgress,
    ) -> Result<Document, EmrtdError> {
        if self.card_access.is_none() {
            self.card_access = Some(emrtd::read_card_access(ch).await?);
        }
        let (access, sm) = match (
            self.card_access.as_ref().and_then(Option::as_ref),
            &self.password,
        ) {
            (Some(infos), pw) if infos.choose_pace().is_some() => (
                Access::Pace,
                pace::pace_with_card_access(ch, infos, pw, rng).await?,
            ),
            (_, PacePassword::Mrz(mrz)) => {
                emrtd::select_applet(ch).await?;
                (Access::Bac, bac::bac(ch, mrz, rng).await?)
            }
            (_, PacePassword::Can(_)) => {
                return Err(EmrtdError::InvalidInput {
                    what: "access key",
                    reason: "this document does not accept the CAN: enter the document number, birth and expiry dates",
                });
            }
        };
        emrtd::select_applet(&sm).await?;
        if !self.done.contains_key(&File::Com) {
            let com = self.read_file(&sm, File::Com, progress).await?;
            self.done.insert(File::Com, com);
        }
        let listed = self
            .done
            .get(&File::Com)
            .map(|c| lds::com::parse(c).map(|c| c.files).unwrap_or_default())
            .unwrap_or_default();
        for file in self.wanted.clone() {
            // EF.SOD is never in the tag list; data groups only when listed.
            let expected = file == File::Sod || listed.contains(&file);
            if !expected || self.done.contains_key(&file) || self.absent.contains(&file) {
                continue;
            }
            match self.read_file(&sm, file, progress).await {
                Ok(bytes) => {
                    self.done.insert(file, bytes);
                }
                // Listed but missing, or protected by terminal authentication: skip it.
                Err(EmrtdError::Apdu(ApduError::Status { sw, .. }))
                    if sw == Sw::FILE_NOT_FOUND || sw == Sw::SECURITY_STATUS_NOT_SATISFIED =>
                {
                    self.absent.push(file);
                }
                Err(e) => return Err(e),
            }
        }
        if self.checks.is_none() {
            self.checks = Some(self.clone_checks(sm, rng).await?);
        }
        let (chip_authentication, active_authentication) = self
            .checks
            .clone()
            .unwrap_or((CloneCheck::NotRun, CloneCheck::NotRun));
        Ok(Document {
            access,
            files: self.done.clone(),
            chip_authentication,
            active_authentication,
        })
    }

    /// Chip authentication then active authentication, on the session that read the files.
    /// A lost tag here is an error (tap again: only these run); a chip failing a check is a
    /// result, not an error.
    async fn clone_checks<C: ApduChannel>(
        &self,
        sm: crate::sm::SecureChannel<C>,
        rng: &dyn Randomness,
    ) -> Result<(CloneCheck, CloneCheck), EmrtdError> {
        let dg14 = match self.done.get(&File::Dg(14)) {
            Some(bytes) => Some(chip_auth::parse_dg14(bytes)?),
            None => None,
        };
        let offered = match &dg14 {
            Some(infos) => chip_auth::ChipAuthConfig::from_dg14(infos)?,
            None => None,
        };
        let (ca, sm) = match offered {
            None => (CloneCheck::NotOffered, Some(sm)),
            Some(config) => match chip_auth::chip_authentication_with(sm, &config, rng).await {
                Ok(new_sm) => (CloneCheck::Verified, Some(new_sm)),
                Err(
                    e @ (EmrtdError::ChipAuthenticationFailed
                    | EmrtdError::ChipAuthenticationRefused { .. }),
                ) => (CloneCheck::Failed(e.to_string()), None),
                Err(e) => return Err(e),
            },
        };
        let aa = match (self.done.get(&File::Dg(15)), sm) {
            (None, _) => CloneCheck::NotOffered,
            (Some(_), None) => CloneCheck::NotRun,
            (Some(dg15), Some(sm)) => {
                let key = active_auth::parse_dg15(dg15)?;
                let hash = match &dg14 {
                    Some(infos) => active_auth::ecdsa_hash(infos)?,
                    None => None,
                };
                match active_auth::active_authentication_with(&sm, &key, hash, rng).await {
                    Ok(()) => CloneCheck::Verified,
                    Err(e @ EmrtdError::ActiveAuthenticationFailed(_)) => {
                        CloneCheck::Failed(e.to_string())
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok((ca, aa))
    }

    async fn read_file<C: ApduChannel>(
        &self,
        ch: &C,
        file: File,
        progress: &dyn DocumentProgress,
    ) -> Result<Vec<u8>, EmrtdError> {
        let info = files::select_file(ch, file.fid()).await?;
        let total = info.size;
        progress.on_file(file, 0, total);
        let bytes =
            files::read_to_end_with_progress(ch, total, &mut |n| progress.on_file(file, n, total))
                .await?;
        Ok(bytes)
    }
}
