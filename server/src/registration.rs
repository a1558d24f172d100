//! Registration with the CIE (issue 12), the server's verification: a pure function of the
//! posted bytes, the challenge the server issued and its trust configuration. No storage,
//! no clock: the caller (the API) consumes the challenge (single-use, short-lived), then
//! calls [`verify_registration`], then stores the result (one identity per codice
//! fiscale).
//!
//! What is checked, each failure a distinct [`RegistrationRefusal`]:
//! 1. the card signed `registration_challenge(origin, challenge)` with the key of EF 1005
//!    (NIS internal authentication, cie.md §3.6): the card is present, not a copy of its
//!    files;
//! 2. the IAS EF.SOD verifies, chains to a configured CSCA, and its `A1` (NIS) and `A5`
//!    (EF 1005) hashes match: the NIS and that key are the State's, for this card;
//! 3. the eMRTD EF.SOD verifies and chains to a configured CSCA, and DG1, DG2, DG11, DG14
//!    hash to its values; DG12 too, except when the document is listed in a CSCA-signed
//!    deviation list for a wrong DG12 hash (the CIE 3.0 of 2017-10 … 2018-02, emrtd.md §6):
//!    then DG12 is dropped and the deviation recorded;
//! 4. the attributes are taken from the verified groups only;
//! 5. the card that signed belongs to the person of the data groups: its authentication
//!    certificate (read under the secure session, no PIN) hashes to the IAS SOD's `A3`
//!    and names the codice fiscale of DG11. Without it, a genuine card could be presented
//!    with another person's genuine (copied) data groups: the eMRTD side alone proves
//!    authenticity of the data, not presence of the chip to the server. A server may
//!    accept unbound registrations ([`RegistrationTrust::allow_unbound`]); the result then
//!    says `bound: false`.

use cie_core::applets::emrtd::deviation::{self, DeviationError, MatchedDeviation};
use cie_core::applets::emrtd::lds::sod;
use cie_core::applets::emrtd::passive::{self, HashCheck, MasterListInfo, PaError, TrustStore};
use cie_core::applets::ias::certificate::CieCertificate;
use cie_core::applets::ias::genuine::check_pkcs1_raw;
use cie_core::applets::ias::pubkey::RsaPublicKey;
use cie_core::flows::registration::RegistrationAttributes;
use cie_core::flows::registration_wire::{RegistrationRequest, registration_challenge};
use cie_core::flows::wire::{ErrorCode, Origin, unb64};
use sha2::{Digest, Sha256};

/// The assurance level a verified registration reaches (the scale of `LoginResponse`:
/// 3 = the card's chip).
pub const REGISTRATION_LEVEL: u8 = 3;

/// The IAS SOD's tag for the NIS (EF 1001), cie.md §2.2.
const IAS_TAG_NIS: u8 = 0xA1;
/// The IAS SOD's tag for the NIS key (EF 1005).
const IAS_TAG_NIS_KEY: u8 = 0xA5;
/// The IAS SOD's tag for the authentication certificate (EF 1003).
const IAS_TAG_CERT: u8 = 0xA3;

/// Largest accepted field, decoded (DG2 with a large JPEG 2000 is ~20-30 KB).
const MAX_FIELD: usize = 256 * 1024;

