//! Entry points for `cargo fuzz` (see `fuzz/`): each target is one call into here, so the
//! fuzzers exercise exactly the code the app runs (the rustls `msgs::fuzzing` pattern).
//! Every function must return normally for any input; a panic is a bug.

use crate::apdu::{ApduChannel, CardChannel, Command, Response, files};
use crate::applets::probe;
use crate::tlv::{self, Tlv};
use crate::transport::{CardTransport, TransportError, TransportInfo, TransportKind};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// BER-TLV decoding, walked recursively, with a decode → encode → decode round trip.
pub fn tlv(data: &[u8]) {
    let _ = tlv::parse_padded(data);
    let _ = tlv::encoded_len(data);
    if let Ok(obj) = Tlv::from_bytes(data) {
        walk(&obj, 0);
        let again = tlv::encode_to_vec(obj.tag, obj.value);
        let back = Tlv::from_bytes(&again).expect("re-encoded TLV must decode");
        assert_eq!(back, obj, "TLV round trip changed the object");
    }
}

fn walk(obj: &Tlv<'_>, depth: usize) {
    if depth > 64 || !obj.tag.is_constructed() {
        return;
    }
    for child in obj.children().flatten() {
        walk(&child, depth + 1);
    }
}

/// Response APDU splitting and FCP parsing.
pub fn response(data: &[u8]) {
    if let Ok(resp) = Response::from_bytes(data.to_vec()) {
        let _ = resp.sw.kind().message_en();
        let _ = files::FileInfo::parse(&resp.data);
    }
}

/// A card whose answers come from the fuzzer: the input is split into responses, each
/// prefixed by one length byte (and an `FF` prefix meaning "the tag was lost").
struct FuzzCard {
    answers: Mutex<VecDeque<Result<Vec<u8>, TransportError>>>,
    info: TransportInfo,
}

#[async_trait::async_trait]
impl CardTransport for FuzzCard {
    async fn transmit(&self, _apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.pop_front().unwrap_or(Err(TransportError::TagLost))
    }

    fn info(&self) -> TransportInfo {
        self.info.clone()
    }
}

fn fuzz_card(data: &[u8]) -> Arc<FuzzCard> {
    let (flags, mut rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let mut answers = VecDeque::new();
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0xFF {
            answers.push_back(Err(TransportError::TagLost));
            rest = tail;
            continue;
        }
        let n = usize::from(len).min(tail.len());
        // Stretch short answers so multi-kilobyte reads are reachable: the byte count is
        // scaled by the low flag bits.
        let scale = 1usize << (flags & 0x07);
        let mut answer = tail[..n].repeat(scale.min(64));
        // Keep the recorded SW last (the harness's own bug, found by the fuzzer: a 1-byte
        // answer has no SW to keep).
        if n >= 2 && answer.len() > 2 {
            let l = answer.len();
            answer[l - 2..].copy_from_slice(&tail[n.saturating_sub(2)..n]);
        }
        answers.push_back(Ok(answer));
        rest = &tail[n..];
    }
    let mut info = TransportInfo::short(TransportKind::Virtual);
    if flags & 0x08 != 0 {
        info.extended_length = true;
        info.max_command_len = 65_544;
        info.max_response_len = 65_538;
    }
    Arc::new(FuzzCard {
        answers: Mutex::new(answers),
        info,
    })
}

/// The whole APDU layer (GET RESPONSE, 6Cxx, chaining, chunked B0/B1 reads, TLV-sized
/// reads, the application probe) against a card that answers anything.
pub fn card_session(data: &[u8]) {
    let card = fuzz_card(data);
    let ch = CardChannel::new(card);
    let flags = data.first().copied().unwrap_or(0);
    run(async {
        match flags >> 4 {
            0 => drop(files::read_ef(&ch, [0x01, 0x1E]).await),
            1 => drop(files::read_to_end(&ch, None).await),
            2 => drop(files::read_tlv_object(&ch).await),
            3 => drop(probe::probe(&ch).await),
            4 => drop(files::read_to_end(&ch, Some(40_000)).await),
            5 => drop(
                ch.transmit(&Command::new(0, 0xD6, 0, 0).with_data(vec![0; 600]))
                    .await,
            ),
            _ => drop(files::read_binary(&ch, 0x9000, 200).await),
        }
    });
}

