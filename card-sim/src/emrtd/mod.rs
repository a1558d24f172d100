//! The chip side of ICAO Doc 9303 (eMRTD, LDS1) for the virtual cards: the eMRTD
//! application (AID `A0 00 00 02 47 10 01`) with EF.COM, EF.SOD, DG1, DG2, DG11, DG12, DG14,
//! DG15, EF.CardAccess in the MF, and the chip's protocols:
//!
//! | Protocol | Commands | Notes |
//! |---|---|---|
//! | BAC (§4.3) | GET CHALLENGE `00 84 00 00 08`, EXTERNAL AUTHENTICATE `00 82 00 00 28` | after selecting the application; `6300` on a wrong MRZ |
//! | PACE GM (§4.4) | MSE:Set AT `00 22 C1 A4 {80 OID, 83 01|02, [84 id]}`, GENERAL AUTHENTICATE `10/00 86 00 00` ×4 | DH-GM-3DES param 2, DH-GM-AES-128 param 0, ECDH-GM-AES-128 on P-256 (12) or brainpoolP256r1 (13); optional CAR (`87`) with the token; MRZ (`01`) or CAN (`02`); `6A88` other references (PIN, PUK); `6300` at the token step on a wrong password |
//! | SM (§9.8) | CLA `0C`, DO `87`/`85`, `97`, `99`, `8E` | 3DES/retail MAC or AES/CMAC; a bad MAC answers `6988` in clear and ends the session, so does any clear command after SM was used |
//! | CA v1 (§6.2) | DH: MSE:Set KAT `0C 22 41 A6 {91 PK}`; ECDH: MSE:Set AT `0C 22 41 A4 {80 id-CA-ECDH-AES-CBC-CMAC-128}` + GENERAL AUTHENTICATE `7C{80 PK}` | under SM; new keys (3DES / AES), SSC 0, from the next command |
//! | AA (§6.1) | INTERNAL AUTHENTICATE `0C 88 00 00 {8-byte challenge}` | RSA-1024 ISO 9796-2 scheme 1 SHA-1, or ECDSA P-256 SHA-256 plain `r‖s` (DG15; DG14 names the ECDSA hash) |
//!
//! Every file of the application answers `6982` until BAC or PACE has succeeded and is
//! read under that SM. A wrong CAN/MRZ costs nothing: 9303 defines no retry counter for
//! them (real chips slow down after failures instead, emrtd.md §1 trap 8; only an eID PIN
//! gets suspended/blocked, and that needs the CAN to resume). **All data is synthetic.**

// Protocol modules stay crate-private: the core's reader must not borrow the chip's
// protocol code (each side checks the other).
pub(crate) mod aa;
pub(crate) mod bac;
pub(crate) mod brainpool;
pub(crate) mod ca;
pub(crate) mod crypto;
pub(crate) mod lds;
pub(crate) mod pace;
pub(crate) mod sm;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

use crate::card::{CardConfig, VirtualCard};
use crate::command::Command;
use crate::fs::{Access, Df, Ef, FileSystem};
pub use ca::ChipAuth;
pub use lds::{
    FACE_JP2, FACE_JPEG, FACE_JPEG_LARGE, FaceImage, Holder, MrzFormat, check_digit,
    deviation_list, master_list,
};
pub use pace::{PaceVariant, PasswordRef};
use sm::SmSession;

/// ICAO eMRTD LDS1 application AID.
pub const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
/// EF.CardAccess (MF, SFI 1C).
pub const EF_CARD_ACCESS: u16 = 0x011C;
/// EF.COM (SFI 1E).
pub const EF_COM: u16 = 0x011E;
/// EF.SOD (SFI 1D).
pub const EF_SOD: u16 = 0x011D;
/// The CAN of the virtual CIE.
pub const TEST_CAN: &str = "123456";
/// The test CSCA certificate (DER) that issued the Document Signer of every EF.SOD.
pub const CSCA_CERT_DER: &[u8] = crate::ias::pki::TEST_CSCA_CERT_DER;
/// The test Document Signer certificate (DER), also inside each EF.SOD.
pub const DS_CERT_DER: &[u8] = crate::ias::pki::DS_CERT_DER;
/// The Active Authentication key (RSA-1024), PKCS#8 DER; DG15 holds its public half.
const AA_KEY: &[u8] = include_bytes!("../../testdata/emrtd_aa_key.pk8.der");

