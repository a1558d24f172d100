//! Command APDUs of every ISO 7816-4 case (§5.1), short and extended length.

use super::ApduError;
use std::fmt;

/// Class byte bit for "more commands of this chain follow" (ISO 7816-4 §5.4.1).
pub const CLA_CHAINING: u8 = 0x10;

/// Largest Nc/Ne in short form.
pub const SHORT_MAX_DATA: usize = 255;
/// Largest Ne in short form (Le = `00`).
pub const SHORT_MAX_LE: usize = 256;
/// Largest Nc in extended form.
pub const EXTENDED_MAX_DATA: usize = 65_535;
/// Largest Ne in extended form (Le = `0000`).
pub const EXTENDED_MAX_LE: usize = 65_536;

/// A command APDU. `le` is Ne, the number of response bytes expected (1..=65536), or `None`
/// when no response data is expected.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Nc bytes).
    pub data: Vec<u8>,
    /// Expected response length Ne.
    pub le: Option<usize>,
}

// Command data may carry a PIN (VERIFY) or keys: Debug shows sizes, never bytes.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, Nc={}, Ne={:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

/// The ISO 7816-4 case of a command as encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No data, no Le.
    Case1,
    /// Le only.
    Case2,
    /// Data only.
    Case3,
    /// Data and Le.
    Case4,
}

impl Command {
    /// A case 1 command.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// With command data.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Expecting up to `ne` response bytes (256 is short `00`, 65536 is extended `0000`).
    pub fn with_le(mut self, ne: usize) -> Self {
        self.le = Some(ne);
        self
    }

    /// SELECT by DF name (AID), P2 `0C`: no response data, which every CIE chip accepts.
    pub fn select_aid(aid: &[u8]) -> Self {
        Self::new(0x00, 0xA4, 0x04, 0x0C).with_data(aid)
    }

    /// SELECT the MF with no data (`00 A4 00 00`), the form NXP-based CIEs need.
    pub fn select_mf() -> Self {
        Self::new(0x00, 0xA4, 0x00, 0x00)
    }

    /// The command's case.
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        }
    }

    /// Whether this command needs the extended length form.
    pub fn needs_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_DATA || self.le.is_some_and(|ne| ne > SHORT_MAX_LE)
    }

    /// Encode in short form where it fits, extended form where it must (if `extended_ok`).
    pub fn encode(&self, extended_ok: bool) -> Result<Vec<u8>, ApduError> {
        if self.data.len() > EXTENDED_MAX_DATA {
            return Err(ApduError::CommandTooLong {
                len: self.data.len(),
                max: EXTENDED_MAX_DATA,
            });
        }
        if let Some(ne) = self.le
            && (ne == 0 || ne > EXTENDED_MAX_LE)
        {
            return Err(ApduError::InvalidLe { ne });
        }
        let extended = self.needs_extended();
        if extended && !extended_ok {
            return Err(ApduError::ExtendedLengthUnsupported);
        }
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 3);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let nc = self.data.len();
        if extended {
            // Extended: a 00 marker, then two-byte Lc; Le is two bytes (three when alone).
            if nc > 0 {
                out.push(0x00);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.le {
                if nc == 0 {
                    out.push(0x00);
                }
                // 65536 wraps to 0000 by the standard's own convention.
                out.extend_from_slice(&((ne % EXTENDED_MAX_LE) as u16).to_be_bytes());
            }
        } else {
            if nc > 0 {
                out.push(nc as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.le {
                out.push((ne % SHORT_MAX_LE) as u8);
            }
        }
        Ok(out)
    }
}
