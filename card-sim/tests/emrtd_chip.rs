//! The virtual eMRTD chip against a minimal reader written here from ICAO 9303-11 (not
//! from the chip's code): BAC with the App. D worked example, PACE DH-GM and ECDH-GM runs,
//! secure-messaging reads of every file, access refused before authentication, a wrong
//! CAN, chip and active authentication, and passive authentication of the EF.SOD.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aes::Aes128;
use card_sim::emrtd::{
    self, ActiveAuth, ChipAuth, EmrtdBuilder, EmrtdFiles, FaceImage, Holder, PaceVariant, TEST_CAN,
    dg_fid,
};
use card_sim::{CardConfig, CieVariant, VirtualCard};
use cmac::{Cmac, Mac};
use der::{Decode, Encode};
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};
use num_bigint_dig::BigUint;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};
use rsa::traits::PublicKeyParts;
use sha1::Sha1;
use sha2::{Digest, Sha256};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

// ---- transport ------------------------------------------------------------------------

/// Send one APDU; fetch `61xx` remainders with GET RESPONSE.
fn send(card: &VirtualCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut r = card.process(apdu);
    let mut data = Vec::new();
    loop {
        let sw = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
        data.extend_from_slice(&r[..r.len() - 2]);
        if sw >> 8 != 0x61 {
            return (data, sw);
        }
        r = card.process(&[0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8]);
    }
}

/// A command APDU: short when it fits, else extended.
fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<usize>) -> Vec<u8> {
    let mut v = vec![cla, ins, p1, p2];
    let extended = data.len() > 255 || le.is_some_and(|l| l > 256);
    if extended {
        v.push(0);
        if !data.is_empty() {
            v.extend_from_slice(&(data.len() as u16).to_be_bytes());
            v.extend_from_slice(data);
        }
        if let Some(le) = le {
            v.extend_from_slice(&((le % 65536) as u16).to_be_bytes());
        }
    } else {
        if !data.is_empty() {
            v.push(data.len() as u8);
            v.extend_from_slice(data);
        }
        if let Some(le) = le {
            v.push((le % 256) as u8);
        }
    }
    v
}

fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut v = tag.to_vec();
    match value.len() {
        n if n < 0x80 => v.push(n as u8),
        n if n < 0x100 => v.extend_from_slice(&[0x81, n as u8]),
        n => v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(value);
    v
}

/// Decoded `(tag, value)` objects.
type Objects = Vec<(Vec<u8>, Vec<u8>)>;

/// Split `tag len value` objects (tags of 1-2 bytes) at the top level.
fn objects(mut b: &[u8]) -> Objects {
    let mut out = Vec::new();
    while !b.is_empty() {
        let tl = if b[0] & 0x1F == 0x1F { 2 } else { 1 };
        let tag = b[..tl].to_vec();
        let (len, ll) = match b[tl] {
            n if n < 0x80 => (n as usize, 1),
            0x81 => (b[tl + 1] as usize, 2),
            _ => (((b[tl + 1] as usize) << 8) | b[tl + 2] as usize, 3),
        };
        let start = tl + ll;
        out.push((tag, b[start..start + len].to_vec()));
        b = &b[start + len..];
    }
    out
}

fn get(objs: &Objects, tag: &[u8]) -> Vec<u8> {
    objs.iter()
        .find(|(t, _)| t == tag)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no tag {tag:02X?}"))
}

// ---- crypto (reader side) -------------------------------------------------------------

fn pad(mut v: Vec<u8>, block: usize) -> Vec<u8> {
    v.push(0x80);
    while !v.len().is_multiple_of(block) {
        v.push(0);
    }
    v
}

fn unpad(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    assert_eq!(v.pop(), Some(0x80), "ISO padding");
    v
}

fn kdf(z: &[u8], c: u32) -> Vec<u8> {
    let mut d = Sha1::new();
    d.update(z);
    d.update(c.to_be_bytes());
    d.finalize()[..16].to_vec()
}

fn tdes(key: &[u8], data: &[u8], enc: bool) -> Vec<u8> {
    let c = TdesEde2::new_from_slice(key).unwrap();
    let mut iv = [0u8; 8];
    let mut out = Vec::new();
    for b in data.chunks(8) {
        let mut blk = GenericArray::clone_from_slice(b);
        if enc {
            blk.iter_mut().zip(iv).for_each(|(x, y)| *x ^= y);
            c.encrypt_block(&mut blk);
            iv.copy_from_slice(&blk);
        } else {
            c.decrypt_block(&mut blk);
            blk.iter_mut().zip(iv).for_each(|(x, y)| *x ^= y);
            iv.copy_from_slice(b);
        }
        out.extend_from_slice(&blk);
    }
    out
}

fn aes_cbc(key: &[u8], iv: &[u8], data: &[u8], enc: bool) -> Vec<u8> {
    let c = Aes128::new_from_slice(key).unwrap();
    let mut chain = iv.to_vec();
    let mut out = Vec::new();
    for b in data.chunks(16) {
        let mut blk = GenericArray::clone_from_slice(b);
        if enc {
            blk.iter_mut().zip(&chain).for_each(|(x, y)| *x ^= y);
            c.encrypt_block(&mut blk);
            chain = blk.to_vec();
        } else {
            c.decrypt_block(&mut blk);
            blk.iter_mut().zip(&chain).for_each(|(x, y)| *x ^= y);
            chain = b.to_vec();
        }
        out.extend_from_slice(&blk);
    }
    out
}

/// ISO 9797-1 MAC algorithm 3 over already padded data.
fn retail(key: &[u8], padded: &[u8]) -> Vec<u8> {
    let ka = Des::new_from_slice(&key[..8]).unwrap();
    let kb = Des::new_from_slice(&key[8..16]).unwrap();
    let mut st = GenericArray::clone_from_slice(&[0u8; 8]);
    for b in padded.chunks(8) {
        st.iter_mut().zip(b).for_each(|(x, y)| *x ^= y);
        ka.encrypt_block(&mut st);
    }
    kb.decrypt_block(&mut st);
    ka.encrypt_block(&mut st);
    st.to_vec()
}

fn cmac8(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Cmac<Aes128> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes()[..8].to_vec()
}

