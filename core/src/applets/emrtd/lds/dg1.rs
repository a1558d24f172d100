//! DG1: the machine-readable zone (ICAO 9303-3/4/5), parsed to fields with every check digit
//! verified. TD1 (3×30, identity cards such as the CIE), TD2 (2×36) and TD3 (2×44,
//! passports).

use super::{LdsError, filler_to_spaces, outer, text};
use crate::tlv::Tag;

const FILE: &str = "DG1";

/// The MRZ format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrzFormat {
    /// 3 lines of 30 (ID-1 cards).
    Td1,
    /// 2 lines of 36.
    Td2,
    /// 2 lines of 44 (passports).
    Td3,
}

/// The parsed MRZ. Dates stay `YYMMDD` as printed (the century is not in the MRZ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrz {
    /// TD1/TD2/TD3.
    pub format: MrzFormat,
    /// The raw MRZ characters, lines joined.
    pub raw: String,
    /// Document code (`C<`, `CI`, `P<`, `ID`), fillers removed.
    pub document_code: String,
    /// Issuing state (`ITA`).
    pub issuing_state: String,
    /// Document number, fillers removed (a TD1 number longer than 9 characters continues
    /// in the optional data, 9303-5 §4.2.2).
    pub document_number: String,
    /// Nationality.
    pub nationality: String,
    /// Date of birth, `YYMMDD` (`<` for unknown parts kept).
    pub date_of_birth: String,
    /// `M`, `F` or `<`.
    pub sex: char,
    /// Date of expiry, `YYMMDD`.
    pub date_of_expiry: String,
    /// Primary identifier (surname).
    pub primary_identifier: String,
    /// Secondary identifier (given names), words separated by spaces.
    pub secondary_identifier: String,
    /// Optional data (line 1 then line 2 for TD1), fillers removed.
    pub optional_data: String,
}

/// ICAO 9303-3 §4.9 check digit of an MRZ field; `None` for characters outside the MRZ
/// alphabet (the arithmetic is [`crate::applets::emrtd::password::check_digit`]'s).
pub fn check_digit(field: &str) -> Option<u8> {
    field
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'<')
        .then(|| crate::applets::emrtd::password::check_digit(field.as_bytes()))
}

fn verify(field: &str, digit: char, what: &str) -> Result<(), LdsError> {
    // `<` as a check digit means "no check" only for an empty optional field.
    if digit == '<' && field.chars().all(|c| c == '<') {
        return Ok(());
    }
    let want = check_digit(field)
        .ok_or_else(|| LdsError::invalid(FILE, format!("{what}: not MRZ characters")))?;
    if digit.to_digit(10) != Some(u32::from(want)) {
        return Err(LdsError::invalid(
            FILE,
            format!("{what}: check digit {digit} should be {want}"),
        ));
    }
    Ok(())
}

fn cut(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or_default()
}

fn ch(s: &str, at: usize) -> char {
    s.as_bytes().get(at).map_or('<', |b| char::from(*b))
}

fn strip(s: &str) -> String {
    s.trim_end_matches('<').replace('<', " ").trim().to_owned()
}

fn names(field: &str) -> (String, String) {
    match field.split_once("<<") {
        Some((primary, secondary)) => (filler_to_spaces(primary), filler_to_spaces(secondary)),
        None => (filler_to_spaces(field), String::new()),
    }
}

