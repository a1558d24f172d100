//! Identifiers of the CIE's IAS side (cie.md §2.1, confirmed in A1 `Ias.kt`, A3 `IAS.cpp`,
//! A5 `Constants.swift`).

/// IAS ECC application ("Gemalto AID").
pub const AID_IAS: &[u8] = &[
    0xA0, 0x00, 0x00, 0x00, 0x30, 0x80, 0x00, 0x00, 0x00, 0x09, 0x81, 0x60, 0x01,
];
/// The CIE DF holding the service files.
pub const AID_CIE: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x00, 0x39];

/// EF.ID_Servizi: the NIS, 12 ASCII digits, readable in clear.
pub const SFI_NIS: u8 = 0x01;
/// Length of the NIS.
pub const NIS_LEN: usize = 12;
/// EF.Seriale (card serial).
pub const FID_SERIAL: [u8; 2] = [0x10, 0x02];
/// EF.Cert_CIE (authentication certificate; readable only under secure messaging).
pub const FID_CERT: [u8; 2] = [0x10, 0x03];
/// EF.Int.Kpub (chip authentication public key, used inside the secure channel set-up).
pub const FID_CHIP_KEY: [u8; 2] = [0x10, 0x04];
/// EF.Servizi_Int.Kpub (NIS internal-authentication public key), SFI 5.
pub const SFI_NIS_KEY: u8 = 0x05;
/// EF.SOD of the IAS side, SFI 6 (PagoPA's Android SDK reads it as `00 B1 00 06`).
pub const SFI_SOD: u8 = 0x06;
