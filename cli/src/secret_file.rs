//! The desktop program's [`SecretStore`]: one file, encrypted with a key derived from a
//! passphrase, so no seed ever sits in a plain file (issue #6). There is no keystore to
//! lean on in a terminal; the passphrase comes from `CIE_COMPANION_PASSPHRASE` or a prompt.
//!
//! Format v1: `CIECSEC1` ‖ salt (16) ‖ nonce (24) ‖ XChaCha20-Poly1305(JSON map), the magic
//! and salt as associated data; key = Argon2id(passphrase, salt), 19 MiB, 2 passes (OWASP's
//! minimum). Written to a temporary file (mode 0600) and renamed, so a crash never leaves a
//! half-written store.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use cie_core::flows::pairing::{Protection, SecretStore, StoreError};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 8] = b"CIECSEC1";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
/// Environment variable holding the passphrase (for scripts and CI).
pub const PASSPHRASE_ENV: &str = "CIE_COMPANION_PASSPHRASE";
/// Environment variable overriding the store's path.
pub const PATH_ENV: &str = "CIE_COMPANION_STORE";

#[derive(Serialize, Deserialize, Default)]
struct Contents {
    entries: BTreeMap<String, Entry>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        for e in self.entries.values_mut() {
            e.value.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    protection: String,
    /// Hex, so the JSON stays text.
    value: String,
}

fn unavailable(reason: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        reason: reason.into(),
    }
}

/// Where the store lives by default: `$CIE_COMPANION_STORE`, else
/// `$XDG_DATA_HOME/cie-companion/secrets.enc`, else `~/.local/share/cie-companion/secrets.enc`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os(PATH_ENV) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("cie-companion").join("secrets.enc")
}

/// How the passphrase is obtained.
pub enum Passphrase {
    /// Given (environment variable or test).
    Given(Zeroizing<String>),
    /// Ask on the terminal when needed.
    Prompt,
}

impl Passphrase {
    /// From the environment when set, else a terminal prompt.
    pub fn from_env() -> Self {
        match std::env::var(PASSPHRASE_ENV) {
            Ok(p) => Self::Given(Zeroizing::new(p)),
            Err(_) => Self::Prompt,
        }
    }

    fn get(&self, creating: bool) -> Result<Zeroizing<String>, StoreError> {
        match self {
            Self::Given(p) => Ok(p.clone()),
            Self::Prompt => {
                use std::io::IsTerminal;
                if !std::io::stdin().is_terminal() {
                    return Err(unavailable(format!(
                        "no passphrase: set {PASSPHRASE_ENV} or run in a terminal / nessuna passphrase: \
                         imposta {PASSPHRASE_ENV} o esegui in un terminale"
                    )));
                }
                let p = Zeroizing::new(
                    rpassword::prompt_password(
                        "Passphrase of the code store / dell'archivio codici: ",
                    )
                    .map_err(|e| unavailable(e.to_string()))?,
                );
                if creating {
                    let again = Zeroizing::new(
                        rpassword::prompt_password("Repeat it / Ripetila: ")
                            .map_err(|e| unavailable(e.to_string()))?,
                    );
                    if *again != *p {
                        return Err(unavailable(
                            "the two passphrases differ / le due passphrase sono diverse",
                        ));
                    }
                }
                Ok(p)
            }
        }
    }
}

/// A derived key and the salt it was derived with.
type DerivedKey = (Zeroizing<[u8; 32]>, [u8; SALT_LEN]);

/// The encrypted-file store.
pub struct FileSecretStore {
    path: PathBuf,
    passphrase: Passphrase,
    // Derived once per process: Argon2id is deliberately slow.
    key: Mutex<Option<DerivedKey>>,
}

fn derive(pass: &str, salt: &[u8; SALT_LEN]) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let params =
        argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| unavailable(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    a.hash_password_into(pass.as_bytes(), salt, key.as_mut())
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(key)
}

impl FileSecretStore {
    /// A store at `path` (created on first save).
    pub fn new(path: impl Into<PathBuf>, passphrase: Passphrase) -> Self {
        Self {
            path: path.into(),
            passphrase,
            key: Mutex::new(None),
        }
    }

    fn key_for(
        &self,
        salt: Option<[u8; SALT_LEN]>,
    ) -> Result<(Zeroizing<[u8; 32]>, [u8; SALT_LEN]), StoreError> {
        let mut cached = self.key.lock().map_err(|_| unavailable("lock"))?;
        if let Some((k, s)) = cached.as_ref()
            && salt.is_none_or(|salt| salt == *s)
        {
            return Ok((k.clone(), *s));
        }
        let creating = salt.is_none();
        let salt = match salt {
            Some(s) => s,
            None => {
                let mut s = [0u8; SALT_LEN];
                getrandom::fill(&mut s).map_err(|e| unavailable(e.to_string()))?;
                s
            }
        };
        let pass = self.passphrase.get(creating)?;
        let key = derive(&pass, &salt)?;
        *cached = Some((key.clone(), salt));
        Ok((key, salt))
    }

