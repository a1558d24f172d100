//! The C boundary: every `unsafe` of the module is here. Each entry point checks its
//! pointers, converts them to Rust values, runs the safe [`Module`] under one lock on the
//! caller's thread (no thread is ever created), and catches any panic so none crosses into
//! the caller (a browser would abort): a panic becomes `CKR_GENERAL_ERROR`.
#![allow(unsafe_code, non_snake_case, clippy::missing_safety_doc)]

use crate::card::PcscReaders;
use crate::module::{Module, PssParams};
use crate::objects::AttrValue;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

/// The loaded module: `None` until `C_Initialize`; the pid it was initialised in (after a
/// fork the child starts afresh, as a pcsc-lite context does not survive fork).
static STATE: Mutex<Option<(u32, Module)>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<(u32, Module)>> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run `f` on the initialised module; `CKR_CRYPTOKI_NOT_INITIALIZED` before `C_Initialize`
/// (or in a forked child), `CKR_GENERAL_ERROR` if anything panicked.
fn with_module(f: impl FnOnce(&mut Module) -> Result<(), CK_RV>) -> CK_RV {
    guard(|| {
        let mut state = lock();
        match state.as_mut() {
            Some((pid, m)) if *pid == std::process::id() => match f(m) {
                Ok(()) => CKR_OK,
                Err(rv) => rv,
            },
            _ => CKR_CRYPTOKI_NOT_INITIALIZED,
        }
    })
}

fn guard(f: impl FnOnce() -> CK_RV) -> CK_RV {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(CKR_GENERAL_ERROR)
}

/// Blank-padded fixed field (PKCS#11 strings are not NUL-terminated).
fn pad<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = 0;
    // Cut on a character boundary.
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() > N {
            break;
        }
        end = i + c.len_utf8();
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

const VERSION: CK_VERSION = CK_VERSION {
    major: 2,
    minor: 40,
};
const LIB_VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

/// Bytes at `ptr` (`len` of them); `None` for a NULL pointer with a non-zero length.
unsafe fn slice<'a>(ptr: *const u8, len: CK_ULONG) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller passes `len` readable bytes at `ptr` (PKCS#11 contract).
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The PKCS#11 output convention: NULL buffer → length only; too small → length and
/// `CKR_BUFFER_TOO_SMALL`; else copy.
unsafe fn output<T: Copy>(items: &[T], out: *mut T, len: *mut CK_ULONG) -> Result<(), CK_RV> {
    if len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let n = CK_ULONG::try_from(items.len()).map_err(|_| CKR_GENERAL_ERROR)?;
    // SAFETY: `len` is non-NULL and points to a CK_ULONG the caller owns.
    let cap = unsafe { *len };
    unsafe { *len = n };
    if out.is_null() {
        return Ok(());
    }
    if cap < n {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: the caller said `out` holds `cap >= n` items.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), out, items.len()) };
    Ok(())
}

/// The caller's attribute template as a slice (`count` entries; NULL only when empty).
unsafe fn template<'a>(
    ptr: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<&'a mut [CK_ATTRIBUTE], CK_RV> {
    let n = usize::try_from(count).map_err(|_| CKR_ARGUMENTS_BAD)?;
    if n == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: the caller passes `count` attributes at `ptr` (PKCS#11 contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, n) })
}

unsafe fn write<T>(out: *mut T, value: T) -> Result<(), CK_RV> {
    if out.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, and the caller passes a writable T.
    unsafe { out.write(value) };
    Ok(())
}

extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        if !args.is_null() {
            // SAFETY: a non-NULL argument is a CK_C_INITIALIZE_ARGS (PKCS#11 §5.4).
            let a = unsafe { &*(args as *const CK_C_INITIALIZE_ARGS) };
            let given = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            // All four mutex functions or none. With them, we still use our OS lock
            // (CKF_OS_LOCKING_OK or not: ours is always available). pReserved carries NSS's
            // module parameters: accepted and ignored. No thread is created either way,
            // so CKF_LIBRARY_CANT_CREATE_OS_THREADS is honoured.
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return CKR_ARGUMENTS_BAD;
            }
        }
        let mut state = lock();
        let pid = std::process::id();
        if matches!(state.as_ref(), Some((p, _)) if *p == pid) {
            return CKR_CRYPTOKI_ALREADY_INITIALIZED;
        }
        *state = Some((pid, Module::new(Box::new(PcscReaders::default()))));
        CKR_OK
    })
}

extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let mut state = lock();
        match state.take() {
            Some((pid, _)) if pid == std::process::id() => CKR_OK,
            _ => CKR_CRYPTOKI_NOT_INITIALIZED,
        }
    })
}

extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    with_module(|_| unsafe {
        write(
            info,
            CK_INFO {
                cryptokiVersion: VERSION,
                manufacturerID: pad("cie-companion"),
                flags: 0,
                libraryDescription: pad("CIE PKCS#11 (cie-companion)"),
                libraryVersion: LIB_VERSION,
            },
        )
    })
}

#[unsafe(no_mangle)]
/// The one exported symbol: the table of every entry point.
///
/// # Safety
/// `list` is NULL or points to writable storage for one pointer.
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        if list.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL; the list is a static the caller only reads (PKCS#11 declares
        // the pointer non-const for historical reasons).
        unsafe { *list = std::ptr::addr_of!(FUNCTIONS).cast_mut() };
        CKR_OK
    })
}

extern "C" fn C_GetSlotList(
    present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        // Readers are re-read only when the caller asks for the count (OpenSC's rule:
        // the list may change only then), so a sized buffer always fits.
        let slots = m.slot_list(present != 0, list.is_null());
        unsafe { output(&slots, list, count) }
    })
}

extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    with_module(|m| {
        m.refresh()?;
        let (name, present) = m.slot_info(slot)?;
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if present {
            flags |= CKF_TOKEN_PRESENT;
        }
        unsafe {
            write(
                info,
                CK_SLOT_INFO {
                    slotDescription: pad(&name),
                    manufacturerID: pad("PC/SC"),
                    flags,
                    hardwareVersion: CK_VERSION::default(),
                    firmwareVersion: CK_VERSION::default(),
                },
            )
        }
    })
}

extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    with_module(|m| {
        if info.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let t = m.token_info(slot)?;
        let count = |n: usize| CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX);
        let value = CK_TOKEN_INFO {
            label: pad(&t.label),
            manufacturerID: pad(t.manufacturer),
            model: pad(t.model),
            serialNumber: pad(&t.serial),
            flags: t.flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: count(t.sessions.0),
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: count(t.sessions.1),
            ulMaxPinLen: count(t.pin_len.1),
            ulMinPinLen: count(t.pin_len.0),
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION::default(),
            firmwareVersion: CK_VERSION::default(),
            utcTime: [b' '; 16],
        };
        unsafe { write(info, value) }
    })
}

extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let mechanisms = m.mechanisms(slot)?;
        unsafe { output(mechanisms, list, count) }
    })
}

extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mech: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    with_module(|m| {
        let bits = m.key_bits(slot)?;
        if !m.mechanisms(slot)?.contains(&mech) {
            return Err(CKR_MECHANISM_INVALID);
        }
        unsafe {
            write(
                info,
                CK_MECHANISM_INFO {
                    ulMinKeySize: bits,
                    ulMaxKeySize: bits,
                    flags: CKF_HW | CKF_SIGN,
                },
            )
        }
    })
}

extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    with_module(|m| {
        if session.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let h = m.open_session(slot, flags)?;
        unsafe { write(session, h) }
    })
}

extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| m.close_session(session))
}

extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    with_module(|m| m.close_all(slot))
}

extern "C" fn C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    with_module(|m| {
        let (slotID, state, flags) = m.session_info(session)?;
        unsafe {
            write(
                info,
                CK_SESSION_INFO {
                    slotID,
                    state,
                    flags,
                    ulDeviceError: 0,
                },
            )
        }
    })
}

extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let pin = if pin.is_null() {
            None
        } else {
            // The PIN is borrowed from the caller, never copied here; the core zeroizes
            // its own copy.
            Some(unsafe { slice(pin, len) }.ok_or(CKR_ARGUMENTS_BAD)?)
        };
        m.login(session, user, pin)
    })
}

extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| m.logout(session))
}

extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let attrs = unsafe { template(attrs, count) }?;
        let obj = m.object(session, object)?;
        let mut rv = CKR_OK;
        for a in attrs {
            match obj.get(a.type_) {
                AttrValue::Value(v) => {
                    let len = CK_ULONG::try_from(v.len()).map_err(|_| CKR_GENERAL_ERROR)?;
                    if a.pValue.is_null() {
                        a.ulValueLen = len;
                    } else if a.ulValueLen < len {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = CKR_BUFFER_TOO_SMALL;
                    } else {
                        // SAFETY: the caller said pValue holds ulValueLen >= len bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                v.as_ptr(),
                                a.pValue.cast::<u8>(),
                                v.len(),
                            )
                        };
                        a.ulValueLen = len;
                    }
                }
                AttrValue::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                AttrValue::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_TYPE_INVALID;
                }
            }
        }
        if rv == CKR_OK { Ok(()) } else { Err(rv) }
    })
}

extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let attrs = unsafe { template(attrs, count) }?;
        let mut wanted = Vec::with_capacity(attrs.len());
        for a in attrs.iter() {
            let value = unsafe { slice(a.pValue.cast::<u8>(), a.ulValueLen) }
                .ok_or(CKR_ATTRIBUTE_VALUE_INVALID)?;
            wanted.push((a.type_, value.to_vec()));
        }
        m.find_init(session, &wanted)
    })
}

extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        if out.is_null() || count.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let found = m.find(session, usize::try_from(max).unwrap_or(usize::MAX))?;
        // SAFETY: `out` holds `max` handles and found.len() <= max.
        unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), out, found.len()) };
        unsafe {
            write(
                count,
                CK_ULONG::try_from(found.len()).map_err(|_| CKR_GENERAL_ERROR)?,
            )
        }
    })
}

extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| m.find_final(session))
}

extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        if mech.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: non-NULL CK_MECHANISM from the caller.
        let mech = unsafe { &*mech };
        let pss = if mech.pParameter.is_null() && mech.ulParameterLen == 0 {
            None
        } else {
            let size = CK_ULONG::try_from(std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>())
                .map_err(|_| CKR_GENERAL_ERROR)?;
            if mech.pParameter.is_null() || mech.ulParameterLen != size {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            // SAFETY: non-NULL and exactly the size of CK_RSA_PKCS_PSS_PARAMS, as the caller
            // states; read unaligned, the caller's buffer may be any bytes.
            let p = unsafe {
                std::ptr::read_unaligned(mech.pParameter as *const CK_RSA_PKCS_PSS_PARAMS)
            };
            Some(PssParams::new(p.hashAlg, p.mgf, p.sLen).ok_or(CKR_MECHANISM_PARAM_INVALID)?)
        };
        m.sign_init(session, mech.mechanism, pss, key)
    })
}

/// C_Sign and C_SignFinal: size query without touching the card, then the signature.
fn finish_sign(
    m: &mut Module,
    session: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    sig: *mut u8,
    len: *mut CK_ULONG,
) -> Result<(), CK_RV> {
    if len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let need = CK_ULONG::try_from(m.sign_len(session)?).map_err(|_| CKR_GENERAL_ERROR)?;
    // SAFETY: `len` is non-NULL.
    let cap = unsafe { *len };
    if sig.is_null() || cap < need {
        unsafe { *len = need };
        return if sig.is_null() {
            Ok(())
        } else {
            Err(CKR_BUFFER_TOO_SMALL)
        };
    }
    let signature = m.sign(session, data)?;
    unsafe { output(&signature, sig, len) }
}

extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let data = unsafe { slice(data, data_len) }.ok_or(CKR_ARGUMENTS_BAD)?;
        finish_sign(m, session, Some(data), sig, sig_len)
    })
}

extern "C" fn C_SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    with_module(|m| {
        let part = unsafe { slice(part, len) }.ok_or(CKR_ARGUMENTS_BAD)?;
        m.sign_update(session, part)
    })
}

extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| finish_sign(m, session, None, sig, sig_len))
}

/// Functions the module does not offer: `CKR_FUNCTION_NOT_SUPPORTED`, never a NULL entry.
macro_rules! not_supported {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(extern "C" fn $name($($arg: $ty),*) -> CK_RV { CKR_FUNCTION_NOT_SUPPORTED })*
    };
}

