//! EF.COM: LDS and Unicode versions and the list of data groups present
//! (`60 { 5F01 version, 5F36 unicode, 5C tag list }`).

use super::{File, LdsError, outer, text};
use crate::tlv::Tag;

const FILE: &str = "EF.COM";

/// The parsed EF.COM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Com {
    /// LDS version, e.g. `0107` for 1.7.
    pub lds_version: String,
    /// Unicode version, e.g. `040000`.
    pub unicode_version: String,
    /// The files listed (unknown tags skipped: they name nothing we could read).
    pub files: Vec<File>,
}

/// Parse EF.COM.
pub fn parse(bytes: &[u8]) -> Result<Com, LdsError> {
    let com = outer(bytes, 0x60, FILE)?;
    let tlv = LdsError::tlv(FILE);
    let version = com
        .find(Tag::new(0x5F01))
        .map_err(&tlv)?
        .map(|t| text(t.value))
        .unwrap_or_default();
    let unicode = com
        .find(Tag::new(0x5F36))
        .map_err(&tlv)?
        .map(|t| text(t.value))
        .unwrap_or_default();
    let list = com.require(Tag::new(0x5C), "tag list (5C)").map_err(&tlv)?;
    let files = list
        .value
        .iter()
        .filter_map(|&t| File::from_tag(t))
        .collect();
    Ok(Com {
        lds_version: version,
        unicode_version: unicode,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let com = [
            0x60, 0x16, 0x5F, 0x01, 0x04, b'0', b'1', b'0', b'7', 0x5F, 0x36, 0x06, b'0', b'4',
            b'0', b'0', b'0', b'0', 0x5C, 0x04, 0x61, 0x75, 0x6B, 0x99,
        ];
        let c = parse(&com).unwrap();
        assert_eq!(c.lds_version, "0107");
        assert_eq!(c.files, vec![File::Dg(1), File::Dg(2), File::Dg(11)]);
        assert!(parse(&com[..10]).is_err());
        assert!(parse(&[0x60, 0x00]).is_err(), "no tag list");
        assert_eq!(File::Dg(14).tag(), Some(0x6E));
        assert_eq!(File::from_tag(0x70), Some(File::Dg(16)));
        assert_eq!(File::Dg(17).tag(), None);
        assert_eq!(File::Dg(0).tag(), None);
    }
}