// ---- secure messaging (reader side) ---------------------------------------------------

struct Sm {
    aes: bool,
    kenc: Vec<u8>,
    kmac: Vec<u8>,
    ssc: Vec<u8>,
}

impl Sm {
    fn new(aes: bool, kenc: Vec<u8>, kmac: Vec<u8>, ssc: Vec<u8>) -> Self {
        Self {
            aes,
            kenc,
            kmac,
            ssc,
        }
    }
    fn bs(&self) -> usize {
        if self.aes { 16 } else { 8 }
    }
    fn inc(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }
    fn mac(&self, m: Vec<u8>) -> Vec<u8> {
        let n = pad(m, self.bs());
        if self.aes {
            cmac8(&self.kmac, &n)
        } else {
            retail(&self.kmac, &n)
        }
    }
    fn crypt(&self, data: &[u8], enc: bool) -> Vec<u8> {
        if self.aes {
            let c = Aes128::new_from_slice(&self.kenc).unwrap();
            let mut iv = GenericArray::clone_from_slice(&self.ssc);
            c.encrypt_block(&mut iv);
            aes_cbc(&self.kenc, &iv, data, enc)
        } else {
            tdes(&self.kenc, data, enc)
        }
    }

    /// Protect, send, verify and decrypt.
    fn cmd(
        &mut self,
        card: &VirtualCard,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        le: Option<usize>,
    ) -> (Vec<u8>, u16) {
        self.inc();
        let mut body = Vec::new();
        if !data.is_empty() {
            let c = self.crypt(&pad(data.to_vec(), self.bs()), true);
            if ins & 1 == 1 {
                body.extend(tlv(&[0x85], &c));
            } else {
                body.extend(tlv(&[0x87], &[&[0x01][..], &c].concat()));
            }
        }
        if let Some(le) = le {
            let v = if le > 256 {
                ((le % 65536) as u16).to_be_bytes().to_vec()
            } else {
                vec![(le % 256) as u8]
            };
            body.extend(tlv(&[0x97], &v));
        }
        let mut m = self.ssc.clone();
        m.extend(pad(vec![0x0C, ins, p1, p2], self.bs()));
        m.extend_from_slice(&body);
        body.extend(tlv(&[0x8E], &self.mac(m)));
        let rle = if le.is_some_and(|l| l > 256) {
            Some(65536)
        } else {
            Some(256)
        };
        let (resp, sw) = send(card, &apdu(0x0C, ins, p1, p2, &body, rle));
        if sw == 0x6987 || sw == 0x6988 {
            return (resp, sw);
        }
        self.inc();
        let objs = objects(&resp);
        let mac = get(&objs, &[0x8E]);
        let covered = &resp[..resp.len() - 10];
        let mut m = self.ssc.clone();
        m.extend_from_slice(covered);
        assert_eq!(self.mac(m), mac, "response MAC");
        let inner = u16::from_be_bytes(get(&objs, &[0x99]).try_into().unwrap());
        assert_eq!(inner, sw, "DO99 = outer SW");
        let plain = objs
            .iter()
            .find(|(t, _)| t == &[0x87] || t == &[0x85])
            .map(|(t, v)| {
                let c = if t == &[0x87] { &v[1..] } else { &v[..] };
                unpad(self.crypt(c, false))
            })
            .unwrap_or_default();
        (plain, sw)
    }

    /// Read a whole EF by SFI under SM: 4-byte header, then chunks of `chunk`.
    fn read_sfi(&mut self, card: &VirtualCard, sfi: u8, chunk: usize) -> Vec<u8> {
        let (head, sw) = self.cmd(card, 0xB0, 0x80 | sfi, 0, &[], Some(4));
        assert_eq!(sw, 0x9000, "header of SFI {sfi:02X}");
        let total = match head[1] {
            n if n < 0x80 => 2 + n as usize,
            0x81 => 3 + head[2] as usize,
            _ => 4 + (((head[2] as usize) << 8) | head[3] as usize),
        };
        let mut out = head;
        while out.len() < total {
            let off = out.len();
            let n = chunk.min(total - off);
            let (d, sw) = self.cmd(card, 0xB0, (off >> 8) as u8, off as u8, &[], Some(n));
            assert!(sw == 0x9000 || sw == 0x6282, "read at {off}: {sw:04X}");
            assert!(!d.is_empty());
            out.extend(d);
        }
        out
    }
}

// ---- BAC ------------------------------------------------------------------------------

const APP_D_RND_IC: &str = "4608F91988702212";
const APP_D_K_IC: &str = "0B4F80323EB3191CB04970CB4052790B";

fn bac(card: &VirtualCard, mrz_info: &str, rnd_ifd: &[u8], k_ifd: &[u8]) -> Result<Sm, u16> {
    let seed = &Sha1::digest(mrz_info.as_bytes())[..16];
    let (kenc, kmac) = (kdf(seed, 1), kdf(seed, 2));
    assert_eq!(send(card, &h("00A4040C07A0000002471001")).1, 0x9000);
    let (rnd_ic, sw) = send(card, &h("0084000008"));
    assert_eq!(sw, 0x9000);
    let s = [rnd_ifd, &rnd_ic, k_ifd].concat();
    let e = tdes(&kenc, &s, true);
    let m = retail(&kmac, &pad(e.clone(), 8));
    let (r, sw) = send(card, &apdu(0, 0x82, 0, 0, &[e, m].concat(), Some(40)));
    if sw != 0x9000 {
        return Err(sw);
    }
    assert_eq!(retail(&kmac, &pad(r[..32].to_vec(), 8)), r[32..], "M_IC");
    let d = tdes(&kenc, &r[..32], false);
    assert_eq!(&d[..8], &rnd_ic[..]);
    assert_eq!(&d[8..16], rnd_ifd);
    let kseed: Vec<u8> = k_ifd.iter().zip(&d[16..32]).map(|(a, b)| a ^ b).collect();
    let ssc = [&rnd_ic[4..], &rnd_ifd[4..]].concat();
    Ok(Sm::new(false, kdf(&kseed, 1), kdf(&kseed, 2), ssc))
}

fn des_key_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x & 0xFE == y & 0xFE)
}

