//! User-level flows built on the applets. Each keeps its state between taps, so a lost
//! tag costs a tap, never the work already done.

pub mod document;
pub mod login;
pub mod pairing;
pub mod wire;
