//! BER tags, kept as their wire bytes so an unknown tag still round-trips.

use std::fmt;

/// Tag class (bits 8-7 of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `00`
    Universal,
    /// `01` (ICAO 9303 data groups use this class)
    Application,
    /// `10` (most ISO 7816-4 interindustry objects)
    ContextSpecific,
    /// `11`
    Private,
}

/// A BER tag of one to four bytes, stored big-endian in a `u32` (`0x7F61`, `0x5F1F`, `0x80`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

impl Tag {
    /// A tag from its wire bytes read as a big-endian number, e.g. `Tag::new(0x5F1F)`.
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// The wire bytes as a number.
    pub const fn value(self) -> u32 {
        self.0
    }

    fn first_byte(self) -> u8 {
        let bytes = self.0.to_be_bytes();
        // The first non-zero byte; tag 0 (never valid on the wire) maps to 0.
        bytes.into_iter().find(|b| *b != 0).unwrap_or(0)
    }

    /// The tag's class.
    pub fn class(self) -> Class {
        match self.first_byte() >> 6 {
            0 => Class::Universal,
            1 => Class::Application,
            2 => Class::ContextSpecific,
            _ => Class::Private,
        }
    }

    /// Whether the value holds further objects.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// Append the wire bytes.
    pub fn encode(self, out: &mut Vec<u8>) {
        let bytes = self.0.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
        out.extend_from_slice(&bytes[skip..]);
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:02X})", self.0)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}
