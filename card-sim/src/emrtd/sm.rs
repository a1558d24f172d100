//! eMRTD secure messaging, chip side (9303-11 §9.8): unwrap protected commands, wrap
//! responses. 3DES (IV 0, retail MAC, 8-byte SSC) or AES-128 (IV = E(KSenc, SSC), CMAC,
//! 16-byte SSC). The SSC is incremented before checking each command and again before
//! protecting its response.

use subtle::ConstantTimeEq;

use super::crypto::{Cipher, aes_block, cbc, mac, pad, unpad};
use crate::ber;
use crate::command::Command;

/// SM status words (answered in clear; the session ends).
pub(crate) mod sw {
    /// Expected SM data objects missing.
    pub const SM_MISSING: u16 = 0x6987;
    /// SM data objects incorrect (bad MAC, bad padding, malformed objects).
    pub const SM_INCORRECT: u16 = 0x6988;
}

/// Session keys and counter.
pub(crate) struct SmSession {
    cipher: Cipher,
    k_enc: [u8; 16],
    k_mac: [u8; 16],
    ssc: Vec<u8>,
}

impl std::fmt::Debug for SmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmSession")
            .field("cipher", &self.cipher)
            .field("ssc", &self.ssc)
            .finish_non_exhaustive()
    }
}

impl SmSession {
    /// A session with explicit keys and initial SSC (BAC: from the challenges; PACE, CA: 0).
    pub(crate) fn new(cipher: Cipher, k_enc: [u8; 16], k_mac: [u8; 16], ssc: Vec<u8>) -> Self {
        Self {
            cipher,
            k_enc,
            k_mac,
            ssc,
        }
    }

    /// Keys derived from a shared secret with `KDF(K, 1)` / `KDF(K, 2)`, SSC 0.
    pub(crate) fn from_secret(cipher: Cipher, secret: &[u8]) -> Self {
        Self::new(
            cipher,
            super::crypto::kdf(secret, 1, cipher),
            super::crypto::kdf(secret, 2, cipher),
            vec![0; cipher.block()],
        )
    }

    pub(crate) fn cipher(&self) -> Cipher {
        self.cipher
    }

    fn step(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }

    fn iv(&self) -> Vec<u8> {
        match self.cipher {
            Cipher::Tdes => vec![0; 8],
            Cipher::Aes128 => aes_block(&self.k_enc, &self.ssc).to_vec(),
        }
    }

    /// Check and decrypt one protected command: DO`87` (even INS) or DO`85` (odd INS),
    /// DO`97`, DO`8E` last. Returns the plain command, CLA without the SM bits.
    pub(crate) fn unwrap_command(&mut self, cmd: &Command) -> Result<Command, u16> {
        self.step();
        let block = self.cipher.block();
        let tlvs = ber::parse_all(&cmd.data).ok_or(sw::SM_INCORRECT)?;
        let (last, body) = tlvs.split_last().ok_or(sw::SM_MISSING)?;
        if last.tag != [0x8E] {
            return Err(sw::SM_MISSING);
        }
        if last.value.len() != 8 {
            return Err(sw::SM_INCORRECT);
        }
        let covered = &cmd.data[..cmd.data.len() - 10];
        let mut input = self.ssc.clone();
        input.extend_from_slice(&[cmd.cla, cmd.ins, cmd.p1, cmd.p2]);
        pad(&mut input, block);
        input.extend_from_slice(covered);
        let expect = sm_mac(self.cipher, &self.k_mac, input);
        if !bool::from(expect.ct_eq(last.value)) {
            return Err(sw::SM_INCORRECT);
        }
        let mut data = Vec::new();
        let mut le = None;
        let mut seen_crypto = false;
        for t in body {
            match t.tag {
                [0x87] | [0x85] if !seen_crypto => {
                    seen_crypto = true;
                    // DO87 carries the padding-content indicator 01; DO85 (odd INS) does not.
                    let c = if t.tag == [0x87] {
                        match t.value.split_first() {
                            Some((0x01, c)) => c,
                            _ => return Err(sw::SM_INCORRECT),
                        }
                    } else {
                        t.value
                    };
                    if c.is_empty() || !c.len().is_multiple_of(block) {
                        return Err(sw::SM_INCORRECT);
                    }
                    let mut plain = cbc(self.cipher, &self.k_enc, &self.iv(), c, false);
                    unpad(&mut plain).ok_or(sw::SM_INCORRECT)?;
                    data = plain;
                }
                [0x97] => {
                    le = Some(match t.value {
                        [0] => 256,
                        [n] => usize::from(*n),
                        [0, 0] => 65536,
                        [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                        _ => return Err(sw::SM_INCORRECT),
                    });
                }
                _ => return Err(sw::SM_INCORRECT),
            }
        }
        Ok(Command {
            cla: cmd.cla & !0x0C,
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data,
            le,
            extended: cmd.extended,
        })
    }

    /// Protect a response: `[87 01‖C | 85 C] 99 02 SW 8E 08 MAC`.
    pub(crate) fn wrap_response(&mut self, odd_ins: bool, data: &[u8], status: u16) -> Vec<u8> {
        self.step();
        let mut out = Vec::new();
        if !data.is_empty() {
            let mut padded = data.to_vec();
            pad(&mut padded, self.cipher.block());
            let c = cbc(self.cipher, &self.k_enc, &self.iv(), &padded, true);
            if odd_ins {
                out.extend(ber::tlv(&[0x85], &c));
            } else {
                let mut v = vec![0x01];
                v.extend_from_slice(&c);
                out.extend(ber::tlv(&[0x87], &v));
            }
        }
        out.extend(ber::tlv(&[0x99], &status.to_be_bytes()));
        let mut input = self.ssc.clone();
        input.extend_from_slice(&out);
        let m = sm_mac(self.cipher, &self.k_mac, input);
        out.extend(ber::tlv(&[0x8E], &m));
        out
    }
}

/// The SM MAC: the input is always padded (method 2) first, for AES too (CMAC then sees
/// whole blocks), unlike the PACE token MAC.
fn sm_mac(cipher: Cipher, key: &[u8; 16], mut input: Vec<u8>) -> [u8; 8] {
    pad(&mut input, cipher.block());
    match cipher {
        Cipher::Tdes => crate::ias::sm::retail_mac(key, &input),
        Cipher::Aes128 => mac(cipher, key, &input),
    }
}
