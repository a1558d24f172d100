//! Card-side secure messaging of the IAS application (cie.md §3.3): two-key 3DES-CBC with
//! IV 0, ISO 9797-1 MAC algorithm 3 ("retail MAC"), an 8-byte send sequence counter, data
//! objects `87`/`85` (cryptogram), `97` (Le), `99` (status) and `8E` (MAC).
//!
//! Written for the card only: it unwraps commands and wraps responses. It shares nothing
//! with the core's terminal-side implementation.

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ber;
use crate::command::Command;

/// SM status words.
pub(crate) mod sw {
    /// Expected SM data objects missing.
    pub const SM_MISSING: u16 = 0x6987;
    /// SM data objects incorrect (bad MAC, bad padding, malformed objects).
    pub const SM_INCORRECT: u16 = 0x6988;
}

/// An established SM session: session keys and the send sequence counter.
pub(crate) struct SmSession {
    k_enc: [u8; 16],
    k_mac: [u8; 16],
    ssc: [u8; 8],
}

impl std::fmt::Debug for SmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmSession")
            .field("ssc", &self.ssc)
            .finish_non_exhaustive()
    }
}

impl SmSession {
    /// Keys from the DH secret: `K_enc = SHA-256(secret ‖ 00000001)[..16]`,
    /// `K_mac = SHA-256(secret ‖ 00000002)[..16]`; SSC = 1.
    pub(crate) fn from_secret(secret: &[u8]) -> Self {
        let derive = |counter: u8| {
            let mut h = Sha256::new();
            h.update(secret);
            h.update([0, 0, 0, counter]);
            let d = h.finalize();
            let mut k = [0u8; 16];
            k.copy_from_slice(&d[..16]);
            k
        };
        Self {
            k_enc: derive(1),
            k_mac: derive(2),
            ssc: [0, 0, 0, 0, 0, 0, 0, 1],
        }
    }

    /// Restart the counter (after DAPP: `RND.ICC[4..8] ‖ RND.IFD[4..8]`); keys stay.
    pub(crate) fn reseed(&mut self, ssc: [u8; 8]) {
        self.ssc = ssc;
    }

    fn step(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }

