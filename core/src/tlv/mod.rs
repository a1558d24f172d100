//! BER-TLV as ISO 7816-4 and ICAO 9303 use it: multi-byte tags, definite short and long
//! form lengths, constructed and primitive objects.
//!
//! Every byte here comes from a card or a file, so nothing panics: lengths go through
//! [`Reader::take`], which checks them against what is left, and every failure is a typed
//! [`DecodeError`] naming what was being read (the rustls `codec::Reader` discipline).

mod reader;
mod tag;
#[cfg(test)]
mod tests;

pub use reader::Reader;
pub use tag::{Class, Tag};

/// Why a TLV could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes were left than the structure needs.
    #[error("truncated {context}: needed {needed} bytes, {available} left")]
    Truncated {
        /// What was being read.
        context: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The indefinite length form (`80`), which ISO 7816 and ICAO 9303 never use.
    #[error("indefinite length is not allowed in BER-TLV for cards")]
    IndefiniteLength,
    /// A long-form length of more than four bytes, or one that does not fit in memory.
    #[error("length field too large ({bytes} length bytes)")]
    LengthTooLarge {
        /// Number of subsequent length bytes announced.
        bytes: u8,
    },
    /// A tag of more than four bytes, or one with a zero first subsequent byte.
    #[error("malformed tag")]
    MalformedTag,
    /// Bytes left over after the last object where none were expected.
    #[error("{count} unexpected bytes after {context}")]
    TrailingData {
        /// What had been read.
        context: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A required object is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An object was found where another was expected.
    #[error("expected tag {expected}, found {found}")]
    UnexpectedTag {
        /// The tag the structure requires.
        expected: Tag,
        /// The tag on the wire.
        found: Tag,
    },
}

/// One decoded data object, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: Tag,
    /// The value field.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Decode exactly one object that fills `bytes`.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tlv = r.read_tlv()?;
        r.expect_empty("data object")?;
        Ok(tlv)
    }

    /// The objects inside a constructed object's value.
    pub fn children(&self) -> Children<'a> {
        Children {
            reader: Reader::new(self.value),
        }
    }

    /// The first child with `tag`, failing on malformed children before it.
    pub fn find(&self, tag: Tag) -> Result<Option<Tlv<'a>>, DecodeError> {
        for child in self.children() {
            let child = child?;
            if child.tag == tag {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }

    /// Like [`Tlv::find`], but a missing child is an error naming it.
    pub fn require(&self, tag: Tag, what: &'static str) -> Result<Tlv<'a>, DecodeError> {
        self.find(tag)?.ok_or(DecodeError::Missing(what))
    }
}

/// Iterator over consecutive objects; stops after the first error.
#[derive(Debug, Clone)]
pub struct Children<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        let item = self.reader.read_tlv();
        if item.is_err() {
            // Never yield again after an error: the rest of the input is unframed.
            self.reader = Reader::new(&[]);
        }
        Some(item)
    }
}

/// Decode consecutive objects filling `bytes`. ISO 7816-4 §5.2.2 lets `00` and `FF` pad
/// before, between and after objects (files are often padded to their allocated size), so
/// those bytes are skipped where a tag would start.
pub fn parse_padded(bytes: &[u8]) -> Result<Vec<Tlv<'_>>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    loop {
        r.skip_padding();
        if r.is_empty() {
            return Ok(out);
        }
        out.push(r.read_tlv()?);
    }
}

/// Nesting depth [`find_deep`] descends to: CIE templates nest 4 deep; a bound keeps a
/// hostile answer of nested headers from exhausting the stack.
pub const MAX_DEPTH: usize = 16;

/// The first object tagged `tag` at any depth of `bytes` (depth-first, padding skipped),
/// for card answers whose wrapping templates vary by chip (CIE GET DATA replies).
pub fn find_deep(bytes: &[u8], tag: Tag) -> Result<Option<Tlv<'_>>, DecodeError> {
    find_within(bytes, tag, 0)
}

fn find_within(bytes: &[u8], tag: Tag, depth: usize) -> Result<Option<Tlv<'_>>, DecodeError> {
    for obj in parse_padded(bytes)? {
        if obj.tag == tag {
            return Ok(Some(obj));
        }
        if obj.tag.is_constructed()
            && depth < MAX_DEPTH
            && let Some(found) = find_within(obj.value, tag, depth + 1)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Total encoded size (tag + length + value) of the object starting at `bytes`, read from
/// its header alone. Used to size a file read from its first few bytes.
pub fn encoded_len(bytes: &[u8]) -> Result<usize, DecodeError> {
    let mut r = Reader::new(bytes);
    r.read_tag()?;
    let len = r.read_length()?;
    r.position()
        .checked_add(len)
        .ok_or(DecodeError::LengthTooLarge { bytes: 8 })
}

/// Append `len` in BER definite form (shortest encoding).
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Append one object.
pub fn encode(tag: Tag, value: &[u8], out: &mut Vec<u8>) {
    tag.encode(out);
    encode_length(value.len(), out);
    out.extend_from_slice(value);
}

/// One object as a new vector.
pub fn encode_to_vec(tag: Tag, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    encode(tag, value, &mut out);
    out
}