/// FID of data group `n` (`01nn`).
pub fn dg_fid(n: u8) -> u16 {
    0x0100 | u16::from(n)
}

/// Instructions the eMRTD application handles.
pub(crate) const EMRTD_INS: [u8; 5] = [0x22, 0x84, 0x82, 0x86, 0x88];

/// How a virtual eMRTD is made. Build a card with [`EmrtdBuilder::build`] (eMRTD only) or
/// [`crate::cie::virtual_cie_with`] (the CIE's IAS application plus this).
#[derive(Debug, Clone)]
pub struct EmrtdBuilder {
    holder: Holder,
    can: Option<String>,
    pace: Vec<PaceVariant>,
    bac: bool,
    face: FaceImage,
    active_auth: Option<ActiveAuth>,
    chip_auth: Option<ChipAuth>,
    forge_dgs: Vec<u8>,
    forge_sod_signature: bool,
    bac_randomness: Option<([u8; 8], [u8; 16])>,
    rng_seed: u64,
    only_dgs: Option<Vec<u8>>,
    lds_version: [u8; 4],
    pace_script: Vec<u8>,
    car: Option<Vec<u8>>,
    dg2_padding: usize,
}

impl EmrtdBuilder {
    /// A chip for `holder`: BAC on, no PACE, JPEG face, RSA AA, no CA.
    pub fn new(holder: Holder) -> Self {
        Self {
            holder,
            can: None,
            pace: Vec::new(),
            bac: true,
            face: FaceImage::Jpeg,
            active_auth: Some(ActiveAuth::RsaIso9796_2),
            chip_auth: None,
            forge_dgs: Vec::new(),
            forge_sod_signature: false,
            bac_randomness: None,
            rng_seed: 0x9303_0011,
            only_dgs: None,
            lds_version: *b"0107",
            pace_script: Vec::new(),
            car: None,
            dg2_padding: 0,
        }
    }

    /// The virtual CIE's chip: test CIE holder, CAN [`TEST_CAN`], PACE DH-GM-3DES param 2
    /// (as the real CIE's EF.CardAccess), BAC, JPEG 2000 face, DH Chip Authentication (as
    /// the CIE's DG14), AA on (whether real CIEs carry DG15 is unverified).
    pub fn cie() -> Self {
        Self::new(Holder::test_cie())
            .can(TEST_CAN)
            .pace(PaceVariant::DhGm3desParam2)
            .face(FaceImage::Jpeg2000)
            .chip_auth(Some(ChipAuth::Dh3desParam2))
    }

    /// Append `n` zero bytes after the DG2 image (e.g. to exceed 32 767 bytes and need
    /// odd-INS READ BINARY).
    pub fn dg2_padding(mut self, n: usize) -> Self {
        self.dg2_padding = n;
        self
    }

    /// Set the CAN (enables password reference `02`).
    pub fn can(mut self, can: &str) -> Self {
        self.can = Some(can.to_string());
        self
    }

    /// Offer a PACE variant (in EF.CardAccess order).
    pub fn pace(mut self, variant: PaceVariant) -> Self {
        if !self.pace.contains(&variant) {
            self.pace.push(variant);
        }
        self
    }

    /// Replace the offered PACE variants (empty: no PACE, no EF.CardAccess).
    pub fn pace_only(mut self, variants: &[PaceVariant]) -> Self {
        self.pace = variants.to_vec();
        self
    }

    /// Accept BAC (true by default).
    pub fn bac(mut self, on: bool) -> Self {
        self.bac = on;
        self
    }

    /// The DG2 image.
    pub fn face(mut self, face: FaceImage) -> Self {
        self.face = face;
        self
    }

    /// Active Authentication (DG15 + INTERNAL AUTHENTICATE); `None`: no AA, no DG15.
    pub fn active_auth(mut self, aa: Option<ActiveAuth>) -> Self {
        self.active_auth = aa;
        self
    }

