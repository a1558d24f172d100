//! The module's logic against card-sim's virtual CIE in-process (no pcscd): slots, token
//! flags true to the card's PIN counter, objects, login, signatures checked with RustCrypto's
//! `rsa`, and a card pulled mid-session. The same module through real pcscd and OpenSC is
//! `tests/pkcs11/run.sh`.

use card_sim::VirtualCard;
use cie_companion_pkcs11::card::{Connection, ReaderState, Readers};
use cie_companion_pkcs11::module::{Module, PssParams};
use cie_companion_pkcs11::objects::{AttrValue, H_CERT, H_PRIVATE, H_PROFILE, H_PUBLIC};
use cie_core::transport::{CardTransport, TransportError, TransportInfo};
use cryptoki_sys as ck;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const PIN: &[u8] = b"12345678";

/// The virtual card behind a reader, which the test can pull out.
struct Pullable {
    card: Arc<VirtualCard>,
    pulled: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl CardTransport for Pullable {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        if self.pulled.load(Ordering::SeqCst) {
            return Err(TransportError::TagLost);
        }
        self.card.transmit(apdu).await
    }
    fn info(&self) -> TransportInfo {
        self.card.info()
    }
}

/// Reader names and the card in each (`None` = empty reader).
type ReaderList = Vec<(String, Option<Arc<VirtualCard>>)>;

#[derive(Clone, Default)]
struct SimReaders {
    readers: Arc<Mutex<ReaderList>>,
    pulled: Arc<AtomicBool>,
}

impl Readers for SimReaders {
    fn list(&mut self) -> Result<Vec<ReaderState>, ck::CK_RV> {
        let r = self.readers.lock().map_err(|_| ck::CKR_GENERAL_ERROR)?;
        Ok(r.iter()
            .map(|(name, card)| ReaderState {
                name: name.clone(),
                card_present: card.is_some(),
            })
            .collect())
    }

    fn connect(&mut self, name: &str) -> Result<Connection, ck::CK_RV> {
        let r = self.readers.lock().map_err(|_| ck::CKR_GENERAL_ERROR)?;
        let (_, card) = r
            .iter()
            .find(|(n, _)| n == name)
            .ok_or(ck::CKR_SLOT_ID_INVALID)?;
        let card = card.clone().ok_or(ck::CKR_TOKEN_NOT_PRESENT)?;
        Ok(Connection::unshared(Arc::new(Pullable {
            card,
            pulled: self.pulled.clone(),
        })))
    }
}

fn virtual_cie() -> Arc<VirtualCard> {
    Arc::new(card_sim::cie::virtual_cie_with(
        card_sim::CieVariant::default(),
        card_sim::CardConfig::default(),
        &card_sim::emrtd::EmrtdBuilder::cie(),
    ))
}

/// A module with reader "A" empty and reader "B" holding a virtual CIE.
fn setup() -> (Module, SimReaders, Arc<VirtualCard>) {
    let card = virtual_cie();
    let readers = SimReaders::default();
    readers.readers.lock().expect("lock").extend([
        ("A".to_string(), None),
        ("B".to_string(), Some(card.clone())),
    ]);
    (Module::new(Box::new(readers.clone())), readers, card)
}

fn value(
    m: &mut Module,
    h: ck::CK_SESSION_HANDLE,
    obj: ck::CK_OBJECT_HANDLE,
    ty: ck::CK_ULONG,
) -> Vec<u8> {
    let o = m.object(h, obj).expect("object");
    match o.get(ty) {
        AttrValue::Value(v) => v.to_vec(),
        other => panic!("attribute {ty:#x}: {other:?}"),
    }
}

