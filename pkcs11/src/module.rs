//! The module's state and every PKCS#11 operation it supports, in safe Rust: slots (one
//! per reader, ids stable for the life of the process), tokens (a CIE or CNS in a slot), sessions,
//! login, object search and signing. The C boundary (`ffi.rs`) only converts pointers.

use crate::card::{Hold, Readers, Token, transport_rv};
use crate::objects::{self, H_PRIVATE, Object};
use cie_core::applets::cns::padding::{self, hash};
use cie_core::applets::ias::digest_info::{DigestAlgorithm, digest_info};
use cie_core::applets::ias::secure::{OsRandomness, Randomness};
use cryptoki_sys as ck;
use std::collections::BTreeMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The hash a hash-and-sign mechanism computes here (PKCS#1 v1.5 and PSS variants).
fn hash_of(mech: ck::CK_MECHANISM_TYPE) -> Option<DigestAlgorithm> {
    match mech {
        ck::CKM_SHA1_RSA_PKCS | ck::CKM_SHA1_RSA_PKCS_PSS => Some(DigestAlgorithm::Sha1),
        ck::CKM_SHA256_RSA_PKCS | ck::CKM_SHA256_RSA_PKCS_PSS => Some(DigestAlgorithm::Sha256),
        ck::CKM_SHA384_RSA_PKCS | ck::CKM_SHA384_RSA_PKCS_PSS => Some(DigestAlgorithm::Sha384),
        ck::CKM_SHA512_RSA_PKCS | ck::CKM_SHA512_RSA_PKCS_PSS => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

fn is_pss(mech: ck::CK_MECHANISM_TYPE) -> bool {
    matches!(
        mech,
        ck::CKM_RSA_PKCS_PSS
            | ck::CKM_SHA1_RSA_PKCS_PSS
            | ck::CKM_SHA256_RSA_PKCS_PSS
            | ck::CKM_SHA384_RSA_PKCS_PSS
            | ck::CKM_SHA512_RSA_PKCS_PSS
    )
}

/// `CK_RSA_PKCS_PSS_PARAMS`, checked: the message hash, MGF1's hash, the salt length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PssParams {
    /// `hashAlg`.
    pub hash: DigestAlgorithm,
    /// `mgf` (MGF1 with this hash).
    pub mgf: DigestAlgorithm,
    /// `sLen`.
    pub salt_len: usize,
}

impl PssParams {
    /// From the C structure's fields; `None` for hashes or MGFs we do not offer.
    pub fn new(
        hash: ck::CK_MECHANISM_TYPE,
        mgf: ck::CK_ULONG,
        salt_len: ck::CK_ULONG,
    ) -> Option<Self> {
        let hash = match hash {
            ck::CKM_SHA_1 => DigestAlgorithm::Sha1,
            ck::CKM_SHA256 => DigestAlgorithm::Sha256,
            ck::CKM_SHA384 => DigestAlgorithm::Sha384,
            ck::CKM_SHA512 => DigestAlgorithm::Sha512,
            _ => return None,
        };
        let mgf = match mgf {
            ck::CKG_MGF1_SHA1 => DigestAlgorithm::Sha1,
            ck::CKG_MGF1_SHA256 => DigestAlgorithm::Sha256,
            ck::CKG_MGF1_SHA384 => DigestAlgorithm::Sha384,
            ck::CKG_MGF1_SHA512 => DigestAlgorithm::Sha512,
            _ => return None,
        };
        Some(Self {
            hash,
            mgf,
            salt_len: usize::try_from(salt_len).ok()?,
        })
    }
}

struct Slot {
    name: String,
    present: bool,
    token: Option<Token>,
    /// How to hold the token's card (PC/SC transactions), when it is shared.
    hold: Option<Arc<dyn Hold>>,
}

/// The card held for one operation; released when dropped, on every path.
struct Holding(Option<Arc<dyn Hold>>);

impl Holding {
    /// Hold the card; `Ok((holding, true))` when another application reset it since our
    /// last command.
    fn begin(hold: &Option<Arc<dyn Hold>>) -> Result<(Self, bool), ck::CK_RV> {
        let reset = match hold {
            Some(h) => h.begin().map_err(|e| transport_rv(&e))?,
            None => false,
        };
        Ok((Self(hold.clone()), reset))
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.end();
        }
    }
}

struct SignOp {
    mechanism: ck::CK_MECHANISM_TYPE,
    pss: Option<PssParams>,
    /// Data gathered by C_SignUpdate.
    data: Zeroizing<Vec<u8>>,
}

struct Session {
    slot: ck::CK_SLOT_ID,
    flags: ck::CK_FLAGS,
    found: Option<Vec<ck::CK_OBJECT_HANDLE>>,
    sign: Option<SignOp>,
}

/// What `C_GetTokenInfo` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// Token label.
    pub label: String,
    /// Serial number (the CIE's NIS, the CNS's card id).
    pub serial: String,
    /// The token model.
    pub model: &'static str,
    /// The manufacturer.
    pub manufacturer: &'static str,
    /// Shortest and longest PIN.
    pub pin_len: (usize, usize),
    /// CKF_* flags, the PIN's tries included.
    pub flags: ck::CK_FLAGS,
    /// Open sessions on the token, and of those read-write.
    pub sessions: (usize, usize),
}

