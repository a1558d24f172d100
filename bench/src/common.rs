//! What every measured flow shares: the seeded randomness, the virtual CIE behind the link
//! model, and a recorder that splits the link totals into protocol phases.

use card_sim::{BitRate, LinkConfig, LinkModel, LinkStats, VirtualCard};
use cie_core::apdu::CardChannel;
use cie_core::applets::ias::IasError;
use cie_core::applets::ias::secure::Randomness;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Errors of a measured flow: any failure makes the bench exit non-zero.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Fail the run with `msg` (a flow that diverges from the card is a broken benchmark).
pub fn fail<T>(msg: impl Into<String>) -> BenchResult<T> {
    Err(msg.into().into())
}

/// The virtual CIE's synthetic PIN (card-sim `ias::pki`).
pub const PIN: &[u8; 8] = b"12345678";

/// The login challenge (from the server, fetched before the tap).
pub const CHALLENGE: &[u8] = b"cie-bench login challenge";

/// SHA-256 of [`CHALLENGE`], signed by every flow: PKCS#1 v1.5 is deterministic, so every
/// terminal must bring back the same signature.
pub fn digest() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(CHALLENGE).into()
}

/// Challenge for the anti-clone check (16 bytes, as A14 in cie.md §3.6).
pub const GENUINE_CHALLENGE: &[u8; 16] = b"cie-bench-nonce!";

/// Seeded randomness (SplitMix64): both terminals draw the same DH exponent, PRND and
/// RND.IFD, so every run sends the same bytes. Never used outside the bench.
pub struct SeededRandomness(AtomicU64);

impl SeededRandomness {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }
}

impl Randomness for SeededRandomness {
    fn fill(&self, buf: &mut [u8]) -> Result<(), IasError> {
        for chunk in buf.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// The seed every tap starts from.
pub const SEED: u64 = 0xC1E0_BE4C;

/// A bit rate the report names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The link model's rate.
    pub bit_rate: BitRate,
    /// Label, kbit/s.
    pub kbps: u32,
    /// Whether the targets are judged at this rate (the rest are for information).
    pub judged: bool,
}

/// The rates of the tap table: 106 and 424 kbit/s, and 848 for information.
pub const TAP_RATES: [Rate; 3] = [
    Rate {
        bit_rate: BitRate::Kbps106,
        kbps: 106,
        judged: true,
    },
    Rate {
        bit_rate: BitRate::Kbps424,
        kbps: 424,
        judged: true,
    },
    Rate {
        bit_rate: BitRate::Kbps848,
        kbps: 848,
        judged: false,
    },
];

/// Card processing per APDU in every scenario (the link model's flat turnaround; the
/// card's slow DH/RSA commands would add the same time to both terminals).
pub const TURNAROUND: Duration = Duration::from_millis(5);

/// The link model configuration at `rate`: ISO 14443 defaults (FSC/FSD 256, 100 µs frame
/// delay) with a 5 ms per-APDU turnaround.
pub fn link_config(rate: BitRate) -> LinkConfig {
    LinkConfig {
        bit_rate: rate,
        apdu_turnaround: TURNAROUND,
        ..LinkConfig::default()
    }
}

/// `card` behind a link model at `rate`, and the core's channel over it.
pub fn channel_over(card: Arc<VirtualCard>, rate: BitRate) -> (Arc<LinkModel>, CardChannel) {
    let link = Arc::new(LinkModel::new(card, link_config(rate)));
    let ch = CardChannel::new(link.clone());
    (link, ch)
}

/// Link totals of one flow, whole and per phase.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Totals of the whole flow.
    pub total: LinkStats,
    /// (phase, APDUs in it), in order.
    pub phases: Vec<(&'static str, u64)>,
}

/// Records, phase by phase, what the link model counted.
pub struct Recorder<'a> {
    link: &'a LinkModel,
    start: LinkStats,
    last: LinkStats,
    measured: Measured,
}

impl<'a> Recorder<'a> {
    /// Start counting from the link's current totals.
    pub fn new(link: &'a LinkModel) -> Self {
        let start = link.stats();
        Self {
            link,
            start,
            last: start,
            measured: Measured::default(),
        }
    }

    /// Close the phase `name`: the APDUs since the previous mark are its own.
    pub fn mark(&mut self, name: &'static str) {
        let now = self.link.stats();
        self.measured
            .phases
            .push((name, now.apdus - self.last.apdus));
        self.last = now;
    }

    /// The totals since [`Recorder::new`].
    pub fn finish(mut self) -> Measured {
        let (now, start) = (self.link.stats(), self.start);
        self.measured.total = LinkStats {
            apdus: now.apdus - start.apdus,
            bytes_to_card: now.bytes_to_card - start.bytes_to_card,
            bytes_from_card: now.bytes_from_card - start.bytes_from_card,
            link_time: now.link_time - start.link_time,
        };
        self.measured
    }
}

/// What a login tap brought back, so the two terminals can be checked against each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapOutput {
    /// The NIS bytes.
    pub nis: Vec<u8>,
    /// The certificate DER (empty when the flow skips it).
    pub certificate: Vec<u8>,
    /// The signature over [`DIGEST`].
    pub signature: Vec<u8>,
}