#[test]
fn bac_reproduces_the_icao_worked_example() {
    let card = EmrtdBuilder::new(Holder::icao_specimen_passport())
        .data_groups(&[1, 2])
        .lds_version(*b"0106")
        .bac_randomness(
            h(APP_D_RND_IC).try_into().unwrap(),
            h(APP_D_K_IC).try_into().unwrap(),
        )
        .build(CardConfig::default());
    let rnd_ifd = h("781723860C06C226");
    let k_ifd = h("0B795240CB7049B01C19B33E32804F0B");
    let mut sm = bac(&card, "L898902C<369080619406236", &rnd_ifd, &k_ifd).unwrap();
    // The chip's answer is App. D.3's E_IC ‖ M_IC.
    let log = card.log();
    assert_eq!(
        log[2],
        h(
            "008200002872C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A728"
        )
    );
    assert!(des_key_eq(&sm.kenc, &h("979EC13B1CBFE9DCD01AB0FED307EAE5")));
    assert!(des_key_eq(&sm.kmac, &h("F1CB1F1FB5ADF208806B89DC579DC1F8")));
    assert_eq!(sm.ssc, h("887022120C06C226"));
    // App. D.4, byte for byte: SELECT EF.COM, READ BINARY 4 at 0, 18 at 4 (our reader's
    // protected commands, then the chip's protected answers).
    let d4 = [
        (
            "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
            "990290008E08FA855A5D4C50A8ED9000",
        ),
        (
            "0CB000000D9701048E08ED6705417E96BA5500",
            "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000",
        ),
        (
            "0CB000040D9701128E082EA28A70F3C7B53500",
            "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
        ),
    ];
    let (_, sw) = sm.cmd(&card, 0xA4, 0x02, 0x0C, &h("011E"), None);
    assert_eq!(sw, 0x9000);
    let (head, _) = sm.cmd(&card, 0xB0, 0, 0, &[], Some(4));
    let (rest, _) = sm.cmd(&card, 0xB0, 0, 4, &[], Some(0x12));
    assert_eq!(
        [head, rest].concat(),
        h("60145F0104303130365F36063034303030305C026175")
    );
    let log = card.log();
    for (i, (cmd, _)) in d4.iter().enumerate() {
        assert_eq!(log[log.len() - 3 + i], h(cmd), "D.4 command {i}");
    }
    // Replay on a fresh card in the same state: the chip's raw answers.
    let card = EmrtdBuilder::new(Holder::icao_specimen_passport())
        .data_groups(&[1, 2])
        .lds_version(*b"0106")
        .bac_randomness(
            h(APP_D_RND_IC).try_into().unwrap(),
            h(APP_D_K_IC).try_into().unwrap(),
        )
        .build(CardConfig::default());
    bac(&card, "L898902C<369080619406236", &rnd_ifd, &k_ifd).unwrap();
    for (i, (cmd, rsp)) in d4.iter().enumerate() {
        assert_eq!(card.process(&h(cmd)), h(rsp), "D.4 response {i}");
    }
}

#[test]
fn passport_bac_reads_every_file_and_refuses_before() {
    let card = emrtd::virtual_passport_bac(CardConfig::default());
    let files = EmrtdBuilder::new(Holder::icao_specimen_passport()).files();
    assert!(files.card_access.is_none(), "BAC-only: no EF.CardAccess");
    assert_eq!(send(&card, &h("00A4000C02011C")).1, 0x6A82);
    // Before access control: 6982 for every file, by FID and by SFI.
    assert_eq!(send(&card, &h("00A4040C07A0000002471001")).1, 0x9000);
    assert_eq!(send(&card, &h("00B0810004")), (vec![], 0x6982));
    assert_eq!(send(&card, &h("00A4020C020101")).1, 0x9000);
    assert_eq!(send(&card, &h("00B0000004")), (vec![], 0x6982));
    // Wrong MRZ: 6300 at EXTERNAL AUTHENTICATE, and still no access.
    let wrong = bac(&card, "L898902C<369080619406237", &[1; 8], &[2; 16]);
    assert_eq!(wrong.err(), Some(0x6300));
    let mut sm = bac(
        &card,
        &Holder::icao_specimen_passport().mrz_information(),
        &[3; 8],
        &[4; 16],
    )
    .unwrap();
    assert_eq!(sm.read_sfi(&card, 0x1E, 223), files.com);
    assert_eq!(sm.read_sfi(&card, 0x1D, 223), files.sod);
    for (n, bytes) in &files.dgs {
        assert_eq!(&sm.read_sfi(&card, *n, 223), bytes, "DG{n}");
    }
    // DG1 holds the specimen MRZ.
    let dg1 = files.dg(1).unwrap();
    assert!(String::from_utf8_lossy(dg1).contains("L898902C<3UTO6908061F9406236"));
    // SELECT by FID + odd READ BINARY (DO85 under SM) of DG1.
    let (_, sw) = sm.cmd(&card, 0xA4, 0x02, 0x0C, &dg_fid(1).to_be_bytes(), None);
    assert_eq!(sw, 0x9000);
    let (d, sw) = sm.cmd(&card, 0xB1, 0x00, 0x00, &h("540105"), Some(16));
    assert_eq!(sw, 0x9000);
    assert_eq!(d, tlv(&[0x53], &dg1[5..5 + 14]));
    // A plain command ends the session: files are refused again.
    assert_eq!(send(&card, &h("00B0810004")), (vec![], 0x6982));
}

// ---- PACE -----------------------------------------------------------------------------

