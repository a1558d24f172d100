//! The virtual CNS's commands beyond SELECT/READ BINARY: VERIFY, MSE, PSO.

use crate::command::Command;
use crate::ias::dapp::raw_private;
use crate::ias::pin::Secret;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

/// Instructions this application adds.
pub(crate) const CNS_INS: [u8; 3] = [0x20, 0x22, 0x2A];

mod sw {
    pub const OK: u16 = 0x9000;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const REF_NOT_FOUND: u16 = 0x6A88;
}

/// The STIncard form of the PIN reference (`10` with bit 8 set).
const PIN_REF: u8 = 0x90;
/// The CNS0 key reference of MSE SET.
const KEY_REF: u8 = 0x01;
/// The security environment MSE RESTORE must name.
const SE: u8 = 0x03;

/// PIN counter, key, and the per-session state (verified PIN, security environment).
#[derive(Debug)]
pub struct CnsApp {
    pin: Secret,
    key: RsaPrivateKey,
    verified: bool,
    se_restored: bool,
    key_set: bool,
}

impl Default for CnsApp {
    fn default() -> Self {
        Self::new()
    }
}

impl CnsApp {
    /// Fresh card: PIN [`super::PIN`] with [`super::PIN_TRIES`] tries.
    // Committed, tested fixture; a broken one is a build defect.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let mut padded = super::PIN.to_vec();
        padded.resize(8, 0xFF);
        Self {
            pin: Secret::new(&padded, super::PIN_TRIES),
            key: RsaPrivateKey::from_pkcs8_der(super::AUTH_KEY).expect("CNS test key"),
            verified: false,
            se_restored: false,
            key_set: false,
        }
    }

    /// Tries left (0 = blocked).
    pub fn pin_tries_left(&self) -> u8 {
        self.pin.tries_left()
    }

    /// A reset: the PIN is no longer verified, the security environment is gone.
    pub(crate) fn power_cycle(&mut self) {
        self.verified = false;
        self.se_restored = false;
        self.key_set = false;
    }

    pub(crate) fn command(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        match cmd.ins {
            0x20 => self.verify(cmd),
            0x22 => self.mse(cmd),
            0x2A => self.pso(cmd),
            _ => Err(sw::WRONG_P1P2),
        }
    }

    fn verify(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.p2 != PIN_REF {
            return Err(sw::REF_NOT_FOUND);
        }
        if cmd.data.is_empty() {
            // The count, no try spent.
            return Ok((
                Vec::new(),
                if self.verified {
                    sw::OK
                } else {
                    self.pin.status()
                },
            ));
        }
        if cmd.data.len() != 8 {
            return Err(sw::WRONG_LENGTH);
        }
        let sw = self.pin.verify(&cmd.data);
        self.verified = sw == sw::OK;
        Ok((Vec::new(), sw))
    }

    fn mse(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        match (cmd.p1, cmd.p2) {
            // RESTORE: no data (the spec's trailing zero byte arrives as Le).
            (0xF3, se) => {
                if !cmd.data.is_empty() {
                    return Err(sw::WRONG_LENGTH);
                }
                if se != SE {
                    return Err(sw::REF_NOT_FOUND);
                }
                self.se_restored = true;
                self.key_set = false;
            }
            (0xF1, 0xB6) => {
                if cmd.data != [0x83, 0x01, KEY_REF] {
                    return Err(sw::REF_NOT_FOUND);
                }
                if !self.se_restored {
                    return Err(sw::CONDITIONS_NOT_SATISFIED);
                }
                self.key_set = true;
            }
            _ => return Err(sw::WRONG_P1P2),
        }
        Ok((Vec::new(), sw::OK))
    }

    /// Raw RSA on a modulus-length block below the modulus.
    fn pso(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        if (cmd.p1, cmd.p2) != (0x9E, 0x9A) {
            return Err(sw::WRONG_P1P2);
        }
        if !self.verified {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        if !self.key_set {
            return Err(sw::CONDITIONS_NOT_SATISFIED);
        }
        let k = self.key.size();
        if cmd.data.len() != k {
            return Err(sw::WRONG_LENGTH);
        }
        let n = self.key.n().to_bytes_be();
        if cmd.data.as_slice() >= n.as_slice() {
            return Err(sw::WRONG_DATA);
        }
        let out = raw_private(&self.key, &cmd.data);
        Ok((out, sw::OK))
    }
}
