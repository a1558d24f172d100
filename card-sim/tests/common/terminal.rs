//! A tiny IAS terminal for the tests: hand-built APDUs, its own SM, DH and DAPP. Not shared
//! with the core (the card must be checked by something other than its own code).
#![allow(dead_code, clippy::unwrap_used)]

use card_sim::VirtualCard;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};
use num_bigint_dig::BigUint;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use super::h;

/// Published DAPP (terminal) modulus, cie.md Appendix A.
pub const DAPP_N: &str = concat!(
    "ba2837ab4c6bb827577bff4eb7b1e49cdde0f16614d1ef24c1b75cf70fb12cd1",
    "8f4d14e2814ba4877ea800e175906076b562ba535973c5d8b378051d8afc7407",
    "a1d919529e03c106cda18d699afb0d8ab4fddd9dc719159a50de9468f02ab103",
    "e282a50e716ec23cda5bfc4a232b09a4b2c70745939549099b4483cbae62d009",
    "9674dbf6f39b7223a99d88e33f1a0cdedeebbdc35517abe9880aab240e1ea166",
    "283a274a9ad93b4b1d19f3679f3e8b5ff6a1e0ed736e84d5abe03c59e7346b42",
    "18755d75366cbf4136f0a26c3dc70a69abaaf66e13a1b2faad052ca6ec9c51e2",
    "aed14d16e090254dc3f64ea2bd8a836bba99defacba3a613aeedd93a9615273d",
);
/// Published DAPP private exponent.
pub const DAPP_D: &str = concat!(
    "4716c2a38ccc7a07b415eb1a6175f2aaa0e49ceaf1ba75cba09a684b04d81118",
    "79d3e2ccd8b94d3c5cf6c55753f0ed9587910b3c77258a01460fe84c2ede5764",
    "eebe9c37fb95cd69ceaf09f4b1357c276314ab43ec5b3cefb0403f868f688e2e",
    "c09a4973e987756f8da7a101a2ca75a54a8c4ccf9a1b6147e4de56423af70b20",
    "67179c5eeb646867863478d752c7f412db277541575aa0619d30bccc8d87e617",
    "0b33439a2c93f2d97e18c0a82343a6012a5bb1822808f01b5cfd85673ac0964c",
    "5f3cfd2daf8142359764a9adb9e3f76db613461c1bc913dc9ac0ab50d365f77c",
    "b93194c98aa966d89cdd555125a5e59ecf4fa3f0c3fd610cd3d056439338fd81",
);
/// Published CA private exponent (for the key the card returns with GET DATA 7F49).
pub const CA_D: &str = concat!(
    "186b31488c25dcf85d953d3630c0d073ba1c6aa24581ad254f3b6719c5d72cca",
    "3e5cdc5a1e5316578d75954ff73b237b532c9f8de4a2c4c911385a23e63e33e4",
    "7ee45e66efd49b18e02cff87598c39109e8f86a66bc330249ce3fcad655dcdbf",
    "98c9c5e479321af53b517d041061880a647bbe0ff813683470e6c50094ce81d0",
    "64e204e351bd3ae0a7947d8e91c3fd5c0a15233c349a5215a4e66e21c5d33498",
    "e71991ea24473b29f1475f6fd9be3996e19bd474fad1b41ea0dcd2fc16c9bffa",
    "071bfec1b22415184811c1985fbfe3e7b4f44a4b3c8dfab4d90cecfc5e608d67",
    "3e6762c62cb798341271149ba688162ec7d0e3468f65a94ab4ad1ab67e37bfc1",
);
pub const SN_IFD: [u8; 8] = [0x20, 0, 0, 0, 0, 0, 0, 1];
pub const IAS_AID: &str = "A0000000308000000009816001";
pub const CIE_AID: &str = "A00000000039";

pub fn int(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap()
}

pub fn fixed(n: &BigUint, len: usize) -> Vec<u8> {
    let b = n.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(b.len())];
    out.extend(b);
    out
}

pub fn pad(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    v.push(0x80);
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
    v
}

