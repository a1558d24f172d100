//! DG11, additional personal details (9303-10 §4.7.11): full name, personal number (the
//! Italian CIE's codice fiscale), full date of birth, place of birth, address, …

use super::{LdsError, filler_to_spaces, outer, text};
use crate::tlv::{Tag, Tlv};

const FILE: &str = "DG11";

/// The parsed DG11. Absent fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonalDetails {
    /// Full name, primary and secondary identifiers separated by a space.
    pub full_name: Option<String>,
    /// Other names.
    pub other_names: Vec<String>,
    /// Personal number (CIE: the codice fiscale).
    pub personal_number: Option<String>,
    /// Full date of birth `YYYYMMDD` (BCD encodings normalised).
    pub full_date_of_birth: Option<String>,
    /// Place of birth, parts separated by `, `.
    pub place_of_birth: Option<String>,
    /// Permanent address, parts separated by `, `.
    pub address: Option<String>,
    /// Telephone.
    pub telephone: Option<String>,
    /// Profession.
    pub profession: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Personal summary.
    pub summary: Option<String>,
    /// Other valid travel document numbers.
    pub other_td_numbers: Option<String>,
    /// Custody information.
    pub custody: Option<String>,
}

/// `<`-separated address-like fields become `, `-separated.
pub(crate) fn parts(s: &str) -> String {
    s.split('<')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A date as `YYYYMMDD` from ASCII digits or 4 BCD bytes (both seen in the field).
pub(crate) fn date(value: &[u8]) -> String {
    if value.len() == 4 && value.iter().any(|b| !b.is_ascii_digit()) {
        value.iter().map(|b| format!("{:02X}", b)).collect()
    } else {
        text(value)
    }
}

/// Parse DG11.
pub fn parse(bytes: &[u8]) -> Result<PersonalDetails, LdsError> {
    let dg = outer(bytes, 0x6B, FILE)?;
    let mut d = PersonalDetails::default();
    for child in dg.children() {
        let Tlv { tag, value } = child.map_err(LdsError::tlv(FILE))?;
        let s = || text(value);
        match tag.value() {
            0x5F0E => d.full_name = Some(name(&s())),
            0x5F0F => d.other_names.push(name(&s())),
            // Other names may come wrapped in A0 { 02 count, 5F0F … }.
            0xA0 => {
                for inner in (Tlv { tag, value }).children() {
                    let inner = inner.map_err(LdsError::tlv(FILE))?;
                    if inner.tag == Tag::new(0x5F0F) {
                        d.other_names.push(name(&text(inner.value)));
                    }
                }
            }
            0x5F10 => d.personal_number = Some(s().trim_end_matches('<').to_owned()),
            0x5F2B => d.full_date_of_birth = Some(date(value)),
            0x5F11 => d.place_of_birth = Some(parts(&s())),
            0x5F42 => d.address = Some(parts(&s())),
            0x5F12 => d.telephone = Some(s()),
            0x5F13 => d.profession = Some(s()),
            0x5F14 => d.title = Some(s()),
            0x5F15 => d.summary = Some(s()),
            0x5F17 => d.other_td_numbers = Some(s()),
            0x5F18 => d.custody = Some(s()),
            // 5C tag list, 5F16 proof of citizenship (an image), unknown: skipped.
            _ => {}
        }
    }
    Ok(d)
}

/// `SURNAME<<GIVEN<NAMES` → `SURNAME GIVEN NAMES`.
fn name(s: &str) -> String {
    filler_to_spaces(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::encode_to_vec;

    fn obj(tag: u32, v: &[u8]) -> Vec<u8> {
        encode_to_vec(Tag::new(tag), v)
    }

    #[test]
    fn italian_fields() {
        let mut inner = obj(0x5C, &[0x5F, 0x0E, 0x5F, 0x10]);
        inner.extend(obj(0x5F0E, b"ROSSI<<MARIO<LUIGI"));
        inner.extend(obj(0x5F10, b"RSSMRA80A01H501U"));
        inner.extend(obj(0x5F2B, &[0x19, 0x80, 0x01, 0x01]));
        inner.extend(obj(0x5F11, b"ROMA<(RM)"));
        inner.extend(obj(0x5F42, b"VIA DEL CORSO 1<ROMA<(RM)"));
        inner.extend(obj(
            0xA0,
            &[obj(0x02, &[1]), obj(0x5F0F, b"ROSSI<<MARIOLINO")].concat(),
        ));
        let d = parse(&obj(0x6B, &inner)).unwrap();
        assert_eq!(d.full_name.as_deref(), Some("ROSSI MARIO LUIGI"));
        assert_eq!(d.personal_number.as_deref(), Some("RSSMRA80A01H501U"));
        assert_eq!(d.full_date_of_birth.as_deref(), Some("19800101"));
        assert_eq!(d.place_of_birth.as_deref(), Some("ROMA, (RM)"));
        assert_eq!(d.address.as_deref(), Some("VIA DEL CORSO 1, ROMA, (RM)"));
        assert_eq!(d.other_names, vec!["ROSSI MARIOLINO".to_owned()]);
        // Latin-1 bytes (older chips) survive.
        let d = parse(&obj(0x6B, &obj(0x5F11, b"FORL\xCC"))).unwrap();
        assert_eq!(d.place_of_birth.as_deref(), Some("FORLÌ"));
        assert!(parse(&[0x6B, 0x05, 0x5F, 0x10, 0x09]).is_err());
    }
}
