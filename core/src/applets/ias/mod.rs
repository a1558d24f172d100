//! The CIE authentication application (IAS ECC): identification for services (NIS), the
//! card's public keys and security object, and (next) the secure channel, PIN and signing.
//!
//! Byte-level facts come from `shared/research/cie.md` (§2 card model, §3 APDU protocol),
//! each confirmed in the official SDKs and middleware listed there.

pub mod bigint;
pub mod certificate;
pub mod constants;
pub mod dapp;
pub mod dh;
pub mod digest_info;
mod error;
mod files;
pub mod genuine;
pub mod pin;
pub mod pubkey;
pub mod secure;
pub mod sod;
pub mod vendor;

pub use error::IasError;
pub use files::{IasApplet, Nis, read_serial};
