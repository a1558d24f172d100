//! cie-companion core: the shared Rust library behind the Android and iOS shells, the
//! desktop program and the PKCS#11 module.
//!
//! Layers, bottom up (each a module):
//! - [`transport`]: the card link, implemented by the platform (NFC, PC/SC, virtual card);
//! - [`apdu`]: ISO 7816-4 commands and responses, status words, GET RESPONSE, chaining, reads;
//! - [`tlv`]: BER-TLV decoding that never panics on card bytes;
//! - [`applets`]: card applications (today: which known ones a card has);
//! - [`flows`]: what the user does (the one-tap login, pairing);
//! - `net` (feature `net`): the pinned HTTPS client of the login flows;
//! - [`otp`]: one-time codes (HOTP/TOTP, otpauth links, saved tokens);
//! - [`qr`]: QR codes in camera frames;
//! - [`ffi`]: the UniFFI surface the shells call.

pub mod apdu;
pub mod applets;
pub mod ffi;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "net")]
pub mod net;
pub mod otp;
pub mod qr;
pub mod sm;
pub mod tlv;
pub mod transport;

uniffi::setup_scaffolding!();
