//! libnfc readers (PN53x family, ACR122U, …) through `nfc1`, as an ISO 14443-4 initiator.
//!
//! libnfc's default "easy framing" wraps each APDU in ISO-DEP blocks, so
//! `initiator_transceive_bytes` moves whole APDUs. The PN53x firmware frames at most about
//! 262 bytes, so the link is reported as short (261-byte commands, 258-byte responses);
//! extended APDUs through libnfc were not verified.

use std::sync::Mutex;
use std::time::Duration;

use cie_core::transport::{CardTransport, TransportError, TransportInfo, TransportKind};

use crate::error::CliError;

/// Time one APDU may take: RSA operations on the CIE take a couple of seconds.
const APDU_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer: a short response (256 data + SW) with some margin.
const RX_LEN: usize = 264;

/// Map a libnfc error on an open link to the core's transport error.
pub fn map_nfc_error(e: nfc1::Error) -> TransportError {
    match e {
        nfc1::Error::Timeout => TransportError::Timeout,
        nfc1::Error::TargetReleased | nfc1::Error::RfTransmissionError => TransportError::TagLost,
        other => TransportError::Io {
            reason: format!("libnfc: {other}"),
        },
    }
}

/// List libnfc devices by connstring. Errors only if libnfc cannot start.
pub fn list_devices() -> Result<Vec<String>, CliError> {
    let mut ctx = nfc1::Context::new().map_err(|e| CliError::Nfc {
        reason: e.to_string(),
    })?;
    ctx.list_devices(8).map_err(|e| CliError::Nfc {
        reason: e.to_string(),
    })
}

// Field order matters: the device is closed before the context is freed.
struct Link {
    device: nfc1::Device,
    _context: nfc1::Context,
}

/// A contactless card selected through libnfc.
pub struct NfcTransport {
    link: Mutex<Link>,
    connstring: String,
    info: TransportInfo,
}

impl std::fmt::Debug for NfcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcTransport")
            .field("connstring", &self.connstring)
            .field("info", &self.info)
            .finish()
    }
}

impl NfcTransport {
    /// Open the device (`connstring`, or the first one), and select one ISO 14443-A card at
    /// 106 kbit/s that speaks ISO 14443-4.
    pub fn open(connstring: Option<&str>) -> Result<Self, CliError> {
        let nfc_err = |e: nfc1::Error| CliError::Nfc {
            reason: e.to_string(),
        };
        let mut context = nfc1::Context::new().map_err(nfc_err)?;
        let device = match connstring {
            Some(c) => context.open_with_connstring(c),
            None => context.open(),
        };
        let mut device = device.map_err(|e| match e {
            nfc1::Error::NoDeviceFound | nfc1::Error::NoSuchDeviceFound => {
                CliError::NoReaders { kind: "NFC" }
            }
            other => nfc_err(other),
        })?;
        let connstring = device.connstring().to_string();
        device.initiator_init().map_err(nfc_err)?;
        // Do not wait forever for a card: one select attempt, then report "no card".
        device
            .set_property_bool(nfc1::Property::InfiniteSelect, false)
            .map_err(nfc_err)?;
        let modulation = nfc1::Modulation {
            modulation_type: nfc1::ModulationType::Iso14443a,
            baud_rate: nfc1::BaudRate::Baud106,
        };
        let target = device
            .initiator_select_passive_target(&modulation)
            .map_err(|_| CliError::NoCard {
                reader: connstring.clone(),
            })?;
        let ats = match target.target_info {
            nfc1::target_info::TargetInfo::Iso14443a(a) => {
                // SAK bit 6 (0x20): the card is ISO 14443-4 compliant (an ID card, not a tag).
                if a.sak & 0x20 == 0 {
                    return Err(CliError::Card {
                        reason: "the card in the field is not an ISO 14443-4 smart card".into(),
                    });
                }
                a.ats.get(..a.ats_len).map(<[u8]>::to_vec)
            }
            _ => None,
        };
        let mut info = TransportInfo::short(TransportKind::Nfc);
        info.atr = ats.filter(|a| !a.is_empty());
        Ok(Self {
            link: Mutex::new(Link {
                device,
                _context: context,
            }),
            connstring,
            info,
        })
    }

    /// The libnfc connstring of the device in use.
    pub fn connstring(&self) -> &str {
        &self.connstring
    }
}

#[async_trait::async_trait]
impl CardTransport for NfcTransport {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let mut link = self.link.lock().map_err(|_| TransportError::Io {
            reason: "NFC link poisoned by an earlier failure".into(),
        })?;
        link.device
            .initiator_transceive_bytes(&apdu, RX_LEN, nfc1::Timeout::Duration(APDU_TIMEOUT))
            .map_err(map_nfc_error)
    }

    fn info(&self) -> TransportInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_field_loss_and_timeouts() {
        assert_eq!(map_nfc_error(nfc1::Error::Timeout), TransportError::Timeout);
        assert_eq!(
            map_nfc_error(nfc1::Error::TargetReleased),
            TransportError::TagLost
        );
        assert_eq!(
            map_nfc_error(nfc1::Error::RfTransmissionError),
            TransportError::TagLost
        );
        assert!(matches!(
            map_nfc_error(nfc1::Error::Io),
            TransportError::Io { .. }
        ));
    }
}