const DH_P: &str = "87A8E61DB4B6663CFFBBD19C651959998CEEF608660DD0F25D2CEED4435E3B00E00DF8F1D61957D4FAF7DF4561B2AA3016C3D91134096FAA3BF4296D830E9A7C209E0C6497517ABD5A8A9D306BCF67ED91F9E6725B4758C022E0B1EF4275BF7B6C5BFC11D45F9088B941F54EB1E59BB8BC39A0BF12307F5C4FDB70C581B23F76B63ACAE1CAA6B7902D52526735488A0EF13C6D9A51BFA4AB3AD8347796524D8EF6A167B5A41825D967E144E5140564251CCACB83E6B486F6B3CA3F7971506026C0B857F689962856DED4010ABD0BE621C3A3960A54E710C375F26375D7014103A4B54330C198AF126116D2276E11715F693877FAD7EF09CADB094AE91E1A1597";
const DH_G: &str = "3FB32C9B73134D0B2E77506660EDBD484CA7B18F21EF205407F4793A1A0BA12510DBC15077BE463FFF4FED4AAC0BB555BE3A6C1B0C6B47B1BC3773BF7E8C6F62901228F8C28CBB18A55AE31341000A650196F931C77A57F2DDF463E5E9EC144B777DE62AAAB8A8628AC376D282D6ED3864E67982428EBC831D14348F6F2F9193B5045AF2767164E1DFC967C1FB3F2E55A4BD1BFFE83B9C80D052B985D182EA0ADB2A3B7313D3FE14C8484B1E052588B9B7D2BBD2DF016199ECD06E1557CD0915B3353BBB64E0EC377FD028370DF92B52C7891428CDC67EB6184B523D1DB246C32F63078490F00EF8D647D148D47954515E2327CFEF98C582664B4C0F6CC41659";

fn fixed(n: &BigUint, len: usize) -> Vec<u8> {
    let b = n.to_bytes_be();
    [vec![0; len - b.len()], b].concat()
}

/// Map / agreement arithmetic of one PACE flavour, reader side.
enum Group {
    Dh { p: BigUint, g: BigUint },
    Ec,
}

fn ec_decode(b: &[u8]) -> ProjectivePoint {
    let p: Option<AffinePoint> =
        AffinePoint::from_encoded_point(&EncodedPoint::from_bytes(b).unwrap()).into();
    ProjectivePoint::from(p.expect("point on P-256"))
}

fn ec_encode(p: &ProjectivePoint) -> Vec<u8> {
    p.to_affine().to_encoded_point(false).as_bytes().to_vec()
}

fn scalar(seed: u8) -> Scalar {
    let mut b = [seed; 32];
    b[0] = 0x01;
    <Scalar as p256::elliptic_curve::ops::Reduce<p256::U256>>::reduce_bytes(&b.into())
}

/// Run PACE: returns the SM or the failing status word.
fn pace(card: &VirtualCard, variant: PaceVariant, key_ref: u8, password: &[u8]) -> Result<Sm, u16> {
    let (oid, param, aes, group) = match variant {
        PaceVariant::DhGm3desParam2 => (
            h("04007F00070202040101"),
            2u8,
            false,
            Group::Dh {
                p: BigUint::from_bytes_be(&h(DH_P)),
                g: BigUint::from_bytes_be(&h(DH_G)),
            },
        ),
        PaceVariant::EcdhGmAes128P256 => (h("04007F00070202040202"), 12u8, true, Group::Ec),
        // The test reader does P-256 only; brainpool is checked against App. G.1 below.
        _ => unimplemented!("reader-side curve"),
    };
    let pi = if key_ref == 1 {
        Sha1::digest(password).to_vec()
    } else {
        password.to_vec()
    };
    let kpi = kdf(&pi, 3);
    let mse = [
        tlv(&[0x80], &oid),
        tlv(&[0x83], &[key_ref]),
        tlv(&[0x84], &[param]),
    ]
    .concat();
    let (_, sw) = send(card, &apdu(0x00, 0x22, 0xC1, 0xA4, &mse, None));
    if sw != 0x9000 {
        return Err(sw);
    }
    let ga = |cla: u8, data: Vec<u8>| -> Result<Objects, u16> {
        let (r, sw) = send(
            card,
            &apdu(cla, 0x86, 0, 0, &tlv(&[0x7C], &data), Some(256)),
        );
        if sw != 0x9000 {
            return Err(sw);
        }
        let outer = objects(&r);
        Ok(objects(&get(&outer, &[0x7C])))
    };
    // 1. Encrypted nonce.
    let z = get(&ga(0x10, vec![])?, &[0x80]);
    let s = if aes {
        aes_cbc(&kpi, &[0; 16], &z, false)
    } else {
        tdes(&kpi, &z, false)
    };
    // 2. Generic mapping, 3. key agreement.
    let (pk_pcd, pk_picc, k, tag) = match &group {
        Group::Dh { p, g } => {
            let x = BigUint::from_bytes_be(&[0x5A; 32]);
            let pk_map = get(
                &ga(0x10, tlv(&[0x81], &fixed(&g.modpow(&x, p), 256)))?,
                &[0x82],
            );
            let hh = BigUint::from_bytes_be(&pk_map).modpow(&x, p);
            let g_hat = g.modpow(&BigUint::from_bytes_be(&s), p) * hh % p;
            let y = BigUint::from_bytes_be(&[0x3C; 32]);
            let mine = fixed(&g_hat.modpow(&y, p), 256);
            let theirs = get(&ga(0x10, tlv(&[0x83], &mine))?, &[0x84]);
            let k = fixed(&BigUint::from_bytes_be(&theirs).modpow(&y, p), 256);
            (mine, theirs, k, 0x84u8)
        }
        Group::Ec => {
            let x = scalar(0x21);
            let pk_map = get(
                &ga(
                    0x10,
                    tlv(&[0x81], &ec_encode(&(ProjectivePoint::GENERATOR * x))),
                )?,
                &[0x82],
            );
            let hh = ec_decode(&pk_map) * x;
            let mut sb = [0u8; 32];
            sb[16..].copy_from_slice(&s);
            let sc =
                <Scalar as p256::elliptic_curve::ops::Reduce<p256::U256>>::reduce_bytes(&sb.into());
            let g_hat = ProjectivePoint::GENERATOR * sc + hh;
            let y = scalar(0x43);
            let mine = ec_encode(&(g_hat * y));
            let theirs = get(&ga(0x10, tlv(&[0x83], &mine))?, &[0x84]);
            let shared = (ec_decode(&theirs) * y).to_affine().to_encoded_point(false);
            (mine, theirs, shared.x().unwrap().to_vec(), 0x86u8)
        }
    };
    let (kenc, kmac) = (kdf(&k, 1), kdf(&k, 2));
    let auth = |pk: &[u8]| {
        let body = tlv(
            &[0x7F, 0x49],
            &[tlv(&[0x06], &oid), tlv(&[tag], pk)].concat(),
        );
        if aes {
            cmac8(&kmac, &body)
        } else {
            retail(&kmac, &pad(body, 8))
        }
    };
    // 4. Mutual authentication.
    let t_picc = get(&ga(0x00, tlv(&[0x85], &auth(&pk_picc)))?, &[0x86]);
    assert_eq!(t_picc, auth(&pk_pcd), "chip token");
    let bs = if aes { 16 } else { 8 };
    Ok(Sm::new(aes, kenc, kmac, vec![0; bs]))
}

