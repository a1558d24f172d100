//! Which chip a CIE runs on, from the ATR's historical bytes (desktop readers) or the
//! contents of EF.ATR (phones; iOS exposes no ATR). The table is data, not logic: new chips
//! keep appearing (cie.md §2.3, from the official middleware's `ATR.cpp` and the PagoPA
//! SDKs), and a new row is all a new chip should need.

/// Chip families seen on issued CIEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChipVendor {
    /// NXP.
    Nxp,
    /// Gemalto (first generation).
    Gemalto,
    /// Gemalto (second generation).
    Gemalto2,
    /// STMicroelectronics.
    St,
    /// Actalis on JCOP4.
    Actalis,
    /// Actalis on JCOP4, 2023 chip.
    Actalis2023,
    /// Bit4id on JCOP4.
    Bit4id,
    /// Bit4id on JCOP4, 2023 chip.
    Bit4id2023,
    /// Bit4id B9547 (2025-03).
    Bit4idB9547,
    /// Actalis B946 (2025-06).
    ActalisB946,
}

/// `(vendor, bytes that must appear in the ATR)`.
const ATR_TABLE: &[(ChipVendor, &[u8])] = &[
    (
        ChipVendor::Nxp,
        &[0x80, 0x31, 0x80, 0x65, 0x49, 0x54, 0x4E, 0x58, 0x50],
    ),
    (
        ChipVendor::Gemalto,
        &[0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x04, 0x00, 0x11],
    ),
    (
        ChipVendor::Gemalto2,
        &[0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x03, 0x00, 0xEF],
    ),
    (
        ChipVendor::St,
        &[0x80, 0x66, 0x47, 0x50, 0x00, 0xB8, 0x00, 0x7F],
    ),
    (ChipVendor::St, &[0x80, 0x80, 0x01, 0x01]),
    (
        ChipVendor::Actalis,
        &[
            0x49, 0x54, 0x4A, 0x34, 0x41, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x88,
        ],
    ),
    (
        ChipVendor::Actalis2023,
        &[
            0x49, 0x54, 0x4A, 0x34, 0x43, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x8A,
        ],
    ),
    (
        ChipVendor::Bit4id,
        &[
            0x49, 0x54, 0x4A, 0x34, 0x42, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x8B,
        ],
    ),
    (
        ChipVendor::Bit4id2023,
        &[
            0x49, 0x54, 0x4A, 0x34, 0x44, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x8D,
        ],
    ),
    (
        ChipVendor::Bit4idB9547,
        &[
            0x49, 0x54, 0x4A, 0x34, 0x49, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x80,
        ],
    ),
    (
        ChipVendor::ActalisB946,
        &[
            0x49, 0x54, 0x4A, 0x34, 0x4C, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x85,
        ],
    ),
];

/// `(vendor, prefix of EF.ATR, or None, bytes EF.ATR must contain)`.
type EfAtrRow = (ChipVendor, Option<&'static [u8]>, &'static [u8]);

const EF_ATR_TABLE: &[EfAtrRow] = &[
    // ASCII "IasEccRoot".
    (ChipVendor::Gemalto, None, b"IasEccRoot"),
    (ChipVendor::Gemalto2, None, &[0x47, 0x03, 0x94, 0x41, 0xC0]),
    (
        ChipVendor::St,
        Some(&[
            0x80, 0x00, 0x43, 0x01, 0xB9, 0x46, 0x04, 0x00, 0x00, 0x00, 0x10,
        ]),
        &[],
    ),
    // Actalis shares NXP's prefix, then carries the extended-length object 7F66.
    (
        ChipVendor::Actalis,
        Some(&[
            0x80, 0x00, 0x43, 0x01, 0xB8, 0x46, 0x04, 0x10, 0x10, 0x10, 0x10, 0x47, 0x03, 0x94,
        ]),
        &[0x01, 0xE0, 0x7F, 0x66],
    ),
    (
        ChipVendor::Nxp,
        Some(&[
            0x80, 0x00, 0x43, 0x01, 0xB8, 0x46, 0x04, 0x10, 0x10, 0x10, 0x10, 0x47, 0x03, 0x94,
        ]),
        &[],
    ),
];

impl ChipVendor {
    /// From a contact or contactless ATR (or ATS historical bytes).
    pub fn from_atr(atr: &[u8]) -> Option<Self> {
        ATR_TABLE
            .iter()
            .find(|(_, frag)| contains(atr, frag))
            .map(|(v, _)| *v)
    }

    /// From EF.ATR (`3F00/2F01`).
    pub fn from_ef_atr(ef_atr: &[u8]) -> Option<Self> {
        EF_ATR_TABLE
            .iter()
            .find(|(_, prefix, inner)| {
                prefix.is_none_or(|p| ef_atr.starts_with(p)) && contains(ef_atr, inner)
            })
            .map(|(v, _, _)| *v)
    }

    /// Whether the IAS AID SELECT answers `6A82` on this family, so the MF is selected
    /// instead (cie.md §2.3). The applet falls back on `6A82` anyway; this is for reporting.
    pub fn selects_ias_through_mf(self) -> bool {
        !matches!(self, Self::Gemalto | Self::Gemalto2 | Self::St)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn real_atrs_from_the_middleware_tracker() {
        // cie-middleware#180: a 2021 Gemalto card and a 2026 card.
        assert_eq!(
            ChipVendor::from_atr(&h(
                "3B 8F 80 01 80 31 80 65 B0 85 04 00 11 12 0F FF 82 90 00 8A"
            )),
            Some(ChipVendor::Gemalto)
        );
        assert_eq!(
            ChipVendor::from_atr(&h(
                "3B 8F 80 01 80 31 80 65 49 54 4A 34 4C 12 0F FF 82 90 00 85"
            )),
            Some(ChipVendor::ActalisB946)
        );
        assert_eq!(ChipVendor::from_atr(&h("3B 00")), None);
    }

    #[test]
    fn ef_atr_contents() {
        let mut gemalto = b"xx".to_vec();
        gemalto.extend_from_slice(b"IasEccRoot");
        assert_eq!(ChipVendor::from_ef_atr(&gemalto), Some(ChipVendor::Gemalto));
        let nxp = h("80 00 43 01 B8 46 04 10 10 10 10 47 03 94 01 80");
        assert_eq!(ChipVendor::from_ef_atr(&nxp), Some(ChipVendor::Nxp));
        let actalis = h("80 00 43 01 B8 46 04 10 10 10 10 47 03 94 01 E0 7F 66 08");
        assert_eq!(ChipVendor::from_ef_atr(&actalis), Some(ChipVendor::Actalis));
        let st = h("80 00 43 01 B9 46 04 00 00 00 10 47 03 94 01 81 4F 0C A0 00 00 00 95");
        assert_eq!(ChipVendor::from_ef_atr(&st), Some(ChipVendor::St));
        assert!(ChipVendor::Nxp.selects_ias_through_mf());
        assert!(!ChipVendor::Gemalto.selects_ias_through_mf());
    }
}
