//! The device key: a P-256 key the platform keystore holds (Android Keystore, iOS Secure
//! Enclave) and the shells expose as a [`DeviceSigner`]. The protocol sends ES256 as raw
//! r‖s (64 bytes); Apple and Android return DER (X9.62), so the core converts, and checks
//! every signature against the key before it leaves the phone (a keystore that signed with
//! another key, or returned garbage, is caught here with a typed error, not at the server).

use super::pairing::StoreError;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

/// SEC1 uncompressed P-256 point: `04 ‖ x ‖ y`.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Raw ES256 signature: `r ‖ s`.
pub const RAW_SIGNATURE_LEN: usize = 64;

/// The device's signing key, implemented by the shells on the platform keystore. The key
/// never leaves it; the core only asks for the public key and for signatures.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait DeviceSigner: Send + Sync {
    /// The public key, SEC1 uncompressed (65 bytes, `04 ‖ x ‖ y`).
    fn public_key(&self) -> Result<Vec<u8>, StoreError>;
    /// ECDSA P-256 with SHA-256 over `message` (the keystore hashes it). DER (what
    /// Android `Signature("SHA256withECDSA")` and Apple `ecdsaSignatureMessageX962SHA256`
    /// return) or raw r‖s. Async: the keystore may first ask for the user's fingerprint.
    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, StoreError>;
}

/// What was wrong with the device key or its signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceKeyError {
    /// The public key is not a SEC1 uncompressed P-256 point.
    #[error("the device key is not a P-256 public key (65-byte SEC1 uncompressed)")]
    BadPublicKey,
    /// The signature is neither DER nor raw r‖s ECDSA.
    #[error("the device keystore returned something that is not an ECDSA signature")]
    MalformedSignature,
    /// A well-formed signature that does not verify under the device key.
    #[error("the device keystore's signature does not match the device key")]
    WrongKey,
    /// The keystore failed or the user cancelled.
    #[error("device keystore: {0}")]
    Store(#[from] StoreError),
}

impl DeviceKeyError {
    /// The same message in Italian, saying what to do next.
    pub fn message_it(&self) -> String {
        match self {
            Self::BadPublicKey | Self::MalformedSignature | Self::WrongKey => {
                "la chiave di questo dispositivo non è valida: registra di nuovo il dispositivo con la CIE".into()
            }
            Self::Store(StoreError::Cancelled) => "operazione annullata: riprova quando vuoi".into(),
            Self::Store(StoreError::Unavailable { .. }) => {
                "archivio sicuro del telefono non disponibile: sblocca il telefono e riprova, oppure registra di nuovo il dispositivo".into()
            }
        }
    }
}

/// Check a public key: a P-256 point, SEC1 uncompressed.
pub fn check_public_key(sec1: &[u8]) -> Result<VerifyingKey, DeviceKeyError> {
    if sec1.len() != PUBLIC_KEY_LEN || sec1[0] != 0x04 {
        return Err(DeviceKeyError::BadPublicKey);
    }
    VerifyingKey::from_sec1_bytes(sec1).map_err(|_| DeviceKeyError::BadPublicKey)
}

/// The raw r‖s form of `signature` (DER or raw) over `message`, checked against `key`.
/// High-S signatures (Apple and Android do not normalise) are accepted and kept as they
/// are: ECDSA verification accepts both, and the server must too. A 64-byte string can in
/// principle parse both as DER and as raw: the form that verifies wins.
pub fn to_raw_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<[u8; RAW_SIGNATURE_LEN], DeviceKeyError> {
    let candidates = [
        Signature::from_der(signature).ok(),
        (signature.len() == RAW_SIGNATURE_LEN)
            .then(|| Signature::from_slice(signature).ok())
            .flatten(),
    ];
    let mut parsed = false;
    for sig in candidates.into_iter().flatten() {
        parsed = true;
        // Verify the low-S twin: same validity, and independent of whether the verifier
        // insists on low S.
        let check = sig.normalize_s();
        if key.verify(message, &check).is_ok() {
            let mut raw = [0u8; RAW_SIGNATURE_LEN];
            raw.copy_from_slice(&sig.to_bytes());
            return Ok(raw);
        }
    }
    Err(if parsed {
        DeviceKeyError::WrongKey
    } else {
        DeviceKeyError::MalformedSignature
    })
}

/// The device's public key (checked) and its SEC1 bytes.
pub fn device_public_key(
    signer: &dyn DeviceSigner,
) -> Result<(VerifyingKey, Vec<u8>), DeviceKeyError> {
    let sec1 = signer.public_key()?;
    Ok((check_public_key(&sec1)?, sec1))
}