fn tdes(key: &[u8], data: &[u8], enc: bool) -> Vec<u8> {
    let c = TdesEde2::new(GenericArray::from_slice(key));
    let mut iv = [0u8; 8];
    let mut out = Vec::new();
    for b in data.chunks(8) {
        let mut x = GenericArray::clone_from_slice(b);
        if enc {
            x.iter_mut().zip(iv).for_each(|(a, b)| *a ^= b);
            c.encrypt_block(&mut x);
            iv.copy_from_slice(&x);
        } else {
            c.decrypt_block(&mut x);
            x.iter_mut().zip(iv).for_each(|(a, b)| *a ^= b);
            iv.copy_from_slice(b);
        }
        out.extend_from_slice(&x);
    }
    out
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k1 = Des::new(GenericArray::from_slice(&key[..8]));
    let k2 = Des::new(GenericArray::from_slice(&key[8..16]));
    let mut y = GenericArray::clone_from_slice(&[0u8; 8]);
    for b in data.chunks(8) {
        y.iter_mut().zip(b).for_each(|(a, b)| *a ^= b);
        k1.encrypt_block(&mut y);
    }
    k2.decrypt_block(&mut y);
    k1.encrypt_block(&mut y);
    y.to_vec()
}

/// `tag len value` for one-byte tags, BER lengths.
pub fn tlv(tag: &[u8], v: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match v.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(v);
    out
}

/// Walk BER-TLVs; returns (tag bytes, value) pairs at one level.
pub fn tlvs(mut b: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let mut t = 1;
        if b[0] & 0x1F == 0x1F {
            while b[t] & 0x80 != 0 {
                t += 1;
            }
            t += 1;
        }
        let (len, l) = match b[t] {
            n if n < 0x80 => (n as usize, 1),
            0x81 => (b[t + 1] as usize, 2),
            _ => (((b[t + 1] as usize) << 8) | b[t + 2] as usize, 3),
        };
        out.push((b[..t].to_vec(), b[t + l..t + l + len].to_vec()));
        b = &b[t + l + len..];
    }
    out
}

pub fn child(b: &[u8], tag: &[u8]) -> Vec<u8> {
    tlvs(b)
        .into_iter()
        .find(|(t, _)| t == tag)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("tag {tag:02X?} missing"))
}

/// Send in clear, following 61xx with GET RESPONSE.
pub fn clear(card: &VirtualCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let (mut data, mut sw) = super::split(card.process(apdu));
    while sw >> 8 == 0x61 {
        let (more, s) = super::split(card.process(&[0, 0xC0, 0, 0, sw as u8]));
        data.extend(more);
        sw = s;
    }
    (data, sw)
}

/// The terminal's view of an open IAS session.
pub struct Terminal<'a> {
    pub card: &'a VirtualCard,
    pub k_enc: Vec<u8>,
    pub k_mac: Vec<u8>,
    pub ssc: u64,
    pub g: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub puk_ifd: Vec<u8>,
    pub puk_icc: Vec<u8>,
    pub rng: ChaCha20Rng,
    /// Corrupt the MAC of the next protected command.
    pub tamper_next: bool,
}

impl<'a> Terminal<'a> {
    /// SELECT IAS (falling back to the MF on 6A82), SELECT CIE, DH, DAPP.
    pub fn open(card: &'a VirtualCard) -> Self {
        let (_, sw) = clear(card, &h(&format!("00A4040C0D{IAS_AID}")));
        if sw == 0x6A82 {
            assert_eq!(clear(card, &h("00A40000")).1, 0x9000);
        }
        assert_eq!(clear(card, &h(&format!("00A4040C06{CIE_AID}"))).1, 0x9000);
        let param = |t: &str| {
            let (r, sw) = clear(card, &h(&format!("00CB3FFF0C4D0A7008BFA10104A302{t}00")));
            assert_eq!(sw, 0x9000);
            let a3 = child(&child(&child(&r, &[0x70]), &[0xBF, 0xA1, 0x01]), &[0xA3]);
            tlvs(&a3).remove(0).1
        };
        let (g, p, q) = (param("97"), param("98"), param("99"));
        // The CA key, looked up by tag.
        let (r, sw) = clear(card, &h("00CB3FFF0B4D097007BFA004037F4980"));
        assert_eq!(sw, 0x9000);
        let key = child(
            &child(&child(&r, &[0x70]), &[0xBF, 0xA0, 0x04]),
            &[0x7F, 0x49],
        );
        let ca_n = child(&key, &[0x81]);
        let chr = child(&key, &[0x5F, 0x20]);
        let cha = child(&key, &[0x5F, 0x4C]);
        // DH.
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (pn, qn) = (BigUint::from_bytes_be(&p), BigUint::from_bytes_be(&q));
        let x = loop {
            let mut b = vec![0u8; q.len()];
            rng.fill_bytes(&mut b);
            let x = BigUint::from_bytes_be(&b);
            if x > BigUint::from(1u8) && x < qn {
                break x;
            }
        };
        let puk_ifd = fixed(&BigUint::from_bytes_be(&g).modpow(&x, &pn), p.len());
        let mut kat = h("80019B830181");
        kat.extend(tlv(&[0x91], &puk_ifd));
        let (first, rest) = kat.split_at(255);
        let mut a = h("102241A6FF");
        a.extend(first);
        assert_eq!(clear(card, &a).1, 0x9000);
        let mut a = h("002241A6");
        a.push(rest.len() as u8);
        a.extend(rest);
        assert_eq!(clear(card, &a).1, 0x9000);
        let (r, sw) = clear(card, &h("00CB3FFF064D04A6029100"));
        assert_eq!(sw, 0x9000);
        let puk_icc = child(&child(&r, &[0xA6]), &[0x91]);
        let secret = fixed(&BigUint::from_bytes_be(&puk_icc).modpow(&x, &pn), p.len());
        let kdf = |c: u8| Sha256::digest([&secret[..], &[0, 0, 0, c]].concat())[..16].to_vec();
        let mut t = Terminal {
            card,
            k_enc: kdf(1),
            k_mac: kdf(2),
            ssc: 1,
            g,
            p,
            q,
            puk_ifd,
            puk_icc,
            rng,
            tamper_next: false,
        };
        t.dapp(&ca_n, &chr, &cha);
        t
    }

