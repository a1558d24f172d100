//! CSCA files as States publish them, into a [`TrustStore`]: a DER certificate, PEM
//! certificates, an ICAO master list (`.ml`, 9303-12 §9), or a ZIP archive of those. Italy
//! publishes its CSCAs as `IT_MasterListCSCA.zip` holding a master list (emrtd.md §4);
//! Germany as `GermanMasterList.zip`.
//!
//! The ZIP reader is minimal and bounded: it walks the central directory, takes stored or
//! deflated members, and refuses sizes past [`MAX_MEMBER`] (each) or [`MAX_TOTAL`] (all),
//! or more than [`MAX_MEMBERS`] members. Nested archives are not opened.

use data_encoding::BASE64;

use super::passive::TrustStore;

/// Largest member (decompressed) read from an archive.
pub const MAX_MEMBER: usize = 16 * 1024 * 1024;
/// Most members read from an archive.
pub const MAX_MEMBERS: usize = 1024;
/// Most bytes read from an archive, all members together (a ZIP bomb stops here).
pub const MAX_TOTAL: usize = 64 * 1024 * 1024;

/// Why a trust file did not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustFileError {
    /// Not a ZIP archive we can read.
    #[error("archive: {0}")]
    Zip(&'static str),
    /// PEM text without a readable certificate.
    #[error("PEM: {0}")]
    Pem(&'static str),
    /// Nothing in the file was a CSCA certificate or master list.
    #[error("no CSCA certificate or master list in the file")]
    NothingLoaded,
}

impl TrustFileError {
    /// The message in Italian.
    pub fn message_it(&self) -> String {
        match self {
            Self::Zip(r) => format!("archivio non leggibile: {r}"),
            Self::Pem(r) => format!("file PEM non leggibile: {r}"),
            Self::NothingLoaded => {
                "il file non contiene certificati CSCA né una master list".into()
            }
        }
    }
}

/// Load `bytes` (DER certificate, PEM, master list or ZIP of those) into `store`.
/// Returns how many members or objects loaded (a master list counts once).
pub fn load_csca_file(store: &mut TrustStore, bytes: &[u8]) -> Result<usize, TrustFileError> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        let mut loaded = 0;
        for member in zip_members(bytes)? {
            // Members that are not trust objects (a README) are skipped.
            loaded += load_flat(store, &member).unwrap_or(0);
        }
        return if loaded == 0 {
            Err(TrustFileError::NothingLoaded)
        } else {
            Ok(loaded)
        };
    }
    load_flat(store, bytes)
}

fn load_flat(store: &mut TrustStore, bytes: &[u8]) -> Result<usize, TrustFileError> {
    if let Some(pem) = pem_certificates(bytes)? {
        let mut n = 0;
        for der in pem {
            if store.add_der(&der).is_ok() {
                n += 1;
            }
        }
        return if n == 0 {
            Err(TrustFileError::NothingLoaded)
        } else {
            Ok(n)
        };
    }
    match store.add_certificate_or_master_list(bytes) {
        Ok(None) => Ok(1),
        Ok(Some(info)) if info.added > 0 => Ok(1),
        _ => Err(TrustFileError::NothingLoaded),
    }
}

/// The DER of every `CERTIFICATE` block, or `None` when the bytes are not PEM text.
fn pem_certificates(bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, TrustFileError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    if !text.contains(BEGIN) {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or(TrustFileError::Pem("unterminated block"))?;
        let b64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = BASE64
            .decode(b64.as_bytes())
            .map_err(|_| TrustFileError::Pem("bad base64"))?;
        out.push(der);
        rest = &body[end + END.len()..];
    }
    Ok(Some(out))
}