/// 9303-11 App. G.1 (PACE ECDH-GM, brainpoolP256r1, AES-128, MRZ T22000129/640812/101031)
/// with the chip's random values fixed: every chip answer byte for byte.
#[test]
fn pace_ecdh_gm_brainpool_reproduces_icao_app_g1() {
    let holder = Holder {
        document_number: "T22000129".into(),
        date_of_birth: "640812".into(),
        date_of_expiry: "101031".into(),
        ..Holder::icao_specimen_passport()
    };
    assert_eq!(holder.mrz_information(), "T22000129364081251010318");
    let script = h(
        "3F00C4D39D153F2B2A214A078D899B22 498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560 107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A",
    );
    let b = EmrtdBuilder::new(holder)
        .pace(PaceVariant::EcdhGmAes128BrainpoolP256r1)
        .pace_randomness(&script);
    let card = b.build(CardConfig::default());
    assert_eq!(
        b.files().card_access,
        Some(h("31143012060A04007F0007020204020202010202010D"))
    );
    let exchange = [
        ("0022C1A412800A04007F0007020204020283010184010D", "9000"),
        (
            "10860000027C0000",
            "7C12801095A3A016522EE98D01E76CB6B98B42C39000",
        ),
        (
            "10860000457C438141047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D00",
            "7C43824104824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F5730D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C549000",
        ),
        (
            "10860000457C438341042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB3646200",
            "7C438441049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F0949000",
        ),
        (
            "008600000C7C0A8508C2B0BD78D94BA86600",
            "7C0A86083ABB9674BCE93C089000",
        ),
    ];
    for (i, (cmd, rsp)) in exchange.iter().enumerate() {
        assert_eq!(card.process(&h(cmd)), h(rsp), "G.1 step {i}");
    }
    let mut sm = Sm::new(
        true,
        h("F5F0E35C0D7161EE6724EE513A0D9A7F"),
        h("FE251C7858B356B24514B3BD5F4297D1"),
        vec![0; 16],
    );
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    assert_eq!(sm.read_sfi(&card, 0x01, 223), b.files().dg(1).unwrap());
}

/// 9303-11 App. G.2 (PACE DH-GM, RFC 5114 1024/160 group, AES-128, MRZ; the chip also
/// returns its CVCA's CAR): every chip answer byte for byte.
#[test]
fn pace_dh_gm_reproduces_icao_app_g2() {
    let holder = Holder {
        document_number: "T22000129".into(),
        date_of_birth: "640812".into(),
        date_of_expiry: "101031".into(),
        ..Holder::icao_specimen_passport()
    };
    let script = h(
        "FA5B7E3E49753A0DB9178B7B9BD898C8 66DDAFEAC1609CB5B963BB0CB3FF8B3E047F336C A5B780126B7C980E9FCEA1D4539DA1D27C342DFA",
    );
    let b = EmrtdBuilder::new(holder)
        .pace(PaceVariant::DhGmAes128Param0)
        .pace_car(b"DETESTCVCA00003")
        .pace_randomness(&script);
    let card = b.build(CardConfig::default());
    assert_eq!(
        b.files().card_access,
        Some(h("31143012060A04007F00070202040102020102020100"))
    );
    let exchange = [
        ("0022C1A40F800A04007F00070202040102830101", "9000".to_string()),
        ("10860000027C0000", "7C128010854D8DF5827FA6852D1A4FA701CDDDCA9000".to_string()),
        ("10860000867C818381818023FB3749EA030D2A25B278D2A562047ADE3F01B74F17A15402CB7352CA7D2B3EB71C343DB13D1DEBCE9A3666DBCFC920B49174A602CB47965CAA73DC702489A44D41DB914DE9613DC5E98C94160551C0DF86274B9359BC0490D01B03AD54022DCB4F57FAD6322497D7A1E28D46710F461AFE710FBBBC5F8BA166F4311975EC6C00", "7C818382818078879F57225AA8080D52ED0FC890A4B25336F699AA89A2D3A189654AF70729E623EA5738B26381E4DA19E004706FACE7B235C2DBF2F38748312F3C98C2DD4882A41947B324AA1259AC22579DB93F7085655AF30889DBB845D9E6783FE42C9F2449400306254C8AE8EE9DD812A804C0B66E8CAFC14F84D8258950A91B44126EE69000".to_string()),
        ("10860000867C8183838180907D89E2D425A178AA81AF4A7774EC8E388C115CAE67031E85EECE520BD911551B9AE4D04369F29A02626C86FBC6747CC7BC352645B6161A2A42D44EDA80A08FA8D61B76D3A154AD8A5A51786B0BC07147057871A922212C5F67F43173172236B7747D1671E6D692A3C7D40A0C3C5CE397545D015C175EB5130551EDBC2EE5D400", "7C8183848180075693D9AE941877573E634B6E644F8E60AF17A0076B8B123D9201074D36152BD8B3A213F53820C42ADC79AB5D0AEEC3AEFB91394DA476BD97B9B14D0A65C1FC71A0E019CB08AF55E1F729005FBA7E3FA5DC41899238A250767A6D46DB974064386CD456743585F8E5D90CC8B4004B1F6D866C79CE0584E49687FF61BC29AEA19000".to_string()),
        ("008600000C7C0A8508B46DD9BD4D98381F00", "7C1B8608917F37B5C0E6D8D1870F4445544553544356434130303030339000".to_string()),
    ];
    for (i, (cmd, rsp)) in exchange.iter().enumerate() {
        assert_eq!(card.process(&h(cmd)), h(rsp), "G.2 step {i}");
    }
    let mut sm = Sm::new(
        true,
        h("2F7F46ADCC9E7E521B45D192FAFA9126"),
        h("805A1D27D45A5116F73C54469462B7D8"),
        vec![0; 16],
    );
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    assert_eq!(sm.read_sfi(&card, 0x01, 223), b.files().dg(1).unwrap());
}