    fn dapp(&mut self, ca_n: &[u8], ca_chr: &[u8], ca_cha: &[u8]) {
        let ca_car = &ca_chr[4..];
        let mut chr = vec![0u8; 4];
        chr.extend(SN_IFD);
        let mut body = vec![0x8A];
        body.extend(ca_car);
        body.extend(&chr);
        body.extend(&ca_cha[..6]);
        body.push(0x01);
        body.extend(h("2A8122F42A0204010 4".replace(' ', "").as_str()));
        body.extend(int(DAPP_N).to_bytes_be());
        body.extend([0, 1, 0, 1]);
        let k = ca_n.len();
        let split = k - 32 - 2;
        let mut m = vec![0x6A];
        m.extend(&body[..split]);
        m.extend(Sha256::digest(&body));
        m.push(0xBC);
        let n = BigUint::from_bytes_be(ca_n);
        let sig = fixed(&BigUint::from_bytes_be(&m).modpow(&int(CA_D), &n), k);
        let mut cert = tlv(&[0x5F, 0x37], &sig);
        cert.extend(tlv(&[0x5F, 0x38], &body[split..]));
        cert.extend(tlv(&[0x42], ca_car));
        let cert = tlv(&[0x7F, 0x21], &cert);
        assert_eq!(
            self.sm(0x22, 0x81, 0xB6, &h("800141830184"), None).1,
            0x9000
        );
        assert_eq!(
            self.sm(0x2A, 0x00, 0xAE, &cert, None).1,
            0x9000,
            "PSO VERIFY CERT"
        );
        assert_eq!(
            self.sm(0x22, 0x81, 0xA4, &tlv(&[0x83], &chr), None).1,
            0x9000
        );
        let (rnd_icc, sw) = self.sm(0x84, 0, 0, &[], Some(8));
        assert_eq!((rnd_icc.len(), sw), (8, 0x9000));
        let dn = int(DAPP_N);
        let mut prnd = vec![0u8; 256 - 34];
        self.rng.fill_bytes(&mut prnd);
        let mut hsh = Sha256::new();
        for part in [
            &prnd[..],
            &self.puk_ifd,
            &SN_IFD,
            &rnd_icc,
            &self.puk_icc,
            &self.g,
            &self.p,
            &self.q,
        ] {
            hsh.update(part);
        }
        let mut m = vec![0x6A];
        m.extend(&prnd);
        m.extend(hsh.finalize());
        m.push(0xBC);
        let sig = fixed(&BigUint::from_bytes_be(&m).modpow(&int(DAPP_D), &dn), 256);
        let ea = [&SN_IFD[..], &sig].concat();
        assert_eq!(self.sm(0x82, 0, 0, &ea, None).1, 0x9000, "EXTERNAL AUTH");
        assert_eq!(
            self.sm(
                0x22,
                0x41,
                0xA4,
                &h("840182 80019B".replace(' ', "").as_str()),
                None
            )
            .1,
            0x9000
        );
        let mut rnd_ifd = [0u8; 8];
        self.rng.fill_bytes(&mut rnd_ifd);
        let (resp, sw) = self.sm(0x88, 0, 0, &rnd_ifd, Some(0));
        assert_eq!(sw, 0x9000, "INTERNAL AUTH");
        self.reseed(&rnd_icc, &rnd_ifd);
        // Check the chip with EF 1004 (readable in clear; here under SM).
        let k1004 = self.read_file_sm(0x1004);
        let key = tlvs(&child(&k1004, &[0x30]));
        let (n, e) = (
            BigUint::from_bytes_be(&key[0].1),
            BigUint::from_bytes_be(&key[1].1),
        );
        let (sn_icc, sig) = resp.split_at(8);
        let m = fixed(&BigUint::from_bytes_be(sig).modpow(&e, &n), 256);
        assert_eq!((m[0], m[255]), (0x6A, 0xBC));
        let mut hsh = Sha256::new();
        for part in [
            &m[1..223],
            &self.puk_icc,
            sn_icc,
            &rnd_ifd,
            &self.puk_ifd,
            &self.g,
            &self.p,
            &self.q,
        ] {
            hsh.update(part);
        }
        assert_eq!(&hsh.finalize()[..], &m[223..255], "chip authentication");
    }

