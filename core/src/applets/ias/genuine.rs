//! Anti-cloning: the card signs a challenge with its NIS key (EF 1005, key reference `83`),
//! in clear and without the PIN (cie.md §3.6). A copy of the card's files cannot answer,
//! because the private key never leaves the chip.

use super::IasError;
use super::bigint::modexp_public;
use super::files::{IasApplet, Nis};
use super::pubkey::RsaPublicKey;
use crate::apdu::{ApduChannel, Command};
use subtle::ConstantTimeEq;

/// What a relying party needs to check the card itself (the NIS binding of the PagoPA
/// SDKs): the NIS, the key, the challenge and the card's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenuineProof {
    /// The card's NIS.
    pub nis: Nis,
    /// EF 1005, the NIS key (DER).
    pub public_key: RsaPublicKey,
    /// The challenge that was signed.
    pub challenge: Vec<u8>,
    /// The card's PKCS#1 v1.5 signature over the raw challenge.
    pub signature: Vec<u8>,
}

impl<C: ApduChannel + ?Sized> IasApplet<'_, C> {
    /// Have the card sign `challenge` (1-64 bytes, typically from the server, or 16 random
    /// bytes) with its NIS key, check the answer against EF 1005, and return the proof.
    /// Fails with [`IasError::NotGenuine`] when the signature does not verify.
    pub async fn verify_card_genuine(&self, challenge: &[u8]) -> Result<GenuineProof, IasError> {
        if challenge.is_empty() || challenge.len() > 64 {
            return Err(IasError::malformed("challenge", "must be 1 to 64 bytes"));
        }
        let nis = self.read_nis().await?;
        let public_key = self.read_nis_public_key().await?;
        let ch = self.channel();
        let mse =
            Command::new(0x00, 0x22, 0x41, 0xA4).with_data([0x80, 0x01, 0x02, 0x84, 0x01, 0x83]);
        ch.transmit(&mse).await?.check(0x22)?;
        let int_auth = Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data(challenge)
            .with_le(256);
        let signature = ch.transmit(&int_auth).await?.into_data(0x88)?;
        check_pkcs1_raw(&public_key, challenge, &signature)?;
        Ok(GenuineProof {
            nis,
            public_key,
            challenge: challenge.to_vec(),
            signature,
        })
    }
}

/// `signature^e mod n` must equal `00 01 FF…FF 00 ‖ message` (PKCS#1 v1.5 type 01 over the
/// raw message, no DigestInfo), compared in constant time.
pub fn check_pkcs1_raw(
    key: &RsaPublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), IasError> {
    if pkcs1_type1_matches(key, message, signature) {
        Ok(())
    } else {
        Err(IasError::NotGenuine)
    }
}

/// Whether `signature` opens with `key` to the PKCS#1 v1.5 type-01 block around `payload`
/// (a raw challenge, or a DigestInfo), compared in constant time.
pub(crate) fn pkcs1_type1_matches(key: &RsaPublicKey, payload: &[u8], signature: &[u8]) -> bool {
    let k = key.modulus.len();
    if signature.len() != k || payload.len() + 11 > k {
        return false;
    }
    let Ok(recovered) = modexp_public(signature, &key.exponent, &key.modulus) else {
        return false;
    };
    let mut expected = vec![0xFF; k];
    expected[0] = 0x00;
    expected[1] = 0x01;
    expected[k - payload.len() - 1] = 0x00;
    expected[k - payload.len()..].copy_from_slice(payload);
    bool::from(recovered.ct_eq(&expected))
}
