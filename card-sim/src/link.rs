//! `LinkModel`: wraps any transport, counts APDUs and bytes, and estimates how long the same
//! exchange would take over an ISO 14443-4 contactless link.
//!
//! The model (deliberately simple, for comparing APDU strategies rather than predicting a
//! given phone to the millisecond):
//! - **Bit rate**: fc/128, fc/64, fc/32 or fc/16 with fc = 13.56 MHz (the nominal
//!   106/212/424/848 kbit/s).
//! - **Bytes**: 9 bit times per byte (8 data bits + 1 parity), the ISO 14443-3 Type A
//!   framing at 106 kbit/s. The same approximation is used at every rate (higher Type A
//!   rates and Type B framing differ slightly); the error is a few percent.
//! - **Frames**: each I-block carries a 1-byte prologue (PCB; no CID/NAD) and a 2-byte
//!   CRC_A, plus 2 bit times for start and end of frame (SOF/EOF).
//! - **Chaining**: a message longer than the frame size minus those 3 bytes (FSC towards the
//!   card, FSD towards the reader; default 256) is split into I-blocks. Each extra I-block
//!   pays a turnaround: an R(ACK) frame (PCB + CRC_A, SOF/EOF) the other way and two frame
//!   delays (`frame_delay`, default 100 µs ≈ the ISO 14443-3 FDT of about 86-91 µs rounded
//!   up).
//! - **Card**: a fixed per-APDU turnaround (`apdu_turnaround`, default 5 ms) for the card's
//!   processing plus the frame delay before its answer. Slow commands (RSA, DH) need a
//!   larger value; waiting-time extensions (S(WTX)) are not modelled.
//! - Anticollision, activation (RATS/ATS, PPS) and retransmissions are not counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cie_core::transport::{CardTransport, TransportError, TransportInfo};

/// The ISO 14443 carrier frequency, Hz.
pub const CARRIER_HZ: u64 = 13_560_000;
/// Bit times per byte on the air (8 data bits + parity).
pub const BITS_PER_BYTE: u64 = 9;
/// Prologue (PCB) + epilogue (CRC_A) bytes per block.
pub const BLOCK_OVERHEAD_BYTES: u64 = 3;
/// Start- plus end-of-frame, in bit times.
pub const SOF_EOF_BITS: u64 = 2;

/// ISO 14443 bit rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitRate {
    /// fc/128 ≈ 106 kbit/s.
    #[default]
    Kbps106,
    /// fc/64 ≈ 212 kbit/s.
    Kbps212,
    /// fc/32 ≈ 424 kbit/s.
    Kbps424,
    /// fc/16 ≈ 848 kbit/s.
    Kbps848,
}

impl BitRate {
    /// Carrier cycles per bit.
    pub fn carrier_cycles_per_bit(self) -> u64 {
        match self {
            Self::Kbps106 => 128,
            Self::Kbps212 => 64,
            Self::Kbps424 => 32,
            Self::Kbps848 => 16,
        }
    }

    /// Duration of `bits` bit times, rounded down to the nanosecond.
    pub fn bits_to_duration(self, bits: u64) -> Duration {
        let ns = u128::from(bits) * u128::from(self.carrier_cycles_per_bit()) * 1_000_000_000
            / u128::from(CARRIER_HZ);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// Parameters of the link model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Bit rate, both directions. Default 106 kbit/s.
    pub bit_rate: BitRate,
    /// Largest frame the card accepts (reader → card), bytes incl. PCB and CRC. Default 256.
    pub fsc: usize,
    /// Largest frame the reader accepts (card → reader), bytes incl. PCB and CRC. Default 256.
    pub fsd: usize,
    /// Delay between frames, paid twice per R(ACK) exchange. Default 100 µs.
    pub frame_delay: Duration,
    /// Card processing per APDU. Default 5 ms.
    pub apdu_turnaround: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            bit_rate: BitRate::Kbps106,
            fsc: 256,
            fsd: 256,
            frame_delay: Duration::from_micros(100),
            apdu_turnaround: Duration::from_millis(5),
        }
    }
}