/// Secure-messaging response verification with fixed test keys. The first byte picks the
/// suite (bits 0-1: 3DES, AES-128, AES-256, AES-192), whether the SSC starts one short of
/// exhaustion (bit 3), and whether the rest is taken as the data objects of a response whose
/// correct MAC is appended here (bit 2), so the fuzzer also reaches everything after the MAC
/// check: status, decryption, padding. Oracle: with a correct MAC appended, the answer is
/// never `MacMismatch`.
pub fn sm_unwrap(data: &[u8]) {
    use crate::sm::{Aes, SmCipher, SmError, Ssc, Tdes, cipher::pad};
    let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let cipher: Box<dyn SmCipher> = match flags & 0x03 {
        0 => Box::new(Tdes::from_keys(&[0x11; 16], &[0x22; 16])),
        n => {
            let len = [16, 16, 32, 24][usize::from(n)];
            let Ok(aes) = Aes::new(&vec![0x33; len], &vec![0x44; len]) else {
                return;
            };
            Box::new(aes)
        }
    };
    let block = cipher.block_size();
    let mut start = vec![0u8; block];
    if flags & 0x08 != 0 {
        start.fill(0xFF);
        start[block - 1] = 0xFE;
    }
    let Ok(mut ssc) = Ssc::from_bytes(&start) else {
        return;
    };
    let fixed_mac = flags & 0x04 != 0;
    let raw = if fixed_mac {
        // The counter the response will be verified with.
        let mut next = ssc.clone();
        if next.increment().is_err() {
            return;
        }
        let mut mac_input = next.as_bytes().to_vec();
        mac_input.extend_from_slice(rest);
        let mac = cipher.mac(&pad(&mac_input, block));
        let mut raw = rest.to_vec();
        raw.extend_from_slice(&[0x8E, 0x08]);
        raw.extend_from_slice(&mac);
        raw.extend_from_slice(&[0x90, 0x00]);
        raw
    } else {
        rest.to_vec()
    };
    let Ok(resp) = Response::from_bytes(raw) else {
        return;
    };
    let result = crate::sm::unwrap(&*cipher, &mut ssc, resp);
    if fixed_mac {
        assert_ne!(result, Err(SmError::MacMismatch), "correct MAC refused");
    }
    if let Ok(plain) = result {
        let _ = plain.sw.kind().message_en();
    }
}

