//! The IAS key agreement (cie.md §3.2 steps 5-8): Diffie-Hellman in a group the card
//! publishes, with values found by tag, never by position (the 2023 chips reorder them).

use super::IasError;
use super::bigint::{less_than, modexp, strip};
use crate::apdu::{ApduChannel, Command};
use crate::tlv::Tag;
use zeroize::Zeroizing;

/// GET DATA instruction, P1-P2 `3FFF` (IAS ECC §9.5.3).
pub(crate) fn get_data(data: &[u8]) -> Command {
    Command::new(0x00, 0xCB, 0x3F, 0xFF)
        .with_data(data)
        .with_le(256)
}

/// The DH domain parameters the card publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhGroup {
    /// Generator.
    pub g: Vec<u8>,
    /// Prime modulus.
    pub p: Vec<u8>,
    /// Order of the subgroup.
    pub q: Vec<u8>,
}

/// Read g, p and q with three GET DATA requests, the form every vendor accepts (cie.md §2.3:
/// Gemalto also answers the single request; the three requests are the safe choice).
pub async fn read_group<C: ApduChannel + ?Sized>(ch: &C) -> Result<DhGroup, IasError> {
    let mut parts = Vec::with_capacity(3);
    for tag in [0x97u8, 0x98, 0x99] {
        let req = [
            0x4D, 0x0A, 0x70, 0x08, 0xBF, 0xA1, 0x01, 0x04, 0xA3, 0x02, tag, 0x00,
        ];
        let data = ch.transmit(&get_data(&req)).await?.into_data(0xCB)?;
        let obj = crate::tlv::find_deep(&data, Tag::new(u32::from(tag)))?
            .ok_or_else(|| IasError::malformed("DH parameters", format!("no {tag:02X} object")))?;
        // Kept as the card sent them: the DAPP signatures hash these exact bytes.
        parts.push(obj.value.to_vec());
    }
    let q = parts.pop().unwrap_or_default();
    let p = parts.pop().unwrap_or_default();
    let g = parts.pop().unwrap_or_default();
    DhGroup::new(g, p, q)
}

impl DhGroup {
    /// Check the group is usable: odd 2048-bit-class prime modulus, 1 < g < p, q < p.
    pub fn new(g: Vec<u8>, p: Vec<u8>, q: Vec<u8>) -> Result<Self, IasError> {
        let bad = |why: &str| IasError::malformed("DH parameters", why);
        if p.len() < 128 || p.last().is_none_or(|b| b & 1 == 0) {
            return Err(bad("modulus too short or even"));
        }
        if !less_than(&[1], &g) || !less_than(&g, &p) {
            return Err(bad("generator out of range"));
        }
        if q.len() < 20 || !less_than(&q, &p) {
            return Err(bad("order out of range"));
        }
        Ok(Self { g, p, q })
    }

    /// `g^x mod p`, |p| bytes.
    pub fn public_value(&self, x: &[u8]) -> Result<Vec<u8>, IasError> {
        modexp(&self.g, x, &self.p)
    }

    /// A private exponent in `[2, q-2]` from `random` bytes (as long as q), by rejection:
    /// returns `None` when the candidate falls outside and the caller must draw again.
    pub fn exponent_from(&self, random: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if random.len() != self.q.len() {
            return None;
        }
        let x = strip(random);
        let q_minus_1 = sub_small(&self.q, 1)?;
        (less_than(&[1], x) && less_than(x, &q_minus_1)).then(|| Zeroizing::new(random.to_vec()))
    }

    /// The shared secret `PuK.ICC^x mod p`, |p| bytes with leading zeros kept, after
    /// checking `1 < PuK.ICC < p-1` (a card, or someone on the link, sending 0, 1 or p-1
    /// would force a known secret).
    pub fn shared_secret(
        &self,
        card_public: &[u8],
        x: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IasError> {
        let p_minus_1 =
            sub_small(&self.p, 1).ok_or_else(|| IasError::malformed("DH parameters", "p"))?;
        if !less_than(&[1], card_public) || !less_than(card_public, &p_minus_1) {
            return Err(IasError::malformed("card DH value", "out of range"));
        }
        Ok(Zeroizing::new(modexp(card_public, x, &self.p)?))
    }
}

/// `v - k` for a small k; `None` if it would go negative.
fn sub_small(v: &[u8], k: u8) -> Option<Vec<u8>> {
    let mut out = v.to_vec();
    let mut borrow = u16::from(k);
    for b in out.iter_mut().rev() {
        if borrow == 0 {
            break;
        }
        let cur = u16::from(*b);
        if cur >= borrow {
            *b = (cur - borrow) as u8;
            borrow = 0;
        } else {
            *b = (cur + 256 - borrow) as u8;
            borrow = 1;
        }
    }
    (borrow == 0).then_some(out)
}

/// The ext-auth CA public key the card publishes, with the names the CV certificate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaKey {
    /// Modulus.
    pub modulus: Vec<u8>,
    /// Public exponent.
    pub exponent: Vec<u8>,
    /// CA reference (CHR without its first 4 bytes), 8 bytes.
    pub car: Vec<u8>,
    /// CA application identifier (first 6 bytes of CHA).
    pub aid: Vec<u8>,
}