fn ulong(v: ck::CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

#[test]
fn slots_are_readers_with_stable_ids() {
    let (mut m, readers, _card) = setup();
    assert_eq!(m.slot_list(false, true), vec![1, 2]);
    assert_eq!(m.slot_list(true, true), vec![2]);
    assert_eq!(m.slot_info(2), Ok(("B".into(), true)));
    // A reader unplugged keeps its id (shown without a card); a new one gets the next id.
    {
        let mut r = readers.readers.lock().expect("lock");
        r.remove(0);
        r.push(("C".into(), None));
    }
    assert_eq!(m.slot_list(false, true), vec![1, 2, 3]);
    assert_eq!(m.slot_info(1), Ok(("A".into(), false)));
    assert_eq!(m.slot_info(3), Ok(("C".into(), false)));
    assert_eq!(m.slot_info(9), Err(ck::CKR_SLOT_ID_INVALID));
    assert_eq!(m.token_info(1).err(), Some(ck::CKR_SLOT_ID_INVALID));
}

#[test]
fn token_objects_and_signatures() {
    let (mut m, _readers, card) = setup();
    m.slot_list(false, true);
    let info = m.token_info(2).expect("token");
    assert_eq!(info.label, "CIE TSTTST80A01H501X");
    assert_eq!(info.serial, "000011112222");
    assert_eq!(info.flags & ck::CKF_LOGIN_REQUIRED, ck::CKF_LOGIN_REQUIRED);
    assert_eq!(info.flags & ck::CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(
        m.open_session(2, 0),
        Err(ck::CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    );
    let h = m.open_session(2, ck::CKF_SERIAL_SESSION).expect("session");

    // Before login: certificate, public key, profile; no private key.
    m.find_init(h, &[]).expect("find");
    let all = m.find(h, 10).expect("found");
    m.find_final(h).expect("final");
    assert_eq!(all, vec![H_CERT, H_PUBLIC, H_PROFILE]);
    m.find_init(h, &[(ck::CKA_CLASS, ulong(ck::CKO_PRIVATE_KEY))])
        .expect("find");
    assert_eq!(m.find(h, 10), Ok(vec![]));
    m.find_final(h).expect("final");
    let id = value(&mut m, h, H_CERT, ck::CKA_ID);
    assert_eq!(value(&mut m, h, H_PUBLIC, ck::CKA_ID), id);
    let modulus = value(&mut m, h, H_PUBLIC, ck::CKA_MODULUS);
    let exponent = value(&mut m, h, H_PUBLIC, ck::CKA_PUBLIC_EXPONENT);
    assert_eq!(modulus.len(), 256);
    assert_eq!(
        m.sign_init(h, ck::CKM_RSA_PKCS, None, H_PRIVATE),
        Err(ck::CKR_USER_NOT_LOGGED_IN)
    );

    // Login: the private key appears with the same CKA_ID and never shows its secrets.
    m.login(h, ck::CKU_USER, Some(PIN)).expect("login");
    assert_eq!(
        m.login(h, ck::CKU_USER, Some(PIN)),
        Err(ck::CKR_USER_ALREADY_LOGGED_IN)
    );
    m.find_init(h, &[(ck::CKA_ID, id.clone())]).expect("find");
    assert_eq!(m.find(h, 10), Ok(vec![H_CERT, H_PUBLIC, H_PRIVATE]));
    m.find_final(h).expect("final");
    let private = m.object(h, H_PRIVATE).expect("private key");
    assert_eq!(private.get(ck::CKA_PRIVATE_EXPONENT), AttrValue::Sensitive);
    assert_eq!(private.get(ck::CKA_SIGN), AttrValue::Value(&[1]));

    let key = RsaPublicKey::new(
        BigUint::from_bytes_be(&modulus),
        BigUint::from_bytes_be(&exponent),
    )
    .expect("key");
    // CKM_RSA_PKCS over a SHA-256 DigestInfo, as TLS 1.2 client authentication sends it.
    let mut di = vec![
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    di.extend([0x5A; 32]);
    m.sign_init(h, ck::CKM_RSA_PKCS, None, H_PRIVATE)
        .expect("init");
    assert_eq!(m.sign_len(h), Ok(256));
    let sig = m.sign(h, Some(&di)).expect("sign");
    key.verify(Pkcs1v15Sign::new_unprefixed(), &di, &sig)
        .expect("RSA-PKCS signature verifies");
    let mut other = di.clone();
    other[20] ^= 1;
    assert!(
        key.verify(Pkcs1v15Sign::new_unprefixed(), &other, &sig)
            .is_err()
    );
    // The operation ended with the signature.
    assert_eq!(m.sign(h, Some(&di)), Err(ck::CKR_OPERATION_NOT_INITIALIZED));

    // CKM_SHA256_RSA_PKCS in two parts: hashed here with SHA-256's own DigestInfo prefix.
    m.sign_init(h, ck::CKM_SHA256_RSA_PKCS, None, H_PRIVATE)
        .expect("init");
    m.sign_update(h, b"hello ").expect("update");
    m.sign_update(h, b"world").expect("update");
    let sig = m.sign(h, None).expect("sign final");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(b"hello world");
    let mut want = di[..19].to_vec();
    want.extend_from_slice(&digest);
    key.verify(Pkcs1v15Sign::new_unprefixed(), &want, &sig)
        .expect("SHA256-RSA-PKCS signature verifies");
    // Mechanisms the card does not do are refused, not faked.
    assert_eq!(
        m.sign_init(h, ck::CKM_RSA_PKCS_PSS, None, H_PRIVATE),
        Err(ck::CKR_MECHANISM_INVALID)
    );
    // Too long for PKCS#1 v1.5 with a 2048-bit key: refused before the card.
    m.sign_init(h, ck::CKM_RSA_PKCS, None, H_PRIVATE)
        .expect("init");
    assert_eq!(m.sign(h, Some(&[0; 246])), Err(ck::CKR_DATA_LEN_RANGE));

    // Logout ends the card's verified state: signing needs the PIN again.
    m.logout(h).expect("logout");
    assert_eq!(
        m.sign_init(h, ck::CKM_RSA_PKCS, None, H_PRIVATE),
        Err(ck::CKR_USER_NOT_LOGGED_IN)
    );
    assert_eq!(card.pin_tries_left(), Some(3));
}

#[test]
fn wrong_pins_show_the_cards_tries_and_block() {
    let (mut m, _readers, card) = setup();
    m.slot_list(false, true);
    let h = m.open_session(2, ck::CKF_SERIAL_SESSION).expect("session");
    // Wrong shape: no card exchange, no try spent.
    assert_eq!(
        m.login(h, ck::CKU_USER, Some(b"1234")),
        Err(ck::CKR_PIN_LEN_RANGE)
    );
    assert_eq!(
        m.login(h, ck::CKU_SO, Some(PIN)),
        Err(ck::CKR_USER_TYPE_INVALID)
    );
    assert_eq!(card.pin_tries_left(), Some(3));

    assert_eq!(
        m.login(h, ck::CKU_USER, Some(b"00000000")),
        Err(ck::CKR_PIN_INCORRECT)
    );
    assert_eq!(card.pin_tries_left(), Some(2));
    let flags = m.token_info(2).expect("info").flags;
    assert_ne!(flags & ck::CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(flags & ck::CKF_USER_PIN_FINAL_TRY, 0);

    assert_eq!(
        m.login(h, ck::CKU_USER, Some(b"00000000")),
        Err(ck::CKR_PIN_INCORRECT)
    );
    let flags = m.token_info(2).expect("info").flags;
    assert_ne!(flags & ck::CKF_USER_PIN_FINAL_TRY, 0);

    assert_eq!(
        m.login(h, ck::CKU_USER, Some(b"00000000")),
        Err(ck::CKR_PIN_LOCKED)
    );
    assert_eq!(card.pin_tries_left(), Some(0));
    let flags = m.token_info(2).expect("info").flags;
    assert_ne!(flags & ck::CKF_USER_PIN_LOCKED, 0);
    // Blocked: the right PIN is refused without reaching VERIFY.
    assert_eq!(m.login(h, ck::CKU_USER, Some(PIN)), Err(ck::CKR_PIN_LOCKED));
}

#[test]
fn a_pulled_card_is_a_device_error_never_a_wrong_pin() {
    let (mut m, readers, card) = setup();
    m.slot_list(false, true);
    let h = m.open_session(2, ck::CKF_SERIAL_SESSION).expect("session");
    m.login(h, ck::CKU_USER, Some(PIN)).expect("login");
    m.sign_init(h, ck::CKM_SHA256_RSA_PKCS, None, H_PRIVATE)
        .expect("init");
    readers.pulled.store(true, Ordering::SeqCst);
    assert_eq!(m.sign(h, Some(b"data")), Err(ck::CKR_DEVICE_REMOVED));

    let h2 = m.open_session(2, ck::CKF_SERIAL_SESSION);
    assert_eq!(h2, Err(ck::CKR_DEVICE_REMOVED));
    // Pulled during a login: the card's error, not CKR_PIN_INCORRECT, and no try spent.
    readers.pulled.store(false, Ordering::SeqCst);
    let h3 = m
        .open_session(2, ck::CKF_SERIAL_SESSION)
        .expect("card back");
    readers.pulled.store(true, Ordering::SeqCst);
    assert_eq!(
        m.login(h3, ck::CKU_USER, Some(b"00000000")),
        Err(ck::CKR_DEVICE_REMOVED)
    );
    assert_eq!(card.pin_tries_left(), Some(3));
    // Back in the reader: the next call works.
    readers.pulled.store(false, Ordering::SeqCst);
    let h4 = m
        .open_session(2, ck::CKF_SERIAL_SESSION)
        .expect("card back");
    m.login(h4, ck::CKU_USER, Some(PIN)).expect("login again");
}

/// A module with reader "A" empty and reader "B" holding the virtual CNS.
fn setup_cns() -> (Module, Arc<VirtualCard>) {
    let (m, _readers, card) = setup_cns_with(card_sim::CardConfig::short());
    (m, card)
}

fn setup_cns_with(config: card_sim::CardConfig) -> (Module, SimReaders, Arc<VirtualCard>) {
    let card = Arc::new(card_sim::cns::virtual_cns_with(config));
    let readers = SimReaders::default();
    readers.readers.lock().expect("lock").extend([
        ("A".to_string(), None),
        ("B".to_string(), Some(card.clone())),
    ]);
    (Module::new(Box::new(readers.clone())), readers, card)
}

#[test]
fn cns_without_its_atr_is_found_by_its_files_and_pulled_is_a_device_error() {
    // An ATR that says nothing: the CIE is tried first, then the CNS; the PIN reference
    // (90 on this STIncard card) is found with empty VERIFYs, no try spent.
    let config = card_sim::CardConfig {
        atr: Some(vec![0x3B, 0x00]),
        ..card_sim::CardConfig::short()
    };
    let (mut m, readers, card) = setup_cns_with(config);
    m.slot_list(false, true);
    let info = m.token_info(2).expect("token");
    assert_eq!((info.model, info.manufacturer), ("CNS / TS-CNS", "CNS"));
    let h = m.open_session(2, ck::CKF_SERIAL_SESSION).expect("session");
    m.login(h, ck::CKU_USER, Some(card_sim::cns::PIN))
        .expect("login");
    assert_eq!(card.pin_tries_left(), Some(3));
    m.sign_init(h, ck::CKM_SHA256_RSA_PKCS, None, H_PRIVATE)
        .expect("init");
    readers.pulled.store(true, Ordering::SeqCst);
    assert_eq!(m.sign(h, Some(b"data")), Err(ck::CKR_DEVICE_REMOVED));
    // Back (a pulled card lost power: reset): a wrong PIN pulled mid-VERIFY is the link's
    // error and spends nothing.
    card.power_cycle();
    readers.pulled.store(false, Ordering::SeqCst);
    let h2 = m
        .open_session(2, ck::CKF_SERIAL_SESSION)
        .expect("card back");
    readers.pulled.store(true, Ordering::SeqCst);
    assert_eq!(
        m.login(h2, ck::CKU_USER, Some(b"00000")),
        Err(ck::CKR_DEVICE_REMOVED)
    );
    assert_eq!(card.pin_tries_left(), Some(3));
}

fn pss_params(hash: ck::CK_MECHANISM_TYPE, mgf: ck::CK_ULONG, len: ck::CK_ULONG) -> PssParams {
    PssParams::new(hash, mgf, len).expect("params")
}

#[test]
fn cns_token_signs_with_every_mechanism() {
    use rsa::sha2::{Digest, Sha256, Sha384};
    use rsa::traits::PublicKeyParts;
    let (mut m, card) = setup_cns();
    m.slot_list(false, true);
    let info = m.token_info(2).expect("token");
    assert_eq!(info.label, "LUCA PROVA PRVLCU85T10A662C");
    assert_eq!(info.serial, "7420000000000042");
    assert_eq!(
        (info.model, info.manufacturer),
        ("CNS / TS-CNS", "STIncard")
    );
    assert_eq!(info.pin_len, (5, 8));
    assert_eq!(info.flags & ck::CKF_USER_PIN_COUNT_LOW, 0);
    let mechs = m.mechanisms(2).expect("mechanisms");
    for want in [
        ck::CKM_RSA_X_509,
        ck::CKM_RSA_PKCS_PSS,
        ck::CKM_SHA256_RSA_PKCS_PSS,
    ] {
        assert!(mechs.contains(&want));
    }
    let h = m.open_session(2, ck::CKF_SERIAL_SESSION).expect("session");
    assert_eq!(
        value(&mut m, h, H_CERT, ck::CKA_LABEL),
        b"LUCA PROVA (PRVLCU85T10A662C)"
    );
    let n = BigUint::from_bytes_be(&value(&mut m, h, H_PUBLIC, ck::CKA_MODULUS));
    let e = BigUint::from_bytes_be(&value(&mut m, h, H_PUBLIC, ck::CKA_PUBLIC_EXPONENT));
    let key = RsaPublicKey::new(n, e).expect("key");
    assert_eq!(
        m.login(h, ck::CKU_USER, Some(b"1357")),
        Err(ck::CKR_PIN_LEN_RANGE)
    );
    m.login(h, ck::CKU_USER, Some(card_sim::cns::PIN))
        .expect("login");
    assert_eq!(card.pin_tries_left(), Some(3));

    let digest = Sha256::digest(b"hello CNS");
    let mut sign = |mech, pss, data: &[u8]| {
        m.sign_init(h, mech, pss, H_PRIVATE).expect("init");
        m.sign(h, Some(data)).expect("sign")
    };
    // CKM_RSA_PKCS over a DigestInfo (what TLS 1.2 sends).
    let mut di = hex_prefix_sha256();
    di.extend_from_slice(&digest);
    let sig = sign(ck::CKM_RSA_PKCS, None, &di);
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
        .expect("RSA-PKCS");
    let sig = sign(ck::CKM_SHA256_RSA_PKCS, None, b"hello CNS");
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
        .expect("SHA256-RSA-PKCS");
    // Raw: the signature raised to e gives the input back.
    let sig = sign(ck::CKM_RSA_X_509, None, b"raw input");
    let back = BigUint::from_bytes_be(&sig).modpow(key.e(), key.n());
    assert_eq!(back.to_bytes_be(), b"raw input");
    // PSS over a hash (TLS 1.3 as NSS and Chromium send it) and hash-and-sign.
    let p = pss_params(ck::CKM_SHA256, ck::CKG_MGF1_SHA256, 32);
    let sig = sign(ck::CKM_RSA_PKCS_PSS, Some(p), &digest);
    key.verify(rsa::Pss::new::<Sha256>(), &digest, &sig)
        .expect("RSA-PKCS-PSS");
    let p = pss_params(ck::CKM_SHA384, ck::CKG_MGF1_SHA384, 48);
    let sig = sign(ck::CKM_SHA384_RSA_PKCS_PSS, Some(p), b"hello CNS");
    key.verify(
        rsa::Pss::new::<Sha384>(),
        &Sha384::digest(b"hello CNS"),
        &sig,
    )
    .expect("SHA384-RSA-PKCS-PSS");
    // Wrong parameters are refused before the card.
    let p = pss_params(ck::CKM_SHA256, ck::CKG_MGF1_SHA256, 32);
    assert_eq!(
        m.sign_init(h, ck::CKM_SHA384_RSA_PKCS_PSS, Some(p), H_PRIVATE),
        Err(ck::CKR_MECHANISM_PARAM_INVALID)
    );
    assert_eq!(
        m.sign_init(h, ck::CKM_RSA_PKCS_PSS, None, H_PRIVATE),
        Err(ck::CKR_MECHANISM_PARAM_INVALID)
    );
    m.sign_init(h, ck::CKM_RSA_PKCS_PSS, Some(p), H_PRIVATE)
        .expect("init");
    assert_eq!(m.sign(h, Some(b"not a hash")), Err(ck::CKR_DATA_LEN_RANGE));
}

fn hex_prefix_sha256() -> Vec<u8> {
    vec![
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ]
}

#[test]
fn cns_wrong_pins_show_the_cards_tries_and_block() {
    let (mut m, card) = setup_cns();
    m.slot_list(false, true);
    let h = m.open_session(2, ck::CKF_SERIAL_SESSION).expect("session");
    let wrong = Some(&b"00000"[..]);
    assert_eq!(m.login(h, ck::CKU_USER, wrong), Err(ck::CKR_PIN_INCORRECT));
    let flags = m.token_info(2).expect("info").flags;
    assert_ne!(flags & ck::CKF_USER_PIN_COUNT_LOW, 0);
    assert_eq!(flags & ck::CKF_USER_PIN_FINAL_TRY, 0);
    assert_eq!(m.login(h, ck::CKU_USER, wrong), Err(ck::CKR_PIN_INCORRECT));
    assert_ne!(
        m.token_info(2).expect("info").flags & ck::CKF_USER_PIN_FINAL_TRY,
        0
    );
    assert_eq!(m.login(h, ck::CKU_USER, wrong), Err(ck::CKR_PIN_LOCKED));
    assert_ne!(
        m.token_info(2).expect("info").flags & ck::CKF_USER_PIN_LOCKED,
        0
    );
    assert_eq!(card.pin_tries_left(), Some(0));
    // Blocked: the right PIN never reaches VERIFY.
    let before = card.apdu_count();
    let pin = Some(card_sim::cns::PIN);
    assert_eq!(m.login(h, ck::CKU_USER, pin), Err(ck::CKR_PIN_LOCKED));
    assert_eq!(card.apdu_count(), before);
}

#[test]
fn two_applications_share_one_card() {
    // Two applications (two modules, e.g. a browser and a signing tool) on one card. Each
    // opening its own secure session ends the other's, and a command under a stale session
    // is refused by the card as a whole (6988/6882): each module then reopens its session
    // and verifies its kept PIN again, so both keep signing, and no PIN try is spent.
    let card = virtual_cie();
    let mk = || {
        let readers = SimReaders::default();
        readers
            .readers
            .lock()
            .expect("lock")
            .push(("R".to_string(), Some(card.clone())));
        Module::new(Box::new(readers))
    };
    let sign = |m: &mut Module, h| {
        m.sign_init(h, ck::CKM_SHA256_RSA_PKCS, None, H_PRIVATE)?;
        m.sign(h, Some(b"two applications"))
    };
    let (mut a, mut b) = (mk(), mk());
    let sa = a.slot_list(true, true)[0];
    let ha = a
        .open_session(sa, ck::CKF_SERIAL_SESSION)
        .expect("A session");
    a.login(ha, ck::CKU_USER, Some(PIN)).expect("A login");
    let modulus = value(&mut a, ha, H_PUBLIC, ck::CKA_MODULUS);
    let exponent = value(&mut a, ha, H_PUBLIC, ck::CKA_PUBLIC_EXPONENT);
    let key = RsaPublicKey::new(
        BigUint::from_bytes_be(&modulus),
        BigUint::from_bytes_be(&exponent),
    )
    .expect("key");
    let mut signed = hex_prefix_sha256();
    signed.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(b"two applications"));
    let verifies = |sig: &[u8]| {
        key.verify(Pkcs1v15Sign::new_unprefixed(), &signed, sig)
            .is_ok()
    };

    // B finds the token: its secure session replaces A's.
    let sb = b.slot_list(true, true)[0];
    let hb = b
        .open_session(sb, ck::CKF_SERIAL_SESSION)
        .expect("B session");
    let sig = sign(&mut a, ha).expect("A signs after B opened its session");
    assert!(verifies(&sig));
    b.login(hb, ck::CKU_USER, Some(PIN))
        .expect("B logs in after A took the card back");
    for round in 0..3 {
        let sig = sign(&mut a, ha).unwrap_or_else(|rv| panic!("A, round {round}: {rv:#x}"));
        assert!(verifies(&sig));
        let sig = sign(&mut b, hb).unwrap_or_else(|rv| panic!("B, round {round}: {rv:#x}"));
        assert!(verifies(&sig));
    }
    assert_eq!(card.pin_tries_left(), Some(3));

    // A wrong PIN in a third application is counted once and reported as such; A's next
    // signature verifies A's kept (right) PIN, which resets the counter.
    let mut c = mk();
    let sc = c.slot_list(true, true)[0];
    let hc = c
        .open_session(sc, ck::CKF_SERIAL_SESSION)
        .expect("C session");
    assert_eq!(
        c.login(hc, ck::CKU_USER, Some(b"00000000")),
        Err(ck::CKR_PIN_INCORRECT)
    );
    assert_eq!(card.pin_tries_left(), Some(2));
    let sig = sign(&mut a, ha).expect("A signs after C's wrong PIN");
    assert!(verifies(&sig));
    assert_eq!(card.pin_tries_left(), Some(3));
}
