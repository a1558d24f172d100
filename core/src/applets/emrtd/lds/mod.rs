//! The Logical Data Structure (ICAO 9303-10): the files of an eMRTD, each its own type.
//!
//! Every parser takes the whole file as read from the chip (tag and length included), never
//! panics, and reports what was wrong with a typed [`LdsError`]. Text fields are decoded as
//! UTF-8 when valid and as Latin-1 otherwise (older chips), with the MRZ filler `<` kept
//! where the standard keeps it and turned into spaces where it separates words.

pub mod com;
pub mod dg1;
pub mod dg11;
pub mod dg12;
pub mod dg2;
pub mod sod;

use crate::tlv::{DecodeError, Tag, Tlv};

/// A data group (or EF.COM / EF.SOD) of LDS 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum File {
    /// EF.COM, the tag list.
    Com,
    /// EF.SOD, the document security object.
    Sod,
    /// DG1 … DG16.
    Dg(u8),
}

impl File {
    /// The file identifier (`01 1E`, `01 1D`, `01 0n`).
    pub fn fid(self) -> [u8; 2] {
        match self {
            Self::Com => [0x01, 0x1E],
            Self::Sod => [0x01, 0x1D],
            Self::Dg(n) => [0x01, n],
        }
    }

    /// The short EF identifier (for READ BINARY without SELECT).
    pub fn sfi(self) -> u8 {
        match self {
            Self::Com => 0x1E,
            Self::Sod => 0x1D,
            Self::Dg(n) => n,
        }
    }

    /// The outer tag of the file's object.
    pub fn tag(self) -> Option<u8> {
        Some(match self {
            Self::Com => 0x60,
            Self::Sod => 0x77,
            Self::Dg(n) => *DG_TAGS.get(usize::from(n).checked_sub(1)?)?,
        })
    }

    /// The data group whose outer tag is `tag` (EF.COM's tag list uses these).
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0x60 => Some(Self::Com),
            0x77 => Some(Self::Sod),
            t => DG_TAGS
                .iter()
                .position(|&x| x == t)
                .and_then(|i| u8::try_from(i + 1).ok())
                .map(Self::Dg),
        }
    }
}

impl std::fmt::Display for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Com => f.write_str("EF.COM"),
            Self::Sod => f.write_str("EF.SOD"),
            Self::Dg(n) => write!(f, "DG{n}"),
        }
    }
}

/// Outer tags of DG1…DG16 (9303-10 §4.6.1).
const DG_TAGS: [u8; 16] = [
    0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70,
];

/// What is wrong with a file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdsError {
    /// The BER-TLV structure is broken.
    #[error("{file}: {source}")]
    Tlv {
        /// Which file.
        file: &'static str,
        /// The decoding error.
        source: DecodeError,
    },
    /// The structure decodes but a field is missing or invalid.
    #[error("{file}: {reason}")]
    Invalid {
        /// Which file.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl LdsError {
    pub(crate) fn invalid(file: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            file,
            reason: reason.into(),
        }
    }

    pub(crate) fn tlv(file: &'static str) -> impl Fn(DecodeError) -> Self {
        move |source| Self::Tlv { file, source }
    }
}

/// Parse the file's outer object, checking its tag.
pub(crate) fn outer<'a>(bytes: &'a [u8], tag: u8, file: &'static str) -> Result<Tlv<'a>, LdsError> {
    // Only the first object counts: bytes after it are the file's allocation padding.
    let tlv = crate::tlv::Reader::new(bytes)
        .read_tlv()
        .map_err(LdsError::tlv(file))?;
    if tlv.tag != Tag::new(u32::from(tag)) {
        return Err(LdsError::invalid(
            file,
            format!("outer tag {} instead of {tag:02X}", tlv.tag),
        ));
    }
    Ok(tlv)
}

/// Text from a chip: UTF-8 when valid, Latin-1 otherwise (every byte is a character there,
/// so nothing is lost or replaced).
pub fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// ICAO name-style text: `<` as separators become single spaces, trimmed.
pub fn filler_to_spaces(s: &str) -> String {
    s.split('<')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
