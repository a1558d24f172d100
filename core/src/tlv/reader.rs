//! A cursor over borrowed bytes that hands them out only after a bounds check.

use super::{DecodeError, Tag, Tlv};

/// Reads from a byte slice; every read checks what is left first.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, consuming them.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    /// Exactly `n` bytes, or an error naming `context`.
    pub fn take(&mut self, n: usize, context: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeError::Truncated {
                context,
                needed: n,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, context: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, context)?[0])
    }

    /// Fail if anything is left.
    pub fn expect_empty(&self, context: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingData { context, count }),
        }
    }

    /// Skip ISO 7816-4 padding bytes (`00`, `FF`) where a tag would start.
    pub fn skip_padding(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if b != 0x00 && b != 0xFF {
                break;
            }
            self.pos += 1;
        }
    }

    /// A BER tag: one byte, or a first byte with all five low bits set followed by bytes
    /// whose high bit says another follows. At most four bytes in all (ISO 7816-4 allows
    /// three; four covers every tag seen on CIE and eMRTD files with margin).
    pub fn read_tag(&mut self) -> Result<Tag, DecodeError> {
        let first = self.u8("tag")?;
        let mut value = u32::from(first);
        if first & 0x1F != 0x1F {
            return Ok(Tag::new(value));
        }
        for i in 0..3 {
            let b = self.u8("tag")?;
            // A leading 0x80 would encode a zero high part: non-minimal, rejected by BER.
            if i == 0 && b == 0x80 {
                return Err(DecodeError::MalformedTag);
            }
            value = (value << 8) | u32::from(b);
            if b & 0x80 == 0 {
                return Ok(Tag::new(value));
            }
        }
        Err(DecodeError::MalformedTag)
    }

    /// A BER definite length: short form below `80`, or `81`-`84` followed by that many
    /// bytes. Non-minimal long forms are accepted (cards emit `81 05`); indefinite is not.
    pub fn read_length(&mut self) -> Result<usize, DecodeError> {
        let first = self.u8("length")?;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let count = first & 0x7F;
        match count {
            0 => Err(DecodeError::IndefiniteLength),
            1..=4 => {
                let bytes = self.take(usize::from(count), "long-form length")?;
                let len = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                usize::try_from(len).map_err(|_| DecodeError::LengthTooLarge { bytes: count })
            }
            _ => Err(DecodeError::LengthTooLarge { bytes: count }),
        }
    }

    /// One complete object; its value must fit in what is left.
    pub fn read_tlv(&mut self) -> Result<Tlv<'a>, DecodeError> {
        let tag = self.read_tag()?;
        let len = self.read_length()?;
        let value = self.take(len, "value")?;
        Ok(Tlv { tag, value })
    }

    /// One object that must carry `tag`.
    pub fn expect_tlv(&mut self, tag: Tag) -> Result<Tlv<'a>, DecodeError> {
        let tlv = self.read_tlv()?;
        if tlv.tag != tag {
            return Err(DecodeError::UnexpectedTag {
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok(tlv)
    }
}
