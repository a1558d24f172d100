//! Response verification (ICAO 9303-11 §9.8.5, cie.md §3.3).
//!
//! ```text
//! [87 L 01‖C | 85 L C]  99 02 SW1 SW2  8E 08 MAC   SW1' SW2'
//! MAC = MAC(K_mac, pad(SSC ‖ every data object before DO8E, as received))
//! ```
//! Order of work: frame the data objects, check the MAC in constant time, and only then
//! read the status, decrypt and strip the padding. A response with no data at all and a
//! non-`9000` SW is the card answering in clear (SM errors `6987`/`6988`, or `6982` and
//! the like): it is returned as it is.

use super::cipher::{MAC_LEN, pad_in_place, unpad};
use super::{SmCipher, SmError, Ssc};
use crate::apdu::{Response, Sw};
use crate::tlv::{Reader, Tag, Tlv};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const TAG_DO85: Tag = Tag::new(0x85);
const TAG_DO87: Tag = Tag::new(0x87);
const TAG_DO99: Tag = Tag::new(0x99);
const TAG_DO8E: Tag = Tag::new(0x8E);

/// The data objects of a protected response, framed but not yet trusted.
struct Framed<'a> {
    /// `DO85` or `DO87`, with its tag.
    cryptogram: Option<Tlv<'a>>,
    status: Option<&'a [u8]>,
    mac: &'a [u8],
    /// Every byte before `DO8E`: what the MAC covers.
    authenticated: &'a [u8],
}

fn frame(data: &[u8]) -> Result<Framed<'_>, SmError> {
    let mut r = Reader::new(data);
    let mut cryptogram: Option<Tlv<'_>> = None;
    let mut status = None;
    while !r.is_empty() {
        let start = r.position();
        let obj = r.read_tlv()?;
        match obj.tag {
            TAG_DO85 | TAG_DO87 => {
                if cryptogram.is_some() {
                    return Err(SmError::DuplicateObject(obj.tag));
                }
                cryptogram = Some(obj);
            }
            TAG_DO99 => {
                if status.is_some() {
                    return Err(SmError::DuplicateObject(obj.tag));
                }
                status = Some(obj.value);
            }
            TAG_DO8E => {
                // The MAC closes the response: nothing may follow it.
                r.expect_empty("DO8E")?;
                if obj.value.len() != MAC_LEN {
                    return Err(SmError::BadObjectLength("DO8E"));
                }
                return Ok(Framed {
                    cryptogram,
                    status,
                    mac: obj.value,
                    authenticated: &data[..start],
                });
            }
            other => return Err(SmError::UnexpectedObject(other)),
        }
    }
    Err(SmError::MissingObject("DO8E"))
}

/// Verify and decrypt a protected response: increment `ssc`, check the MAC, then return the
/// plaintext data and the status word from `DO99`. A clear error status (no data, SW not
/// `9000`) is returned unchanged.
pub fn unwrap(cipher: &dyn SmCipher, ssc: &mut Ssc, resp: Response) -> Result<Response, SmError> {
    if ssc.len() != cipher.ssc_len() {
        return Err(SmError::SscLength {
            expected: cipher.ssc_len(),
            got: ssc.len(),
        });
    }
    ssc.increment()?;
    if resp.data.is_empty() {
        if resp.sw.is_success() {
            // A bare 9000 is exactly what stripping SM would leave: never accept it.
            return Err(SmError::MissingObject("DO8E"));
        }
        return Ok(resp);
    }
    let framed = frame(&resp.data)?;

    let block = cipher.block_size();
    let mut mac_input = Vec::with_capacity(block + framed.authenticated.len() + block);
    mac_input.extend_from_slice(ssc.as_bytes());
    mac_input.extend_from_slice(framed.authenticated);
    pad_in_place(&mut mac_input, block);
    let expected = cipher.mac(&mac_input);
    if !bool::from(expected.ct_eq(framed.mac)) {
        return Err(SmError::MacMismatch);
    }

    // Authenticated from here on.
    let status = framed.status.ok_or(SmError::MissingObject("DO99"))?;
    let &[sw1, sw2] = status else {
        return Err(SmError::BadObjectLength("DO99"));
    };
    let sw = Sw::from_bytes(sw1, sw2);
    let data = match framed.cryptogram {
        None => Vec::new(),
        Some(obj) => {
            let crypt = if obj.tag == TAG_DO87 {
                match obj.value.split_first() {
                    Some((0x01, rest)) => rest,
                    Some(_) => return Err(SmError::BadPadding),
                    None => return Err(SmError::BadObjectLength("DO87")),
                }
            } else {
                obj.value
            };
            if crypt.is_empty() || !crypt.len().is_multiple_of(block) {
                return Err(SmError::BadObjectLength(if obj.tag == TAG_DO87 {
                    "DO87"
                } else {
                    "DO85"
                }));
            }
            let mut plain = Zeroizing::new(crypt.to_vec());
            cipher.decrypt(ssc, &mut plain)?;
            unpad(&plain, block)?.to_vec()
        }
    };
    Ok(Response { data, sw })
}
