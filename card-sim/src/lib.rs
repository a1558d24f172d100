//! Virtual ISO 7816-4 cards, a fault injector and an ISO 14443-4 link model.
//!
//! Used by tests, benchmarks and the demo to exercise the core's APDU layer. The card side
//! shares **no protocol code** with `cie-core`: it only borrows the transport trait and its
//! error/info types, and decodes commands with its own decoder ([`command`]), so a bug in
//! one side's reading of ISO 7816-4 shows up as a disagreement with the other.

#[cfg(feature = "ffi")]
uniffi::setup_scaffolding!();

mod ber;
pub mod card;
pub mod cie;
pub mod cns;
pub mod command;
pub mod emrtd;
pub mod faulty;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod fs;
pub mod ias;
pub mod link;

pub use card::{CardConfig, EofMode, VirtualCard};
pub use command::{Command, DecodeError};
pub use faulty::{Fault, FaultyTransport};
pub use fs::{Access, Df, Ef, FileSystem, Node};
pub use ias::{CieVariant, Vendor};
pub use link::{BitRate, LinkConfig, LinkModel, LinkStats};