    /// Chip Authentication (DG14 key + MSE:Set AT / GENERAL AUTHENTICATE or Set KAT);
    /// `None`: no CA.
    pub fn chip_auth(mut self, ca: Option<ChipAuth>) -> Self {
        self.chip_auth = ca;
        self
    }

    /// Serve data group `n` altered after the SOD was computed (hash mismatch).
    pub fn forge_dg(mut self, n: u8) -> Self {
        self.forge_dgs.push(n);
        self
    }

    /// Corrupt the SOD's signature value.
    pub fn forge_sod_signature(mut self) -> Self {
        self.forge_sod_signature = true;
        self
    }

    /// Fix the chip's BAC randomness (RND.IC of every GET CHALLENGE, K.IC), e.g. to the
    /// 9303-11 App. D.3 values `4608F91988702212` / `0B4F80323EB3191CB04970CB4052790B`.
    pub fn bac_randomness(mut self, rnd_ic: [u8; 8], k_ic: [u8; 16]) -> Self {
        self.bac_randomness = Some((rnd_ic, k_ic));
        self
    }

    /// The LDS version in EF.COM (`5F01`, 4 digits; default `0107`).
    pub fn lds_version(mut self, version: [u8; 4]) -> Self {
        self.lds_version = version;
        self
    }

    /// Carry only these data groups (of 1, 2, 11, 12, 14, 15); EF.COM and EF.SOD list
    /// just them. `&[1, 2]` with LDS version `0106` gives the EF.COM of the 9303-11
    /// App. D.4 example.
    pub fn data_groups(mut self, dgs: &[u8]) -> Self {
        self.only_dgs = Some(dgs.to_vec());
        self
    }

    /// Bytes the chip's PACE randomness yields first, in draw order: the nonce (8 bytes
    /// for 3DES, 16 for AES), the mapping key and the ephemeral key (32 bytes each, reduced
    /// mod the order), e.g. 9303-11 App. G.1's `s ‖ SK_map,IC ‖ SK_IC`.
    pub fn pace_randomness(mut self, script: &[u8]) -> Self {
        self.pace_script = script.to_vec();
        self
    }

    /// Return this CVCA reference (CAR) in `87` with the PACE token, as chips that support
    /// Terminal Authentication do (9303-11 App. G.2 shows `DETESTCVCA00003`).
    pub fn pace_car(mut self, car: &[u8]) -> Self {
        self.car = Some(car.to_vec());
        self
    }