/// One loaded module.
pub struct Module {
    readers: Box<dyn Readers>,
    slots: Vec<Slot>,
    sessions: BTreeMap<ck::CK_SESSION_HANDLE, Session>,
    next_session: ck::CK_SESSION_HANDLE,
}

impl Module {
    /// A module over `readers`; nothing is touched until asked.
    pub fn new(readers: Box<dyn Readers>) -> Self {
        Self {
            readers,
            slots: Vec::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
        }
    }

    fn slot_index(&self, id: ck::CK_SLOT_ID) -> Result<usize, ck::CK_RV> {
        let i = usize::try_from(id).map_err(|_| ck::CKR_SLOT_ID_INVALID)?;
        if i == 0 || i > self.slots.len() {
            return Err(ck::CKR_SLOT_ID_INVALID);
        }
        Ok(i - 1)
    }

    /// Re-read the readers: new ones get the next id, gone ones keep theirs (shown without
    /// a card); a slot whose card left drops its token and sessions.
    pub fn refresh(&mut self) -> Result<(), ck::CK_RV> {
        // No reader service means no readers, not an error of the caller.
        let listed = self.readers.list().unwrap_or_default();
        for slot in &mut self.slots {
            slot.present = false;
        }
        for r in listed {
            match self.slots.iter_mut().find(|s| s.name == r.name) {
                Some(s) => s.present = r.card_present,
                None => self.slots.push(Slot {
                    name: r.name,
                    present: r.card_present,
                    token: None,
                    hold: None,
                }),
            }
        }
        let gone: Vec<ck::CK_SLOT_ID> = (1..)
            .zip(self.slots.iter_mut())
            .filter(|(_, s)| !s.present && s.token.is_some())
            .map(|(id, s)| {
                s.token = None;
                id
            })
            .collect();
        self.sessions.retain(|_, s| !gone.contains(&s.slot));
        Ok(())
    }

    /// Slot ids, all or only those holding a card.
    pub fn slot_list(&mut self, token_present: bool, refresh: bool) -> Vec<ck::CK_SLOT_ID> {
        if refresh || self.slots.is_empty() {
            let _ = self.refresh();
        }
        (1..)
            .zip(self.slots.iter())
            .filter(|(_, s)| !token_present || s.present)
            .map(|(id, _)| id)
            .collect()
    }

    /// The reader's name and whether a card is in it.
    pub fn slot_info(&self, id: ck::CK_SLOT_ID) -> Result<(String, bool), ck::CK_RV> {
        let s = &self.slots[self.slot_index(id)?];
        Ok((s.name.clone(), s.present))
    }

