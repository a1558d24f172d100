//! The CNS application over any channel: recognising the card by its files, reading them,
//! the PIN and the signature.
//!
//! Files are reached one SELECT at a time from the MF (MF, DF, EF with FCP), the form the
//! core already uses elsewhere; whether every CNS family accepts path selection (`00 A4 08`)
//! is **unsure**, so it is not used.

use super::CnsError;
use super::atr::ChipFamily;
use super::constants::*;
use super::personal::PersonalData;
use super::pin::CnsPin;
use crate::apdu::{ApduChannel, ApduError, Command, SwKind, files};
use crate::tlv::Reader;
use std::fmt;

const INS_VERIFY: u8 = 0x20;
const INS_MSE: u8 = 0x22;
const INS_PSO: u8 = 0x2A;

/// The PIN's state, read without spending a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Verified in this card session.
    Verified,
    /// Not verified; this many tries left.
    TriesLeft(u8),
    /// Blocked.
    Blocked,
    /// The card does not report the count (it refused the empty VERIFY).
    Unknown,
}

/// EF_IDCarta: the card id, printable ASCII (OpenSC uses it as the token serial).
#[derive(Clone, PartialEq, Eq)]
pub struct CardId(String);

impl CardId {
    /// Up to 16 printable ASCII bytes; trailing `00`/`FF`/space padding is cut.
    pub fn parse(bytes: &[u8]) -> Result<Self, CnsError> {
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, 0x00 | 0xFF | b' '))
            .map_or(0, |i| i + 1);
        let id = &bytes[..end];
        if id.is_empty() || id.len() > CARD_ID_MAX || !id.iter().all(u8::is_ascii_graphic) {
            return Err(CnsError::malformed(
                "card id",
                "not 1-16 printable characters",
            ));
        }
        Ok(Self(String::from_utf8_lossy(id).into_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// The card id is stable and personal-ish: Debug shows its last 4 characters.
impl fmt::Debug for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.get(self.0.len().saturating_sub(4)..).unwrap_or("");
        write!(f, "CardId(…{tail})")
    }
}

/// The CNS application of one card.
pub struct CnsApplet<C: ApduChannel> {
    ch: C,
    pin_ref: u8,
}

impl<C: ApduChannel> fmt::Debug for CnsApplet<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CnsApplet")
            .field("pin_ref", &self.pin_ref)
            .finish_non_exhaustive()
    }
}

