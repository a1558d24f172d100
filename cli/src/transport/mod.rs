//! Desktop card links. PC/SC and libnfc live here, in the desktop program only: the core
//! never links them.

pub mod nfc;
pub mod trace;
/// PC/SC readers, shared with the PKCS#11 module (`readers/`).
pub use cie_readers::pcsc;

use std::sync::Arc;

use cie_core::transport::SharedTransport;

use crate::error::CliError;

/// Which card to talk to, as given with `--reader`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderSpec {
    /// The virtual CIE from `card-sim`, in this process.
    Sim,
    /// card-sim's virtual e-passport (BAC only), in this process.
    SimPassport,
    /// A PC/SC reader by exact name; `None` = the first reader holding a card.
    Pcsc(Option<String>),
    /// A libnfc device by connstring; `None` = the first device.
    Nfc(Option<String>),
}

impl std::str::FromStr for ReaderSpec {
    type Err = CliError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let nonempty = |v: &str| (!v.is_empty()).then(|| v.to_string());
        match s.split_once(':') {
            None if s == "sim" => Ok(Self::Sim),
            Some(("sim", "cie")) => Ok(Self::Sim),
            Some(("sim", "passport")) => Ok(Self::SimPassport),
            None if s == "pcsc" => Ok(Self::Pcsc(None)),
            None if s == "nfc" => Ok(Self::Nfc(None)),
            Some(("pcsc", name)) => Ok(Self::Pcsc(nonempty(name))),
            Some(("nfc", conn)) => Ok(Self::Nfc(nonempty(conn))),
            _ => Err(CliError::BadReaderSpec {
                spec: s.to_string(),
            }),
        }
    }
}

/// Options that change how a link is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Force extended-length APDUs on or off on PC/SC (default: ask the reader).
    pub extended_length: Option<bool>,
}

/// The virtual CIE as the desktop program serves it: extended length on, as the real CIE
/// (its PACE DH exchange needs 264-byte commands).
pub fn virtual_cie() -> card_sim::VirtualCard {
    card_sim::cie::virtual_cie_with(
        card_sim::CieVariant::default(),
        card_sim::CardConfig::extended(1024),
        &card_sim::emrtd::EmrtdBuilder::cie(),
    )
}

/// Open the link named by `spec`; also returns the name of the reader actually used.
pub fn open(spec: &ReaderSpec, opts: OpenOptions) -> Result<(SharedTransport, String), CliError> {
    let (link, name): (SharedTransport, String) = match spec {
        ReaderSpec::Sim => (
            Arc::new(virtual_cie()),
            "sim (virtual CIE, card-sim)".into(),
        ),
        ReaderSpec::SimPassport => (
            Arc::new(card_sim::emrtd::virtual_passport_bac(
                card_sim::CardConfig::default(),
            )),
            "sim:passport (virtual e-passport, card-sim)".into(),
        ),
        ReaderSpec::Pcsc(name) => {
            let t = pcsc::PcscTransport::connect(name.as_deref(), opts.extended_length)?;
            let shown = format!("pcsc:{}", t.reader());
            (Arc::new(t), shown)
        }
        ReaderSpec::Nfc(conn) => {
            let t = nfc::NfcTransport::open(conn.as_deref())?;
            let shown = format!("nfc:{}", t.connstring());
            (Arc::new(t), shown)
        }
    };
    Ok((Arc::new(trace::Traced(link)), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reader_specs() {
        assert_eq!("sim".parse::<ReaderSpec>().ok(), Some(ReaderSpec::Sim));
        assert_eq!(
            "pcsc:Virtual PCD 00 00".parse::<ReaderSpec>().ok(),
            Some(ReaderSpec::Pcsc(Some("Virtual PCD 00 00".into())))
        );
        assert_eq!(
            "pcsc".parse::<ReaderSpec>().ok(),
            Some(ReaderSpec::Pcsc(None))
        );
        assert_eq!(
            "nfc:pn53x_usb:001:004".parse::<ReaderSpec>().ok(),
            Some(ReaderSpec::Nfc(Some("pn53x_usb:001:004".into())))
        );
        assert!("usb".parse::<ReaderSpec>().is_err());
        assert!("foo:bar".parse::<ReaderSpec>().is_err());
    }
}