    /// Seed of the chip's random generator.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = seed;
        self
    }

    /// The holder.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The files this chip carries (computed; deterministic for a builder).
    pub fn files(&self) -> EmrtdFiles {
        let h = &self.holder;
        let mut dgs: Vec<(u8, Vec<u8>)> = vec![
            (1, lds::dg1(h)),
            (2, lds::dg2(self.face, h.sex, self.dg2_padding)),
            (11, lds::dg11(h)),
            (12, lds::dg12(h)),
        ];
        let pace_infos: Vec<u8> = self.pace.iter().flat_map(|v| v.pace_info()).collect();
        let mut dg14 = Vec::new();
        if let Some(ca) = self.chip_auth {
            dg14.extend(ca.security_infos());
        }
        if self.active_auth == Some(ActiveAuth::EcdsaP256Sha256) {
            // ActiveAuthenticationInfo: aaProtocolObject, v1, ecdsa-with-SHA256.
            dg14.extend(crate::ber::tlv(
                &[0x30],
                &[
                    crate::ber::tlv(&[0x06], &[0x67, 0x81, 0x08, 0x01, 0x01, 0x05]),
                    lds::der_int(1),
                    crate::ber::tlv(&[0x06], &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]),
                ]
                .concat(),
            ));
        }
        // 9303-11 §9.2: the PACE SecurityInfos of EF.CardAccess are repeated in DG14 so
        // passive authentication covers them.
        dg14.extend_from_slice(&pace_infos);
        if !dg14.is_empty() {
            dgs.push((
                14,
                crate::ber::tlv(&[0x6E], &crate::ber::tlv(&[0x31], &dg14)),
            ));
        }
        if let Some(aa) = self.active_auth {
            dgs.push((15, crate::ber::tlv(&[0x6F], &aa.spki())));
        }
        if let Some(only) = &self.only_dgs {
            dgs.retain(|(n, _)| only.contains(n));
        }
        let tags: Vec<u8> = dgs
            .iter()
            .map(|(n, _)| match n {
                1 => 0x61,
                2 => 0x75,
                11 => 0x6B,
                12 => 0x6C,
                14 => 0x6E,
                _ => 0x6F,
            })
            .collect();
        let sod = lds::ef_sod(&dgs, DS_CERT_DER, self.forge_sod_signature);
        for (n, bytes) in dgs.iter_mut() {
            if self.forge_dgs.contains(n)
                && let Some(b) = bytes.last_mut()
            {
                *b ^= 0x01;
            }
        }
        EmrtdFiles {
            card_access: (!pace_infos.is_empty()).then(|| crate::ber::tlv(&[0x31], &pace_infos)),
            com: lds::ef_com(&self.lds_version, &tags),
            sod,
            dgs,
        }
    }

    /// The eMRTD application DF and, if PACE is offered, EF.CardAccess for the MF.
    pub(crate) fn file_tree(&self) -> (Df, Option<Ef>) {
        let f = self.files();
        let ef = |fid: u16, sfi: u8, data: Vec<u8>| {
            Ef::new(fid, data)
                .with_sfi(sfi)
                .with_read_access(Access::AfterEmrtdAccessControl)
        };
        let mut df = Df::application(&AID)
            .with_ef(ef(EF_COM, 0x1E, f.com))
            .with_ef(ef(EF_SOD, 0x1D, f.sod));
        for (n, bytes) in f.dgs {
            df = df.with_ef(ef(dg_fid(n), n, bytes));
        }
        let card_access = f
            .card_access
            .map(|ca| Ef::new(EF_CARD_ACCESS, ca).with_sfi(0x1C));
        (df, card_access)
    }

    /// The chip's protocol state machine.
    pub(crate) fn app(&self) -> EmrtdApp {
        EmrtdApp {
            mrz_information: self.holder.mrz_information(),
            can: self.can.clone(),
            pace: self.pace.clone(),
            bac: self.bac,
            aa_key: self.active_auth.map(ActiveAuth::key),
            chip_auth: self.chip_auth,
            bac_randomness: self.bac_randomness,
            car: self.car.clone(),
            rng: ChaCha20Rng::seed_from_u64(self.rng_seed),
            pace_rng: ScriptedRng {
                script: self.pace_script.clone(),
                pos: 0,
                rest: ChaCha20Rng::seed_from_u64(self.rng_seed ^ 0x0050_4143_4500),
            },
            s: Session::default(),
        }
    }

    /// A card with only the eMRTD application (MF: EF.CardAccess if PACE; the application).
    pub fn build(&self, config: CardConfig) -> VirtualCard {
        let (df, card_access) = self.file_tree();
        let mut mf = Df::mf();
        if let Some(ca) = card_access {
            mf = mf.with_ef(ca);
        }
        VirtualCard::with_emrtd(FileSystem::new(mf.with_df(df)), config, self.app())
    }
}

/// The expected contents of a virtual eMRTD, for tests to assert against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmrtdFiles {
    /// EF.CardAccess (`31` SecurityInfos), when PACE is offered.
    pub card_access: Option<Vec<u8>>,
    /// EF.COM.
    pub com: Vec<u8>,
    /// EF.SOD (`77` ‖ CMS SignedData).
    pub sod: Vec<u8>,
    /// The data groups as served (number, bytes); forged ones already altered.
    pub dgs: Vec<(u8, Vec<u8>)>,
}

impl EmrtdFiles {
    /// The bytes of data group `n`.
    pub fn dg(&self, n: u8) -> Option<&[u8]> {
        self.dgs
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, b)| b.as_slice())
    }
}