    /// Check and decrypt one protected command (CLA with `0x0C`): increments the SSC,
    /// verifies `8E`, decrypts `87`/`85`, takes Le from `97`. Returns the plain command
    /// (CLA without the SM bits, chaining bit kept).
    pub(crate) fn unwrap_command(&mut self, cmd: &Command) -> Result<Command, u16> {
        self.step();
        let tlvs = ber::parse_all(&cmd.data).ok_or(sw::SM_INCORRECT)?;
        let (last, body) = tlvs.split_last().ok_or(sw::SM_MISSING)?;
        if last.tag != [0x8E] {
            return Err(sw::SM_MISSING);
        }
        if last.value.len() != 8 {
            return Err(sw::SM_INCORRECT);
        }
        // The MAC covers everything before the 8E object.
        let covered = &cmd.data[..cmd.data.len() - 10];
        let mut input = self.ssc.to_vec();
        input.extend_from_slice(&[cmd.cla, cmd.ins, cmd.p1, cmd.p2]);
        pad(&mut input);
        input.extend_from_slice(covered);
        pad(&mut input);
        let mac = retail_mac(&self.k_mac, &input);
        if !bool::from(mac.ct_eq(last.value)) {
            return Err(sw::SM_INCORRECT);
        }
        let mut data = Vec::new();
        let mut le = None;
        let mut seen_crypto = false;
        for t in body {
            match t.tag {
                [0x87] | [0x85] if !seen_crypto => {
                    seen_crypto = true;
                    let c = if t.tag == [0x87] {
                        match t.value.split_first() {
                            Some((0x01, c)) => c,
                            _ => return Err(sw::SM_INCORRECT),
                        }
                    } else {
                        t.value
                    };
                    if c.is_empty() || !c.len().is_multiple_of(8) {
                        return Err(sw::SM_INCORRECT);
                    }
                    let mut plain = tdes_cbc(&self.k_enc, c, false);
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

    /// Protect a response: increments the SSC, returns the data field
    /// `[87 01‖C | 85 C] 99 02 SW 8E 08 MAC`. `odd_ins` selects `85` over `87`.
    pub(crate) fn wrap_response(&mut self, odd_ins: bool, data: &[u8], status: u16) -> Vec<u8> {
        self.step();
        let mut out = Vec::new();
        if !data.is_empty() {
            let mut padded = data.to_vec();
            pad(&mut padded);
            let c = tdes_cbc(&self.k_enc, &padded, true);
            if odd_ins {
                out.extend(ber::tlv(&[0x85], &c));
            } else {
                let mut v = vec![0x01];
                v.extend_from_slice(&c);
                out.extend(ber::tlv(&[0x87], &v));
            }
        }
        out.extend(ber::tlv(&[0x99], &status.to_be_bytes()));
        let mut input = self.ssc.to_vec();
        input.extend_from_slice(&out);
        pad(&mut input);
        let mac = retail_mac(&self.k_mac, &input);
        out.extend(ber::tlv(&[0x8E], &mac));
        out
    }
}

/// ISO/IEC 7816-4 padding: `80` then zeros to a multiple of 8 (always adds a byte).
pub(crate) fn pad(v: &mut Vec<u8>) {
    v.push(0x80);
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

/// Remove ISO padding; `None` if absent.
pub(crate) fn unpad(v: &mut Vec<u8>) -> Option<()> {
    let pos = v.iter().rposition(|b| *b != 0)?;
    if v[pos] != 0x80 {
        return None;
    }
    v.truncate(pos);
    Some(())
}

/// Two-key 3DES-CBC with IV 0 over whole blocks.
pub(crate) fn tdes_cbc(key: &[u8; 16], input: &[u8], encrypt: bool) -> Vec<u8> {
    let cipher = TdesEde2::new(GenericArray::from_slice(key));
    let mut prev = [0u8; 8];
    let mut out = Vec::with_capacity(input.len());
    for block in input.chunks_exact(8) {
        let mut b = GenericArray::clone_from_slice(block);
        if encrypt {
            for (x, p) in b.iter_mut().zip(prev) {
                *x ^= p;
            }
            cipher.encrypt_block(&mut b);
            prev.copy_from_slice(&b);
        } else {
            cipher.decrypt_block(&mut b);
            for (x, p) in b.iter_mut().zip(prev) {
                *x ^= p;
            }
            prev.copy_from_slice(block);
        }
        out.extend_from_slice(&b);
    }
    out
}

/// ISO 9797-1 MAC algorithm 3 with DES: CBC with K1 over every block, then decrypt the last
/// block with K2 and encrypt it with K1. `input` must already be padded.
pub(crate) fn retail_mac(key: &[u8; 16], input: &[u8]) -> [u8; 8] {
    let k1 = Des::new(GenericArray::from_slice(&key[..8]));
    let k2 = Des::new(GenericArray::from_slice(&key[8..]));
    let mut h = GenericArray::clone_from_slice(&[0u8; 8]);
    for block in input.chunks_exact(8) {
        for (x, b) in h.iter_mut().zip(block) {
            *x ^= b;
        }
        k1.encrypt_block(&mut h);
    }
    k2.decrypt_block(&mut h);
    k1.encrypt_block(&mut h);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ias::dh::hex;

    #[test]
    fn vectors_from_research() {
        // cie.md §3.3 test vectors (recomputed there, equal to the A8 repository's tests).
        let mut key = [0u8; 16];
        key.copy_from_slice(&hex("2288AABBCCDDEEFF00AABBCCDDEEFF00"));
        let data = hex("0A141E28323C4650");
        assert_eq!(retail_mac(&key, &data).to_vec(), hex("f75023acd9265635"));
        let three = [data.clone(), data.clone(), data.clone()].concat();
        assert_eq!(
            tdes_cbc(&key, &three, true),
            hex("f75023acd9265635ce017b5b2476c3f88e452d7b4a433f3d")
        );
        assert_eq!(tdes_cbc(&key, &tdes_cbc(&key, &three, true), false), three);
    }

    #[test]
    fn padding() {
        let mut v = vec![1, 2, 3];
        pad(&mut v);
        assert_eq!(v, vec![1, 2, 3, 0x80, 0, 0, 0, 0]);
        unpad(&mut v).expect("padded");
        assert_eq!(v, vec![1, 2, 3]);
        let mut bad = vec![1, 2, 0];
        assert!(unpad(&mut bad).is_none());
    }
}
