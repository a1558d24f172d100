//! EF_DatiPersonali (3F00/1100/1102): the holder's data, as OpenSC 14c80b0
//! `pkcs15-itacns.c` `get_name_from_EF_DatiPersonali` reads it: 6 ASCII-hex characters with
//! the length of what follows, then fields of "2 hex characters of length + value" in a
//! fixed order (issuer, issue date, expiry, surname, given name, birth date, sex, height,
//! codice fiscale, citizenship, birth municipality, birth country, birth act, residence
//! municipality, address, notes). Bytes after the declared length are padding (OpenSC
//! allows it). OpenSC stops after the given name; we read every field present and require
//! at least up to the codice fiscale. Dates as `ddmmyyyy` are **[unsure: no public copy of
//! the CNS file-system spec was read]**; they are kept as text, checked only for digits.

use super::codice_fiscale::{CodiceFiscale, CodiceFiscaleError};
use std::fmt;

/// Length of the header giving the data length in hex.
const HEADER_LEN: usize = 6;
/// The fields in file order (their count bounds the parse).
const FIELD_COUNT: usize = 16;
/// Index of the codice fiscale: every field up to it must be present.
const CF_FIELD: usize = 8;

/// Why EF_DatiPersonali was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonalDataError {
    /// Shorter than the 6-character header, or the header is not hex.
    #[error("no length header")]
    Header,
    /// The header declares more data than the file holds.
    #[error("declares {declared} bytes but holds {actual}")]
    Truncated {
        /// Declared by the header.
        declared: usize,
        /// Present after the header.
        actual: usize,
    },
    /// A field's length is not hex or runs past the declared data.
    #[error("field {index} overruns the data")]
    Field {
        /// Which field (0 = issuer).
        index: usize,
    },
    /// The data ends before the codice fiscale.
    #[error("ends before the codice fiscale")]
    MissingFields,
    /// Data left after the last known field.
    #[error("data after the last field")]
    TrailingData,
    /// A field holds control characters or a value of the wrong form.
    #[error("field {index} has an invalid value")]
    Value {
        /// Which field.
        index: usize,
    },
    /// The codice fiscale is wrong.
    #[error("codice fiscale: {0}")]
    CodiceFiscale(#[from] CodiceFiscaleError),
}

/// The holder's data. Debug hides everything but the codice fiscale's tail.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonalData {
    /// Issuing authority code.
    pub issuer: String,
    /// Issue date as written on the card.
    pub issue_date: String,
    /// Expiry date as written on the card.
    pub expiry_date: String,
    /// Surname.
    pub surname: String,
    /// Given name(s).
    pub given_name: String,
    /// Birth date as written on the card.
    pub birth_date: String,
    /// `M`, `F` or empty.
    pub sex: String,
    /// Height as written on the card (often empty).
    pub height: String,
    /// The checked codice fiscale.
    pub codice_fiscale: CodiceFiscale,
    /// Fields after the codice fiscale (citizenship … notes), as present.
    pub more: Vec<String>,
}

impl fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonalData")
            .field("codice_fiscale", &self.codice_fiscale)
            .finish_non_exhaustive()
    }
}