impl Mrz {
    /// Parse MRZ characters (lines concatenated, as DG1 stores them).
    pub fn parse(raw: &str) -> Result<Self, LdsError> {
        if !raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'<')
        {
            return Err(LdsError::invalid(FILE, "characters outside A–Z, 0–9 and <"));
        }
        let m = match raw.len() {
            90 => Self::td1(raw)?,
            72 => Self::td2_3(raw, MrzFormat::Td2, 36)?,
            88 => Self::td2_3(raw, MrzFormat::Td3, 44)?,
            n => {
                return Err(LdsError::invalid(
                    FILE,
                    format!("{n} MRZ characters (90, 72 or 88 expected)"),
                ));
            }
        };
        Ok(m)
    }

    fn td1(raw: &str) -> Result<Self, LdsError> {
        let (l1, l2, l3) = (cut(raw, 0, 30), cut(raw, 30, 60), cut(raw, 60, 90));
        let mut number = cut(l1, 5, 14).to_owned();
        let mut optional1 = cut(l1, 15, 30).to_owned();
        let number_check = ch(l1, 14);
        if number_check == '<' && !optional1.starts_with('<') {
            // Long document number: continues in the optional data up to a filler, whose
            // last character before it is the check digit.
            let ext_end = optional1.find('<').unwrap_or(optional1.len());
            let ext = optional1.get(..ext_end).unwrap_or_default();
            let (body, digit) = ext.split_at(ext.len().saturating_sub(1));
            number.push_str(body);
            verify(
                &number,
                digit.chars().next().unwrap_or('<'),
                "document number",
            )?;
            optional1 = optional1.get(ext_end..).unwrap_or_default().to_owned();
        } else {
            verify(&number, number_check, "document number")?;
        }
        verify(cut(l2, 0, 6), ch(l2, 6), "date of birth")?;
        verify(cut(l2, 8, 14), ch(l2, 14), "date of expiry")?;
        // Composite: line 1 positions 6–30, line 2 positions 1–7, 9–15, 19–29.
        let composite = format!(
            "{}{}{}{}",
            cut(l1, 5, 30),
            cut(l2, 0, 7),
            cut(l2, 8, 15),
            cut(l2, 18, 29)
        );
        verify(&composite, ch(l2, 29), "composite")?;
        let (primary, secondary) = names(l3);
        Ok(Self {
            format: MrzFormat::Td1,
            raw: raw.to_owned(),
            document_code: strip(cut(l1, 0, 2)),
            issuing_state: strip(cut(l1, 2, 5)),
            document_number: strip(&number),
            nationality: strip(cut(l2, 15, 18)),
            date_of_birth: cut(l2, 0, 6).to_owned(),
            sex: ch(l2, 7),
            date_of_expiry: cut(l2, 8, 14).to_owned(),
            primary_identifier: primary,
            secondary_identifier: secondary,
            optional_data: format!("{}{}", strip(&optional1), strip(cut(l2, 18, 29)))
                .trim()
                .to_owned(),
        })
    }

    fn td2_3(raw: &str, format: MrzFormat, len: usize) -> Result<Self, LdsError> {
        let (l1, l2) = (cut(raw, 0, len), cut(raw, len, 2 * len));
        let opt_end = len - 2; // TD3: optional 29–42 + check 43; TD2: optional 29–35.
        verify(cut(l2, 0, 9), ch(l2, 9), "document number")?;
        verify(cut(l2, 13, 19), ch(l2, 19), "date of birth")?;
        verify(cut(l2, 21, 27), ch(l2, 27), "date of expiry")?;
        let composite = match format {
            MrzFormat::Td3 => {
                verify(cut(l2, 28, 42), ch(l2, 42), "personal number")?;
                format!("{}{}{}", cut(l2, 0, 10), cut(l2, 13, 20), cut(l2, 21, 43))
            }
            _ => format!("{}{}{}", cut(l2, 0, 10), cut(l2, 13, 20), cut(l2, 21, 35)),
        };
        verify(&composite, ch(l2, len - 1), "composite")?;
        let (primary, secondary) = names(cut(l1, 5, len));
        Ok(Self {
            format,
            raw: raw.to_owned(),
            document_code: strip(cut(l1, 0, 2)),
            issuing_state: strip(cut(l1, 2, 5)),
            document_number: strip(cut(l2, 0, 9)),
            nationality: strip(cut(l2, 10, 13)),
            date_of_birth: cut(l2, 13, 19).to_owned(),
            sex: ch(l2, 20),
            date_of_expiry: cut(l2, 21, 27).to_owned(),
            primary_identifier: primary,
            secondary_identifier: secondary,
            optional_data: strip(cut(
                l2,
                28,
                if format == MrzFormat::Td3 {
                    42
                } else {
                    opt_end + 1
                },
            )),
        })
    }
}