/// Air time of one APDU exchange, split into bit times and fixed delays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cost {
    bits: u64,
    fixed: Duration,
}

impl LinkConfig {
    /// I-blocks needed for `len` bytes with frame size `fs` (at least one; frame sizes
    /// below the ISO minimum of 16 are treated as 16).
    pub fn blocks(len: usize, fs: usize) -> u64 {
        let inf = (fs.max(16) as u64) - BLOCK_OVERHEAD_BYTES;
        (len as u64).div_ceil(inf).max(1)
    }

    /// Bit times and delays to carry `len` bytes one way with frame size `fs`.
    fn one_way(&self, len: usize, fs: usize) -> Cost {
        let blocks = Self::blocks(len, fs);
        let frame_overhead = BLOCK_OVERHEAD_BYTES * BITS_PER_BYTE + SOF_EOF_BITS;
        let extra = blocks - 1;
        Cost {
            // Data, per-I-block overhead, and one R(ACK) frame per extra I-block.
            bits: len as u64 * BITS_PER_BYTE + blocks * frame_overhead + extra * frame_overhead,
            fixed: self.frame_delay * 2 * u32::try_from(extra).unwrap_or(u32::MAX),
        }
    }

    fn cost(&self, command_len: usize, response_len: usize) -> Cost {
        let c = self.one_way(command_len, self.fsc);
        let r = self.one_way(response_len, self.fsd);
        Cost {
            bits: c.bits + r.bits,
            fixed: c.fixed + r.fixed + self.apdu_turnaround,
        }
    }

    /// Modelled time of one APDU: `command_len` bytes to the card, `response_len` bytes
    /// (SW included) back.
    pub fn apdu_time(&self, command_len: usize, response_len: usize) -> Duration {
        let cost = self.cost(command_len, response_len);
        self.bit_rate.bits_to_duration(cost.bits) + cost.fixed
    }
}

/// Totals since the model was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// APDUs sent (failed ones included).
    pub apdus: u64,
    /// Command bytes sent to the card.
    pub bytes_to_card: u64,
    /// Response bytes received (SW included).
    pub bytes_from_card: u64,
    /// Modelled ISO 14443-4 link time for all of them.
    pub link_time: Duration,
}

#[derive(Debug, Default)]
struct Totals {
    apdus: u64,
    to_card: u64,
    from_card: u64,
    cost: Cost,
}

/// A transport wrapper that measures traffic and models its contactless link time.
pub struct LinkModel {
    inner: Arc<dyn CardTransport>,
    config: LinkConfig,
    totals: Mutex<Totals>,
}

impl LinkModel {
    /// Wrap `inner` with the given model parameters.
    pub fn new(inner: Arc<dyn CardTransport>, config: LinkConfig) -> Self {
        Self {
            inner,
            config,
            totals: Mutex::new(Totals::default()),
        }
    }

    /// The model parameters.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Totals so far.
    pub fn stats(&self) -> LinkStats {
        let t = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        LinkStats {
            apdus: t.apdus,
            bytes_to_card: t.to_card,
            bytes_from_card: t.from_card,
            // Converted once from the summed bit times, so rounding does not accumulate.
            link_time: self.config.bit_rate.bits_to_duration(t.cost.bits) + t.cost.fixed,
        }
    }

    /// Reset the totals.
    pub fn reset(&self) {
        *self.totals.lock().unwrap_or_else(|p| p.into_inner()) = Totals::default();
    }
}

#[async_trait::async_trait]
impl CardTransport for LinkModel {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let command_len = apdu.len();
        let result = self.inner.transmit(apdu).await;
        // A failed exchange still cost the command frames and the card's turnaround.
        let response_len = result.as_ref().map_or(0, Vec::len);
        let cost = self.config.cost(command_len, response_len);
        let mut t = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        t.apdus += 1;
        t.to_card += command_len as u64;
        t.from_card += response_len as u64;
        t.cost.bits += cost.bits;
        t.cost.fixed += cost.fixed;
        drop(t);
        result
    }

    fn info(&self) -> TransportInfo {
        self.inner.info()
    }
}
