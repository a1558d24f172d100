//! PIN and PUK reference data with retry counters (cie.md §3.4).
//!
//! Status words: `9000` verified; `63Cx` wrong with x tries left; `6983` blocked (also the
//! answer to the wrong attempt that uses up the last try).

use subtle::ConstantTimeEq;

/// Verified.
pub(crate) const OK: u16 = 0x9000;
/// Authentication method blocked.
pub(crate) const BLOCKED: u16 = 0x6983;

/// A secret with a retry counter. Persistent: survives power cycles.
#[derive(Clone)]
pub(crate) struct Secret {
    value: Vec<u8>,
    max_tries: u8,
    tries_left: u8,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("max_tries", &self.max_tries)
            .field("tries_left", &self.tries_left)
            .finish_non_exhaustive()
    }
}

impl Secret {
    pub(crate) fn new(value: &[u8], max_tries: u8) -> Self {
        Self {
            value: value.to_vec(),
            max_tries,
            tries_left: max_tries,
        }
    }

    /// Tries left (0 = blocked).
    pub(crate) fn tries_left(&self) -> u8 {
        self.tries_left
    }

    /// `63Cx` with the tries left, or `6983` when blocked. Spends nothing.
    pub(crate) fn status(&self) -> u16 {
        if self.tries_left == 0 {
            BLOCKED
        } else {
            0x63C0 | u16::from(self.tries_left.min(15))
        }
    }

    /// Compare `attempt`; on success reset the counter, else spend a try.
    pub(crate) fn verify(&mut self, attempt: &[u8]) -> u16 {
        if self.tries_left == 0 {
            return BLOCKED;
        }
        let equal = attempt.len() == self.value.len() && bool::from(attempt.ct_eq(&self.value));
        if equal {
            self.tries_left = self.max_tries;
            OK
        } else {
            self.tries_left -= 1;
            self.status()
        }
    }

    /// Replace the value and reset the counter.
    pub(crate) fn set(&mut self, value: &[u8]) {
        self.value = value.to_vec();
        self.tries_left = self.max_tries;
    }

    /// Reset the counter (unblock) keeping the value.
    pub(crate) fn unblock(&mut self) {
        self.tries_left = self.max_tries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_blocks() {
        let mut pin = Secret::new(b"12345678", 3);
        assert_eq!(pin.status(), 0x63C3);
        assert_eq!(pin.verify(b"00000000"), 0x63C2);
        assert_eq!(pin.verify(b"12345678"), OK);
        assert_eq!(pin.verify(b"1"), 0x63C2);
        assert_eq!(pin.verify(b"1"), 0x63C1);
        assert_eq!(pin.verify(b"1"), BLOCKED);
        assert_eq!(pin.verify(b"12345678"), BLOCKED, "blocked even when right");
        pin.unblock();
        assert_eq!(pin.verify(b"12345678"), OK);
    }
}
