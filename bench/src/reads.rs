//! APDU-layer figures: whole-file reads of the 20 KiB and 40 KiB test files (card-sim
//! `VirtualCard::with_large_files()`, DF 5000, EF 5020 / 5040), the core's reader against a
//! naive reader with the official desktop/iOS fixed chunk (0x80, cie.md §3.1), in the same run.

use crate::common::{BenchResult, Rate, channel_over, fail};
use card_sim::{CardConfig, LinkStats, VirtualCard};
use cie_core::apdu::{ApduChannel, CardChannel, Command, files};
use std::sync::Arc;

const DF: [u8; 2] = [0x50, 0x00];

/// A test file.
#[derive(Debug, Clone, Copy)]
pub struct TestFile {
    /// Label.
    pub name: &'static str,
    /// File identifier under DF 5000.
    pub fid: [u8; 2],
}

/// The two large files.
pub const FILES: [TestFile; 2] = [
    TestFile {
        name: "EF 5020 (20 KiB)",
        fid: [0x50, 0x20],
    },
    TestFile {
        name: "EF 5040 (40 KiB)",
        fid: [0x50, 0x40],
    },
];

/// The card/phone link shapes compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkShape {
    /// Short APDUs only (256-byte answers).
    Short,
    /// Extended length, 64 KiB card buffer.
    Extended,
}

impl LinkShape {
    /// Label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Short => "short APDUs",
            Self::Extended => "extended (64 KiB)",
        }
    }

    fn config(self) -> CardConfig {
        match self {
            Self::Short => CardConfig::short(),
            Self::Extended => CardConfig::extended(65_536),
        }
    }
}

/// Which reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// `cie_core::apdu::files::read_ef`: SELECT with FCP, then the largest chunks the
    /// channel allows (B0, then B1 past offset 32767).
    Ours,
    /// SELECT without FCP, then READ BINARY with Le 0x80 until `6282` / `6B00` (the §3.1
    /// loop). Past offset 32767 it uses the odd B1 form with Le 0x80 (the `53` wrapper comes
    /// out of those 128 bytes); no official client reads files that large, so this is the
    /// kindest extension of its loop.
    Fixed80,
}

async fn read_fixed_80(ch: &CardChannel, fid: [u8; 2]) -> BenchResult<Vec<u8>> {
    ch.transmit(&Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(fid))
        .await?
        .check(0xA4)?;
    // The official SDKs' fixed-chunk loop, shared with the official-sequence terminal.
    crate::official::read_loop(ch, 0x80).await
}

/// Read `file` whole with `reader` over `shape` at `rate`; the link totals of the read
/// (the DF is selected before counting starts). The bytes are checked against the card's.
pub fn measure(
    file: TestFile,
    shape: LinkShape,
    rate: Rate,
    reader: Reader,
) -> BenchResult<LinkStats> {
    let card = Arc::new(VirtualCard::with_large_files().with_config(shape.config()));
    let (link, ch) = channel_over(card.clone(), rate.bit_rate);
    pollster::block_on(async {
        files::select_df(&ch, DF).await?;
        link.reset();
        let data = match reader {
            Reader::Ours => files::read_ef(&ch, file.fid).await?,
            Reader::Fixed80 => read_fixed_80(&ch, file.fid).await?,
        };
        let expected = card.file_contents(&[0x5000, u16::from_be_bytes(file.fid)]);
        if expected.as_deref() != Some(data.as_slice()) {
            return fail(format!("{reader:?} read {} wrongly", file.name));
        }
        Ok(link.stats())
    })
}
