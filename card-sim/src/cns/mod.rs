//! A virtual CNS (TS-CNS) of the STIncard family, for the PKCS#11 module and its tests.
//!
//! Layout and commands as OpenSC's itacns driver uses them (research
//! `desktop-pkcs11-cns.md` §2.2-2.4): EF_IDCarta 3F00/1000/1003, the CNS0 certificate
//! 3F00/1100/1101, EF_DatiPersonali 3F00/1100/1102; VERIFY of PIN `10` padded with `FF`;
//! MSE RESTORE SE 3, MSE SET `83 01 01`, PSO COMPUTE DIGITAL SIGNATURE as raw RSA. Its own
//! command handling ([`app`]) and file encoding ([`files`]); nothing from `cie-core`'s
//! protocol code. **All data synthetic**: holder LUCA PROVA, codice fiscale
//! [`HOLDER_CF`] (valid check letter), a key and certificate from the card-sim test CA
//! (`gen-test-pki` step 7).
//!
//! The family's quirk: STIncard masks take the PIN reference with bit 8 set (`90`); this
//! card answers `6A88` to reference `10`, as the OpenSC comment implies real ones do
//! **[unsure: inferred from `itacns_pin_cmd`, not observed]**.

mod app;
mod files;

pub(crate) use app::CNS_INS;
pub use app::CnsApp;
pub use files::{personal_data, virtual_cns, virtual_cns_with};

/// The synthetic holder's codice fiscale (LUCA PROVA, born 10/12/1985 in Bari; check
/// letter computed per DM 23/12/1976).
pub const HOLDER_CF: &str = "PRVLCU85T10A662C";
/// The synthetic card id in EF_IDCarta (16 ASCII digits).
pub const CARD_ID: &[u8; 16] = b"7420000000000042";
/// The user PIN (5 digits: the CNS allows 5 to 8; the card pads to 8 with `FF`).
pub const PIN: &[u8] = b"13579";
/// The PIN's tries before it blocks.
pub const PIN_TRIES: u8 = 3;
/// InfoCamere CNS 1.1 on ST silicon with an STIncard mask (pcsc-tools `smartcard_list.txt`,
/// research §2.4): historical bytes `00 6B 02 09 02 00 01 11 01 'CNS' 11 31 80`.
pub const ATR_STINCARD: [u8; 25] = [
    0x3B, 0xFF, 0x18, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x55, 0x00, 0x6B, 0x02, 0x09, 0x02, 0x00, 0x01,
    0x11, 0x01, 0x43, 0x4E, 0x53, 0x11, 0x31, 0x80, 0x8E,
];

/// The CNS0 authentication key (PKCS#8 DER, test material).
pub(crate) const AUTH_KEY: &[u8] = include_bytes!("../../testdata/cns_auth_key.pk8.der");
/// The CNS0 authentication certificate (DER), issued by the card-sim test CA.
pub const AUTH_CERT_DER: &[u8] = include_bytes!("../../testdata/cns_auth_cert.der");
