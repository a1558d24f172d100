//! Presets: a virtual CIE 3.0 file layout and plain test cards with large files.
//!
//! AIDs and file ids follow /work/shared/research/cie.md §2.1 and §4. **All file contents
//! are synthetic test data** (no real person's or card's data). The IAS files hold the test
//! PKI of [`crate::ias::pki`] (real keys, a certificate from a test CA, a SOD signed by a
//! test Document Signer). The IAS application itself (DH, secure messaging, DAPP, PIN,
//! signing) is in [`crate::ias`]; the eMRTD application beside it (BAC, PACE-CAN/MRZ, CA,
//! AA, LDS1 files and SOD) is in [`crate::emrtd`], configured by
//! [`crate::emrtd::EmrtdBuilder::cie`] unless [`virtual_cie_with`] is given another.

use crate::ber;
use crate::card::{CardConfig, VirtualCard};
use crate::emrtd::EmrtdBuilder;
use crate::fs::{Access, Df, Ef, FileSystem};
use crate::ias::{CieVariant, Vendor, pki};

/// IAS-ECC application AID.
pub const IAS_AID: [u8; 13] = [
    0xA0, 0x00, 0x00, 0x00, 0x30, 0x80, 0x00, 0x00, 0x00, 0x09, 0x81, 0x60, 0x01,
];
/// CIE DF ("DF_CIE") AID.
pub const CIE_AID: [u8; 6] = [0xA0, 0x00, 0x00, 0x00, 0x00, 0x39];
/// ICAO eMRTD LDS1 application AID.
pub const EMRTD_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];

/// EF.ATR under the MF.
pub const EF_ATR: u16 = 0x2F01;
/// EF.CardAccess under the MF (PACE parameters).
pub const EF_CARD_ACCESS: u16 = 0x011C;
/// IAS EF with the PAN.
pub const EF_PAN: u16 = 0xD003;
/// IAS EF.DH.
pub const EF_DH: u16 = 0xD004;
/// EF.ID_Servizi (NIS), SFI 1, in DF_CIE.
pub const EF_ID_SERVIZI: u16 = 0x1001;
/// EF.Seriale in DF_CIE.
pub const EF_SERIALE: u16 = 0x1002;
/// EF.Cert_CIE in DF_CIE.
pub const EF_CERT_CIE: u16 = 0x1003;
/// EF.Int.Kpub in DF_CIE.
pub const EF_INT_KPUB: u16 = 0x1004;
/// EF.Servizi_Int.Kpub, SFI 5, in DF_CIE.
pub const EF_SERVIZI_INT_KPUB: u16 = 0x1005;
/// IAS EF.SOD in DF_CIE.
pub const EF_SOD_IAS: u16 = 0x1006;
/// eMRTD EF.COM (SFI 1E).
pub const EF_COM: u16 = 0x011E;
/// eMRTD EF.SOD (SFI 1D).
pub const EF_SOD: u16 = 0x011D;
/// eMRTD EF.DG1 (SFI 01).
pub const EF_DG1: u16 = 0x0101;

/// Synthetic NIS (12 ASCII digits) of the virtual CIE.
pub const SYNTHETIC_NIS: &[u8; 12] = b"000011112222";
/// Synthetic card serial (9 ASCII characters) of the virtual CIE.
pub const SYNTHETIC_SERIAL: &[u8; 9] = b"CA00000AA";
/// NIS of the same holder's renewed virtual CIE ([`pki::CieCard::Renewed`]).
pub const RENEWED_NIS: &[u8; 12] = b"000033334444";
/// Serial of the renewed virtual CIE.
pub const RENEWED_SERIAL: &[u8; 9] = b"CA00001BB";

/// DF of the test cards made by [`VirtualCard::with_file`] and [`VirtualCard::with_large_files`].
pub const TEST_DF: u16 = 0x5000;
/// The EF of [`VirtualCard::with_file`] (SFI 1).
pub const TEST_EF: u16 = 0x5001;
/// The 20 KiB EF of [`VirtualCard::with_large_files`] (SFI 2).
pub const TEST_EF_20K: u16 = 0x5020;
/// The 40 KiB EF of [`VirtualCard::with_large_files`] (SFI 3), for offsets above 32767.
pub const TEST_EF_40K: u16 = 0x5040;

/// Deterministic test contents: byte `i` is `(i mod 251) XOR (i / 251)`, so neither a
/// 256-byte nor a 251-byte misalignment goes unnoticed.
pub fn test_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) ^ (i / 251)) as u8).collect()
}

/// A placeholder DER blob: `30 len { 0C "SYNTHETIC TEST DATA: <what>" 04 pattern }`.
fn placeholder(what: &str, pattern_len: usize) -> Vec<u8> {
    let label = format!("SYNTHETIC TEST DATA: {what}");
    let mut inner = crate::ber::tlv(&[0x0C], label.as_bytes());
    inner.extend(crate::ber::tlv(&[0x04], &test_pattern(pattern_len)));
    crate::ber::tlv(&[0x30], &inner)
}