/// Read the CA key template `70{BFA004{7F49{81, 82, 5F20, 5F4C}}}` (cie.md §3.2 step 7),
/// each child found by tag.
pub async fn read_ca_key<C: ApduChannel + ?Sized>(ch: &C) -> Result<CaKey, IasError> {
    let req = [
        0x4D, 0x09, 0x70, 0x07, 0xBF, 0xA0, 0x04, 0x03, 0x7F, 0x49, 0x80,
    ];
    let data = ch.transmit(&get_data(&req)).await?.into_data(0xCB)?;
    CaKey::parse(&data)
}

impl CaKey {
    /// Parse the GET DATA answer.
    pub fn parse(data: &[u8]) -> Result<Self, IasError> {
        let tpl = crate::tlv::find_deep(data, Tag::new(0x7F49))?
            .ok_or_else(|| IasError::malformed("CA key", "no 7F49"))?;
        let get = |tag: u32, what: &'static str| -> Result<Vec<u8>, IasError> {
            Ok(tpl
                .find(Tag::new(tag))?
                .ok_or_else(|| IasError::malformed("CA key", format!("no {what}")))?
                .value
                .to_vec())
        };
        let chr = get(0x5F20, "CHR")?;
        let cha = get(0x5F4C, "CHA")?;
        if chr.len() != 12 || cha.len() < 6 {
            return Err(IasError::malformed(
                "CA key",
                "CHR/CHA of unexpected length",
            ));
        }
        Ok(Self {
            modulus: strip(&get(0x81, "modulus")?).to_vec(),
            exponent: strip(&get(0x82, "exponent")?).to_vec(),
            car: chr[4..].to_vec(),
            aid: cha[..6].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn ca_key_children_found_in_any_order() {
        let chr = "000000004954414C59303030"; // 12 bytes
        let cha = "A0000000003901";
        let modulus = "00".to_string() + &"C3".repeat(255) + "01";
        let kids = [
            format!("81 820100 {}", &modulus[2..]),
            "82 03 010001".to_string(),
            format!("5F20 0C {chr}"),
            format!("5F4C 07 {cha}"),
        ];
        for order in [[0, 1, 2, 3], [2, 3, 1, 0], [3, 0, 2, 1]] {
            let body: String = order
                .iter()
                .map(|&i| kids[i].clone())
                .collect::<Vec<_>>()
                .join("");
            let inner = crate::tlv::encode_to_vec(Tag::new(0x7F49), &h(&body));
            let mid = crate::tlv::encode_to_vec(Tag::new(0xBFA004), &inner);
            let outer = crate::tlv::encode_to_vec(Tag::new(0x70), &mid);
            let key = CaKey::parse(&outer).unwrap();
            assert_eq!(key.modulus.len(), 256);
            assert_eq!(key.exponent, vec![1, 0, 1]);
            assert_eq!(key.car, h("4954414C59303030"));
            assert_eq!(key.aid, h("A00000000039"));
        }
    }

    #[test]
    fn exponent_and_public_checks() {
        // A toy group: p = 1019 (0x03FB), q = 509, g = 4.
        let group = DhGroup {
            g: vec![4],
            p: vec![0x03, 0xFB],
            q: vec![0x01, 0xFD],
        };
        assert!(
            group.exponent_from(&[0x00, 0x01]).is_none(),
            "x = 1 rejected"
        );
        assert!(
            group.exponent_from(&[0x01, 0xFC]).is_none(),
            "x = q-1 rejected"
        );
        assert!(
            group.exponent_from(&[0x01, 0xFB]).is_some(),
            "x = q-2 accepted"
        );
        let xa = group.exponent_from(&[0x00, 0x77]).unwrap();
        let xb = group.exponent_from(&[0x01, 0x23]).unwrap();
        let (ya, yb) = (
            group.public_value(&xa).unwrap(),
            group.public_value(&xb).unwrap(),
        );
        assert_eq!(
            *group.shared_secret(&yb, &xa).unwrap(),
            *group.shared_secret(&ya, &xb).unwrap()
        );
        for bad in [vec![0], vec![1], vec![0x03, 0xFA], vec![0x03, 0xFB]] {
            assert!(group.shared_secret(&bad, &xa).is_err());
        }
    }
}
