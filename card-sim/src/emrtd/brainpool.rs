//! brainpoolP256r1 (RFC 5639 §3.4) in plain affine arithmetic over `BigUint`, for PACE
//! parameterId 13. Not constant time: test chip only. (RustCrypto's `bp256` arithmetic
//! lives in the elliptic-curve 0.14 generation; card-sim stays on 0.13 with `p256`.)

use num_bigint_dig::{BigUint, ModInverse};
use rand_core::RngCore;

use crate::ias::dh::{fixed, hex};

/// A point; `None` is the point at infinity.
pub(crate) type Point = Option<(BigUint, BigUint)>;

/// The curve's constants.
pub(crate) struct Curve {
    p: BigUint,
    a: BigUint,
    b: BigUint,
    /// Order of the base point.
    pub n: BigUint,
    g: (BigUint, BigUint),
}

impl Curve {
    pub(crate) fn p256r1() -> Self {
        let n = |s: &str| BigUint::from_bytes_be(&hex(s));
        Self {
            p: n("A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377"),
            a: n("7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9"),
            b: n("26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6"),
            n: n("A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7"),
            g: (
                n("8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262"),
                n("547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997"),
            ),
        }
    }

    pub(crate) fn generator(&self) -> Point {
        Some(self.g.clone())
    }

    fn sub(&self, x: &BigUint, y: &BigUint) -> BigUint {
        ((x + &self.p) - (y % &self.p)) % &self.p
    }

    fn inv(&self, x: &BigUint) -> Option<BigUint> {
        x.mod_inverse(&self.p)?.to_biguint()
    }

    pub(crate) fn add(&self, p1: &Point, p2: &Point) -> Point {
        let (Some((x1, y1)), Some((x2, y2))) = (p1, p2) else {
            return p1.clone().or_else(|| p2.clone());
        };
        let lambda = if x1 == x2 {
            if (y1 + y2) % &self.p == BigUint::from(0u8) {
                return None;
            }
            let num = (BigUint::from(3u8) * x1 * x1 + &self.a) % &self.p;
            num * self.inv(&((BigUint::from(2u8) * y1) % &self.p))? % &self.p
        } else {
            self.sub(y2, y1) * self.inv(&self.sub(x2, x1))? % &self.p
        };
        let x3 = self.sub(&self.sub(&(&lambda * &lambda), x1), x2);
        let y3 = self.sub(&(lambda * self.sub(x1, &x3)), y1);
        Some((x3, y3))
    }

    pub(crate) fn mul(&self, k: &BigUint, p: &Point) -> Point {
        let mut acc: Point = None;
        for i in (0..k.bits()).rev() {
            acc = self.add(&acc, &acc);
            if (k >> i) & BigUint::from(1u8) == BigUint::from(1u8) {
                acc = self.add(&acc, p);
            }
        }
        acc
    }

    /// `04 ‖ X ‖ Y` on the curve (not infinity); `None` otherwise.
    pub(crate) fn decode(&self, b: &[u8]) -> Option<Point> {
        if b.len() != 65 || b[0] != 0x04 {
            return None;
        }
        let x = BigUint::from_bytes_be(&b[1..33]);
        let y = BigUint::from_bytes_be(&b[33..]);
        if x >= self.p || y >= self.p {
            return None;
        }
        let lhs = &y * &y % &self.p;
        let rhs = (&x * &x * &x + &self.a * &x + &self.b) % &self.p;
        (lhs == rhs).then_some(Some((x, y)))
    }

    /// `04 ‖ X ‖ Y`, 65 bytes (infinity encodes as `00`).
    pub(crate) fn encode(&self, p: &Point) -> Vec<u8> {
        match p {
            Some((x, y)) => [vec![0x04], fixed(x, 32), fixed(y, 32)].concat(),
            None => vec![0x00],
        }
    }

    /// A secret in [1, n-1] from 32 random bytes (reduced mod n).
    pub(crate) fn secret(&self, rng: &mut dyn RngCore) -> BigUint {
        loop {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            let k = BigUint::from_bytes_be(&b) % &self.n;
            if k != BigUint::from(0u8) {
                return k;
            }
        }
    }
}