not_supported! {
    C_InitToken(_arg1: CK_SLOT_ID, _arg2: *mut CK_UTF8CHAR, _arg3: CK_ULONG, _arg4: *mut CK_UTF8CHAR);
    C_InitPIN(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_UTF8CHAR, _arg3: CK_ULONG);
    C_SetPIN(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_UTF8CHAR, _arg3: CK_ULONG, _arg4: *mut CK_UTF8CHAR, _arg5: CK_ULONG);
    C_GetOperationState(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: *mut CK_ULONG);
    C_SetOperationState(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: CK_OBJECT_HANDLE, _arg5: CK_OBJECT_HANDLE);
    C_CreateObject(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_ATTRIBUTE, _arg3: CK_ULONG, _arg4: *mut CK_OBJECT_HANDLE);
    C_CopyObject(_arg1: CK_SESSION_HANDLE, _arg2: CK_OBJECT_HANDLE, _arg3: *mut CK_ATTRIBUTE, _arg4: CK_ULONG, _arg5: *mut CK_OBJECT_HANDLE);
    C_DestroyObject(_arg1: CK_SESSION_HANDLE, _arg2: CK_OBJECT_HANDLE);
    C_GetObjectSize(_arg1: CK_SESSION_HANDLE, _arg2: CK_OBJECT_HANDLE, _arg3: *mut CK_ULONG);
    C_SetAttributeValue(_arg1: CK_SESSION_HANDLE, _arg2: CK_OBJECT_HANDLE, _arg3: *mut CK_ATTRIBUTE, _arg4: CK_ULONG);
    C_EncryptInit(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE);
    C_Encrypt(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_EncryptUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_EncryptFinal(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: *mut CK_ULONG);
    C_DecryptInit(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE);
    C_Decrypt(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_DecryptUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_DecryptFinal(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: *mut CK_ULONG);
    C_DigestInit(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM);
    C_Digest(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_DigestUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG);
    C_DigestKey(_arg1: CK_SESSION_HANDLE, _arg2: CK_OBJECT_HANDLE);
    C_DigestFinal(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: *mut CK_ULONG);
    C_SignRecoverInit(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE);
    C_SignRecover(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_VerifyInit(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE);
    C_Verify(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: CK_ULONG);
    C_VerifyUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG);
    C_VerifyFinal(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG);
    C_VerifyRecoverInit(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE);
    C_VerifyRecover(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_DigestEncryptUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_DecryptDigestUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_SignEncryptUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_DecryptVerifyUpdate(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG, _arg4: *mut CK_BYTE, _arg5: *mut CK_ULONG);
    C_GenerateKey(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: *mut CK_ATTRIBUTE, _arg4: CK_ULONG, _arg5: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: *mut CK_ATTRIBUTE, _arg4: CK_ULONG, _arg5: *mut CK_ATTRIBUTE, _arg6: CK_ULONG, _arg7: *mut CK_OBJECT_HANDLE, _arg8: *mut CK_OBJECT_HANDLE);
    C_WrapKey(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE, _arg4: CK_OBJECT_HANDLE, _arg5: *mut CK_BYTE, _arg6: *mut CK_ULONG);
    C_UnwrapKey(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE, _arg4: *mut CK_BYTE, _arg5: CK_ULONG, _arg6: *mut CK_ATTRIBUTE, _arg7: CK_ULONG, _arg8: *mut CK_OBJECT_HANDLE);
    C_DeriveKey(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_MECHANISM, _arg3: CK_OBJECT_HANDLE, _arg4: *mut CK_ATTRIBUTE, _arg5: CK_ULONG, _arg6: *mut CK_OBJECT_HANDLE);
    C_SeedRandom(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG);
    C_GenerateRandom(_arg1: CK_SESSION_HANDLE, _arg2: *mut CK_BYTE, _arg3: CK_ULONG);
    C_GetFunctionStatus(_arg1: CK_SESSION_HANDLE);
    C_CancelFunction(_arg1: CK_SESSION_HANDLE);
    C_WaitForSlotEvent(_arg1: CK_FLAGS, _arg2: *mut CK_SLOT_ID, _arg3: *mut c_void);

}

macro_rules! function_list {
    ($($name:ident),*) => {
        static FUNCTIONS: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
            version: VERSION,
            $($name: Some($name),)*
        };
    };
}

function_list!(
    C_Initialize,
    C_Finalize,
    C_GetInfo,
    C_GetFunctionList,
    C_GetSlotList,
    C_GetSlotInfo,
    C_GetTokenInfo,
    C_GetMechanismList,
    C_GetMechanismInfo,
    C_InitToken,
    C_InitPIN,
    C_SetPIN,
    C_OpenSession,
    C_CloseSession,
    C_CloseAllSessions,
    C_GetSessionInfo,
    C_GetOperationState,
    C_SetOperationState,
    C_Login,
    C_Logout,
    C_CreateObject,
    C_CopyObject,
    C_DestroyObject,
    C_GetObjectSize,
    C_GetAttributeValue,
    C_SetAttributeValue,
    C_FindObjectsInit,
    C_FindObjects,
    C_FindObjectsFinal,
    C_EncryptInit,
    C_Encrypt,
    C_EncryptUpdate,
    C_EncryptFinal,
    C_DecryptInit,
    C_Decrypt,
    C_DecryptUpdate,
    C_DecryptFinal,
    C_DigestInit,
    C_Digest,
    C_DigestUpdate,
    C_DigestKey,
    C_DigestFinal,
    C_SignInit,
    C_Sign,
    C_SignUpdate,
    C_SignFinal,
    C_SignRecoverInit,
    C_SignRecover,
    C_VerifyInit,
    C_Verify,
    C_VerifyUpdate,
    C_VerifyFinal,
    C_VerifyRecoverInit,
    C_VerifyRecover,
    C_DigestEncryptUpdate,
    C_DecryptDigestUpdate,
    C_SignEncryptUpdate,
    C_DecryptVerifyUpdate,
    C_GenerateKey,
    C_GenerateKeyPair,
    C_WrapKey,
    C_UnwrapKey,
    C_DeriveKey,
    C_SeedRandom,
    C_GenerateRandom,
    C_GetFunctionStatus,
    C_CancelFunction,
    C_WaitForSlotEvent
);