/// Every IAS parser of card data, fed the same bytes: the SOD, the CA key template, PKCS#1
/// public keys, the X.509 certificate, the deep TLV search, the NIS, and the raw PKCS#1
/// check of the NIS internal authentication. Oracle for the last one: with a fixed key of
/// exponent 1 (so `s^e mod n = s`), the exact type-01 block over a message is accepted, and
/// any other signature is refused.
pub fn ias_objects(data: &[u8]) {
    use crate::applets::ias::{
        Nis, certificate::CieCertificate, dh, genuine, pubkey::RsaPublicKey, sod::Sod,
    };
    let _ = Sod::parse(data.to_vec());
    let _ = dh::CaKey::parse(data);
    if let Ok(key) = RsaPublicKey::from_pkcs1_der(data) {
        assert!(key.modulus.len() >= 128 && key.modulus.last().is_some_and(|b| b & 1 == 1));
        let _ = key.bits();
    }
    if let Ok(cert) = CieCertificate::from_der(data) {
        let _ = cert.is_valid_at(cert.not_before);
    }
    for tag in [0x91, 0x97, 0x7F49, 0x5F20, 0x77] {
        let _ = crate::tlv::find_deep(data, crate::tlv::Tag::new(tag));
    }
    if let Ok(nis) = Nis::parse(data) {
        let _ = (nis.text(), format!("{nis:?}"));
    }

    // Raw PKCS#1: a fixed 1024-bit odd modulus, exponent 1.
    let mut modulus = vec![0xE5; 128];
    modulus[127] = 0x4B;
    let key = RsaPublicKey {
        modulus,
        exponent: vec![1],
        der: Vec::new(),
    };
    let (split, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let cut = usize::from(split).min(rest.len());
    let (message, signature) = rest.split_at(cut);
    let result = genuine::check_pkcs1_raw(&key, message, signature);
    let k = key.modulus.len();
    let mut expected = vec![0xFF; k];
    expected[0] = 0;
    expected[1] = 1;
    if message.len() + 11 <= k {
        expected[k - message.len() - 1] = 0;
        expected[k - message.len()..].copy_from_slice(message);
        assert_eq!(
            result.is_ok(),
            signature == expected,
            "raw PKCS#1 check wrong"
        );
        // The exact block always verifies (the oracle does not depend on the fuzzer finding it).
        assert!(genuine::check_pkcs1_raw(&key, message, &expected).is_ok());
    } else {
        assert!(result.is_err(), "message too long for the key accepted");
    }
}

/// The clear IAS steps of a tap (select with its `6A82` fallback, NIS, SOD, and the NIS
/// internal authentication with its check against EF 1005) against a card whose answers
/// come from the fuzzer (the fuzzer also picks EF 1005, so a passing check is possible and
/// not an error: only panics are).
pub fn ias_session(data: &[u8]) {
    use crate::applets::ias::IasApplet;
    let card = fuzz_card(data);
    let ch = CardChannel::new(card);
    run(async {
        let Ok(ias) = IasApplet::select(&ch).await else {
            return;
        };
        let nis = ias.read_nis().await;
        let sod = ias.read_sod().await;
        if let Ok(sod) = sod {
            let _ = sod.hash_of(0xA1);
        }
        let genuine = ias.verify_card_genuine(b"0123456789abcdef").await;
        if let (Ok(proof), Ok(nis)) = (genuine, nis) {
            // The proof carries a NIS read in the same session.
            let _ = (proof.nis.text(), nis.text());
        }
    });
}

/// EF.CardAccess / DG14 `SecurityInfos` decoding and the PACE choice. Oracles: every PACE
/// protocol decoded re-encodes to an OID that decodes to the same protocol, and the chosen
/// configuration is one the card listed, with standardized parameters this reader has.
pub fn card_access(data: &[u8]) {
    use crate::applets::emrtd::card_access::{PaceProtocol, SecurityInfos};
    use crate::applets::emrtd::domain::DomainParameters;
    let Ok(infos) = SecurityInfos::parse(data) else {
        return;
    };
    for p in infos.pace_infos() {
        assert_eq!(
            PaceProtocol::from_oid(&p.protocol.oid()),
            Some(p.protocol),
            "PACE OID round trip"
        );
        let _ = infos.parameters_ambiguous(p.protocol);
    }
    if let Some(chosen) = infos.choose_pace() {
        assert!(infos.pace_infos().any(|p| p == chosen));
        let id = chosen
            .parameter_id
            .expect("chosen PACEInfo has a parameter ID");
        assert!(DomainParameters::standardized(id).is_ok());
    }
}

/// PACE and BAC against a card whose answers are fuzzer bytes (see `fuzz_card`). Flag bits
/// 4-5 of the first byte pick the run: PACE-CAN DH-GM 3DES on the CIE's 2048-bit group,
/// ECDH-GM AES-128 on brainpoolP256r1, ECDH-GM AES-256 on P-384, or EF.CardAccess read
/// then the PACE it offers; bit 7 runs BAC instead. Only panics are bugs.
pub fn emrtd_session(data: &[u8]) {
    use crate::applets::emrtd::card_access::{KeyAgreement, Mapping, PaceInfo, PaceProtocol};
    use crate::applets::emrtd::pace::{self, PaceConfig};
    use crate::applets::emrtd::{self, Can, Mrz, PacePassword, Randomness, bac};
    use crate::sm::KeyAlgorithm;

    struct Fixed;
    impl Randomness for Fixed {
        fn fill(&self, buf: &mut [u8]) -> Result<(), crate::applets::ias::IasError> {
            buf.fill(0x42);
            Ok(())
        }
    }

    let flags = data.first().copied().unwrap_or(0);
    let card = fuzz_card(data);
    let ch = CardChannel::new(card);
    let info = |agreement, cipher, id| PaceInfo {
        protocol: PaceProtocol {
            mapping: Mapping::Generic,
            agreement,
            cipher,
        },
        version: 2,
        parameter_id: Some(id),
    };
    run(async {
        if flags & 0x80 != 0 {
            if let Ok(mrz) = Mrz::from_information("L898902C<369080619406236") {
                let _ = bac::bac(&ch, &mrz, &Fixed).await;
            }
            return;
        }
        let Ok(can) = Can::new("123456") else {
            return;
        };
        let password = PacePassword::Can(can);
        let chosen = match (flags >> 4) & 0x03 {
            0 => info(KeyAgreement::Dh, KeyAlgorithm::Tdes, 2),
            1 => info(KeyAgreement::Ecdh, KeyAlgorithm::Aes128, 13),
            2 => info(KeyAgreement::Ecdh, KeyAlgorithm::Aes256, 15),
            _ => {
                if let Ok(Some(infos)) = emrtd::read_card_access(&ch).await {
                    let _ = pace::pace_with_card_access(&ch, &infos, &password, &Fixed).await;
                }
                return;
            }
        };
        let _ = pace::pace(&ch, &chosen, &password, &Fixed, PaceConfig::default()).await;
    });
}

/// Drive a future whose I/O is always ready (fuzz and test transports answer at once).
fn run<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// otpauth URI parsing: never panics; whatever parses rebuilds to a URI that parses back to
/// the same token; codes and the verifier run on it; the HTTP Date reader on the same bytes.
pub fn otp_uri(data: &[u8]) {
    use crate::otp::verify::{AccountState, Credential, Policy, verify_hotp, verify_totp};
    use crate::otp::{ClockOffset, KeyUri, OtpKind, TimeStep, vault::code_for};

    let text = String::from_utf8_lossy(data);
    let _ = ClockOffset::from_http_date(&text, 1_700_000_000);
    let Ok(k) = KeyUri::parse(&text) else { return };
    let built = k.to_uri();
    // Percent-encoding can lengthen a link past what a QR holds; the parser refuses those.
    if built.len() > crate::otp::uri::MAX_URI_LEN {
        return;
    }
    let again = KeyUri::parse(&built).expect("a built URI parses");
    assert_eq!(again.issuer, k.issuer);
    assert_eq!(again.account, k.account);
    assert_eq!(again.algorithm, k.algorithm);
    assert_eq!(again.digits, k.digits);
    assert_eq!(again.kind, k.kind);
    assert_eq!(again.secret.expose(), k.secret.expose());
    let code = code_for(&k.secret, k.algorithm, k.digits, k.kind, 20_000_000_000)
        .expect("a parsed token gives codes");
    assert_eq!(code.code.len(), usize::from(k.digits));
    let cred = Credential {
        secret: &k.secret,
        algorithm: k.algorithm,
        digits: k.digits,
    };
    let mut state = AccountState::default();
    match k.kind {
        OtpKind::Totp { period, t0 } => {
            let step = TimeStep::new(period, t0).expect("parsed periods are positive");
            let _ = verify_totp(
                &cred,
                step,
                &code.code,
                20_000_000_000,
                &mut state,
                &Policy::default(),
            );
        }
        OtpKind::Hotp { .. } => {
            let _ = verify_hotp(&cred, &text, 0, &mut state, &Policy::default());
        }
    }
}

/// Every LDS file parser on the same bytes, each with the first byte set to its own outer
/// tag so the fuzzer reaches past the tag check: EF.COM, DG1, DG2 (and the 19794-5 record
/// alone, and image decoding of what it finds), DG11, DG12, EF.SOD (and passive
/// authentication over it with an empty trust store).
pub fn lds_files(data: &[u8]) {
    use crate::applets::emrtd::lds::{com, dg1, dg2, dg11, dg12, sod};
    use crate::applets::emrtd::passive::{TrustStore, verify};
    let with_tag = |tag: u8| {
        let mut v = data.to_vec();
        if let Some(b) = v.first_mut() {
            *b = tag;
        }
        v
    };
    let _ = com::parse(&with_tag(0x60));
    let _ = dg1::parse(&with_tag(0x61));
    if let Ok(faces) = dg2::parse(&with_tag(0x75)) {
        for f in faces.iter().take(1) {
            let _ = f.decode();
        }
    }
    let _ = dg2::parse_facial_record(data);
    let _ = dg11::parse(&with_tag(0x6B));
    let _ = dg12::parse(&with_tag(0x6C));
    if let Ok(s) = sod::parse(data).or_else(|_| sod::parse(&with_tag(0x77))) {
        let report = verify(&s, &[(1, data)], &TrustStore::new());
        assert!(
            report.chain.is_err(),
            "nothing chains to an empty trust store"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dg1::Mrz::parse(text);
    }
    // The registration summary: the same bytes as DG1 / DG11 / DG12 / DG2 at once.
    let _ = crate::flows::registration::RegistrationAttributes::from_files(
        &with_tag(0x61),
        Some(&with_tag(0x6B)),
        Some(&with_tag(0x6C)),
        Some(data),
    );
}

/// ICAO deviation lists: the `DeviationList` content parser and the signed-object check
/// (oracle: nothing verifies against an empty trust store; a parsed list only matches a
/// document number it lists).
pub fn deviation_list(data: &[u8]) {
    use crate::applets::emrtd::deviation::{self, DeviationError};
    use crate::applets::emrtd::passive::TrustStore;
    if let Ok(list) = deviation::parse_content(data) {
        for d in &list.deviations {
            for n in d.document_numbers.iter().take(4) {
                for dg in [1, 2, 11, 12, 14] {
                    if let Some(m) = list.dg_hash_wrong(n, dg) {
                        assert_eq!(m.data_group, Some(dg));
                    }
                }
            }
        }
        assert!(list.dg_hash_wrong("\u{0}not-listed\u{0}", 12).is_none());
    }
    match deviation::verify(data, &TrustStore::new()) {
        Ok(_) => panic!("a deviation list verified against no CSCA"),
        Err(DeviationError::Malformed(_) | DeviationError::Untrusted(_)) => {}
    }
}

/// CSCA trust files: the ZIP reader (oracle: bounded member count and sizes), PEM blocks,
/// and loading whatever they hold into a trust store.
pub fn trust_files(data: &[u8]) {
    use crate::applets::emrtd::passive::TrustStore;
    use crate::applets::emrtd::trust_files::{self, MAX_MEMBER, MAX_MEMBERS, MAX_TOTAL};
    if let Ok(members) = trust_files::zip_members(data) {
        assert!(members.len() <= MAX_MEMBERS);
        assert!(members.iter().all(|m| m.len() <= MAX_MEMBER));
        assert!(members.iter().map(Vec::len).sum::<usize>() <= MAX_TOTAL);
    }
    let mut store = TrustStore::new();
    if let Ok(n) = trust_files::load_csca_file(&mut store, data) {
        assert!(n > 0 && !store.is_empty(), "a successful load adds a CSCA");
    }
}

/// The Chip/Active Authentication parsers and the AA check on the same bytes: DG14 (and
/// the CA choice from it, and the AA hash), DG15, each with its outer tag forced; the
/// DG15 key (if any) against a fuzzed answer; the ISO 9796-2 block check on the bytes;
/// and fixed keys: RSA with exponent 1 (so the "signature" is the recovered block) and a
/// P-256 point. Oracle: an exact ISO 9796-2 block built from the fuzzer's M1 verifies,
/// and the same block with one digest bit flipped does not.
pub fn emrtd_auth(data: &[u8]) {
    use crate::applets::emrtd::active_auth::{self, AaError, AaPublicKey};
    use crate::applets::emrtd::chip_auth::{self, ChipAuthConfig};
    use crate::applets::emrtd::domain::Curve;
    use crate::applets::emrtd::passive::HashAlg;
    let with_tag = |tag: u8| {
        let mut v = data.to_vec();
        if let Some(b) = v.first_mut() {
            *b = tag;
        }
        v
    };
    for bytes in [data.to_vec(), with_tag(0x6E)] {
        if let Ok(infos) = chip_auth::parse_dg14(&bytes) {
            let _ = ChipAuthConfig::from_dg14(&infos).map(|c| c.map(|c| c.oid()));
            let _ = active_auth::ecdsa_hash(&infos);
        }
    }
    let _ = ChipAuthConfig::from_dg14(&Default::default());
    let _ = chip_auth::CaPublicKey::from_spki(data);
    let (challenge, sig) = data.split_at(data.len().min(8));
    for bytes in [data.to_vec(), with_tag(0x6F)] {
        if let Ok(key) = active_auth::parse_dg15(&bytes) {
            let _ = active_auth::verify(&key, Some(HashAlg::Sha256), challenge, sig);
        }
    }
    let _ = active_auth::check_iso9796_2(data, challenge);

    // RSA with e = 1 over a 1024-bit modulus: F = s.
    let mut n = vec![0xFF; 128];
    n[127] = 0xF1;
    let key = AaPublicKey::Rsa { n, e: vec![1] };
    let _ = active_auth::verify(&key, None, challenge, sig);
    let mut m1: Vec<u8> = sig
        .iter()
        .copied()
        .chain(std::iter::repeat(0x5A))
        .take(106)
        .collect();
    m1[0] &= 0x7F;
    let mut m = m1.clone();
    m.extend_from_slice(challenge);
    let mut f = vec![0x6A];
    f.extend_from_slice(&m1);
    f.extend(HashAlg::Sha1.digest(&m));
    f.push(0xBC);
    assert_eq!(active_auth::verify(&key, None, challenge, &f), Ok(()));
    f[110] ^= 0x01;
    assert_eq!(
        active_auth::verify(&key, None, challenge, &f),
        Err(AaError::Mismatch)
    );

    // ECDSA with the point 1·G: any fuzzed signature goes through decoding and checking.
    // (Computed once: a scalar multiplication per input was a fifth of the target's time.)
    static ONE_G: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let one_g = ONE_G.get_or_init(|| {
        let mut one = [0u8; 32];
        one[31] = 1;
        Curve::NistP256.ops().mul_base(&one).ok()
    });
    if let Some(point) = one_g {
        let _ = active_auth::verify(&AaPublicKey::P256(point.clone()), None, challenge, sig);
    }
}

/// A scanned desktop-login QR text (`DesktopQr::parse`): any text is refused or parsed, and
/// what parses prints back to the same text and parses again to the same login.
pub fn desktop_qr(data: &[u8]) {
    use crate::flows::wire::{DesktopQr, Origin};

    let text = String::from_utf8_lossy(data);
    let allowed = [
        Origin::parse("https://login.example.it").expect("a fixed origin parses"),
        Origin::parse("https://127.0.0.1:8443").expect("a fixed origin parses"),
    ];
    let Ok(qr) = DesktopQr::parse(&text, &allowed) else {
        return;
    };
    let uri = qr.to_uri();
    let again = DesktopQr::parse(&uri, &allowed).expect("a printed login code parses");
    assert_eq!(again.to_uri(), uri);
    assert_eq!(again.claim_proof(), qr.claim_proof());
}

/// The server's certificate as the platform's TLS hands it over (`ServerKeyCheck::accepts`,
/// the HTTPS-through-the-platform path) and a pin as configured (`parse_pin`): any bytes are
/// refused or read, never a panic. Oracle: a certificate that parses is accepted by a check
/// made of its own pin and refused by one of another pin; a pin that parses prints back to
/// the same pin.
#[cfg(feature = "net")]
pub fn server_key(data: &[u8]) {
    use crate::net::pin::{parse_pin, spki_pin};
    use crate::net::platform::ServerKeyCheck;
    let other = ServerKeyCheck::with_pins(vec![[0x5a; 32]]).expect("one pin makes a check");
    match spki_pin(data) {
        Some(pin) => {
            let own = ServerKeyCheck::with_pins(vec![pin]).expect("one pin makes a check");
            assert!(
                own.accepts(data.to_vec()),
                "a certificate's own pin accepts it"
            );
            assert!(
                !other.accepts(data.to_vec()),
                "another pin accepts a certificate"
            );
        }
        None => assert!(
            !other.accepts(data.to_vec()),
            "bytes that do not parse accepted"
        ),
    }
    if let Some(pin) = parse_pin(&String::from_utf8_lossy(data)) {
        let text = data_encoding::BASE64URL_NOPAD.encode(&pin);
        assert_eq!(parse_pin(&text), Some(pin));
    }
}

/// A camera frame into the QR scanner: the first 6 bytes choose width, height and row
/// stride, the rest are the pixels (repeated to fill the plane, or short on purpose). Never
/// a panic; a bad shape is a typed error; whatever text comes out is valid UTF-8 by type.
///
/// Sides stay below 128 px: the engine and rxing have no branch that needs a larger frame
/// (a version-1–3 symbol at 3 px a module, quiet zone included, fits), and the cost of an
/// execution grows with the pixels — at up to 511 px a side the target ran ~140 inputs/s,
/// 20 hours for the 10 M the release checklist asks. Frame shape checks (`MAX_SIDE`, short
/// buffers, zero sides) are unit-tested in `qr::tests`; big camera frames in the qrbench suite.
pub fn qr_frame(data: &[u8]) {
    use crate::qr::{LumaFrame, scan_luma};

    let [w0, w1, h0, h1, pad, mode, pixels @ ..] = data else {
        return;
    };
    let width = u32::from(u16::from_le_bytes([*w0, *w1]) % 128);
    let height = u32::from(u16::from_le_bytes([*h0, *h1]) % 128);
    let stride = width + u32::from(*pad % 16);
    let need = (stride as usize) * (height.saturating_sub(1) as usize) + width as usize;
    // mode bit 0: give a buffer one byte short, to exercise the shape check.
    let len = if mode & 1 == 1 {
        need.saturating_sub(1)
    } else {
        need
    };
    let bytes: Vec<u8> = if pixels.is_empty() {
        vec![255; len]
    } else {
        pixels.iter().copied().cycle().take(len).collect()
    };
    let frame = LumaFrame {
        width,
        height,
        row_stride: stride,
        bytes: &bytes,
    };
    let _ = scan_luma(&frame);
}

/// The CNS card files: EF_DatiPersonali (parse → encode → parse must give the same data),
/// EF_IDCarta, the ATR decoder and the codice fiscale check.
pub fn cns_files(data: &[u8]) {
    use crate::applets::cns::{CardId, atr, codice_fiscale::CodiceFiscale, personal::PersonalData};
    if let Ok(p) = PersonalData::parse(data) {
        let again = PersonalData::parse(&p.encode()).expect("re-encoded personal data must parse");
        assert_eq!(again, p, "personal data round trip changed the fields");
        let _ = p.display_name();
    }
    let _ = CardId::parse(data);
    let _ = atr::CnsAtr::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CodiceFiscale::parse(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_accept_edge_inputs() {
        for input in [
            &[][..],
            &[0x00],
            &[0xFF; 40],
            &[0x10, 0x02, 0x90, 0x00],
            &[0x38, 3, 1, 0x61, 0x05],
        ] {
            tlv(input);
            response(input);
            card_session(input);
            sm_unwrap(input);
            ias_objects(input);
            ias_session(input);
            card_access(input);
            emrtd_session(input);
            cns_files(input);
        }
        cns_files(b"00001C04TEST0000000000000000000000");
    }
}
