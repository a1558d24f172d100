//! Which known applications a card answers SELECT for, and its EF.ATR.
//!
//! Detection probes the card rather than trusting the ATR alone: CIE chip vendors change
//! and new ATRs keep appearing (research: cie.md §2.3, desktop-pkcs11-cns.md "do not trust
//! the mask byte").

use crate::apdu::{ApduChannel, ApduError, Command, Sw, SwKind, files};

/// Applications this project knows, with their AIDs (cie.md §2.1, desktop-pkcs11-cns.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KnownApplication {
    /// CIE authentication (IAS ECC) application.
    CieIas,
    /// The CIE's own DF (`DF_CIE`), holding the service identifiers and certificate.
    CieDf,
    /// ICAO 9303 eMRTD (LDS1) application: CIE 3.0 and passports.
    IcaoEmrtd,
    /// CNS (Carta Nazionale dei Servizi) application on Bit4id/NXP ChipDoc cards.
    Cns,
}

impl KnownApplication {
    /// All of them, in probing order (eMRTD first: every CIE answers it).
    pub const ALL: [KnownApplication; 4] = [Self::IcaoEmrtd, Self::CieIas, Self::CieDf, Self::Cns];

    /// The application identifier.
    pub fn aid(self) -> &'static [u8] {
        match self {
            Self::CieIas => &[
                0xA0, 0x00, 0x00, 0x00, 0x30, 0x80, 0x00, 0x00, 0x00, 0x09, 0x81, 0x60, 0x01,
            ],
            Self::CieDf => &[0xA0, 0x00, 0x00, 0x00, 0x00, 0x39],
            Self::IcaoEmrtd => &[0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01],
            Self::Cns => &[
                0xA0, 0x00, 0x00, 0x05, 0x30, 0x00, 0x0B, 0x10, 0x40, 0x01, 0x01, 0x1B,
            ],
        }
    }

    /// A name for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::CieIas => "CIE authentication (IAS)",
            Self::CieDf => "CIE application DF",
            Self::IcaoEmrtd => "ICAO eMRTD (LDS1)",
            Self::Cns => "CNS",
        }
    }
}

/// How one application answered SELECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// Which application.
    pub application: KnownApplication,
    /// The status word of the SELECT.
    pub sw: Sw,
}

impl ProbeAnswer {
    /// `9000`: the application is there.
    pub fn present(&self) -> bool {
        self.sw.is_success()
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Each known application's SELECT status.
    pub answers: Vec<ProbeAnswer>,
    /// EF.ATR (`3F00/2F01`) contents, which identify the chip vendor where the platform
    /// hides the ATR (iOS). `None` when the card has no readable EF.ATR.
    pub ef_atr: Option<Vec<u8>>,
}

/// SELECT every known application, then read EF.ATR. Link failures abort (the caller must
/// ask the user to tap again); refusals are recorded, not errors.
pub async fn probe<C: ApduChannel + ?Sized>(ch: &C) -> Result<Probe, ApduError> {
    let mut answers = Vec::with_capacity(KnownApplication::ALL.len());
    for app in KnownApplication::ALL {
        let resp = ch.transmit(&Command::select_aid(app.aid())).await?;
        answers.push(ProbeAnswer {
            application: app,
            sw: resp.sw,
        });
    }
    Ok(Probe {
        answers,
        ef_atr: read_ef_atr(ch).await?,
    })
}

/// EF.ATR under the MF, or `None` if the card has none or refuses it.
pub async fn read_ef_atr<C: ApduChannel + ?Sized>(ch: &C) -> Result<Option<Vec<u8>>, ApduError> {
    let mf = Command::new(0x00, 0xA4, 0x00, 0x0C).with_data([0x3F, 0x00]);
    if !ch.transmit(&mf).await?.sw.is_success() {
        return Ok(None);
    }
    match files::read_ef(ch, [0x2F, 0x01]).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ApduError::Status { sw, .. })
            if matches!(
                sw.kind(),
                SwKind::FileNotFound
                    | SwKind::SecurityStatusNotSatisfied
                    | SwKind::CommandNotAllowed
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