fn read_all(card: &VirtualCard, sm: &mut Sm, files: &EmrtdFiles, chunk: usize) {
    let (_, sw) = sm.cmd(card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    assert_eq!(sm.read_sfi(card, 0x1E, chunk), files.com);
    assert_eq!(sm.read_sfi(card, 0x1D, chunk), files.sod);
    for (n, bytes) in &files.dgs {
        assert_eq!(&sm.read_sfi(card, *n, chunk), bytes, "DG{n}");
    }
}

fn cie_with(emrtd: &EmrtdBuilder) -> VirtualCard {
    card_sim::cie::virtual_cie_with(CieVariant::default(), CardConfig::extended(65536), emrtd)
}

#[test]
fn cie_pace_can_dh_gm_reads_every_file() {
    let b = EmrtdBuilder::cie();
    let card = cie_with(&b);
    let files = b.files();
    // EF.CardAccess in the MF, in clear: the real CIE's one PACEInfo.
    assert_eq!(send(&card, &h("00A4020C02011C")).1, 0x9000);
    let (ca, _) = send(&card, &h("00B0000000"));
    assert_eq!(ca, h("3114301206 0A 04007F00070202040101 020102 020102"));
    assert_eq!(Some(ca), files.card_access);
    let mut sm = pace(&card, PaceVariant::DhGm3desParam2, 2, TEST_CAN.as_bytes()).unwrap();
    read_all(&card, &mut sm, &files, 223);
    // DG2 carries the JPEG 2000 face; DG11 the codice fiscale in 5F10.
    let dg2 = files.dg(2).unwrap();
    assert!(dg2.windows(12).any(|w| w == h("0000000C6A5020200D0A870A")));
    let dg11 = files.dg(11).unwrap();
    assert!(
        dg11.windows(19)
            .any(|w| w == [&h("5F1010")[..], b"TSTTST80A01H501X"].concat())
    );
}

#[test]
fn pace_mrz_and_ecdh_gm_aes_with_extended_reads() {
    let b = EmrtdBuilder::cie()
        .pace_only(&[PaceVariant::EcdhGmAes128P256, PaceVariant::DhGm3desParam2])
        .face(FaceImage::LargeJpeg);
    let card = cie_with(&b);
    let files = b.files();
    assert!(files.dg(2).unwrap().len() > 19_000, "DG2 of about 20 KB");
    let mrz = Holder::test_cie().mrz_information();
    let mut sm = pace(&card, PaceVariant::EcdhGmAes128P256, 1, mrz.as_bytes()).unwrap();
    read_all(&card, &mut sm, &files, 4096);
    // Short responses under AES SM: at most 223 plaintext bytes come back per READ BINARY.
    let card = card_sim::cie::virtual_cie_with(CieVariant::default(), CardConfig::default(), &b);
    let mut sm = pace(&card, PaceVariant::EcdhGmAes128P256, 2, TEST_CAN.as_bytes()).unwrap();
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    let (d, sw) = sm.cmd(&card, 0xB0, 0x82, 0, &[], Some(256));
    assert_eq!((d.len(), sw), (223, 0x9000));
}

#[test]
fn odd_read_binary_past_32767_under_sm() {
    let b = EmrtdBuilder::cie()
        .face(FaceImage::LargeJpeg)
        .dg2_padding(20_000);
    let card = cie_with(&b);
    let files = b.files();
    let dg2 = files.dg(2).unwrap().to_vec();
    assert!(dg2.len() > 39_000);
    let mut sm = pace(&card, PaceVariant::DhGm3desParam2, 2, TEST_CAN.as_bytes()).unwrap();
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    // Even INS up to 32 767 (P1 bit 8 is the SFI flag), then B1 with DO54 by SFI 02:
    // command data and answer travel in DO85.
    let mut out = Vec::new();
    let (_, sw) = sm.cmd(&card, 0xA4, 0x02, 0x0C, &h("0102"), None);
    assert_eq!(sw, 0x9000);
    while out.len() < dg2.len() {
        let off = out.len();
        let n = 4000.min(dg2.len() - off);
        let (d, sw) = if off + n <= 0x8000 {
            sm.cmd(
                &card,
                0xB0,
                (off >> 8) as u8,
                off as u8,
                &[],
                Some(n.min(0x8000 - off)),
            )
        } else {
            let (d, sw) = sm.cmd(
                &card,
                0xB1,
                0x00,
                0x02,
                &tlv(&[0x54], &(off as u32).to_be_bytes()[1..]),
                Some(n + 4),
            );
            (get(&objects(&d), &[0x53]), sw)
        };
        assert!(sw == 0x9000 || sw == 0x6282, "{sw:04X} at {off}");
        out.extend(d);
    }
    assert_eq!(out, dg2);
}

#[test]
fn wrong_can_is_refused_at_the_token_and_counts_nothing() {
    let card = cie_with(&EmrtdBuilder::cie());
    for _ in 0..5 {
        let r = pace(&card, PaceVariant::DhGm3desParam2, 2, b"654321");
        assert_eq!(r.err(), Some(0x6300));
    }
    assert_eq!(send(&card, &h("00A4040C07A0000002471001")).1, 0x9000);
    assert_eq!(send(&card, &h("00B0810004")), (vec![], 0x6982));
    // PIN (03) is not a PACE password of this chip; the right CAN still works.
    let r = pace(&card, PaceVariant::DhGm3desParam2, 3, b"12345678");
    assert_eq!(r.err(), Some(0x6A88));
    assert!(pace(&card, PaceVariant::DhGm3desParam2, 2, TEST_CAN.as_bytes()).is_ok());
}

#[test]
fn bad_mac_ends_the_session() {
    let card = cie_with(&EmrtdBuilder::cie());
    let mut sm = pace(&card, PaceVariant::DhGm3desParam2, 2, TEST_CAN.as_bytes()).unwrap();
    // Bit 1, not bit 0: DES ignores the parity bit.
    sm.kmac[0] ^= 0x02;
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x6988);
    // The session is gone: protected commands are no longer understood.
    assert_eq!(send(&card, &h("0CB0810004")).1, 0x6882);
}