    /// The token in slot `id`, opened on first use (CIE recognised, secure session,
    /// certificate and PIN state read).
    fn token(&mut self, id: ck::CK_SLOT_ID) -> Result<&mut Token, ck::CK_RV> {
        let i = self.slot_index(id)?;
        if self.slots[i].token.is_none() {
            let connection = self.readers.connect(&self.slots[i].name)?;
            self.slots[i].present = true;
            let token = {
                let _held = Holding::begin(&connection.hold)?;
                Token::open(connection.transport)?
            };
            self.slots[i].token = Some(token);
            self.slots[i].hold = connection.hold;
        }
        self.slots[i].token.as_mut().ok_or(ck::CKR_GENERAL_ERROR)
    }

    /// Hold the card of slot `id` (its token open) for one operation. If another
    /// application reset the card meanwhile, the token catches up first (the CIE reopens
    /// its secure session and verifies the kept PIN again; a CNS is logged out).
    fn hold(&mut self, id: ck::CK_SLOT_ID) -> Result<Holding, ck::CK_RV> {
        let i = self.slot_index(id)?;
        let (holding, reset) = Holding::begin(&self.slots[i].hold)?;
        if reset && let Some(token) = self.slots[i].token.as_mut() {
            token.after_reset()?;
        }
        Ok(holding)
    }

    /// Forget the token after a link failure: the next call opens the card afresh.
    fn on_card_error(&mut self, id: ck::CK_SLOT_ID, rv: ck::CK_RV) -> ck::CK_RV {
        if matches!(rv, ck::CKR_DEVICE_ERROR | ck::CKR_DEVICE_REMOVED)
            && let Ok(i) = self.slot_index(id)
        {
            self.slots[i].token = None;
        }
        rv
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&mut self, id: ck::CK_SLOT_ID) -> Result<TokenSummary, ck::CK_RV> {
        let sessions = self.sessions.values().filter(|s| s.slot == id);
        let counts = sessions.fold((0, 0), |(n, rw), s| {
            (n + 1, rw + usize::from(s.flags & ck::CKF_RW_SESSION != 0))
        });
        let token = match self.token(id) {
            Ok(t) => t,
            Err(rv) => return Err(self.on_card_error(id, rv)),
        };
        let flags = ck::CKF_TOKEN_INITIALIZED
            | ck::CKF_LOGIN_REQUIRED
            | ck::CKF_USER_PIN_INITIALIZED
            | ck::CKF_WRITE_PROTECTED
            | token.pin_flags();
        Ok(TokenSummary {
            label: objects::token_label(token),
            serial: token.serial().to_owned(),
            model: token.model(),
            manufacturer: token.manufacturer(),
            pin_len: token.pin_len(),
            flags,
            sessions: counts,
        })
    }