    /// Send a protected command (SM chaining in 231-byte plaintext pieces). Returns the
    /// unwrapped data and status (or the clear status if the card answered in clear).
    pub fn sm(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u8>) -> (Vec<u8>, u16) {
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(231).collect()
        };
        let mut last = (Vec::new(), 0);
        for (i, piece) in pieces.iter().enumerate() {
            let more = i + 1 < pieces.len();
            last = self.sm_one(
                if more { 0x1C } else { 0x0C },
                ins,
                p1,
                p2,
                piece,
                if more { None } else { le },
            );
            if last.1 != 0x9000 {
                return last;
            }
        }
        last
    }

    fn sm_one(
        &mut self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        le: Option<u8>,
    ) -> (Vec<u8>, u16) {
        self.ssc += 1;
        let mut dos = Vec::new();
        if !data.is_empty() {
            let mut v = vec![1];
            v.extend(tdes(&self.k_enc, &pad(data), true));
            dos.extend(tlv(&[0x87], &v));
        }
        if let Some(le) = le {
            dos.extend([0x97, 1, le]);
        }
        let mut m = self.ssc.to_be_bytes().to_vec();
        m.extend(pad(&[cla, ins, p1, p2]));
        m.extend(&dos);
        let mut cc = mac(&self.k_mac, &pad(&m));
        if self.tamper_next {
            cc[0] ^= 1;
            self.tamper_next = false;
        }
        dos.extend(tlv(&[0x8E], &cc));
        let mut apdu = vec![cla, ins, p1, p2, dos.len() as u8];
        apdu.extend(&dos);
        apdu.push(0);
        let (resp, sw) = clear(self.card, &apdu);
        if resp.is_empty() {
            return (resp, sw);
        }
        self.ssc += 1;
        let objs = tlvs(&resp);
        let (last, body) = objs.split_last().unwrap();
        assert_eq!(last.0, vec![0x8E]);
        let mut m = self.ssc.to_be_bytes().to_vec();
        m.extend(&resp[..resp.len() - 10]);
        assert_eq!(mac(&self.k_mac, &pad(&m)), last.1, "response MAC");
        let mut plain = Vec::new();
        let mut status = sw;
        for (t, v) in body {
            match t.as_slice() {
                [0x87] => {
                    let mut p = tdes(&self.k_enc, &v[1..], false);
                    let end = p.iter().rposition(|b| *b == 0x80).unwrap();
                    p.truncate(end);
                    plain = p;
                }
                [0x99] => status = u16::from_be_bytes([v[0], v[1]]),
                _ => panic!("unexpected DO {t:02X?}"),
            }
        }
        assert_eq!(status, sw, "outer SW equals DO99");
        (plain, status)
    }

    /// Set the SSC after DAPP.
    pub fn reseed(&mut self, rnd_icc: &[u8], rnd_ifd: &[u8]) {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&rnd_icc[4..8]);
        b[4..].copy_from_slice(&rnd_ifd[4..8]);
        self.ssc = u64::from_be_bytes(b);
    }

    /// SELECT an EF of DF_CIE and read it to the end under SM (Le 0x80).
    pub fn read_file_sm(&mut self, fid: u16) -> Vec<u8> {
        let [hi, lo] = fid.to_be_bytes();
        assert_eq!(self.sm(0xA4, 0x02, 0x0C, &[hi, lo], None).1, 0x9000);
        let mut out = Vec::new();
        loop {
            let off = out.len() as u16;
            let (d, sw) = self.sm(0xB0, (off >> 8) as u8, off as u8, &[], Some(0x80));
            out.extend(&d);
            match sw {
                0x9000 if !d.is_empty() => continue,
                _ => break,
            }
        }
        out
    }
}