/// Why a registration is refused. Each names what failed; none creates an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationRefusal {
    /// A field is missing, not base64url, too large, or does not parse.
    #[error("the registration data is malformed ({field}: {reason})")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The challenge signature does not verify with the card's NIS key: another card, a
    /// clone, or a replay for another challenge.
    #[error("the card did not sign this challenge with its own key (clone or replay)")]
    ChallengeSignature,
    /// The IAS security object's signature does not verify.
    #[error("the CIE security object is not validly signed: {0}")]
    IasSodSignature(String),
    /// The IAS security object's signer does not chain to a configured CSCA.
    #[error("the CIE security object is not signed by a trusted State authority: {0}")]
    IasSodUntrusted(String),
    /// The NIS or its key is not what the State signed.
    #[error("the card's {0} is not the one the State signed")]
    IasHashMismatch(&'static str),
    /// The eMRTD EF.SOD's signature does not verify.
    #[error("the document security object is not validly signed: {0}")]
    EmrtdSodSignature(String),
    /// The eMRTD EF.SOD's signer does not chain to a configured CSCA.
    #[error("the document security object is not signed by a trusted State authority: {0}")]
    EmrtdSodUntrusted(String),
    /// A data group differs from what the State signed (forged, or from another card).
    #[error("data group {0} differs from what the State signed")]
    DataGroupMismatch(u8),
    /// A data group sent is not covered by the EF.SOD.
    #[error("data group {0} is not covered by the document's security object")]
    DataGroupNotSigned(u8),
    /// A verified attribute registration needs is absent.
    #[error("the document lacks the {0}")]
    MissingAttribute(&'static str),
    /// The card's certificate names another codice fiscale than the document's DG11: the
    /// CIE application and the travel-document data come from different people.
    #[error("the card and the document data belong to different people")]
    CardMismatch,
    /// No certificate was sent, so nothing ties the card that signed to the document data,
    /// and this server requires that tie.
    #[error("the card's certificate is needed to tie the card to the document data")]
    NotBound,
}

impl RegistrationRefusal {
    /// The message in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::Malformed { field, reason } => {
                format!("i dati di registrazione non sono validi ({field}: {reason})")
            }
            Self::ChallengeSignature => {
                "la carta non ha firmato questa sfida con la propria chiave (copia o riuso)".into()
            }
            Self::IasSodSignature(e) => {
                format!("l'oggetto di sicurezza della CIE non ha una firma valida: {e}")
            }
            Self::IasSodUntrusted(e) => format!(
                "l'oggetto di sicurezza della CIE non è firmato da un'autorità dello Stato riconosciuta: {e}"
            ),
            Self::IasHashMismatch(what) => {
                format!("il dato della carta ({what}) non è quello firmato dallo Stato")
            }
            Self::EmrtdSodSignature(e) => {
                format!("l'oggetto di sicurezza del documento non ha una firma valida: {e}")
            }
            Self::EmrtdSodUntrusted(e) => format!(
                "l'oggetto di sicurezza del documento non è firmato da un'autorità dello Stato riconosciuta: {e}"
            ),
            Self::DataGroupMismatch(n) => {
                format!("il gruppo di dati DG{n} è diverso da quello firmato dallo Stato")
            }
            Self::DataGroupNotSigned(n) => {
                format!("il gruppo di dati DG{n} non è coperto dall'oggetto di sicurezza")
            }
            Self::MissingAttribute(what) => format!("il documento non riporta: {what}"),
            Self::CardMismatch => {
                "la carta e i dati del documento appartengono a persone diverse".into()
            }
            Self::NotBound => {
                "serve il certificato della carta per legarla ai dati del documento".into()
            }
        }
    }

    /// The wire error code (docs/protocol.md): the API answers with it and
    /// [`Self::message_it`] / `Display` as the messages.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Malformed { .. } | Self::MissingAttribute(_) => ErrorCode::BadRequest,
            Self::IasSodUntrusted(_) | Self::EmrtdSodUntrusted(_) => {
                ErrorCode::UntrustedCertificate
            }
            Self::ChallengeSignature
            | Self::IasSodSignature(_)
            | Self::IasHashMismatch(_)
            | Self::EmrtdSodSignature(_)
            | Self::DataGroupMismatch(_)
            | Self::DataGroupNotSigned(_)
            | Self::CardMismatch
            | Self::NotBound => ErrorCode::BadSignature,
        }
    }

    /// A short stable code for logs and the audit row's outcome.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::ChallengeSignature => "challenge_signature",
            Self::IasSodSignature(_) => "ias_sod_signature",
            Self::IasSodUntrusted(_) => "ias_sod_untrusted",
            Self::IasHashMismatch(_) => "ias_hash_mismatch",
            Self::EmrtdSodSignature(_) => "emrtd_sod_signature",
            Self::EmrtdSodUntrusted(_) => "emrtd_sod_untrusted",
            Self::DataGroupMismatch(_) => "data_group_mismatch",
            Self::DataGroupNotSigned(_) => "data_group_not_signed",
            Self::MissingAttribute(_) => "missing_attribute",
            Self::CardMismatch => "card_mismatch",
            Self::NotBound => "not_bound",
        }
    }
}

