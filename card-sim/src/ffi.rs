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
