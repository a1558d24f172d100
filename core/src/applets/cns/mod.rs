//! The CNS (Carta Nazionale dei Servizi) and TS-CNS applet: the card's identity files
//! (card id, personal data with the codice fiscale, authentication certificate), the user
//! PIN as the cards define it, and raw RSA signing with host-built padding, so both
//! PKCS#1 v1.5 and PSS (TLS 1.3) work.
//!
//! Facts come from `shared/research/desktop-pkcs11-cns.md` §2 and were re-read in OpenSC
//! 14c80b0 (2026-08): `src/libopensc/card-itacns.c` (ATR matching, MSE RESTORE/SET, PIN
//! padding and the STIncard reference bit) and `src/libopensc/pkcs15-itacns.c` (file paths,
//! EF_DatiPersonali parsing, CNS0 key reference and PIN reference, 5-8 digit PIN). Each file
//! says what it confirmed and what is unsure. Portable: no desktop dependency.

mod applet;
pub mod atr;
pub mod codice_fiscale;
pub mod constants;
mod error;
pub mod padding;
pub mod personal;
pub mod pin;

pub use applet::{CardId, CnsApplet, PinStatus};
pub use error::CnsError;

#[cfg(test)]
mod tests;
