//! `FaultyTransport`: wraps any transport and injects link faults on chosen APDUs, to test
//! the core's recovery paths (tag lost mid-read, corrupted or cut responses).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cie_core::transport::{CardTransport, TransportError, TransportInfo};

/// A fault to inject on one APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fail with `TransportError::TagLost`; the command does not reach the card.
    TagLost,
    /// Fail with `TransportError::Timeout`; the command does not reach the card.
    Timeout,
    /// Forward the command, then flip every bit of response byte `index` (taken modulo the
    /// response length, so any index hits some byte; an empty response stays empty).
    CorruptByte {
        /// Byte position in the response (data ‖ SW).
        index: usize,
    },
    /// Forward the command, then keep only the first `len` bytes of the response.
    Truncate {
        /// Bytes kept.
        len: usize,
    },
    /// Forward the command, then return zero bytes.
    Empty,
    /// Forward the command, then keep the first half of the response (rounded down).
    Half,
    /// Forward the command, then answer only this status word (a glitching chip's `6F00`).
    StatusWord(u16),
}

/// A transport that injects [`Fault`]s on given APDUs (0-based count of APDUs through
/// this wrapper). Each fault fires once; every other APDU passes through unchanged.
pub struct FaultyTransport {
    inner: Arc<dyn CardTransport>,
    faults: Vec<(usize, Fault)>,
    count: AtomicUsize,
}

impl FaultyTransport {
    /// Wrap `inner` with no faults yet.
    pub fn new(inner: Arc<dyn CardTransport>) -> Self {
        Self {
            inner,
            faults: Vec::new(),
            count: AtomicUsize::new(0),
        }
    }

    /// Inject `fault` on the `n`-th APDU (0-based). If several faults name the same APDU,
    /// the first one added wins.
    pub fn fail_at(mut self, n: usize, fault: Fault) -> Self {
        self.faults.push((n, fault));
        self
    }

    /// APDUs sent through this wrapper so far, faulted ones included.
    pub fn apdu_count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl CardTransport for FaultyTransport {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let fault = self.faults.iter().find(|(at, _)| *at == n).map(|(_, f)| f);
        match fault {
            None => self.inner.transmit(apdu).await,
            Some(Fault::TagLost) => Err(TransportError::TagLost),
            Some(Fault::Timeout) => Err(TransportError::Timeout),
            Some(Fault::CorruptByte { index }) => {
                let mut response = self.inner.transmit(apdu).await?;
                if !response.is_empty() {
                    let i = index % response.len();
                    response[i] ^= 0xFF;
                }
                Ok(response)
            }
            Some(Fault::Truncate { len }) => {
                let mut response = self.inner.transmit(apdu).await?;
                response.truncate(*len);
                Ok(response)
            }
            Some(Fault::Half) => {
                let mut response = self.inner.transmit(apdu).await?;
                response.truncate(response.len() / 2);
                Ok(response)
            }
            Some(Fault::StatusWord(sw)) => {
                self.inner.transmit(apdu).await?;
                Ok(sw.to_be_bytes().to_vec())
            }
            Some(Fault::Empty) => {
                self.inner.transmit(apdu).await?;
                Ok(Vec::new())
            }
        }
    }

    fn info(&self) -> TransportInfo {
        self.inner.info()
    }
}