fn u16_at(b: &[u8], at: usize) -> Result<usize, TrustFileError> {
    b.get(at..at.saturating_add(2))
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
        .ok_or(TrustFileError::Zip("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<usize, TrustFileError> {
    b.get(at..at.saturating_add(4))
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or(TrustFileError::Zip("truncated"))
}

/// The members of a ZIP archive (files only), decompressed.
pub fn zip_members(zip: &[u8]) -> Result<Vec<Vec<u8>>, TrustFileError> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const CENTRAL: &[u8] = b"PK\x01\x02";
    const LOCAL: &[u8] = b"PK\x03\x04";
    // The end record is in the last 22 + 65535 bytes (its comment is at most 65535).
    let from = zip.len().saturating_sub(22 + 0xFFFF);
    let eocd = (from..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| zip.get(i..i.saturating_add(4)) == Some(EOCD))
        .ok_or(TrustFileError::Zip("no end of central directory"))?;
    let count = u16_at(zip, eocd.saturating_add(10))?;
    let mut at = u32_at(zip, eocd.saturating_add(16))?;
    if count > MAX_MEMBERS {
        return Err(TrustFileError::Zip("too many members"));
    }
    let mut out = Vec::new();
    let mut total = 0usize;
    for _ in 0..count {
        if zip.get(at..at.saturating_add(4)) != Some(CENTRAL) {
            return Err(TrustFileError::Zip("bad central directory entry"));
        }
        let flags = u16_at(zip, at.saturating_add(8))?;
        let method = u16_at(zip, at.saturating_add(10))?;
        let compressed = u32_at(zip, at.saturating_add(20))?;
        let size = u32_at(zip, at.saturating_add(24))?;
        let name_len = u16_at(zip, at.saturating_add(28))?;
        let extra_len = u16_at(zip, at.saturating_add(30))?;
        let comment_len = u16_at(zip, at.saturating_add(32))?;
        let local = u32_at(zip, at.saturating_add(42))?;
        let name = zip
            .get(at.saturating_add(46)..at.saturating_add(46).saturating_add(name_len))
            .ok_or(TrustFileError::Zip("truncated name"))?;
        at = at
            .saturating_add(46)
            .saturating_add(name_len)
            .saturating_add(extra_len)
            .saturating_add(comment_len);
        if name.ends_with(b"/") {
            continue; // a folder
        }
        if flags & 1 != 0 {
            return Err(TrustFileError::Zip("encrypted member"));
        }
        if size > MAX_MEMBER || compressed > MAX_MEMBER {
            return Err(TrustFileError::Zip("member too large"));
        }
        total = total.saturating_add(size);
        if total > MAX_TOTAL {
            return Err(TrustFileError::Zip("archive too large"));
        }
        if zip.get(local..local.saturating_add(4)) != Some(LOCAL) {
            return Err(TrustFileError::Zip("bad local header"));
        }
        let data_at = local
            .saturating_add(30)
            .saturating_add(u16_at(zip, local.saturating_add(26))?)
            .saturating_add(u16_at(zip, local.saturating_add(28))?);
        let data = zip
            .get(data_at..data_at.saturating_add(compressed))
            .ok_or(TrustFileError::Zip("truncated member"))?;
        let member = match method {
            0 if compressed == size => data.to_vec(),
            0 => return Err(TrustFileError::Zip("stored member sizes differ")),
            // The declared size bounds the output: a member cannot inflate past it.
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, size)
                .map_err(|_| TrustFileError::Zip("bad deflate data"))?,
            _ => return Err(TrustFileError::Zip("unsupported compression")),
        };
        out.push(member);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored-only ZIP of `(name, data)` members.
    pub(crate) fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let offset = out.len() as u32;
            let mut local = b"PK\x03\x04".to_vec();
            local.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            local.extend(0u32.to_le_bytes()); // crc (not checked)
            local.extend((data.len() as u32).to_le_bytes());
            local.extend((data.len() as u32).to_le_bytes());
            local.extend((name.len() as u16).to_le_bytes());
            local.extend(0u16.to_le_bytes());
            local.extend(name.as_bytes());
            out.extend(local);
            out.extend(*data);
            let mut c = b"PK\x01\x02".to_vec();
            c.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            c.extend(0u32.to_le_bytes());
            c.extend((data.len() as u32).to_le_bytes());
            c.extend((data.len() as u32).to_le_bytes());
            c.extend((name.len() as u16).to_le_bytes());
            c.extend([0u8; 12]);
            c.extend(offset.to_le_bytes());
            c.extend(name.as_bytes());
            central.extend(c);
        }
        let cd_at = out.len() as u32;
        let cd_len = central.len() as u32;
        out.extend(central);
        out.extend(b"PK\x05\x06");
        out.extend([0u8; 4]);
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend(cd_len.to_le_bytes());
        out.extend(cd_at.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn stored_members_come_back() {
        let z = stored_zip(&[("a.txt", b"hello"), ("dir/b.ml", b"world")]);
        assert_eq!(
            zip_members(&z).unwrap(),
            vec![b"hello".to_vec(), b"world".to_vec()]
        );
    }

    #[test]
    fn deflated_member_comes_back() {
        let data = vec![7u8; 5000];
        let deflated = miniz_oxide::deflate::compress_to_vec(&data, 6);
        let mut z = stored_zip(&[("x", &deflated)]);
        // Patch method (local +8, central +10) to deflate and the central sizes.
        z[8] = 8;
        let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        z[cd + 10] = 8;
        z[cd + 24..cd + 28].copy_from_slice(&(data.len() as u32).to_le_bytes());
        assert_eq!(zip_members(&z).unwrap(), vec![data]);
    }

    #[test]
    fn garbage_is_typed() {
        assert!(zip_members(b"PK\x03\x04").is_err());
        assert!(zip_members(&[]).is_err());
        let mut z = stored_zip(&[("a", b"hello")]);
        let n = z.len();
        z[n - 6..n - 2].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        assert!(zip_members(&z).is_err());
        // A stored member whose declared size is not its length.
        let mut z = stored_zip(&[("a", b"hello")]);
        let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        z[cd + 24] = 200;
        assert_eq!(
            zip_members(&z),
            Err(TrustFileError::Zip("stored member sizes differ"))
        );
        // Members whose declared sizes add up past the archive limit.
        let big = (MAX_MEMBER as u32).to_le_bytes();
        let members: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| {
                (
                    format!("m{i}"),
                    miniz_oxide::deflate::compress_to_vec(&[0], 6),
                )
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let mut z = stored_zip(&refs);
        let mut at = 0;
        while let Some(p) = z[at..].windows(4).position(|w| w == b"PK\x01\x02") {
            let cd = at + p;
            z[cd + 8] = 0;
            z[cd + 10] = 8; // deflate, declared MAX_MEMBER bytes each
            z[cd + 24..cd + 28].copy_from_slice(&big);
            at = cd + 4;
        }
        assert_eq!(
            zip_members(&z),
            Err(TrustFileError::Zip("archive too large"))
        );
        let mut store = TrustStore::new();
        assert_eq!(
            load_csca_file(&mut store, b"not a certificate"),
            Err(TrustFileError::NothingLoaded)
        );
        assert_eq!(
            load_csca_file(&mut store, b"-----BEGIN CERTIFICATE-----\n!!\n"),
            Err(TrustFileError::Pem("unterminated block"))
        );
        assert!(store.is_empty());
    }
}