/// Why a trust file was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A CSCA certificate or master list.
    #[error("CSCA file: {0}")]
    Csca(#[from] PaError),
    /// A deviation list.
    #[error(transparent)]
    Deviation(#[from] DeviationError),
    /// An archive or PEM file.
    #[error(transparent)]
    File(#[from] cie_core::applets::emrtd::trust_files::TrustFileError),
}

/// The trust configuration of registration: the CSCAs (test CSCA in tests; the Italian
/// CSCA publication or an ICAO master list in production) and the deviation lists they
/// signed.
#[derive(Debug, Clone, Default)]
pub struct RegistrationTrust {
    cscas: TrustStore,
    deviations: Vec<deviation::VerifiedDeviationList>,
    allow_unbound: bool,
}

impl RegistrationTrust {
    /// No CSCA: every registration is refused until some are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one CSCA certificate (DER).
    pub fn add_csca_der(&mut self, der: &[u8]) -> Result<(), TrustError> {
        Ok(self.cscas.add_der(der)?)
    }

    /// Add every CSCA of an ICAO master list (`.ml`, CMS SignedData 2.23.136.1.1.2).
    pub fn add_master_list(&mut self, bytes: &[u8]) -> Result<MasterListInfo, TrustError> {
        Ok(self.cscas.add_master_list(bytes)?)
    }

    /// Add a CSCA file as the issuing States publish them: a DER certificate, PEM
    /// certificates, an ICAO master list, or a ZIP archive of those (the Italian
    /// `IT_MasterListCSCA.zip`, emrtd.md §4). Returns how many CSCAs were added.
    pub fn add_csca_file(&mut self, bytes: &[u8]) -> Result<usize, TrustError> {
        let before = self.cscas.len();
        cie_core::applets::emrtd::trust_files::load_csca_file(&mut self.cscas, bytes)?;
        Ok(self.cscas.len() - before)
    }

    /// Add a deviation list (CMS SignedData 2.23.136.1.1.7, DER, e.g. Italy's
    /// `IT_CIE_DeviationList`): kept only when its signature verifies and its signer is a
    /// configured CSCA or was issued by one, so add the CSCAs first. Returns how many
    /// document numbers it lists.
    pub fn add_deviation_list(&mut self, bytes: &[u8]) -> Result<usize, TrustError> {
        let list = deviation::verify(bytes, &self.cscas)?;
        let n = list.list.document_count();
        self.deviations.push(list);
        Ok(n)
    }

    /// Accept registrations without the card's certificate (cards that want the PIN to
    /// read EF 1003): then nothing ties the NIS-signing card to the eMRTD data groups, and
    /// the result says so ([`VerifiedRegistration::bound`] `false`). Off by default.
    pub fn allow_unbound(&mut self, allow: bool) {
        self.allow_unbound = allow;
    }

    /// Number of CSCAs.
    pub fn csca_count(&self) -> usize {
        self.cscas.len()
    }

    fn dg_hash_deviation(&self, document_number: &str, dg: u8) -> Option<AcceptedDeviation> {
        self.deviations.iter().find_map(|l| {
            l.list
                .dg_hash_wrong(document_number, dg)
                .map(|m: MatchedDeviation| AcceptedDeviation {
                    data_group: dg,
                    deviation_type: m.kind.to_string(),
                    description: m.description,
                    list_signer: l.signer.clone().unwrap_or_default(),
                })
        })
    }
}

/// A known defect accepted because a CSCA-signed deviation list names the document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AcceptedDeviation {
    /// The data group concerned (dropped from the result).
    pub data_group: u8,
    /// The deviation type OID (2.23.136.1.1.7.2.2: wrong hash).
    pub deviation_type: String,
    /// The list's text, when it has one.
    pub description: Option<String>,
    /// Who signed the list.
    pub list_signer: String,
}

/// What is kept for audit: enough to re-verify the State's signatures later, without the
/// data groups' personal content.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistrationEvidence {
    /// The challenge as issued (base64url).
    pub challenge: String,
    /// The card's signature over it (base64url).
    pub challenge_signature: String,
    /// EF 1005 DER (base64url).
    pub nis_public_key: String,
    /// The IAS EF.SOD (base64url).
    pub ias_sod: String,
    /// The eMRTD EF.SOD (base64url): the hash of every data group, signed.
    pub emrtd_sod: String,
    /// The IAS SOD's Document Signer subject.
    pub ias_signer: String,
    /// The eMRTD SOD's Document Signer subject.
    pub emrtd_signer: String,
    /// The CSCA the IAS SOD chains to.
    pub ias_csca: String,
    /// The CSCA the eMRTD SOD chains to.
    pub emrtd_csca: String,
    /// Data groups whose hash matched, by number.
    pub verified_data_groups: Vec<u8>,
}

impl std::fmt::Debug for RegistrationEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationEvidence")
            .field("emrtd_csca", &self.emrtd_csca)
            .field("verified_data_groups", &self.verified_data_groups)
            .finish_non_exhaustive()
    }
}

