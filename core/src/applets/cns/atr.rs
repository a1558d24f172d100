//! Recognising a CNS from its ATR, and the chip family quirks that follow, kept as data.
//!
//! OpenSC 14c80b0 `card-itacns.c` `itacns_match_cns_card`: 15 historical bytes with "CNS"
//! at offset 9; byte 2 is the IC maker, byte 3 the mask (OS) maker, bytes 4-5 the firmware,
//! byte 12 the CNS version (`10`/`11`); plus a hard match on the IDEMIA 2021 contactless ATR
//! `3B 8B 80 01 00 31 C1 64 …`. The research notes (§2.4) warn that the mask byte lies on
//! some tokens, so the ATR only *suggests* a CNS: the card is confirmed by its files
//! ([`super::CnsApplet::select`]).

/// Mask (card OS) makers in the CNS historical bytes (OpenSC `itacns_mask_manufacturers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipFamily {
    /// 2.
    Gemplus,
    /// 4.
    GieseckeDevrient,
    /// 5: IDEMIA / Oberthur (ID-One CNS).
    Idemia,
    /// 7.
    Axalto,
    /// 8: Siemens CardOS.
    SiemensCardOs,
    /// 9: STIncard (InfoCamere cards).
    StIncard,
    /// 12.
    Athena,
    /// 13.
    Gemalto,
    /// Any other code.
    Other(u8),
}

impl ChipFamily {
    /// From the mask byte.
    pub fn from_mask(code: u8) -> Self {
        match code {
            2 => Self::Gemplus,
            4 => Self::GieseckeDevrient,
            5 => Self::Idemia,
            7 => Self::Axalto,
            8 => Self::SiemensCardOs,
            9 => Self::StIncard,
            12 => Self::Athena,
            13 => Self::Gemalto,
            other => Self::Other(other),
        }
    }

    /// The PIN reference VERIFY uses: `10`, with bit 8 set on STIncard masks
    /// (`itacns_pin_cmd`: "necessary for some Italian CNS cards, and to be avoided for
    /// others. Right now it seems that it is only needed with cards by STIncard").
    pub fn pin_reference(self) -> u8 {
        match self {
            Self::StIncard => super::constants::PIN_REF | super::constants::PIN_REF_SEARCH_PARENTS,
            _ => super::constants::PIN_REF,
        }
    }

    /// A name for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Gemplus => "Gemplus",
            Self::GieseckeDevrient => "Giesecke & Devrient",
            Self::Idemia => "IDEMIA (Oberthur)",
            Self::Axalto => "Axalto",
            Self::SiemensCardOs => "Siemens CardOS",
            Self::StIncard => "STIncard",
            Self::Athena => "Athena",
            Self::Gemalto => "Gemalto",
            Self::Other(_) => "unknown",
        }
    }
}

/// What a CNS ATR says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnsAtr {
    /// IC maker code (2 ST, 4 NXP, 5 Infineon, 0x15 Atmel).
    pub ic_maker: u8,
    /// The card OS family.
    pub family: ChipFamily,
    /// Firmware major, minor.
    pub firmware: (u8, u8),
    /// CNS version byte (`10` = 1.0, `11` = 1.1); 0 when the ATR does not say.
    pub version: u8,
}

/// The IDEMIA 2021 contactless ATR prefix OpenSC matches (its historical bytes carry no
/// "CNS").
const IDEMIA_2021_NFC_PREFIX: [u8; 8] = [0x3B, 0x8B, 0x80, 0x01, 0x00, 0x31, 0xC1, 0x64];

/// CNS ATRs seen in the field (research §2.4, from pcsc-tools `smartcard_list.txt`), for
/// tests and diagnostics; recognition does not depend on this list.
pub const KNOWN_ATRS: &[(&str, &str)] = &[
    (
        "3BFF1800FF8131FE55006B02090200011101434E531131808E",
        "InfoCamere CNS (ST / STIncard, CNS 1.1)",
    ),
    (
        "3BDF18008131FE7D006B150C0181011101434E53103180E8",
        "Lombardia CRS, Tuscany TS-CNS (Atmel / Athena)",
    ),
    (
        "3BFF1800008131FE45006B05052000012101434E5310318079",
        "Sardegna TS-CNS (Infineon / IDEMIA 2021)",
    ),
    (
        "3BFF1800008131FE45006B0505912001F101434E5310318038",
        "TS-CNS (IDEMIA ID-One CNS v2)",
    ),
    ("3B8B80010031C16408923354009000F3", "TS-CNS contactless"),
];

impl CnsAtr {
    /// Decode `atr`, or `None` when nothing in it says CNS.
    pub fn parse(atr: &[u8]) -> Option<Self> {
        if atr.starts_with(&IDEMIA_2021_NFC_PREFIX) {
            return Some(Self {
                ic_maker: 0x05,
                family: ChipFamily::Idemia,
                firmware: (0, 0),
                version: 0,
            });
        }
        let h = historical_bytes(atr)?;
        if h.len() != 15 || &h[9..12] != b"CNS" {
            return None;
        }
        Some(Self {
            ic_maker: h[2],
            family: ChipFamily::from_mask(h[3]),
            firmware: (h[4], h[5]),
            version: h[12],
        })
    }
}

/// The historical bytes of an ATR (ISO 7816-3 §8.2): T0's low nibble counts them, and the
/// interface bytes before them are skipped by following the Y indicators.
pub fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut at = 2usize;
    loop {
        let mut td = None;
        for bit in 0..4 {
            if y & (1 << bit) != 0 {
                if bit == 3 {
                    td = Some(*atr.get(at)?);
                }
                at += 1;
            }
        }
        match td {
            Some(td) => y = td >> 4,
            None => break,
        }
    }
    atr.get(at..at + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn known_atrs_decode() {
        let ic = CnsAtr::parse(&hex(KNOWN_ATRS[0].0)).unwrap();
        assert_eq!(ic.family, ChipFamily::StIncard);
        assert_eq!(ic.version, 0x11);
        assert_eq!(ic.family.pin_reference(), 0x90);
        let athena = CnsAtr::parse(&hex(KNOWN_ATRS[1].0)).unwrap();
        assert_eq!(athena.family, ChipFamily::Athena);
        assert_eq!(athena.family.pin_reference(), 0x10);
        let idemia = CnsAtr::parse(&hex(KNOWN_ATRS[2].0)).unwrap();
        assert_eq!((idemia.family, idemia.ic_maker), (ChipFamily::Idemia, 5));
        assert!(CnsAtr::parse(&hex(KNOWN_ATRS[4].0)).is_some());
        // A CIE 3.0 ATR (research §1.6, cie-middleware issue 173) is not a CNS.
        assert_eq!(
            CnsAtr::parse(&hex("3B8B800180664750 00B8007F8290002E")),
            None
        );
        for bad in [&[][..], &[0x3B], &[0x3B, 0xFF, 0x18]] {
            assert_eq!(CnsAtr::parse(bad), None);
        }
    }
}
