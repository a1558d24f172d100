//! Response APDUs: data followed by SW1 SW2.

use super::{ApduError, Sw};
use std::fmt;

/// A card's answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// The status word.
    pub sw: Sw,
}

// Responses can hold personal data or key material: Debug shows the size and SW only.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} bytes, SW {})", self.data.len(), self.sw)
    }
}

impl Response {
    /// Split raw bytes into data and status word. Fewer than two bytes is malformed.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, ApduError> {
        let len = bytes.len();
        if len < 2 {
            return Err(ApduError::ResponseTooShort { len });
        }
        let sw = Sw::from_bytes(bytes[len - 2], bytes[len - 1]);
        bytes.truncate(len - 2);
        Ok(Self { data: bytes, sw })
    }

    /// The data if the SW is `9000`, otherwise the status as an error for `ins`.
    pub fn into_data(self, ins: u8) -> Result<Vec<u8>, ApduError> {
        self.check(ins)?;
        Ok(self.data)
    }

    /// `Ok(())` on `9000`, otherwise [`ApduError::Status`].
    pub fn check(&self, ins: u8) -> Result<(), ApduError> {
        if self.sw.is_success() {
            Ok(())
        } else {
            Err(ApduError::Status { sw: self.sw, ins })
        }
    }
}