/// A registration that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRegistration {
    /// The card's NIS (12 digits): the card identifier of the pinless protocol.
    pub nis: String,
    /// base64url(SHA-256(EF 1005 DER)): with the NIS, what identifies this card later.
    pub nis_key_hash: String,
    /// The codice fiscale (DG11), required: one identity per codice fiscale.
    pub codice_fiscale: String,
    /// The holder's attributes from the verified groups (DG12's only when it verified).
    pub attributes: RegistrationAttributes,
    /// [`REGISTRATION_LEVEL`].
    pub level: u8,
    /// The card that signed is tied to the document data: its certificate (hash in the
    /// IAS SOD) names the same codice fiscale as DG11.
    pub bound: bool,
    /// Deviations accepted (DG12 dropped for a listed document).
    pub deviations: Vec<AcceptedDeviation>,
    /// For audit.
    pub evidence: RegistrationEvidence,
}

fn field(name: &'static str, text: &str) -> Result<Vec<u8>, RegistrationRefusal> {
    let malformed = |reason: &str| RegistrationRefusal::Malformed {
        field: name,
        reason: reason.into(),
    };
    if text.len() > MAX_FIELD * 4 / 3 + 4 {
        return Err(malformed("too large"));
    }
    let bytes = unb64(text).ok_or_else(|| malformed("not base64url"))?;
    if bytes.is_empty() {
        return Err(malformed("empty"));
    }
    Ok(bytes)
}

fn pa_text(e: &PaError) -> String {
    e.to_string()
}

