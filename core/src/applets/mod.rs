//! Card applications. Each applet gets its own module (`ias`, `emrtd`, `cns`); this
//! one holds what is common: the applications we know and how to find which a card has.

pub mod cns;
pub mod emrtd;
pub mod ias;
pub mod probe;
