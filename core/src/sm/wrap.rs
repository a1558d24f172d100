//! Command protection (ICAO 9303-11 §9.8.4, IAS-ECC §8.6, cie.md §3.3).
//!
//! ```text
//! CLA|0C INS P1 P2 Lc  [87 L 01‖E(pad(data)) | 85 L E(pad(data))]  [97 L Le]  8E 08 MAC  Le'
//! MAC = MAC(K_mac, pad(SSC ‖ pad(CLA|0C INS P1 P2) ‖ DO87|DO85 ‖ DO97))
//! ```
//! `DO87` (with the `01` padding-content indicator) protects data of an even INS, `DO85`
//! (no indicator) data of an odd INS such as `B1`. The protected APDU always expects a
//! response (it carries at least `DO99` and `DO8E`): Le' is `00`, or `0000` when the
//! protected APDU needs the extended form.

use super::cipher::{MAC_LEN, pad, pad_in_place};
use super::{SmCipher, SmError, Ssc};
use crate::apdu::{Command, EXTENDED_MAX_DATA, EXTENDED_MAX_LE, SHORT_MAX_DATA, SHORT_MAX_LE};
use crate::tlv::{self, Tag};
use zeroize::Zeroizing;

/// Class-byte bits saying "SM, command header authenticated" (ISO 7816-4 §5.4.1).
pub const CLA_SM: u8 = 0x0C;
/// Size of `8E 08 <MAC>`.
pub(super) const DO8E_LEN: usize = 2 + MAC_LEN;
/// Size of `99 02 SW1 SW2`.
pub(super) const DO99_LEN: usize = 4;

/// Encoded size of a BER length field for `len`.
pub(super) fn length_field_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    }
}

/// Size of the `DO87` that carries `plain` bytes (tag, length, indicator, padded cryptogram).
pub fn do87_len(plain: usize, block: usize) -> usize {
    let value = (plain / block + 1) * block + 1;
    1 + length_field_len(value) + value
}

/// The largest plaintext whose `DO87` fits in `budget` bytes, or 0 if none does.
pub(super) fn max_plain_in(budget: usize, block: usize) -> usize {
    let mut padded = budget / block * block;
    while padded >= block {
        if do87_len(padded - 1, block) <= budget {
            return padded - 1;
        }
        padded -= block;
    }
    0
}

/// The largest Ne whose protected response still fits one short response (256 bytes):
/// `DO87 ‖ DO99 ‖ DO8E`. 231 (`E7`) for 3DES, 223 (`DF`) for AES.
pub fn max_short_response(block: usize) -> usize {
    max_plain_in(SHORT_MAX_LE - DO99_LEN - DO8E_LEN, block)
}

/// Check what [`wrap`] will need before any SSC is spent.
pub(super) fn validate(cmd: &Command) -> Result<(), SmError> {
    if cmd.data.len() > EXTENDED_MAX_DATA {
        return Err(SmError::BadCommand("command data over 65535 bytes"));
    }
    if let Some(ne) = cmd.le
        && (ne == 0 || ne > EXTENDED_MAX_LE)
    {
        return Err(SmError::BadCommand("Le outside 1..=65536"));
    }
    Ok(())
}

/// Protect `cmd`: increment `ssc`, encrypt the data, add `DO97` and the MAC. The result's
/// Le is 256 (short `00`) or 65536 (extended `0000`); it is extended when the protected data
/// exceeds 255 bytes, Ne exceeds 256, or (`extended_ok`) the protected answer for Ne would not
/// fit a short response.
pub fn wrap(
    cipher: &dyn SmCipher,
    ssc: &mut Ssc,
    cmd: &Command,
    extended_ok: bool,
) -> Result<Command, SmError> {
    validate(cmd)?;
    if ssc.len() != cipher.ssc_len() {
        return Err(SmError::SscLength {
            expected: cipher.ssc_len(),
            got: ssc.len(),
        });
    }
    ssc.increment()?;
    let block = cipher.block_size();
    let cla = cmd.cla | CLA_SM;
    let mut dos = Vec::with_capacity(cmd.data.len() + 32);
    if !cmd.data.is_empty() {
        let mut crypt = Zeroizing::new(pad(&cmd.data, block));
        cipher.encrypt(ssc, &mut crypt)?;
        if cmd.ins & 1 == 1 {
            tlv::encode(Tag::new(0x85), &crypt, &mut dos);
        } else {
            let mut value = Vec::with_capacity(crypt.len() + 1);
            value.push(0x01);
            value.extend_from_slice(&crypt);
            tlv::encode(Tag::new(0x87), &value, &mut dos);
        }
    }
    if let Some(ne) = cmd.le {
        if ne <= SHORT_MAX_LE {
            tlv::encode(Tag::new(0x97), &[(ne % SHORT_MAX_LE) as u8], &mut dos);
        } else {
            let le = ((ne % EXTENDED_MAX_LE) as u16).to_be_bytes();
            tlv::encode(Tag::new(0x97), &le, &mut dos);
        }
    }
    let mut mac_input = Vec::with_capacity(2 * block + dos.len() + block);
    mac_input.extend_from_slice(ssc.as_bytes());
    mac_input.extend_from_slice(&[cla, cmd.ins, cmd.p1, cmd.p2]);
    pad_in_place(&mut mac_input, block);
    mac_input.extend_from_slice(&dos);
    pad_in_place(&mut mac_input, block);
    let mac = cipher.mac(&mac_input);
    tlv::encode(Tag::new(0x8E), &mac, &mut dos);

    let ne = cmd.le.unwrap_or(0);
    let extended = dos.len() > SHORT_MAX_DATA
        || ne > SHORT_MAX_LE
        || (extended_ok && ne > max_short_response(block));
    let le = if extended {
        EXTENDED_MAX_LE
    } else {
        SHORT_MAX_LE
    };
    Ok(Command::new(cla, cmd.ins, cmd.p1, cmd.p2)
        .with_data(dos)
        .with_le(le))
}