/// Verify a posted registration for the `challenge` (base64url text, as issued) this
/// server (`origin`) gave out. The caller has already checked that the challenge id is
/// live and consumed it.
pub fn verify_registration(
    trust: &RegistrationTrust,
    origin: &Origin,
    challenge: &str,
    request: &RegistrationRequest,
) -> Result<VerifiedRegistration, RegistrationRefusal> {
    // 1. The card is present: it signed this server's challenge with its NIS key.
    let nis = field("nis", &request.nis)?;
    if nis.len() != 12 || !nis.iter().all(u8::is_ascii_digit) {
        return Err(RegistrationRefusal::Malformed {
            field: "nis",
            reason: "not 12 digits".into(),
        });
    }
    let key_der = field("nis_public_key", &request.nis_public_key)?;
    let key =
        RsaPublicKey::from_pkcs1_der(&key_der).map_err(|e| RegistrationRefusal::Malformed {
            field: "nis_public_key",
            reason: e.to_string(),
        })?;
    let signature = field("challenge_signature", &request.challenge_signature)?;
    let signed = registration_challenge(origin, challenge);
    check_pkcs1_raw(&key, &signed, &signature)
        .map_err(|_| RegistrationRefusal::ChallengeSignature)?;

    // 2. The NIS and its key are the State's.
    let ias_sod_bytes = field("ias_sod", &request.ias_sod)?;
    let ias_sod = sod::parse(&ias_sod_bytes).map_err(|e| RegistrationRefusal::Malformed {
        field: "ias_sod",
        reason: e.to_string(),
    })?;
    let certificate = request
        .certificate
        .as_deref()
        .map(|t| field("certificate", t))
        .transpose()?;
    let mut ias_files: Vec<(u8, &[u8])> = vec![(IAS_TAG_NIS, &nis), (IAS_TAG_NIS_KEY, &key_der)];
    if let Some(c) = &certificate {
        ias_files.push((IAS_TAG_CERT, c));
    }
    let ias_report = passive::verify(&ias_sod, &ias_files, &trust.cscas);
    ias_report
        .signature
        .as_ref()
        .map_err(|e| RegistrationRefusal::IasSodSignature(pa_text(e)))?;
    let ias_csca = ias_report
        .chain
        .clone()
        .map_err(|e| RegistrationRefusal::IasSodUntrusted(pa_text(&e)))?;
    for (file, check) in &ias_report.data_groups {
        if *check != HashCheck::Match {
            let what = match file {
                cie_core::applets::emrtd::lds::File::Dg(IAS_TAG_NIS) => "NIS",
                cie_core::applets::emrtd::lds::File::Dg(IAS_TAG_CERT) => "certificate",
                _ => "NIS key",
            };
            return Err(RegistrationRefusal::IasHashMismatch(what));
        }
    }

    // 3. The data groups are the State's.
    let emrtd_sod_bytes = field("emrtd_sod", &request.emrtd_sod)?;
    let emrtd_sod = sod::parse(&emrtd_sod_bytes).map_err(|e| RegistrationRefusal::Malformed {
        field: "emrtd_sod",
        reason: e.to_string(),
    })?;
    let dg1 = field("dg1", &request.dg1)?;
    let dg2 = field("dg2", &request.dg2)?;
    let dg11 = field("dg11", &request.dg11)?;
    let dg12 = request
        .dg12
        .as_deref()
        .map(|t| field("dg12", t))
        .transpose()?;
    let dg14 = request
        .dg14
        .as_deref()
        .map(|t| field("dg14", t))
        .transpose()?;
    let mut groups: Vec<(u8, &[u8])> = vec![(1, &dg1), (2, &dg2), (11, &dg11)];
    if let Some(b) = &dg12 {
        groups.push((12, b));
    }
    if let Some(b) = &dg14 {
        groups.push((14, b));
    }
    let report = passive::verify(&emrtd_sod, &groups, &trust.cscas);
    report
        .signature
        .as_ref()
        .map_err(|e| RegistrationRefusal::EmrtdSodSignature(pa_text(e)))?;
    let emrtd_csca = report
        .chain
        .clone()
        .map_err(|e| RegistrationRefusal::EmrtdSodUntrusted(pa_text(&e)))?;
    let mut dg12_mismatch = false;
    let mut verified = Vec::new();
    for (file, check) in &report.data_groups {
        let cie_core::applets::emrtd::lds::File::Dg(n) = *file else {
            continue;
        };
        match check {
            HashCheck::Match => verified.push(n),
            HashCheck::Mismatch if n == 12 => dg12_mismatch = true,
            HashCheck::Mismatch => return Err(RegistrationRefusal::DataGroupMismatch(n)),
            HashCheck::NotInSod => return Err(RegistrationRefusal::DataGroupNotSigned(n)),
        }
    }
    // DG1 verified above: its document number is the State's.
    let mrz_attributes = RegistrationAttributes::from_files(&dg1, Some(&dg11), None, Some(&dg2))
        .map_err(|e| RegistrationRefusal::Malformed {
            field: "dg1/dg11",
            reason: e.to_string(),
        })?;
    let mut deviations = Vec::new();
    let kept_dg12 = if dg12_mismatch {
        match trust.dg_hash_deviation(&mrz_attributes.document_number, 12) {
            Some(d) => {
                deviations.push(d);
                None
            }
            None => return Err(RegistrationRefusal::DataGroupMismatch(12)),
        }
    } else {
        dg12.as_deref()
    };

    // 4. The attributes, from verified groups only.
    let attributes = RegistrationAttributes::from_files(&dg1, Some(&dg11), kept_dg12, Some(&dg2))
        .map_err(|e| RegistrationRefusal::Malformed {
        field: "dg12",
        reason: e.to_string(),
    })?;
    let codice_fiscale = attributes
        .codice_fiscale
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or(RegistrationRefusal::MissingAttribute("codice fiscale"))?;

    // 5. The card that signed belongs to the person of the document data.
    let bound = match &certificate {
        Some(der) => {
            let cert =
                CieCertificate::from_der(der).map_err(|e| RegistrationRefusal::Malformed {
                    field: "certificate",
                    reason: e.to_string(),
                })?;
            let same = cert
                .codice_fiscale
                .as_deref()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case(codice_fiscale.trim()));
            if !same {
                return Err(RegistrationRefusal::CardMismatch);
            }
            true
        }
        None if trust.allow_unbound => false,
        None => return Err(RegistrationRefusal::NotBound),
    };

    let b64 = cie_core::flows::wire::b64;
    Ok(VerifiedRegistration {
        nis: String::from_utf8_lossy(&nis).into_owned(),
        nis_key_hash: b64(&Sha256::digest(&key_der)),
        codice_fiscale,
        attributes,
        level: REGISTRATION_LEVEL,
        bound,
        deviations,
        evidence: RegistrationEvidence {
            challenge: challenge.to_string(),
            challenge_signature: b64(&signature),
            nis_public_key: b64(&key_der),
            ias_sod: b64(&ias_sod_bytes),
            emrtd_sod: b64(&emrtd_sod_bytes),
            ias_signer: ias_report.signer.unwrap_or_default(),
            emrtd_signer: report.signer.unwrap_or_default(),
            ias_csca,
            emrtd_csca,
            verified_data_groups: verified,
        },
    })
}