/// A passport with BAC only (no PACE, no EF.CardAccess): the ICAO specimen holder, so BAC
/// keys match 9303-11 App. D; AA on, JPEG face.
pub fn virtual_passport_bac(config: CardConfig) -> VirtualCard {
    EmrtdBuilder::new(Holder::icao_specimen_passport()).build(config)
}

/// The Active Authentication a virtual chip offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveAuth {
    /// RSA-1024, ISO/IEC 9796-2 scheme 1 with SHA-1 (most passports).
    RsaIso9796_2,
    /// ECDSA P-256 with SHA-256, plain `r ‖ s`; DG14 names the hash.
    EcdsaP256Sha256,
}

/// The private half of an AA key.
#[derive(Debug, Clone)]
enum AaKey {
    Rsa(Box<RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

/// The ECDSA AA key (raw P-256 scalar).
const AA_EC_KEY: &[u8; 32] = include_bytes!("../../testdata/emrtd_aa_p256_key.bin");

impl ActiveAuth {
    // Committed, tested fixtures; a broken one is a build defect.
    #[allow(clippy::expect_used)]
    fn key(self) -> AaKey {
        match self {
            ActiveAuth::RsaIso9796_2 => AaKey::Rsa(Box::new(
                RsaPrivateKey::from_pkcs8_der(AA_KEY).expect("valid AA key fixture"),
            )),
            ActiveAuth::EcdsaP256Sha256 => AaKey::Ec(
                p256::ecdsa::SigningKey::from_slice(AA_EC_KEY).expect("valid AA key fixture"),
            ),
        }
    }

    /// DG15 content: the SubjectPublicKeyInfo of the AA key.
    #[allow(clippy::expect_used)]
    pub fn spki(self) -> Vec<u8> {
        use rsa::pkcs8::EncodePublicKey;
        match self.key() {
            AaKey::Rsa(k) => rsa::RsaPublicKey::from(k.as_ref())
                .to_public_key_der()
                .expect("encodable RSA key")
                .into_vec(),
            AaKey::Ec(k) => k
                .verifying_key()
                .to_public_key_der()
                .expect("encodable EC key")
                .into_vec(),
        }
    }
}

/// What a protocol step leaves behind for the card.
#[derive(Debug, Default)]
struct Session {
    challenge: Option<[u8; 8]>,
    pace_selected: Option<(PaceVariant, PasswordRef)>,
    pace: Option<pace::PaceRun>,
    ca_selected: bool,
    sm: Option<SmSession>,
    /// A session that replaces `sm` once the current response has been protected.
    next_sm: Option<SmSession>,
    sm_used: bool,
    authenticated: bool,
}

/// The eMRTD application's protocol state; the files live in the card's file system.
#[derive(Debug)]
pub(crate) struct EmrtdApp {
    mrz_information: String,
    can: Option<String>,
    pace: Vec<PaceVariant>,
    bac: bool,
    aa_key: Option<AaKey>,
    chip_auth: Option<ChipAuth>,
    bac_randomness: Option<([u8; 8], [u8; 16])>,
    car: Option<Vec<u8>>,
    rng: ChaCha20Rng,
    pace_rng: ScriptedRng,
    s: Session,
}

/// Random bytes that start with a fixed script (to replay worked examples), then go on
/// from a seeded generator.
#[derive(Debug)]
struct ScriptedRng {
    script: Vec<u8>,
    pos: usize,
    rest: ChaCha20Rng,
}

impl RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_be_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_be_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest.iter_mut() {
            *d = match self.script.get(self.pos) {
                Some(b) => {
                    self.pos += 1;
                    *b
                }
                None => {
                    let mut one = [0u8; 1];
                    self.rest.fill_bytes(&mut one);
                    one[0]
                }
            };
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

mod sw {
    pub const OK: u16 = 0x9000;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY: u16 = 0x6982;
    pub const CONDITIONS: u16 = 0x6985;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const REF_NOT_FOUND: u16 = 0x6A88;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
}

impl EmrtdApp {
    pub(crate) fn power_cycle(&mut self) {
        self.s = Session::default();
    }

    /// Whether protected commands can be unwrapped now.
    pub(crate) fn sm_established(&self) -> bool {
        self.s.sm.is_some()
    }

    /// BAC or PACE succeeded in this session (and SM is still up).
    pub(crate) fn authenticated(&self) -> bool {
        self.s.authenticated && self.s.sm.is_some()
    }

    /// The SM cipher's block size, when SM is up.
    pub(crate) fn sm_block(&self) -> Option<usize> {
        self.s.sm.as_ref().map(|s| s.cipher().block())
    }

    pub(crate) fn unwrap(&mut self, cmd: &Command) -> Result<Command, u16> {
        let Some(sm) = self.s.sm.as_mut() else {
            return Err(sm::sw::SM_INCORRECT);
        };
        match sm.unwrap_command(cmd) {
            Ok(plain) => {
                self.s.sm_used = true;
                Ok(plain)
            }
            Err(e) => {
                self.s = Session::default();
                Err(e)
            }
        }
    }

    pub(crate) fn wrap(&mut self, ins: u8, data: &[u8], status: u16) -> Vec<u8> {
        match self.s.sm.as_mut() {
            Some(sm) => sm.wrap_response(ins & 1 == 1, data, status),
            None => data.to_vec(),
        }
    }

    /// After the response went out: a session agreed by this command takes over.
    pub(crate) fn finish(&mut self) {
        if let Some(next) = self.s.next_sm.take() {
            self.s.sm = Some(next);
            self.s.sm_used = false;
            self.s.authenticated = true;
        }
    }

    /// A command in clear (not GET RESPONSE): an SM session ends (9303-11 §9.8: the chip
    /// aborts SM on a plain command); a PACE run ends unless it is a GA.
    pub(crate) fn on_clear_command(&mut self, ins: u8) {
        if self.s.sm.is_some() {
            self.s = Session::default();
        }
        if ins != 0x86 {
            self.s.pace = None;
        }
    }

    pub(crate) fn command(&mut self, cmd: &Command, secure: bool) -> Result<(Vec<u8>, u16), u16> {
        match cmd.ins {
            0x22 => self.mse_set(cmd, secure).map(|()| (Vec::new(), sw::OK)),
            0x86 => self.general_authenticate(cmd, secure),
            0x84 => self.get_challenge(cmd),
            0x82 => self.external_authenticate(cmd, secure),
            0x88 => self.internal_authenticate(cmd, secure),
            _ => Err(sw::INS_NOT_SUPPORTED),
        }
    }

    fn mse_set(&mut self, cmd: &Command, secure: bool) -> Result<(), u16> {
        let tlvs = crate::ber::parse_all(&cmd.data).ok_or(sw::WRONG_DATA)?;
        let get = |tag: u8| crate::ber::find(&tlvs, &[tag]);
        match cmd.p1p2() {
            // PACE.
            0xC1A4 => {
                self.s.pace = None;
                self.s.pace_selected = None;
                let oid = get(0x80).ok_or(sw::WRONG_DATA)?;
                // Two curves share an OID: the parameter id (84) tells them apart; without
                // it the first offered variant with the OID applies.
                let id = get(0x84);
                let variant = *self
                    .pace
                    .iter()
                    .find(|v| v.oid() == oid && id.is_none_or(|id| id == [v.parameter_id()]))
                    .ok_or(sw::WRONG_DATA)?;
                let reference = match get(0x83) {
                    Some([0x01]) => PasswordRef::Mrz,
                    Some([0x02]) if self.can.is_some() => PasswordRef::Can,
                    // PIN/PUK (03/04) and anything else: as the CIE answers for the PIN.
                    Some(_) => return Err(sw::REF_NOT_FOUND),
                    None => return Err(sw::WRONG_DATA),
                };
                self.s.pace_selected = Some((variant, reference));
                Ok(())
            }
            // Chip Authentication, DH/3DES: Set KAT does the key agreement at once.
            0x41A6 if self.chip_auth == Some(ChipAuth::Dh3desParam2) => {
                if !(secure && self.authenticated()) {
                    return Err(sw::SECURITY);
                }
                if get(0x84).is_some_and(|k| k != [0x01] && k != [0x00]) {
                    return Err(sw::REF_NOT_FOUND);
                }
                let pk = get(0x91).ok_or(sw::WRONG_DATA)?;
                self.s.next_sm = Some(ca::key_agreement_dh(pk)?);
                Ok(())
            }
            // Chip Authentication, ECDH/AES: Set AT, then GA.
            0x41A4 if self.chip_auth == Some(ChipAuth::EcdhP256Aes128) => {
                if !(secure && self.authenticated()) {
                    return Err(sw::SECURITY);
                }
                if get(0x80) != Some(&ca::oid()[..]) {
                    return Err(sw::WRONG_DATA);
                }
                if get(0x84).is_some_and(|k| k != [0x01] && k != [0x00]) {
                    return Err(sw::REF_NOT_FOUND);
                }
                self.s.ca_selected = true;
                Ok(())
            }
            _ => Err(sw::WRONG_P1P2),
        }
    }

    fn general_authenticate(&mut self, cmd: &Command, secure: bool) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if self.s.ca_selected && secure {
            self.s.ca_selected = false;
            let (data, next) = ca::authenticate(&cmd.data)?;
            self.s.next_sm = Some(next);
            return Ok((data, sw::OK));
        }
        let run = match self.s.pace.take() {
            Some(run) => run,
            None => {
                let (variant, reference) = self.s.pace_selected.ok_or(sw::CONDITIONS)?;
                let password = match reference {
                    PasswordRef::Can => self.can.clone().unwrap_or_default(),
                    PasswordRef::Mrz => self.mrz_information.clone(),
                };
                pace::PaceRun::new(variant, reference, password.as_bytes(), self.car.clone())
            }
        };
        let (next, result) = run.step(&cmd.data, &mut self.pace_rng);
        self.s.pace = next;
        match result? {
            pace::Outcome::Continue(data) => Ok((data, sw::OK)),
            pace::Outcome::Done(data, session) => {
                self.s.pace_selected = None;
                self.s.next_sm = Some(session);
                Ok((data, sw::OK))
            }
        }
    }

    fn get_challenge(&mut self, cmd: &Command) -> Result<(Vec<u8>, u16), u16> {
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.le != Some(8) || !cmd.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let rnd = match self.bac_randomness {
            Some((rnd, _)) => rnd,
            None => {
                let mut r = [0u8; 8];
                self.rng.fill_bytes(&mut r);
                r
            }
        };
        self.s.challenge = Some(rnd);
        Ok((rnd.to_vec(), sw::OK))
    }

    /// BAC mutual authentication.
    fn external_authenticate(
        &mut self,
        cmd: &Command,
        secure: bool,
    ) -> Result<(Vec<u8>, u16), u16> {
        if !self.bac || secure {
            return Err(sw::CONDITIONS);
        }
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let rnd_ic = self.s.challenge.take().ok_or(sw::CONDITIONS)?;
        let k_ic = match self.bac_randomness {
            Some((_, k)) => k,
            None => {
                let mut k = [0u8; 16];
                self.rng.fill_bytes(&mut k);
                k
            }
        };
        let keys = bac::document_keys(&self.mrz_information);
        let (data, session) = bac::mutual_authenticate(&keys, &rnd_ic, &k_ic, &cmd.data)?;
        self.s.next_sm = Some(session);
        Ok((data, sw::OK))
    }

    /// Active Authentication.
    fn internal_authenticate(
        &mut self,
        cmd: &Command,
        secure: bool,
    ) -> Result<(Vec<u8>, u16), u16> {
        let Some(key) = self.aa_key.as_ref() else {
            return Err(sw::INS_NOT_SUPPORTED);
        };
        if !(secure && self.authenticated()) {
            return Err(sw::SECURITY);
        }
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if cmd.data.len() != 8 {
            return Err(sw::WRONG_LENGTH);
        }
        let sig = match key {
            AaKey::Rsa(k) => {
                let mut rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
                aa::sign(k, &cmd.data, &mut rng)
            }
            AaKey::Ec(k) => aa::sign_ecdsa(k, &cmd.data),
        };
        Ok((sig, sw::OK))
    }
}
