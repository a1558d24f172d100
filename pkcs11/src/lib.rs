//! `libcie_companion_pkcs11.so`: a PKCS#11 2.40 module for the Italian electronic identity
//! card (CIE) in any PC/SC reader, on the same core as the phone app. Slots are readers; a
//! token appears when a CIE is in one; login takes the card's real 8-digit PIN (no pairing);
//! the authentication key signs with `CKM_RSA_PKCS` (TLS 1.2 client authentication) and the
//! SHA-2 hash-and-sign mechanisms. Why it is built this way: `docs/pkcs11.md`.
//!
//! Layout: `ffi` (the C entry points, the only `unsafe`), `module` (slots, sessions, login,
//! search, signing in safe Rust), `objects` (attributes), `card` (readers and the CIE).

pub mod card;
mod ffi;
pub mod module;
pub mod objects;

pub use ffi::C_GetFunctionList;