// ---- chip and active authentication ---------------------------------------------------

#[test]
fn chip_authentication_switches_to_new_aes_keys() {
    let b = EmrtdBuilder::cie()
        .pace_only(&[PaceVariant::EcdhGmAes128P256])
        .chip_auth(Some(ChipAuth::EcdhP256Aes128));
    let card = cie_with(&b);
    let files = b.files();
    let mut sm = pace(&card, PaceVariant::EcdhGmAes128P256, 2, TEST_CAN.as_bytes()).unwrap();
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    let dg14 = sm.read_sfi(&card, 0x0E, 223);
    assert_eq!(Some(&dg14[..]), files.dg(14));
    // The chip's static key: the BIT STRING 00 04... after the prime256v1 OID.
    let at = dg14
        .windows(3)
        .position(|w| w == [0x03, 0x42, 0x00])
        .expect("EC public key bit string");
    let pk_chip = ec_decode(&dg14[at + 3..at + 3 + 65]);
    let sk = scalar(0x77);
    let mse = tlv(&[0x80], &h("04007F00070202030202"));
    let (_, sw) = sm.cmd(&card, 0x22, 0x41, 0xA4, &mse, None);
    assert_eq!(sw, 0x9000);
    let pk = ec_encode(&(ProjectivePoint::GENERATOR * sk));
    let (r, sw) = sm.cmd(
        &card,
        0x86,
        0,
        0,
        &tlv(&[0x7C], &tlv(&[0x80], &pk)),
        Some(256),
    );
    assert_eq!((r, sw), (h("7C00"), 0x9000));
    let k = (pk_chip * sk).to_affine().to_encoded_point(false);
    let mut ca = Sm::new(
        true,
        kdf(k.x().unwrap(), 1),
        kdf(k.x().unwrap(), 2),
        vec![0; 16],
    );
    assert_eq!(ca.read_sfi(&card, 0x01, 223), files.dg(1).unwrap());
}

#[test]
fn cie_dh_chip_authentication_with_set_kat() {
    let b = EmrtdBuilder::cie();
    let card = cie_with(&b);
    let mut sm = pace(&card, PaceVariant::DhGm3desParam2, 2, TEST_CAN.as_bytes()).unwrap();
    let (_, sw) = sm.cmd(&card, 0xA4, 0x04, 0x0C, &emrtd::AID, None);
    assert_eq!(sw, 0x9000);
    let dg14 = sm.read_sfi(&card, 0x0E, 223);
    // id-CA-DH-3DES-CBC-CBC and id-PK-DH with dhpublicnumber parameters.
    assert!(dg14.windows(10).any(|w| w == h("04007F00070202030101")));
    assert!(dg14.windows(7).any(|w| w == h("2A8648CE3E0201")));
    // The public value: the INTEGER inside the BIT STRING `03 82 01 0x 00`.
    let at = dg14
        .windows(2)
        .rposition(|w| w == [0x03, 0x82])
        .expect("bit string");
    let int = objects(&dg14[at + 5..]);
    let y = BigUint::from_bytes_be(&int[0].1);
    let p = BigUint::from_bytes_be(&h(DH_P));
    let x = BigUint::from_bytes_be(&[0x2B; 32]);
    let pk = fixed(&BigUint::from_bytes_be(&h(DH_G)).modpow(&x, &p), 256);
    let (_, sw) = sm.cmd(&card, 0x22, 0x41, 0xA6, &tlv(&[0x91], &pk), None);
    assert_eq!(sw, 0x9000);
    let k = fixed(&y.modpow(&x, &p), 256);
    let mut ca = Sm::new(false, kdf(&k, 1), kdf(&k, 2), vec![0; 8]);
    assert_eq!(ca.read_sfi(&card, 0x0B, 223), b.files().dg(11).unwrap());
}

#[test]
fn active_authentication_iso9796_2() {
    let card = emrtd::virtual_passport_bac(CardConfig::default());
    let info = Holder::icao_specimen_passport().mrz_information();
    let mut sm = bac(&card, &info, &[5; 8], &[6; 16]).unwrap();
    let dg15 = sm.read_sfi(&card, 0x0F, 223);
    let spki = &objects(&dg15)[0].1;
    let key = {
        use rsa::pkcs8::DecodePublicKey;
        rsa::RsaPublicKey::from_public_key_der(spki).unwrap()
    };
    let challenge = h("0123456789ABCDEF");
    let (sig, sw) = sm.cmd(&card, 0x88, 0, 0, &challenge, Some(256));
    assert_eq!(sw, 0x9000);
    let f = BigUint::from_bytes_be(&sig)
        .modpow(
            &BigUint::from_bytes_be(&key.e().to_bytes_be()),
            &BigUint::from_bytes_be(&key.n().to_bytes_be()),
        )
        .to_bytes_be();
    assert_eq!((f[0], f[f.len() - 1]), (0x6A, 0xBC));
    let m1 = &f[1..f.len() - 21];
    let digest = &f[f.len() - 21..f.len() - 1];
    assert_eq!(Sha1::digest([m1, &challenge].concat()).to_vec(), digest);
    // Not before access control.
    let card = emrtd::virtual_passport_bac(CardConfig::default());
    assert_eq!(send(&card, &h("00A4040C07A0000002471001")).1, 0x9000);
    assert_eq!(
        send(
            &card,
            &h("008800000801234567 89ABCDEF00".replace(' ', "").as_str())
        )
        .1,
        0x6982
    );
}

