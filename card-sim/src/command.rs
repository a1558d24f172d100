//! The card's own command-APDU decoder (ISO 7816-4 §5.1, cases 1, 2S/2E, 3S/3E, 4S/4E).
//!
//! Written independently of the core's encoder: the virtual card and the core check each
//! other, so they must not share this logic.

/// One decoded command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty for cases 1 and 2).
    pub data: Vec<u8>,
    /// Expected response length, already expanded: short `00` is 256, extended `0000` is
    /// 65536. `None` when the command has no Le (cases 1 and 3).
    pub le: Option<usize>,
    /// Whether the body used the extended-length encoding.
    pub extended: bool,
}

/// Why a byte string is not a well-formed command APDU. Both map to SW `6700`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than the four header bytes.
    TooShort,
    /// The body matches none of the ISO 7816-4 cases (Lc inconsistent with the length,
    /// extended Lc of zero, short Lc of zero...).
    WrongLength,
}

impl Command {
    /// Decode one command APDU. Never panics, whatever the input.
    pub fn decode(apdu: &[u8]) -> Result<Self, DecodeError> {
        let Some((&[cla, ins, p1, p2], body)) = apdu.split_first_chunk::<4>() else {
            return Err(DecodeError::TooShort);
        };
        let (data, le, extended): (&[u8], Option<usize>, bool) = match body {
            // Case 1.
            [] => (&[], None, false),
            // Case 2S.
            [le] => (&[], Some(short_le(*le)), false),
            // Case 2E: 00 Le1 Le2.
            [0, hi, lo] => (&[], Some(extended_le(*hi, *lo)), true),
            // Cases 3E and 4E: 00 Lc1 Lc2 data [Le1 Le2].
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if lc == 0 {
                    return Err(DecodeError::WrongLength);
                }
                if rest.len() == lc {
                    (rest, None, true)
                } else if rest.len() == lc + 2 {
                    let (data, le) = rest.split_at(lc);
                    (data, Some(extended_le(le[0], le[1])), true)
                } else {
                    return Err(DecodeError::WrongLength);
                }
            }
            // Cases 3S and 4S: Lc data [Le]; a short Lc of 0 is not valid.
            [lc @ 1..=255, rest @ ..] => {
                let lc = usize::from(*lc);
                if rest.len() == lc {
                    (rest, None, false)
                } else if rest.len() == lc + 1 {
                    let (data, le) = rest.split_at(lc);
                    (data, Some(short_le(le[0])), false)
                } else {
                    return Err(DecodeError::WrongLength);
                }
            }
            _ => return Err(DecodeError::WrongLength),
        };
        Ok(Self {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
            extended,
        })
    }

    /// P1 and P2 as one big-endian value.
    pub fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }

    /// Whether the command-chaining bit (CLA `0x10`) is set: more pieces follow.
    pub fn is_chained(&self) -> bool {
        self.cla & 0x10 != 0
    }
}

fn short_le(b: u8) -> usize {
    if b == 0 { 256 } else { usize::from(b) }
}

fn extended_le(hi: u8, lo: u8) -> usize {
    match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => usize::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: &[u8]) -> Result<Command, DecodeError> {
        Command::decode(b)
    }

    #[test]
    fn all_cases() {
        let c = d(&[0, 0xA4, 0, 0]).expect("case 1");
        assert_eq!((c.data.len(), c.le, c.extended), (0, None, false));
        assert_eq!(d(&[0, 0xB0, 0, 0, 0]).expect("2S").le, Some(256));
        assert_eq!(d(&[0, 0xB0, 0, 0, 0x10]).expect("2S").le, Some(16));
        let c = d(&[0, 0xB0, 0, 0, 0, 0, 0]).expect("2E");
        assert_eq!((c.le, c.extended), (Some(65536), true));
        assert_eq!(
            d(&[0, 0xB0, 0, 0, 0, 0x12, 0x34]).expect("2E").le,
            Some(0x1234)
        );
        let c = d(&[0, 0xA4, 0, 0, 2, 0x3F, 0]).expect("3S");
        assert_eq!((c.data, c.le), (vec![0x3F, 0], None));
        let c = d(&[0, 0xA4, 0, 0, 2, 0x3F, 0, 0]).expect("4S");
        assert_eq!(c.le, Some(256));
        let c = d(&[0, 0xD6, 0, 0, 0, 0, 1, 0xAA]).expect("3E");
        assert_eq!((c.data, c.le, c.extended), (vec![0xAA], None, true));
        let c = d(&[0, 0xB1, 0, 0, 0, 0, 1, 0xAA, 0, 0]).expect("4E");
        assert_eq!((c.le, c.extended), (Some(65536), true));
    }

    #[test]
    fn malformed() {
        assert_eq!(d(&[]), Err(DecodeError::TooShort));
        assert_eq!(d(&[0, 0xA4, 0]), Err(DecodeError::TooShort));
        assert_eq!(d(&[0, 0xA4, 0, 0, 3, 1]), Err(DecodeError::WrongLength));
        assert_eq!(
            d(&[0, 0xA4, 0, 0, 1, 1, 2, 3]),
            Err(DecodeError::WrongLength)
        );
        assert_eq!(d(&[0, 0xA4, 0, 0, 0, 1]), Err(DecodeError::WrongLength));
        assert_eq!(
            d(&[0, 0xA4, 0, 0, 0, 0, 0, 1]),
            Err(DecodeError::WrongLength)
        );
        assert_eq!(
            d(&[0, 0xA4, 0, 0, 0, 0, 2, 1]),
            Err(DecodeError::WrongLength)
        );
    }
}