    /// `C_OpenSession` (serial sessions only, as PKCS#11 requires).
    pub fn open_session(
        &mut self,
        id: ck::CK_SLOT_ID,
        flags: ck::CK_FLAGS,
    ) -> Result<ck::CK_SESSION_HANDLE, ck::CK_RV> {
        if flags & ck::CKF_SERIAL_SESSION == 0 {
            return Err(ck::CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if let Err(rv) = self.token(id) {
            return Err(self.on_card_error(id, rv));
        }
        let h = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            h,
            Session {
                slot: id,
                flags,
                found: None,
                sign: None,
            },
        );
        Ok(h)
    }

    /// `C_CloseSession`. The last session closed logs the token out (PKCS#11 §5.6).
    pub fn close_session(&mut self, h: ck::CK_SESSION_HANDLE) -> Result<(), ck::CK_RV> {
        let s = self
            .sessions
            .remove(&h)
            .ok_or(ck::CKR_SESSION_HANDLE_INVALID)?;
        if !self.sessions.values().any(|o| o.slot == s.slot) {
            self.logout_slot(s.slot);
        }
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all(&mut self, id: ck::CK_SLOT_ID) -> Result<(), ck::CK_RV> {
        self.slot_index(id)?;
        self.sessions.retain(|_, s| s.slot != id);
        self.logout_slot(id);
        Ok(())
    }

    /// End the card's verified state: drop the token. The CIE's verified PIN lives in our
    /// secure session, whose keys (and the kept PIN) die with it; a CNS connection that
    /// logged in resets the card when it closes. The next use opens the card afresh.
    fn logout_slot(&mut self, id: ck::CK_SLOT_ID) {
        if let Ok(i) = self.slot_index(id)
            && self.slots[i].token.as_ref().is_some_and(Token::logged_in)
        {
            self.slots[i].token = None;
        }
    }

    fn session(&mut self, h: ck::CK_SESSION_HANDLE) -> Result<&mut Session, ck::CK_RV> {
        self.sessions
            .get_mut(&h)
            .ok_or(ck::CKR_SESSION_HANDLE_INVALID)
    }

    fn logged_in(&self, slot: ck::CK_SLOT_ID) -> bool {
        self.slot_index(slot)
            .ok()
            .and_then(|i| self.slots[i].token.as_ref())
            .is_some_and(Token::logged_in)
    }

    /// `C_GetSessionInfo`: (slot, state, flags), from memory only (NSS polls it).
    pub fn session_info(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
    ) -> Result<(ck::CK_SLOT_ID, ck::CK_STATE, ck::CK_FLAGS), ck::CK_RV> {
        let (slot, flags) = {
            let s = self.session(h)?;
            (s.slot, s.flags)
        };
        let rw = flags & ck::CKF_RW_SESSION != 0;
        let state = match (self.logged_in(slot), rw) {
            (true, true) => ck::CKS_RW_USER_FUNCTIONS,
            (true, false) => ck::CKS_RO_USER_FUNCTIONS,
            (false, true) => ck::CKS_RW_PUBLIC_SESSION,
            (false, false) => ck::CKS_RO_PUBLIC_SESSION,
        };
        Ok((slot, state, flags))
    }

    /// `C_Login` as the user with the card's PIN. `None` (a PIN pad) is refused: the
    /// CIE's VERIFY runs under secure messaging, which a reader's PIN pad cannot do (the
    /// CNS's could, through the reader's PIN-pad feature: not implemented yet).
    pub fn login(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
        user: ck::CK_USER_TYPE,
        pin: Option<&[u8]>,
    ) -> Result<(), ck::CK_RV> {
        let slot = self.session(h)?.slot;
        match user {
            ck::CKU_USER => {}
            ck::CKU_SO | ck::CKU_CONTEXT_SPECIFIC => return Err(ck::CKR_USER_TYPE_INVALID),
            _ => return Err(ck::CKR_USER_TYPE_INVALID),
        }
        let pin = pin.ok_or(ck::CKR_ARGUMENTS_BAD)?;
        let token = match self.token(slot) {
            Ok(t) => t,
            Err(rv) => return Err(self.on_card_error(slot, rv)),
        };
        if token.logged_in() {
            return Err(ck::CKR_USER_ALREADY_LOGGED_IN);
        }
        let outcome = self.hold(slot).and_then(|_held| {
            let i = self.slot_index(slot)?;
            let token = self.slots[i].token.as_mut().ok_or(ck::CKR_DEVICE_REMOVED)?;
            token.login(pin)?;
            if matches!(token, Token::Cns(_))
                && let Some(hold) = &self.slots[i].hold
            {
                // The CNS keeps a verified PIN across connections: reset it when we close.
                hold.reset_when_closed();
            }
            Ok(())
        });
        outcome.map_err(|rv| self.on_card_error(slot, rv))
    }

    /// `C_Logout`.
    pub fn logout(&mut self, h: ck::CK_SESSION_HANDLE) -> Result<(), ck::CK_RV> {
        let slot = self.session(h)?.slot;
        if !self.logged_in(slot) {
            return Err(ck::CKR_USER_NOT_LOGGED_IN);
        }
        self.logout_slot(slot);
        Ok(())
    }

    fn objects_of(&mut self, h: ck::CK_SESSION_HANDLE) -> Result<Vec<Object>, ck::CK_RV> {
        let slot = self.session(h)?.slot;
        let token = match self.token(slot) {
            Ok(t) => t,
            Err(rv) => return Err(self.on_card_error(slot, rv)),
        };
        Ok(objects::objects(token, token.logged_in()))
    }

    /// One object of the session's token, for `C_GetAttributeValue`.
    pub fn object(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
        obj: ck::CK_OBJECT_HANDLE,
    ) -> Result<Object, ck::CK_RV> {
        self.objects_of(h)?
            .into_iter()
            .find(|o| o.handle == obj)
            .ok_or(ck::CKR_OBJECT_HANDLE_INVALID)
    }

    /// `C_FindObjectsInit`.
    pub fn find_init(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
        template: &[(ck::CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<(), ck::CK_RV> {
        if self.session(h)?.found.is_some() {
            return Err(ck::CKR_OPERATION_ACTIVE);
        }
        let found = self
            .objects_of(h)?
            .iter()
            .filter(|o| o.matches(template))
            .map(|o| o.handle)
            .collect();
        self.session(h)?.found = Some(found);
        Ok(())
    }

    /// `C_FindObjects`: up to `max` more handles.
    pub fn find(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<ck::CK_OBJECT_HANDLE>, ck::CK_RV> {
        let found = self
            .session(h)?
            .found
            .as_mut()
            .ok_or(ck::CKR_OPERATION_NOT_INITIALIZED)?;
        let n = max.min(found.len());
        Ok(found.drain(..n).collect())
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&mut self, h: ck::CK_SESSION_HANDLE) -> Result<(), ck::CK_RV> {
        self.session(h)?
            .found
            .take()
            .map(|_| ())
            .ok_or(ck::CKR_OPERATION_NOT_INITIALIZED)
    }

    /// The mechanisms of the token in slot `id`.
    pub fn mechanisms(
        &mut self,
        id: ck::CK_SLOT_ID,
    ) -> Result<&'static [ck::CK_MECHANISM_TYPE], ck::CK_RV> {
        match self.token(id) {
            Ok(t) => Ok(t.mechanisms()),
            Err(rv) => Err(self.on_card_error(id, rv)),
        }
    }

    /// `C_SignInit` with the private key and one of the token's mechanisms; `pss` carries
    /// the parameters the PSS mechanisms need (and only they take).
    pub fn sign_init(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
        mechanism: ck::CK_MECHANISM_TYPE,
        pss: Option<PssParams>,
        key: ck::CK_OBJECT_HANDLE,
    ) -> Result<(), ck::CK_RV> {
        let slot = {
            let s = self.session(h)?;
            if s.sign.is_some() {
                return Err(ck::CKR_OPERATION_ACTIVE);
            }
            s.slot
        };
        if !self.mechanisms(slot)?.contains(&mechanism) {
            return Err(ck::CKR_MECHANISM_INVALID);
        }
        match (is_pss(mechanism), pss) {
            (false, None) => {}
            (true, Some(p)) if hash_of(mechanism).is_none_or(|h| h == p.hash) => {}
            _ => return Err(ck::CKR_MECHANISM_PARAM_INVALID),
        }
        if !self.logged_in(slot) {
            return Err(ck::CKR_USER_NOT_LOGGED_IN);
        }
        if key != H_PRIVATE {
            return Err(ck::CKR_KEY_HANDLE_INVALID);
        }
        self.session(h)?.sign = Some(SignOp {
            mechanism,
            pss,
            data: Zeroizing::new(Vec::new()),
        });
        Ok(())
    }

    /// The signature length of the active operation (the modulus length).
    pub fn sign_len(&mut self, h: ck::CK_SESSION_HANDLE) -> Result<usize, ck::CK_RV> {
        let slot = self.session(h)?.slot;
        if self.session(h)?.sign.is_none() {
            return Err(ck::CKR_OPERATION_NOT_INITIALIZED);
        }
        let i = self.slot_index(slot)?;
        let token = self.slots[i].token.as_ref().ok_or(ck::CKR_DEVICE_REMOVED)?;
        Ok(token.modulus_len())
    }

    /// `C_SignUpdate`: gather data (hash-and-sign mechanisms only, as PKCS#11 says).
    pub fn sign_update(&mut self, h: ck::CK_SESSION_HANDLE, part: &[u8]) -> Result<(), ck::CK_RV> {
        let s = self.session(h)?;
        let op = s.sign.as_mut().ok_or(ck::CKR_OPERATION_NOT_INITIALIZED)?;
        if hash_of(op.mechanism).is_none() {
            s.sign = None;
            return Err(ck::CKR_FUNCTION_NOT_SUPPORTED);
        }
        op.data.extend_from_slice(part);
        Ok(())
    }

    /// `C_Sign` (`data`) or `C_SignFinal` (`None`: the gathered data); ends the operation.
    pub fn sign(
        &mut self,
        h: ck::CK_SESSION_HANDLE,
        data: Option<&[u8]>,
    ) -> Result<Vec<u8>, ck::CK_RV> {
        let (slot, op) = {
            let s = self.session(h)?;
            let op = s.sign.take().ok_or(ck::CKR_OPERATION_NOT_INITIALIZED)?;
            (s.slot, op)
        };
        let message: &[u8] = data.unwrap_or(&op.data);
        let i = self.slot_index(slot)?;
        if self.slots[i].token.is_none() {
            return Err(ck::CKR_DEVICE_REMOVED);
        }
        let _held = match self.hold(slot) {
            Ok(held) => held,
            Err(rv) => return Err(self.on_card_error(slot, rv)),
        };
        let token = self.slots[i].token.as_mut().ok_or(ck::CKR_DEVICE_REMOVED)?;
        if !token.logged_in() {
            return Err(ck::CKR_USER_NOT_LOGGED_IN);
        }
        let signed = match (op.mechanism, op.pss) {
            (ck::CKM_RSA_X_509, _) => {
                padding::raw(message, &token.certificate().public_key.modulus)
                    .map_err(|_| ck::CKR_DATA_LEN_RANGE)
                    .and_then(|block| token.sign_raw(&block))
            }
            (mech, Some(p)) => {
                let m_hash = match hash_of(mech) {
                    Some(alg) => hash(alg, message),
                    None if message.len() == p.hash.digest_len() => message.to_vec(),
                    None => return Err(ck::CKR_DATA_LEN_RANGE),
                };
                let mut salt = vec![0u8; p.salt_len];
                OsRandomness
                    .fill(&mut salt)
                    .map_err(|_| ck::CKR_FUNCTION_FAILED)?;
                let bits = token.certificate().public_key.bits();
                padding::pss(&m_hash, p.hash, p.mgf, &salt, bits)
                    .map_err(|_| ck::CKR_DATA_LEN_RANGE)
                    .and_then(|block| token.sign_raw(&block))
            }
            (mech, None) => {
                let to_sign = match hash_of(mech) {
                    Some(alg) => {
                        digest_info(alg, &hash(alg, message)).map_err(|_| ck::CKR_GENERAL_ERROR)?
                    }
                    None => message.to_vec(),
                };
                token.sign_pkcs1(&to_sign)
            }
        };
        signed.map_err(|rv| self.on_card_error(slot, rv))
    }

    /// Whether slot `id` holds an open token (for the mechanism calls: their sizes come
    /// from its key).
    pub fn key_bits(&mut self, id: ck::CK_SLOT_ID) -> Result<ck::CK_ULONG, ck::CK_RV> {
        let token = match self.token(id) {
            Ok(t) => t,
            Err(rv) => return Err(self.on_card_error(id, rv)),
        };
        ck::CK_ULONG::try_from(token.certificate().public_key.bits())
            .map_err(|_| ck::CKR_GENERAL_ERROR)
    }
}