#[test]
fn active_authentication_ecdsa_plain() {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;
    let b = EmrtdBuilder::new(Holder::icao_specimen_passport())
        .active_auth(Some(ActiveAuth::EcdsaP256Sha256));
    let card = b.build(CardConfig::default());
    let info = Holder::icao_specimen_passport().mrz_information();
    let mut sm = bac(&card, &info, &[7; 8], &[8; 16]).unwrap();
    // DG14: ActiveAuthenticationInfo with ecdsa-with-SHA256.
    let dg14 = sm.read_sfi(&card, 0x0E, 223);
    assert!(dg14.windows(8).any(|w| w == h("0606678108010105")));
    assert!(dg14.windows(8).any(|w| w == h("2A8648CE3D040302")));
    let dg15 = sm.read_sfi(&card, 0x0F, 223);
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&objects(&dg15)[0].1).unwrap();
    let challenge = h("F173589974BF40C6");
    let (sig, sw) = sm.cmd(&card, 0x88, 0, 0, &challenge, Some(256));
    assert_eq!((sig.len(), sw), (64, 0x9000));
    let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    key.verify(&challenge, &sig)
        .expect("ECDSA-SHA-256 over the challenge");
}

// ---- passive authentication -----------------------------------------------------------

/// Verify the SOD like an inspection system: CMS signature by the DS, DS chained to the
/// CSCA, messageDigest, and each DG hash. Returns the DG numbers whose hash mismatched.
fn passive_auth(files: &EmrtdFiles) -> Result<Vec<u8>, &'static str> {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use signature::Verifier;
    use x509_cert::Certificate;

    let sod = &objects(&files.sod)[0];
    assert_eq!(sod.0, vec![0x77]);
    let ci = ContentInfo::from_der(&sod.1).map_err(|_| "ContentInfo")?;
    assert_eq!(ci.content_type.to_string(), "1.2.840.113549.1.7.2");
    let sd: SignedData = ci.content.decode_as().map_err(|_| "SignedData")?;
    assert_eq!(
        sd.encap_content_info.econtent_type.to_string(),
        "2.23.136.1.1.1"
    );
    let lds = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("eContent")?
        .decode_as::<der::asn1::OctetString>()
        .map_err(|_| "eContent octets")?
        .into_bytes();
    let ds = match sd.certificates.as_ref().ok_or("certs")?.0.get(0) {
        Some(cms::cert::CertificateChoices::Certificate(c)) => c.clone(),
        _ => return Err("DS certificate"),
    };
    assert_eq!(ds.to_der().unwrap(), emrtd::DS_CERT_DER);
    // DS → CSCA.
    let csca = Certificate::from_der(emrtd::CSCA_CERT_DER).unwrap();
    let key_of = |c: &Certificate| {
        VerifyingKey::<Sha256>::new(
            rsa::RsaPublicKey::from_public_key_der(
                &c.tbs_certificate.subject_public_key_info.to_der().unwrap(),
            )
            .unwrap(),
        )
    };
    let ds_sig = Signature::try_from(ds.signature.raw_bytes()).unwrap();
    key_of(&csca)
        .verify(&ds.tbs_certificate.to_der().unwrap(), &ds_sig)
        .map_err(|_| "DS not issued by the CSCA")?;
    // The SignerInfo: signature over DER(signedAttrs) as a SET.
    let si = sd.signer_infos.0.get(0).ok_or("SignerInfo")?;
    let attrs = si.signed_attrs.as_ref().ok_or("signedAttrs")?;
    let md = attrs
        .iter()
        .find(|a| a.oid.to_string() == "1.2.840.113549.1.9.4")
        .ok_or("messageDigest")?;
    let md = md
        .values
        .get(0)
        .unwrap()
        .decode_as::<der::asn1::OctetString>()
        .unwrap();
    assert_eq!(
        md.as_bytes(),
        Sha256::digest(&lds).as_slice(),
        "messageDigest"
    );
    let signed = attrs.to_der().unwrap();
    assert_eq!(signed[0], 0x31);
    let sig = Signature::try_from(si.signature.as_bytes()).unwrap();
    key_of(&ds)
        .verify(&signed, &sig)
        .map_err(|_| "SOD signature")?;
    // LDSSecurityObject: version, hash algorithm, { dg number, hash }.
    let lds_seq = objects(&lds);
    let body = objects(&lds_seq[0].1);
    assert_eq!(body[1].1, tlv(&[0x06], &h("608648016503040201")), "SHA-256");
    let mut bad = Vec::new();
    for (_, entry) in objects(&body[2].1) {
        let e = objects(&entry);
        let n = e[0].1[0];
        let dg = files.dg(n).ok_or("hashed DG missing")?;
        if Sha256::digest(dg).as_slice() != &e[1].1[..] {
            bad.push(n);
        }
    }
    Ok(bad)
}

#[test]
fn sod_verifies_and_forgeries_show() {
    let good = EmrtdBuilder::cie().files();
    assert_eq!(passive_auth(&good), Ok(vec![]));
    let forged_dg = EmrtdBuilder::cie().forge_dg(11).files();
    assert_eq!(passive_auth(&forged_dg), Ok(vec![11]));
    assert_ne!(forged_dg.dg(11), good.dg(11));
    let forged_sig = EmrtdBuilder::cie().forge_sod_signature().files();
    assert_eq!(passive_auth(&forged_sig), Err("SOD signature"));
}

#[test]
fn cie_mrz_is_a_valid_td1() {
    fn cd(s: &str) -> u32 {
        s.bytes()
            .zip([7, 3, 1].iter().cycle())
            .map(|(c, w)| {
                let v = match c {
                    b'0'..=b'9' => (c - b'0') as u32,
                    b'A'..=b'Z' => (c - b'A') as u32 + 10,
                    _ => 0,
                };
                v * w
            })
            .sum::<u32>()
            % 10
    }
    let mrz = Holder::test_cie().mrz();
    let (l1, l2) = (&mrz[..30], &mrz[30..60]);
    assert_eq!(&l1[..14], "C<ITACA00000AA");
    let digit = |s: &str, i: usize| (s.as_bytes()[i] - b'0') as u32;
    assert_eq!(cd(&l1[5..14]), digit(l1, 14));
    assert_eq!(cd(&l2[0..6]), digit(l2, 6));
    assert_eq!(cd(&l2[8..14]), digit(l2, 14));
    let composite = format!("{}{}{}{}", &l1[5..30], &l2[0..7], &l2[8..15], &l2[18..29]);
    assert_eq!(cd(&composite), digit(l2, 29));
    assert_eq!(&mrz[60..], "TESTER<<MARIA<<<<<<<<<<<<<<<<<");
}
