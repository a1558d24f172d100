//! DG12, additional document details (9303-10 §4.7.12): issuing authority, date of issue,
//! personalisation time and system.

use super::dg11::{date, parts};
use super::{LdsError, outer, text};
use crate::tlv::Tlv;

const FILE: &str = "DG12";

/// The parsed DG12.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentDetails {
    /// Issuing authority (CIE: the Comune).
    pub issuing_authority: Option<String>,
    /// Date of issue `YYYYMMDD`.
    pub date_of_issue: Option<String>,
    /// Endorsements and observations.
    pub endorsements: Option<String>,
    /// Tax or exit requirements.
    pub tax_exit: Option<String>,
    /// Personalisation date and time.
    pub personalisation_time: Option<String>,
    /// Serial number of the personalisation system.
    pub personalisation_system: Option<String>,
}

/// Parse DG12.
pub fn parse(bytes: &[u8]) -> Result<DocumentDetails, LdsError> {
    let dg = outer(bytes, 0x6C, FILE)?;
    let mut d = DocumentDetails::default();
    for child in dg.children() {
        let Tlv { tag, value } = child.map_err(LdsError::tlv(FILE))?;
        match tag.value() {
            0x5F19 => d.issuing_authority = Some(parts(&text(value))),
            0x5F26 => d.date_of_issue = Some(date(value)),
            0x5F1B => d.endorsements = Some(text(value)),
            0x5F1C => d.tax_exit = Some(text(value)),
            0x5F55 => {
                d.personalisation_time = Some(
                    if value.len() == 7 && value.iter().any(|b| !b.is_ascii_digit()) {
                        value.iter().map(|b| format!("{b:02X}")).collect()
                    } else {
                        text(value)
                    },
                )
            }
            0x5F56 => d.personalisation_system = Some(text(value)),
            // 5C tag list, A0 other persons, 5F1D/5F1E images, unknown: skipped.
            _ => {}
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::{Tag, encode_to_vec};

    #[test]
    fn fields_and_bcd_date() {
        let inner = [
            encode_to_vec(Tag::new(0x5F19), b"COMUNE DI ROMA"),
            encode_to_vec(Tag::new(0x5F26), &[0x20, 0x19, 0x05, 0x17]),
            encode_to_vec(Tag::new(0x5F1B), b"NON VALIDA PER L'ESPATRIO"),
        ]
        .concat();
        let d = parse(&encode_to_vec(Tag::new(0x6C), &inner)).unwrap();
        assert_eq!(d.issuing_authority.as_deref(), Some("COMUNE DI ROMA"));
        assert_eq!(d.date_of_issue.as_deref(), Some("20190517"));
        assert_eq!(d.endorsements.as_deref(), Some("NON VALIDA PER L'ESPATRIO"));
        let d = parse(&encode_to_vec(
            Tag::new(0x6C),
            &encode_to_vec(Tag::new(0x5F26), b"20190517"),
        ))
        .unwrap();
        assert_eq!(d.date_of_issue.as_deref(), Some("20190517"));
        assert!(parse(&[0x6C, 0x04, 0x5F, 0x19, 0x05, 0x41]).is_err());
    }
}