/// A virtual CIE of `variant` whose eMRTD application is made by `emrtd` (e.g.
/// `EmrtdBuilder::cie().pace_only(&[PaceVariant::EcdhGmAes128P256])`); `config.atr`
/// defaults to the vendor's ATR. PACE DH with parameter 2 sends 264-byte GENERAL
/// AUTHENTICATE data: use an extended-length [`CardConfig`], as the real CIE needs.
pub fn virtual_cie_with(
    variant: CieVariant,
    mut config: CardConfig,
    emrtd: &EmrtdBuilder,
) -> VirtualCard {
    if config.atr.is_none() {
        config.atr = Some(variant.vendor.atr());
    }
    VirtualCard::with_emrtd_and_ias(
        cie_file_system_with(&variant, emrtd),
        config,
        emrtd.app(),
        Some(variant),
    )
}

/// NXP-like contact ATR assembled from the historical-byte fragments in research §2.3
/// (`3B 8F 80 01` + 15 historical bytes + TCK). Synthetic: not copied from a real card.
pub fn synthetic_atr() -> Vec<u8> {
    Vendor::Nxp.atr()
}

/// The virtual CIE's file system (default variant).
pub fn cie_file_system() -> FileSystem {
    cie_file_system_for(&CieVariant::default())
}

/// The virtual CIE's file system for `variant`: EF.ATR from its vendor; when the IAS AID is
/// not selectable, the IAS files sit directly in the MF.
pub fn cie_file_system_for(variant: &CieVariant) -> FileSystem {
    cie_file_system_with(variant, &EmrtdBuilder::cie())
}

/// The virtual CIE's file system for `variant` with the eMRTD application of `emrtd`.
pub fn cie_file_system_with(variant: &CieVariant, emrtd: &EmrtdBuilder) -> FileSystem {
    let ef_atr = variant.vendor.ef_atr();
    // The authentication certificate is padded after its DER, as on real cards (§2.1).
    let card = variant.card;
    let mut cert = card.auth_cert_der().to_vec();
    cert.resize(cert.len().max(2048), 0x00);

    // DF_CIE's placement under the IAS application is not verified; clients select it by
    // AID, which searches the whole tree, so they do not depend on it.
    let df_cie = Df::application(&CIE_AID)
        .with_ef(Ef::new(EF_ID_SERVIZI, card.nis().to_vec()).with_sfi(1))
        .with_ef(Ef::new(EF_SERIALE, card.serial().to_vec()))
        .with_ef(Ef::new(EF_CERT_CIE, cert).with_read_access(Access::SecureAfterDapp))
        .with_ef(Ef::new(EF_INT_KPUB, pki::EF_1004.to_vec()))
        .with_ef(Ef::new(EF_SERVIZI_INT_KPUB, card.ef_1005().to_vec()).with_sfi(5))
        // As on issued cards (PagoPA's recorded exchange): the CMS SignedData inside a
        // `77` object, reachable by SFI 6.
        .with_ef(Ef::new(EF_SOD_IAS, ber::tlv(&[0x77], card.sod())).with_sfi(6));
    let pan = Ef::new(EF_PAN, placeholder("PAN", 8));
    let ef_dh = Ef::new(EF_DH, pki::EF_D004.to_vec());

    let (df_emrtd, card_access) = emrtd.file_tree();
    let mut mf = Df::mf().with_ef(Ef::new(EF_ATR, ef_atr));
    if let Some(card_access) = card_access {
        mf = mf.with_ef(card_access);
    }
    let mf = if variant.ias_aid_selectable {
        mf.with_df(
            Df::application(&IAS_AID)
                .with_ef(pan)
                .with_ef(ef_dh)
                .with_df(df_cie),
        )
    } else {
        // NXP / JCOP4: SELECT of the IAS AID is 6A82; `00 A4 00 00` (the MF) is the IAS.
        mf.with_ef(pan).with_ef(ef_dh).with_df(df_cie)
    };
    FileSystem::new(mf.with_df(df_emrtd))
}

impl VirtualCard {
    /// A virtual CIE (synthetic contents) with the default short-APDU configuration and
    /// the synthetic ATR. Use [`VirtualCard::with_config`] for other link behaviours.
    pub fn cie() -> Self {
        Self::cie_variant(CieVariant::default(), CardConfig::default())
    }

    /// A virtual CIE of `variant` with link behaviour `config`; `config.atr` defaults to the
    /// vendor's ATR when `None`.
    pub fn cie_variant(variant: CieVariant, mut config: CardConfig) -> Self {
        if config.atr.is_none() {
            config.atr = Some(variant.vendor.atr());
        }
        virtual_cie_with(variant, config, &EmrtdBuilder::cie())
    }

    /// A test card: MF / DF `5000` / EF `5001` (SFI 1) holding `size` bytes of
    /// [`test_pattern`], default configuration.
    pub fn with_file(size: usize) -> Self {
        let df = Df::new()
            .with_fid(TEST_DF)
            .with_ef(Ef::new(TEST_EF, test_pattern(size)).with_sfi(1));
        Self::new(FileSystem::new(Df::mf().with_df(df)), CardConfig::default())
    }

    /// A test card: MF / DF `5000` with EF `5020` (20 KiB, SFI 2) and EF `5040` (40 KiB,
    /// SFI 3) of [`test_pattern`], default configuration.
    pub fn with_large_files() -> Self {
        let df = Df::new()
            .with_fid(TEST_DF)
            .with_ef(Ef::new(TEST_EF_20K, test_pattern(20 * 1024)).with_sfi(2))
            .with_ef(Ef::new(TEST_EF_40K, test_pattern(40 * 1024)).with_sfi(3));
        Self::new(FileSystem::new(Df::mf().with_df(df)), CardConfig::default())
    }
}
