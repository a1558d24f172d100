//! Secure messaging (ISO 7816-4 §10, ICAO 9303-11 §9.8, IAS-ECC §8.6), shared by the CIE
//! IAS applet (3DES, keys from the DH secret) and the eMRTD applet (3DES after BAC or
//! PACE-3DES, AES after PACE-AES or Chip Authentication).
//!
//! - [`cipher`]: the 3DES and AES suites behind [`SmCipher`] (CBC with the suite's IV
//!   rule, retail MAC or truncated CMAC), and ISO padding;
//! - [`ssc`]: the send sequence counter;
//! - [`kdf`]: ICAO and IAS session-key derivation, the BAC key seed;
//! - [`wrap`] / [`unwrap`]: protecting one command, verifying one response;
//! - [`SecureChannel`]: an [`crate::apdu::ApduChannel`] doing both, with SM command
//!   chaining and the limits left after SM overhead.

mod channel;
pub mod cipher;
mod error;
pub mod kdf;
mod ssc;
#[cfg(test)]
mod tests;
pub mod unwrap;
pub mod wrap;

pub use channel::{SM_CHAIN_PIECE, SecureChannel, sm_limits};
pub use cipher::{Aes, SmCipher, Tdes};
pub use error::SmError;
pub use kdf::KeyAlgorithm;
pub use ssc::Ssc;
pub use unwrap::unwrap;
pub use wrap::wrap;