/// Parse DG1: `61 { 5F1F <MRZ> }`.
pub fn parse(bytes: &[u8]) -> Result<Mrz, LdsError> {
    let dg = outer(bytes, 0x61, FILE)?;
    let mrz = dg
        .require(Tag::new(0x5F1F), "MRZ (5F1F)")
        .map_err(LdsError::tlv(FILE))?;
    Mrz::parse(&text(mrz.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    // ICAO 9303-5 Appendix A specimen (TD1, "Utopia"), as printed in the standard.
    const TD1: &str = "I<UTOD231458907<<<<<<<<<<<<<<<7408122F1204159UTO<<<<<<<<<<<6ERIKSSON<<ANNA<MARIA<<<<<<<<<<";
    // ICAO 9303-4 Appendix A specimen (TD3).
    const TD3: &str =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C36UTO7408122F1204159ZE184226B<<<<<10";

    #[test]
    fn check_digits_of_the_specimens() {
        assert_eq!(check_digit("L898902C3"), Some(6));
        assert_eq!(check_digit("740812"), Some(2));
        assert_eq!(check_digit("120415"), Some(9));
        assert_eq!(check_digit("ZE184226B<<<<<"), Some(1));
        assert_eq!(check_digit("a"), None);
    }

    #[test]
    fn td1_specimen() {
        let m = Mrz::parse(TD1).unwrap();
        assert_eq!(m.format, MrzFormat::Td1);
        assert_eq!(m.document_code, "I");
        assert_eq!(m.issuing_state, "UTO");
        assert_eq!(m.document_number, "D23145890");
        assert_eq!(m.date_of_birth, "740812");
        assert_eq!(m.sex, 'F');
        assert_eq!(m.date_of_expiry, "120415");
        assert_eq!(m.nationality, "UTO");
        assert_eq!(m.primary_identifier, "ERIKSSON");
        assert_eq!(m.secondary_identifier, "ANNA MARIA");
    }

    #[test]
    fn td3_specimen() {
        let m = Mrz::parse(TD3).unwrap();
        assert_eq!(m.format, MrzFormat::Td3);
        assert_eq!(m.document_number, "L898902C3");
        assert_eq!(m.optional_data, "ZE184226B");
        assert_eq!(m.secondary_identifier, "ANNA MARIA");
    }

    #[test]
    fn td1_long_document_number() {
        // 9303-5 §4.2.2 example shape: number D23145890734 (12 chars), check 9 after it.
        let number = "D23145890734";
        let cd = check_digit(number).unwrap();
        let l1 = format!("I<UTO{}<{}{cd}<<<<<<<<<<<", &number[..9], &number[9..]);
        assert_eq!(l1.len(), 30);
        let l2_head = "7408122F1204159UTO<<<<<<<<<<<";
        let composite = format!(
            "{}{}{}{}",
            &l1[5..30],
            &l2_head[0..7],
            &l2_head[8..15],
            &l2_head[18..29]
        );
        let l2 = format!("{l2_head}{}", check_digit(&composite).unwrap());
        let m = Mrz::parse(&format!("{l1}{l2}ERIKSSON<<ANNA<MARIA<<<<<<<<<<")).unwrap();
        assert_eq!(m.document_number, number);
        assert_eq!(m.optional_data, "");
    }

    #[test]
    fn bad_check_digits_and_shapes_are_typed() {
        let mut bad = TD3.to_owned();
        bad.replace_range(53..54, "7"); // document number check 6 → 7
        let e = Mrz::parse(&bad).unwrap_err();
        assert!(e.to_string().contains("document number"), "{e}");
        assert!(Mrz::parse("SHORT").is_err());
        assert!(Mrz::parse(&TD1.to_lowercase()).is_err());
        assert!(parse(&[0x61, 0x03, 0x5F, 0x1F, 0x05]).is_err(), "truncated");
        assert!(parse(&[0x62, 0x00]).is_err(), "wrong tag");
    }

    #[test]
    fn dg1_wrapper() {
        let mut dg = vec![0x61, 0x5D, 0x5F, 0x1F, 0x5A];
        dg.extend_from_slice(TD1.as_bytes());
        assert_eq!(parse(&dg).unwrap().document_number, "D23145890");
    }
}