/// Have the device sign `message`; the raw r‖s signature, checked against its key.
pub async fn sign_raw(
    signer: &dyn DeviceSigner,
    message: &[u8],
) -> Result<[u8; RAW_SIGNATURE_LEN], DeviceKeyError> {
    let (key, _) = device_public_key(signer)?;
    let signature = signer.sign(message.to_vec()).await?;
    to_raw_signature(&key, message, &signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x42; 32]).unwrap()
    }

    fn sec1(k: &SigningKey) -> Vec<u8> {
        k.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }

    /// The high-S twin of a signature: (r, n − s), still valid.
    fn high_s(sig: &Signature) -> Signature {
        let (r, s) = sig.split_scalars();
        let twin = Signature::from_scalars(r, -*s).unwrap();
        assert!(twin.normalize_s() != twin || sig.normalize_s() != *sig);
        twin
    }

    #[test]
    fn der_and_raw_become_the_same_raw() {
        let k = key();
        let msg = b"cie-companion/v1 pending";
        let sig: Signature = k.sign(msg);
        let vk = check_public_key(&sec1(&k)).unwrap();
        let der = sig.to_der();
        assert_eq!(der.as_bytes()[0], 0x30);
        let raw = to_raw_signature(&vk, msg, der.as_bytes()).unwrap();
        assert_eq!(raw.as_slice(), sig.to_bytes().as_slice());
        assert_eq!(to_raw_signature(&vk, msg, &raw).unwrap(), raw);
    }

    #[test]
    fn high_s_is_accepted_and_kept() {
        let k = key();
        let msg = b"approve";
        let sig: Signature = k.sign(msg);
        let vk = check_public_key(&sec1(&k)).unwrap();
        // Whichever of the two is high-S, both convert, each to itself.
        for s in [sig, high_s(&sig)] {
            let raw = to_raw_signature(&vk, msg, s.to_der().as_bytes()).unwrap();
            assert_eq!(raw.as_slice(), s.to_bytes().as_slice());
        }
    }

    #[test]
    fn garbage_and_other_keys_are_refused() {
        let k = key();
        let vk = check_public_key(&sec1(&k)).unwrap();
        let msg = b"m";
        for junk in [&b""[..], &[0x30, 0x02, 0x01, 0x01], &[0u8; 64], &[1u8; 63]] {
            assert_eq!(
                to_raw_signature(&vk, msg, junk),
                Err(DeviceKeyError::MalformedSignature),
                "{junk:?}"
            );
        }
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        let sig: Signature = other.sign(msg);
        assert_eq!(
            to_raw_signature(&vk, msg, sig.to_der().as_bytes()),
            Err(DeviceKeyError::WrongKey)
        );
        let sig: Signature = k.sign(b"another message");
        assert_eq!(
            to_raw_signature(&vk, msg, &sig.to_bytes()),
            Err(DeviceKeyError::WrongKey)
        );
    }

    #[test]
    fn public_keys_must_be_uncompressed_p256() {
        let k = key();
        let full = sec1(&k);
        assert!(check_public_key(&full).is_ok());
        let compressed = k.verifying_key().to_sec1_point(true).as_bytes().to_vec();
        assert_eq!(
            check_public_key(&compressed),
            Err(DeviceKeyError::BadPublicKey)
        );
        let mut off_curve = full.clone();
        off_curve[64] ^= 1;
        assert_eq!(
            check_public_key(&off_curve),
            Err(DeviceKeyError::BadPublicKey)
        );
        assert_eq!(
            check_public_key(&[4; 65]),
            Err(DeviceKeyError::BadPublicKey)
        );
    }

    struct Fixed(SigningKey, bool);

    #[async_trait::async_trait]
    impl DeviceSigner for Fixed {
        fn public_key(&self) -> Result<Vec<u8>, StoreError> {
            Ok(sec1(&self.0))
        }
        async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, StoreError> {
            if self.1 {
                return Err(StoreError::Cancelled);
            }
            let sig: Signature = self.0.sign(&message);
            Ok(sig.to_der().as_bytes().to_vec())
        }
    }

    #[test]
    fn signer_output_is_normalised_to_raw() {
        let raw = pollster::block_on(sign_raw(&Fixed(key(), false), b"x")).unwrap();
        let vk = check_public_key(&sec1(&key())).unwrap();
        vk.verify(b"x", &Signature::from_slice(&raw).unwrap())
            .unwrap();
        assert_eq!(
            pollster::block_on(sign_raw(&Fixed(key(), true), b"x")),
            Err(DeviceKeyError::Store(StoreError::Cancelled))
        );
    }
}
