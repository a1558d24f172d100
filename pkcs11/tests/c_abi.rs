//! The C boundary as a PKCS#11 application sees it: the function list, the lifecycle rules
//! NSS and p11-kit rely on, and functions the module does not offer. No reader is needed:
//! nothing here touches a card. (Calling a C ABI is an FFI edge, hence the `unsafe`.)
#![allow(unsafe_code)]

use cie_companion_pkcs11::C_GetFunctionList;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr;

fn functions() -> &'static CK_FUNCTION_LIST {
    let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer.
    assert_eq!(unsafe { C_GetFunctionList(&mut list) }, CKR_OK);
    assert!(!list.is_null());
    // SAFETY: the module returns a pointer to a static list.
    unsafe { &*list }
}

// One test, because the module's state is process-wide.
#[test]
fn lifecycle_and_unsupported_functions() {
    // SAFETY: NULL is refused, not written through.
    assert_eq!(
        unsafe { C_GetFunctionList(ptr::null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    let f = functions();
    assert_eq!((f.version.major, f.version.minor), (2, 40));
    let init = f.C_Initialize.expect("C_Initialize");
    let fin = f.C_Finalize.expect("C_Finalize");
    let get_info = f.C_GetInfo.expect("C_GetInfo");
    let mut info = CK_INFO::default();

    // SAFETY: every call below passes valid pointers or the NULLs PKCS#11 allows.
    unsafe {
        assert_eq!(get_info(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(fin(ptr::null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);

        // Two of the four mutex callbacks: refused.
        extern "C" fn create(_m: *mut *mut c_void) -> CK_RV {
            CKR_OK
        }
        extern "C" fn other(_m: *mut c_void) -> CK_RV {
            CKR_OK
        }
        let mut half = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create),
            DestroyMutex: Some(other),
            LockMutex: None,
            UnlockMutex: None,
            flags: 0,
            pReserved: ptr::null_mut(),
        };
        assert_eq!(init((&raw mut half).cast()), CKR_ARGUMENTS_BAD);
        // NSS's arguments: all four callbacks, OS locking, no threads, parameters in pReserved.
        let mut params = *b"configdir='x'\0";
        let mut nss = CK_C_INITIALIZE_ARGS {
            CreateMutex: Some(create),
            DestroyMutex: Some(other),
            LockMutex: Some(other),
            UnlockMutex: Some(other),
            flags: CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS,
            pReserved: params.as_mut_ptr().cast(),
        };
        assert_eq!(init((&raw mut nss).cast()), CKR_OK);
        assert_eq!(init(ptr::null_mut()), CKR_CRYPTOKI_ALREADY_INITIALIZED);

        assert_eq!(get_info(&mut info), CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (2, 40)
        );
        assert_eq!(&info.manufacturerID[..13], b"cie-companion");
        assert_eq!(info.manufacturerID[13..], [b' '; 19], "blank-padded");
        assert_eq!(get_info(ptr::null_mut()), CKR_ARGUMENTS_BAD);

        // Functions the module does not offer answer, rather than being NULL.
        let gen_random = f.C_GenerateRandom.expect("C_GenerateRandom entry");
        let mut buf = [0u8; 8];
        assert_eq!(
            gen_random(1, buf.as_mut_ptr(), 8),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        let wait = f.C_WaitForSlotEvent.expect("C_WaitForSlotEvent entry");
        let mut slot: CK_SLOT_ID = 0;
        assert_eq!(
            wait(0, &mut slot, ptr::null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        // An unknown session is an error, not a crash.
        let close = f.C_CloseSession.expect("C_CloseSession");
        assert_eq!(close(12345), CKR_SESSION_HANDLE_INVALID);
        let login = f.C_Login.expect("C_Login");
        let mut pin = *b"12345678";
        assert_eq!(
            login(12345, CKU_USER, pin.as_mut_ptr(), 8),
            CKR_SESSION_HANDLE_INVALID
        );

        assert_eq!(fin(&raw mut buf as *mut c_void), CKR_ARGUMENTS_BAD);
        assert_eq!(fin(ptr::null_mut()), CKR_OK);
        assert_eq!(get_info(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        // Initialised again after finalize.
        assert_eq!(init(ptr::null_mut()), CKR_OK);
        assert_eq!(fin(ptr::null_mut()), CKR_OK);
    }
    let every_entry = [
        f.C_InitToken.is_some(),
        f.C_SetPIN.is_some(),
        f.C_Encrypt.is_some(),
        f.C_Decrypt.is_some(),
        f.C_Digest.is_some(),
        f.C_Verify.is_some(),
        f.C_GenerateKeyPair.is_some(),
        f.C_DeriveKey.is_some(),
        f.C_CancelFunction.is_some(),
    ];
    assert!(every_entry.iter().all(|e| *e));
}