impl PersonalData {
    /// Parse the file's bytes. Never panics; every refusal is typed.
    pub fn parse(file: &[u8]) -> Result<Self, PersonalDataError> {
        let header = file.get(..HEADER_LEN).ok_or(PersonalDataError::Header)?;
        let declared = hex_len(header).ok_or(PersonalDataError::Header)?;
        let rest = &file[HEADER_LEN..];
        let data = rest.get(..declared).ok_or(PersonalDataError::Truncated {
            declared,
            actual: rest.len(),
        })?;
        let mut fields: Vec<String> = Vec::with_capacity(FIELD_COUNT);
        let mut at = 0usize;
        while at < data.len() {
            let index = fields.len();
            if index == FIELD_COUNT {
                return Err(PersonalDataError::TrailingData);
            }
            let len_hex = data
                .get(at..at + 2)
                .ok_or(PersonalDataError::Field { index })?;
            let len = hex_len(len_hex).ok_or(PersonalDataError::Field { index })?;
            let value = data
                .get(at + 2..at + 2 + len)
                .ok_or(PersonalDataError::Field { index })?;
            if !value.iter().all(|b| (0x20..0x7F).contains(b)) {
                return Err(PersonalDataError::Value { index });
            }
            fields.push(String::from_utf8_lossy(value).into_owned());
            at += 2 + len;
        }
        if fields.len() <= CF_FIELD {
            return Err(PersonalDataError::MissingFields);
        }
        for index in [1, 2, 5] {
            let d = &fields[index];
            if !(d.is_empty() || (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))) {
                return Err(PersonalDataError::Value { index });
            }
        }
        if !matches!(fields[6].as_str(), "" | "M" | "F") {
            return Err(PersonalDataError::Value { index: 6 });
        }
        let codice_fiscale = CodiceFiscale::parse(&fields[CF_FIELD])?;
        let more = fields.split_off(CF_FIELD + 1);
        let mut f = fields.into_iter();
        let mut next = || f.next().unwrap_or_default();
        Ok(Self {
            issuer: next(),
            issue_date: next(),
            expiry_date: next(),
            surname: next(),
            given_name: next(),
            birth_date: next(),
            sex: next(),
            height: next(),
            codice_fiscale,
            more,
        })
    }

    /// Encode in the file's layout (fields up to the codice fiscale, then `more`), with no
    /// padding: for tests and the fuzz round trip.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let fixed = [
            &self.issuer,
            &self.issue_date,
            &self.expiry_date,
            &self.surname,
            &self.given_name,
            &self.birth_date,
            &self.sex,
            &self.height,
        ];
        let cf = self.codice_fiscale.as_str().to_owned();
        for v in fixed.into_iter().chain([&cf]).chain(self.more.iter()) {
            let v = v.as_bytes();
            let v = &v[..v.len().min(0xFF)];
            body.extend_from_slice(format!("{:02X}", v.len()).as_bytes());
            body.extend_from_slice(v);
        }
        let mut out = format!("{:06X}", body.len()).into_bytes();
        out.extend(body);
        out
    }

    /// "Given-name Surname", as OpenSC labels the token.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.surname)
            .trim()
            .to_owned()
    }
}

/// A length in ASCII hex (either case), or `None`.
fn hex_len(text: &[u8]) -> Option<usize> {
    text.iter().try_fold(0usize, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        Some(acc * 16 + d as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(fields: &[&str]) -> Vec<u8> {
        let mut body = String::new();
        for f in fields {
            body.push_str(&format!("{:02X}{f}", f.len()));
        }
        format!("{:06X}{body}", body.len()).into_bytes()
    }

    const SAMPLE: [&str; 16] = [
        "TEST",
        "01012025",
        "01012031",
        "ROSSI",
        "MARIO",
        "01011980",
        "M",
        "",
        "RSSMRA80A01H501U",
        "ITA",
        "H501",
        "",
        "",
        "H501",
        "VIA ROMA 1",
        "",
    ];

    #[test]
    fn parses_the_opensc_layout() {
        let mut bytes = file(&SAMPLE);
        bytes.extend([0x00; 20]); // padding after the declared length
        let p = PersonalData::parse(&bytes).unwrap();
        assert_eq!(p.surname, "ROSSI");
        assert_eq!(p.given_name, "MARIO");
        assert_eq!(p.codice_fiscale.as_str(), "RSSMRA80A01H501U");
        assert_eq!(p.display_name(), "MARIO ROSSI");
        assert_eq!(p.more.len(), 7);
        assert_eq!(PersonalData::parse(&p.encode()).unwrap(), p);
        assert!(!format!("{p:?}").contains("ROSSI"));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(PersonalData::parse(b"00"), Err(PersonalDataError::Header));
        assert_eq!(
            PersonalData::parse(b"00zz00"),
            Err(PersonalDataError::Header)
        );
        assert_eq!(
            PersonalData::parse(b"000010"),
            Err(PersonalDataError::Truncated {
                declared: 16,
                actual: 0
            })
        );
        assert_eq!(
            PersonalData::parse(b"00000405AB"),
            Err(PersonalDataError::Field { index: 0 })
        );
        assert_eq!(
            PersonalData::parse(&file(&SAMPLE[..8])),
            Err(PersonalDataError::MissingFields)
        );
        let mut bad_cf = SAMPLE;
        bad_cf[8] = "RSSMRA80A01H501A";
        assert_eq!(
            PersonalData::parse(&file(&bad_cf)),
            Err(CodiceFiscaleError::CheckCharacter.into())
        );
        let mut bad_date = SAMPLE;
        bad_date[5] = "1/1/1980";
        assert_eq!(
            PersonalData::parse(&file(&bad_date)),
            Err(PersonalDataError::Value { index: 5 })
        );
        let mut extra = SAMPLE.to_vec();
        extra.push("X");
        assert_eq!(
            PersonalData::parse(&file(&extra)),
            Err(PersonalDataError::TrailingData)
        );
        let mut ctrl = SAMPLE;
        ctrl[3] = "RO\nSSI";
        assert_eq!(
            PersonalData::parse(&file(&ctrl)),
            Err(PersonalDataError::Value { index: 3 })
        );
    }
}