impl<C: ApduChannel> CnsApplet<C> {
    /// Recognise a CNS by its layout: EF_IDCarta (3F00/1000/1003) and the CNS0 certificate
    /// (3F00/1100/1101) must both exist. `family` (from the ATR, or `None`) chooses the PIN
    /// reference; [`Self::pin_status`] corrects it if the card disagrees.
    pub async fn select(ch: C, family: Option<ChipFamily>) -> Result<Self, CnsError> {
        let applet = Self {
            pin_ref: family.map_or(PIN_REF, ChipFamily::pin_reference),
            ch,
        };
        for (df, ef) in [(DF_CARD, EF_ID_CARTA), (DF_HOLDER, EF_CERT_CNS0)] {
            match applet.select_ef(df, ef).await {
                Ok(_) => {}
                // No such file: another card. A glitch (`6F00`, `65xx`, …) stays the
                // device error it is, so a good card is not reported as unknown.
                Err(CnsError::Apdu(ApduError::Status { sw, .. }))
                    if sw.kind().refuses_application() =>
                {
                    return Err(CnsError::NotACns);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(applet)
    }

    /// The channel underneath.
    pub fn channel(&self) -> &C {
        &self.ch
    }

    /// The PIN reference in use (`10`, or `90` on STIncard).
    pub fn pin_reference(&self) -> u8 {
        self.pin_ref
    }

    async fn select_ef(&self, df: [u8; 2], ef: [u8; 2]) -> Result<Option<usize>, CnsError> {
        files::select_df(&self.ch, MF).await?;
        files::select_df(&self.ch, df).await?;
        Ok(files::select_file(&self.ch, ef).await?.size)
    }

    async fn read(&self, df: [u8; 2], ef: [u8; 2]) -> Result<Vec<u8>, CnsError> {
        let size = self.select_ef(df, ef).await?;
        Ok(files::read_to_end(&self.ch, size).await?)
    }

    /// EF_IDCarta.
    pub async fn read_card_id(&self) -> Result<CardId, CnsError> {
        CardId::parse(&self.read(DF_CARD, EF_ID_CARTA).await?)
    }

    /// EF_DatiPersonali, parsed strictly.
    pub async fn read_personal_data(&self) -> Result<PersonalData, CnsError> {
        let bytes = self.read(DF_HOLDER, EF_DATI_PERSONALI).await?;
        PersonalData::parse(&bytes).map_err(|e| CnsError::malformed("personal data", e))
    }

    /// The CNS0 authentication certificate: the DER object at the start of the EF, file
    /// padding after it cut.
    pub async fn read_certificate(&self) -> Result<Vec<u8>, CnsError> {
        let bytes = self.read(DF_HOLDER, EF_CERT_CNS0).await?;
        let mut r = Reader::new(&bytes);
        let tlv = r.read_tlv()?;
        if tlv.tag.value() != 0x30 {
            return Err(CnsError::malformed("certificate", "not a DER SEQUENCE"));
        }
        let used = r.position();
        Ok(bytes.get(..used).unwrap_or_default().to_vec())
    }

    /// The PIN's state by VERIFY with no data (ISO 7816-4 §11.5.6), which compares nothing
    /// and so spends no try. If the card does not know the reference (`6A88`), the other
    /// form (bit 8 toggled, the STIncard quirk) is asked the same way, so a lying mask byte
    /// costs no try either.
    pub async fn pin_status(&mut self) -> Result<PinStatus, CnsError> {
        match self.status_of(self.pin_ref).await? {
            Some(s) => Ok(s),
            None => {
                let other = self.pin_ref ^ PIN_REF_SEARCH_PARENTS;
                match self.status_of(other).await? {
                    Some(s) => {
                        self.pin_ref = other;
                        Ok(s)
                    }
                    None => Ok(PinStatus::Unknown),
                }
            }
        }
    }

    /// `None` when the card does not know `reference`.
    async fn status_of(&self, reference: u8) -> Result<Option<PinStatus>, CnsError> {
        let resp = self
            .ch
            .transmit(&Command::new(0x00, INS_VERIFY, 0x00, reference))
            .await?;
        Ok(match resp.sw.kind() {
            SwKind::Ok => Some(PinStatus::Verified),
            SwKind::WrongPin { remaining: 0 } | SwKind::AuthenticationBlocked => {
                Some(PinStatus::Blocked)
            }
            SwKind::WrongPin { remaining } => Some(PinStatus::TriesLeft(remaining)),
            SwKind::ReferenceNotFound => None,
            // 6700, 6A86, 6D00…: the family has no empty VERIFY; the count stays unknown.
            _ => Some(PinStatus::Unknown),
        })
    }

    /// VERIFY the PIN (`00 20 00 <ref> 08 <digits ‖ FF…>`, in clear). `known` is the state
    /// last read; with one try left it is sent only if `last_try_confirmed`, and a blocked
    /// PIN is never sent.
    pub async fn verify_pin(
        &self,
        pin: &CnsPin,
        known: PinStatus,
        last_try_confirmed: bool,
    ) -> Result<(), CnsError> {
        match known {
            PinStatus::Blocked => return Err(CnsError::PinBlocked),
            PinStatus::TriesLeft(1) if !last_try_confirmed => {
                return Err(CnsError::LastTryNeedsConfirmation);
            }
            _ => {}
        }
        let cmd = Command::new(0x00, INS_VERIFY, 0x00, self.pin_ref).with_data(pin.padded());
        let sw = self.ch.transmit(&cmd).await?.sw;
        match sw.kind() {
            SwKind::Ok => Ok(()),
            SwKind::WrongPin { remaining: 0 } | SwKind::AuthenticationBlocked => {
                Err(CnsError::PinBlocked)
            }
            SwKind::WrongPin { remaining } => Err(CnsError::WrongPin { remaining }),
            _ => Err(ApduError::Status {
                sw,
                ins: INS_VERIFY,
            }
            .into()),
        }
    }

    /// The raw RSA private operation on `block` (exactly the modulus length, built by
    /// [`super::padding`]): MSE RESTORE SE 3, MSE SET CNS0 key, PSO COMPUTE DIGITAL
    /// SIGNATURE, as OpenSC's `itacns_set_security_env` and ISO `compute_signature` send it.
    pub async fn sign_raw(&self, block: &[u8]) -> Result<Vec<u8>, CnsError> {
        if block.is_empty() {
            return Err(CnsError::InputLength { modulus_len: 0 });
        }
        let restore = Command::new(0x00, INS_MSE, 0xF3, SE_CNS0).with_le(256);
        self.check(&restore).await?;
        let set = Command::new(0x00, INS_MSE, MSE_SET_SIGN.0, MSE_SET_SIGN.1).with_data([
            0x83,
            0x01,
            KEY_REF_CNS0,
        ]);
        self.check(&set).await?;
        let pso = Command::new(0x00, INS_PSO, PSO_CDS.0, PSO_CDS.1)
            .with_data(block)
            .with_le(block.len());
        let resp = self.ch.transmit(&pso).await?;
        if resp.sw.kind() == SwKind::SecurityStatusNotSatisfied {
            return Err(CnsError::PinRequired);
        }
        let sig = resp.into_data(INS_PSO)?;
        if sig.len() != block.len() {
            return Err(ApduError::CardMisbehaved("signature of the wrong length").into());
        }
        Ok(sig)
    }

    async fn check(&self, cmd: &Command) -> Result<(), CnsError> {
        let resp = self.ch.transmit(cmd).await?;
        if resp.sw.kind() == SwKind::SecurityStatusNotSatisfied {
            return Err(CnsError::PinRequired);
        }
        Ok(resp.check(cmd.ins)?)
    }
}
