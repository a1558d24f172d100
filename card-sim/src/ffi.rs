//! UniFFI export (feature `ffi`): `SimCard`, a synchronous handle on a virtual card, so
//! Python/Kotlin binding tests can implement a foreign `CardTransport` that forwards to it.

use std::sync::Arc;

use crate::card::VirtualCard;

/// A virtual card for foreign-language tests.
#[derive(uniffi::Object)]
pub struct SimCard {
    card: VirtualCard,
}

#[uniffi::export]
impl SimCard {
    /// The virtual CIE preset (synthetic data, short APDUs).
    #[uniffi::constructor]
    pub fn cie() -> Arc<Self> {
        Arc::new(Self {
            card: VirtualCard::cie(),
        })
    }

    /// The virtual CIE as a phone's NFC link sees it: extended length (responses up to
    /// 1 KiB), which the CIE's PACE (2048-bit DH) needs; eMRTD application with CAN `123456`.
    #[uniffi::constructor]
    pub fn cie_extended() -> Arc<Self> {
        Arc::new(Self {
            card: crate::cie::virtual_cie_with(
                crate::ias::CieVariant::default(),
                crate::card::CardConfig::extended(1024),
                &crate::emrtd::EmrtdBuilder::cie(),
            ),
        })
    }

    /// The virtual e-passport (BAC only; ICAO specimen holder, MRZ `L898902C<`,
    /// `690806`, `940623`).
    #[uniffi::constructor]
    pub fn passport() -> Arc<Self> {
        Arc::new(Self {
            card: crate::emrtd::virtual_passport_bac(crate::card::CardConfig::default()),
        })
    }

    /// A test card with MF / DF `5000` / EF `5001` (SFI 1) of `size` pattern bytes.
    #[uniffi::constructor]
    pub fn with_large_file(size: u32) -> Arc<Self> {
        Arc::new(Self {
            card: VirtualCard::with_file(size as usize),
        })
    }

    /// Run one command APDU through the card model; returns data ‖ SW1 SW2.
    pub fn transmit(&self, apdu: Vec<u8>) -> Vec<u8> {
        self.card.process(&apdu)
    }

    /// Command APDUs received so far.
    pub fn apdu_count(&self) -> u32 {
        u32::try_from(self.card.apdu_count()).unwrap_or(u32::MAX)
    }
}

/// The test CSCA certificate (DER) that signs the virtual documents' Document Signer.
#[uniffi::export]
pub fn test_csca_der() -> Vec<u8> {
    crate::emrtd::CSCA_CERT_DER.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_card_round_trip() {
        let card = SimCard::cie();
        // SELECT DF_CIE, SELECT EF.ID_Servizi, READ BINARY 12 bytes.
        let select_cie = vec![0x00, 0xA4, 0x04, 0x0C, 0x06, 0xA0, 0, 0, 0, 0, 0x39];
        assert_eq!(card.transmit(select_cie), vec![0x90, 0x00]);
        assert_eq!(
            card.transmit(vec![0x00, 0xA4, 0x02, 0x0C, 0x02, 0x10, 0x01]),
            vec![0x90, 0x00]
        );
        let r = card.transmit(vec![0x00, 0xB0, 0x00, 0x00, 0x0C]);
        assert_eq!(r.len(), 14);
        assert_eq!(&r[12..], &[0x90, 0x00]);
        assert_eq!(card.transmit(vec![]), vec![0x67, 0x00]);
        assert_eq!(card.apdu_count(), 4);

        let big = SimCard::with_large_file(1000);
        let path = vec![0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x00, 0x50, 0x01];
        assert_eq!(big.transmit(path), vec![0x90, 0x00]);
        assert_eq!(big.transmit(vec![0x00, 0xB0, 0x03, 0xE7, 0x01]).len(), 3);
    }
}
