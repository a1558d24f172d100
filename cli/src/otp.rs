//! `cie-companion otp …`: one-time codes on the desktop, kept in the encrypted file store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cie_core::otp::{OtpError, OtpKind, OtpVault, otp_code_for_uri};

use crate::error::CliError;
use crate::secret_file::{FileSecretStore, Passphrase};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn vault(store: Option<PathBuf>) -> Arc<OtpVault> {
    let path = store.unwrap_or_else(crate::secret_file::default_path);
    OtpVault::new(Arc::new(FileSecretStore::new(path, Passphrase::from_env())))
}

/// The text of the QR code in an image file (PNG or JPEG).
pub fn scan_image(path: &Path) -> Result<String, CliError> {
    crate::qr::decode_file(path)?.ok_or_else(|| CliError::Input {
        reason: format!("no QR code found in {}", path.display()),
    })
}

/// `otp add`.
pub fn add(
    uri: Option<String>,
    qr: Option<PathBuf>,
    store: Option<PathBuf>,
) -> Result<(), CliError> {
    let uri = match (uri, qr) {
        (Some(u), None) => u,
        (None, Some(p)) => scan_image(&p)?,
        _ => {
            return Err(CliError::Input {
                reason: "give either an otpauth:// link or --qr IMAGE".into(),
            });
        }
    };
    let added = vault(store).add_uri(uri)?;
    println!("Added / aggiunto: {}", added.token.id);
    for w in &added.warnings {
        println!(
            "Warning: {}\nAttenzione: {}",
            w.message_en(),
            w.message_it()
        );
    }
    Ok(())
}

/// `otp list`.
pub fn list(store: Option<PathBuf>) -> Result<(), CliError> {
    let tokens = vault(store).list()?;
    if tokens.is_empty() {
        println!(
            "No saved codes. / Nessun codice salvato. Add one with: cie-companion otp add 'otpauth://…'"
        );
    }
    for t in tokens {
        let kind = match t.kind {
            OtpKind::Totp { period, .. } => format!("TOTP {period}s"),
            OtpKind::Hotp { counter } => format!("HOTP counter {counter}"),
        };
        println!(
            "{}  ({kind}, {} digits, {})",
            t.id,
            t.digits,
            t.algorithm.uri_name()
        );
    }
    Ok(())
}

/// `otp code NAME` or `otp code --uri URI`.
pub fn code(
    name: Option<String>,
    uri: Option<String>,
    at: Option<u64>,
    store: Option<PathBuf>,
) -> Result<(), CliError> {
    let t = at.unwrap_or_else(now);
    let code = match (name, uri) {
        (None, Some(uri)) => otp_code_for_uri(uri, t)?,
        (Some(name), None) => vault(store).code(name, t)?,
        _ => {
            return Err(CliError::Input {
                reason: "give either a NAME or --uri".into(),
            });
        }
    };
    if code.period > 0 {
        println!(
            "{}  ({} s left / restano {} s)",
            code.code, code.seconds_remaining, code.seconds_remaining
        );
    } else {
        println!("{}", code.code);
    }
    Ok(())
}

/// `otp remove NAME`.
pub fn remove(name: String, store: Option<PathBuf>) -> Result<(), CliError> {
    vault(store).remove(name.clone())?;
    println!("Removed / rimosso: {name}");
    Ok(())
}

/// Whether an OTP error is about the input (exit 2) rather than storage.
pub fn is_input_error(e: &OtpError) -> bool {
    !matches!(
        e,
        OtpError::Store(_) | OtpError::Corrupt { .. } | OtpError::Internal { .. }
    )
}
