//! Selecting the IAS side and reading its clear files in the fewest APDUs: the files are
//! read by short EF identifier, so no SELECT precedes them.

use super::IasError;
use super::constants::*;
use super::pubkey::RsaPublicKey;
use super::sod::Sod;
use crate::apdu::files::{self, EfRef, ReadPlan};
use crate::apdu::{ApduChannel, ApduError, Command, SwKind};
use std::fmt;

/// The card's identification number for services (NIS): 12 bytes, on issued cards 12 ASCII
/// digits, unique per card and not linked to the holder's identity (cie.md §2.1). Only the
/// length is enforced: a card whose NIS is not digits (test cards, the public PagoPA
/// fixture) still identifies itself, shown in hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Nis([u8; NIS_LEN]);

impl Nis {
    /// Exactly 12 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, IasError> {
        let arr: [u8; NIS_LEN] = bytes.try_into().map_err(|_| {
            IasError::malformed("NIS", format!("{} bytes instead of 12", bytes.len()))
        })?;
        Ok(Self(arr))
    }

    /// The raw bytes (what the SOD hashes under tag `A1`).
    pub fn as_bytes(&self) -> &[u8; NIS_LEN] {
        &self.0
    }

    /// The 12 digits, or uppercase hex when the bytes are not digits.
    pub fn text(&self) -> String {
        if self.0.iter().all(u8::is_ascii_digit) {
            self.0.iter().map(|b| char::from(*b)).collect()
        } else {
            self.0.iter().map(|b| format!("{b:02X}")).collect()
        }
    }
}

// The NIS identifies a card: Debug shows only its last 4 characters.
impl fmt::Debug for Nis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        write!(f, "Nis(…{})", &text[text.len() - 4..])
    }
}

/// The IAS side of a CIE, selected, over any channel (clear or secure).
pub struct IasApplet<'a, C: ApduChannel + ?Sized> {
    ch: &'a C,
}

impl<'a, C: ApduChannel + ?Sized> IasApplet<'a, C> {
    /// SELECT the IAS application, then the CIE DF. NXP and JCOP chips answer `6A82` to the
    /// IAS AID; for them the MF (`00 A4 00 00`) is selected instead, as the official
    /// middleware and the PagoPA iOS SDK do (cie.md §2.3).
    pub async fn select(ch: &'a C) -> Result<Self, IasError> {
        let resp = ch.transmit(&Command::select_aid(AID_IAS)).await?;
        match resp.sw.kind() {
            SwKind::Ok => {}
            SwKind::FileNotFound => {
                ch.transmit(&Command::select_mf()).await?.check(0xA4)?;
            }
            kind if kind.refuses_application() => return Err(IasError::NotACie),
            _ => {
                return Err(ApduError::Status {
                    sw: resp.sw,
                    ins: 0xA4,
                }
                .into());
            }
        }
        match files::select_aid(ch, AID_CIE).await {
            Ok(()) => Ok(Self { ch }),
            Err(ApduError::Status { sw, .. }) if sw.kind().refuses_application() => {
                Err(IasError::NotACie)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The channel the applet runs over.
    pub fn channel(&self) -> &'a C {
        self.ch
    }

    /// Read the NIS: one READ BINARY by SFI for exactly 12 bytes.
    pub async fn read_nis(&self) -> Result<Nis, IasError> {
        let resp = files::read_binary_at(self.ch, EfRef::Sfi(SFI_NIS), false, 0, NIS_LEN).await?;
        match resp.sw.kind() {
            SwKind::Ok | SwKind::EndOfFile => Nis::parse(&resp.data),
            // A card without the file is not a CIE (A1 `getIdServizi` stops on any status);
            // a glitch (`6F00`, `65xx`, …) is the link's or the chip's, and says so.
            kind if kind.refuses_application() => Err(IasError::NotACie),
            _ => Err(ApduError::Status {
                sw: resp.sw,
                ins: 0xB0,
            }
            .into()),
        }
    }

    /// Read EF.Seriale, the card serial (9 characters; cie.md §2.1). Cards that protect it
    /// answer `6982` here; read it on the secure session instead ([`read_serial`]).
    pub async fn read_serial(&self) -> Result<String, IasError> {
        read_serial(self.ch).await
    }

    /// Read EF.Servizi_Int.Kpub, the key that checks the NIS internal authentication.
    pub async fn read_nis_public_key(&self) -> Result<RsaPublicKey, IasError> {
        let plan = ReadPlan {
            ef: EfRef::Sfi(SFI_NIS_KEY),
            odd: false,
        };
        let der = files::read_tlv_object_with(self.ch, plan).await?;
        RsaPublicKey::from_pkcs1_der(&der)
    }

    /// Read EF.SOD (CMS SignedData over the IAS files). It is large, so every chunk is an
    /// odd-INS read by SFI: no SELECT, no switch of command form mid-file.
    pub async fn read_sod(&self) -> Result<Sod, IasError> {
        let plan = ReadPlan {
            ef: EfRef::Sfi(SFI_SOD),
            odd: true,
        };
        let der = files::read_tlv_object_with(self.ch, plan).await?;
        Sod::parse(der)
    }
}

/// EF.Seriale over any channel (clear, or the secure session where the card requires it):
/// the first 9 bytes, printable ASCII.
pub async fn read_serial<C: ApduChannel + ?Sized>(ch: &C) -> Result<String, IasError> {
    let info = files::select_file(ch, FID_SERIAL).await?;
    let data = files::read_to_end(ch, info.size).await?;
    let serial = data
        .get(..9)
        .ok_or_else(|| IasError::malformed("card serial", "shorter than 9 bytes"))?;
    if !serial.iter().all(|b| b.is_ascii_graphic()) {
        return Err(IasError::malformed("card serial", "not printable"));
    }
    Ok(String::from_utf8_lossy(serial).into_owned())
}