    fn read(&self) -> Result<Contents, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(unavailable(format!("{}: {e}", self.path.display()))),
        };
        let damaged = || {
            unavailable(format!(
                "{} is not a cie-companion store or is damaged",
                self.path.display()
            ))
        };
        if bytes.len() < MAGIC.len() + SALT_LEN + NONCE_LEN + 16 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(damaged());
        }
        let salt: [u8; SALT_LEN] = bytes[8..8 + SALT_LEN].try_into().map_err(|_| damaged())?;
        let nonce = XNonce::try_from(&bytes[8 + SALT_LEN..8 + SALT_LEN + NONCE_LEN])
            .map_err(|_| damaged())?;
        let (key, _) = self.key_for(Some(salt))?;
        let cipher = XChaCha20Poly1305::new_from_slice(key.as_ref()).map_err(|_| damaged())?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(&nonce, Payload { msg: &bytes[8 + SALT_LEN + NONCE_LEN..], aad: &bytes[..8 + SALT_LEN] })
                .map_err(|_| {
                    // The cached key is wrong: forget it so a retry prompts again.
                    if let Ok(mut k) = self.key.lock() {
                        *k = None;
                    }
                    unavailable("wrong passphrase or damaged store / passphrase errata o archivio danneggiato")
                })?,
        );
        serde_json::from_slice(&plain).map_err(|_| damaged())
    }

    fn write(&self, contents: &Contents) -> Result<(), StoreError> {
        let existing_salt = self
            .key
            .lock()
            .map_err(|_| unavailable("lock"))?
            .as_ref()
            .map(|(_, s)| *s);
        let (key, salt) = self.key_for(existing_salt)?;
        let plain =
            Zeroizing::new(serde_json::to_vec(contents).map_err(|e| unavailable(e.to_string()))?);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce_bytes).map_err(|e| unavailable(e.to_string()))?;
        let nonce = XNonce::from(nonce_bytes);
        let cipher =
            XChaCha20Poly1305::new_from_slice(key.as_ref()).map_err(|_| unavailable("key"))?;
        let mut header = Vec::with_capacity(8 + SALT_LEN + NONCE_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&salt);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &header,
                },
            )
            .map_err(|_| unavailable("encryption failed"))?;
        header.extend_from_slice(&nonce_bytes);
        header.extend_from_slice(&sealed);

        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
        }
        let tmp = self.path.with_extension("enc.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .map_err(|e| unavailable(format!("{}: {e}", tmp.display())))?;
        f.write_all(&header)
            .and_then(|()| f.sync_all())
            .map_err(|e| unavailable(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| unavailable(e.to_string()))
    }
}

fn protection_name(p: Protection) -> &'static str {
    match p {
        Protection::Public => "public",
        Protection::UserPresence => "user-presence",
        Protection::DeviceOnly => "device-only",
    }
}

impl SecretStore for FileSecretStore {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.read()?;
        match c.entries.get(&name) {
            None => Ok(None),
            Some(e) => hex::decode(&e.value)
                .map(Some)
                .map_err(|_| unavailable("damaged entry")),
        }
    }

    fn save(&self, name: String, value: Vec<u8>, protection: Protection) -> Result<(), StoreError> {
        let mut c = self.read()?;
        let value = Zeroizing::new(value);
        c.entries.insert(
            name,
            Entry {
                protection: protection_name(protection).into(),
                value: hex::encode(&*value),
            },
        );
        self.write(&c)
    }

    fn remove(&self, name: String) -> Result<(), StoreError> {
        let mut c = self.read()?;
        if c.entries.remove(&name).is_some() {
            self.write(&c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cie-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("secrets.enc")
    }

    #[test]
    fn round_trip_wrong_passphrase_and_no_plaintext_on_disk() {
        let path = tmp("rt");
        let s = FileSecretStore::new(
            &path,
            Passphrase::Given(Zeroizing::new("correct horse".into())),
        );
        s.save(
            "otp/a/secret".into(),
            b"12345678901234567890".to_vec(),
            Protection::DeviceOnly,
        )
        .unwrap();
        s.save("otp/index".into(), b"[]".to_vec(), Protection::Public)
            .unwrap();
        assert_eq!(
            s.load("otp/a/secret".into()).unwrap().unwrap(),
            b"12345678901234567890"
        );
        let raw = std::fs::read(&path).unwrap();
        let hexed = hex::encode(b"12345678901234567890");
        assert!(!raw.windows(20).any(|w| w == b"12345678901234567890"));
        assert!(!raw.windows(hexed.len()).any(|w| w == hexed.as_bytes()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // A second process with the same passphrase reads it; a wrong one is refused.
        let again = FileSecretStore::new(
            &path,
            Passphrase::Given(Zeroizing::new("correct horse".into())),
        );
        assert_eq!(again.load("otp/index".into()).unwrap().unwrap(), b"[]");
        let wrong = FileSecretStore::new(&path, Passphrase::Given(Zeroizing::new("wrong".into())));
        let e = wrong.load("otp/index".into()).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        // Tampering is detected.
        let mut bad = raw.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(again.load("otp/index".into()).is_err());
        std::fs::write(&path, b"plain text").unwrap();
        assert!(
            again
                .load("otp/index".into())
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }
}
