//! eMRTD reading figures: PACE with the CAN, SELECT of the LDS1 applet, then EF.SOD, DG1 and
//! a ≈20 KB DG2 read under secure messaging, on the virtual CIE behind the link model. Ours
//! reads with `cie_core::apdu::files::read_ef` (chunks sized from the channel's SM limits);
//! the peers are models of the fixed-chunk readers in emrtd.md §3.7/§7, measured in the
//! same run over the same chip, link and PACE.

use crate::common::{BenchResult, Rate, SEED, SeededRandomness, fail, link_config};
use card_sim::emrtd::{self as chip, EmrtdBuilder, FaceImage, PaceVariant};
use card_sim::{CardConfig, CieVariant, LinkModel, LinkStats};
use cie_core::apdu::{ApduChannel, CardChannel, Command, SwKind, files};
use cie_core::applets::emrtd::{self, Can, PacePassword, pace};
use cie_core::tlv;
use std::sync::Arc;

/// The files read, in order: EF.SOD, DG1, DG2 (FIDs under the LDS1 applet, emrtd.md §3.7).
const FILES: [[u8; 2]; 3] = [[0x01, 0x1D], [0x01, 0x01], [0x01, 0x02]];

/// A chip configuration the readers are compared on.
#[derive(Debug, Clone, Copy)]
pub struct Chip {
    /// Label.
    pub label: &'static str,
    /// The card's I/O buffer when it offers extended length; `None` = short APDUs only.
    pub extended_buffer: Option<usize>,
}

impl Chip {
    fn config(self) -> CardConfig {
        match self.extended_buffer {
            Some(n) => CardConfig::extended(n),
            None => CardConfig::short(),
        }
    }

    /// The real CIE's PACE (DH-GM 3DES, parameter 2) needs one 264-byte GENERAL
    /// AUTHENTICATE, so without extended length it cannot run (emrtd.md §6, "Extended
    /// length"): the short-only chip offers ECDH-GM-AES-128 on P-256 instead, as many
    /// passports without extended length do.
    fn pace(self) -> PaceVariant {
        match self.extended_buffer {
            Some(_) => PaceVariant::DhGm3desParam2,
            None => PaceVariant::EcdhGmAes128P256,
        }
    }

    /// Short name of the PACE variant, for the table.
    pub fn pace_label(self) -> &'static str {
        match self.pace() {
            PaceVariant::DhGm3desParam2 => "DH-GM 3DES p2",
            _ => "ECDH-GM AES-128 P-256",
        }
    }

    /// Whether the chip offers extended length (the target's "when the chip offers it").
    pub fn extended(self) -> bool {
        self.extended_buffer.is_some()
    }
}

/// The chips: extended length with 1 KiB, 4 KiB and 64 KiB buffers (realistic chip
/// buffers), and a short-only chip.
pub const CHIPS: [Chip; 4] = [
    Chip {
        label: "extended, 1 KiB buffer",
        extended_buffer: Some(1024),
    },
    Chip {
        label: "extended, 4 KiB buffer",
        extended_buffer: Some(4096),
    },
    Chip {
        label: "extended, 64 KiB buffer",
        extended_buffer: Some(65_536),
    },
    Chip {
        label: "short APDUs only",
        extended_buffer: None,
    },
];

/// Which reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The core: `files::read_ef` (SELECT with FCP, chunks as large as the SM channel's
    /// limits allow, extended Le when the link and chip offer it).
    Ours,
    /// Model of a fixed-chunk peer (emrtd.md §3.7, §7): SELECT EF `00 A4 02 0C`, READ
    /// BINARY of a `header`-byte head to learn the TLV length, then READ BINARY with Le =
    /// `chunk` (or what is left) from where the head stopped; B1 past offset 32767.
    Fixed {
        /// Le of every body read.
        chunk: usize,
        /// Le of the head read.
        header: usize,
    },
}

/// JMRTD: `DEFAULT_MAX_BLOCKSIZE` 223 (the largest plaintext that fits a short SM response
/// with AES), after an 8-byte head read (emrtd.md §3.7 "6–8 bytes: CD/JM/DM", §7).
pub const JMRTD: Reader = Reader::Fixed {
    chunk: 223,
    header: 8,
};
/// NFCPassportReader (iOS): 160-byte chunks after a 4-byte head read (emrtd.md §3.7
/// "4 bytes ... GM/NP", §7 "NP 160").
pub const NP160: Reader = Reader::Fixed {
    chunk: 160,
    header: 4,
};

impl Reader {
    /// Label.
    pub fn label(self) -> String {
        match self {
            Self::Ours => "ours".into(),
            Self::Fixed { chunk, .. } => format!("{chunk}-byte chunks"),
        }
    }
}

/// Link totals of one read: PACE (with EF.CardAccess) and the reading after it.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// APDUs of EF.CardAccess + PACE (the same for every reader).
    pub pace_apdus: u64,
    /// Everything: EF.CardAccess, PACE, SELECT applet, the three files.
    pub total: LinkStats,
}

/// One fixed-chunk READ BINARY at `offset` (even form up to 32767, then `B1` with a `54`
/// offset object, whose `53` wrapper the core unwraps).
async fn read_chunk<C: ApduChannel>(ch: &C, offset: usize, ne: usize) -> BenchResult<Vec<u8>> {
    let resp = files::read_binary(ch, offset, ne).await?;
    match resp.sw.kind() {
        SwKind::Ok | SwKind::EndOfFile if !resp.data.is_empty() => Ok(resp.data),
        _ => fail(format!(
            "fixed reader: READ BINARY at {offset}: {:?}",
            resp.sw
        )),
    }
}

/// The peers' loop: head, then fixed chunks up to the TLV's end.
async fn read_fixed<C: ApduChannel>(
    ch: &C,
    fid: [u8; 2],
    chunk: usize,
    header: usize,
) -> BenchResult<Vec<u8>> {
    ch.transmit(&Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(fid))
        .await?
        .check(0xA4)?;
    let mut out = read_chunk(ch, 0, header).await?;
    let total = tlv::encoded_len(&out)?;
    out.truncate(total);
    while out.len() < total {
        let ne = chunk.min(total - out.len());
        let part = read_chunk(ch, out.len(), ne).await?;
        out.extend_from_slice(&part);
    }
    if out.len() != total {
        return fail("fixed reader overran the object");
    }
    Ok(out)
}

/// The chip every run reads: the virtual CIE with the large (≈20 KB) JPEG face.
pub fn builder(chip: Chip) -> EmrtdBuilder {
    EmrtdBuilder::cie()
        .face(FaceImage::LargeJpeg)
        .pace(chip.pace())
}

/// PACE-CAN, SELECT applet, EF.SOD + DG1 + DG2 with `reader` on `chip` at `rate`. The bytes
/// read are checked against the chip's.
pub fn measure(chip: Chip, rate: Rate, reader: Reader) -> BenchResult<Measured> {
    let b = builder(chip);
    let expected = b.files();
    let card = Arc::new(card_sim::cie::virtual_cie_with(
        CieVariant::default(),
        chip.config(),
        &b,
    ));
    let link = Arc::new(LinkModel::new(card, link_config(rate.bit_rate)));
    let ch = CardChannel::new(link.clone());
    pollster::block_on(async {
        let infos = match emrtd::read_card_access(&ch).await? {
            Some(i) => i,
            None => return fail("the virtual CIE has no EF.CardAccess"),
        };
        let pw = PacePassword::Can(Can::new(chip::TEST_CAN)?);
        // Same seed for every reader: the PACE bytes are identical across readers.
        let sm = pace::pace_with_card_access(ch, &infos, &pw, &SeededRandomness::new(SEED)).await?;
        let pace_apdus = link.stats().apdus;
        emrtd::select_applet(&sm).await?;
        for fid in FILES {
            let data = match reader {
                Reader::Ours => files::read_ef(&sm, fid).await?,
                Reader::Fixed { chunk, header } => read_fixed(&sm, fid, chunk, header).await?,
            };
            let want = match fid[1] {
                0x1D => Some(expected.sod.as_slice()),
                n => expected.dg(n),
            };
            if want != Some(data.as_slice()) {
                return fail(format!("{} read {fid:02X?} wrongly", reader.label()));
            }
        }
        Ok(Measured {
            pace_apdus,
            total: link.stats(),
        })
    })
}

/// Sizes of EF.SOD, DG1, DG2 on the bench's chip.
pub fn file_sizes() -> [usize; 3] {
    let f = builder(CHIPS[0]).files();
    [
        f.sod.len(),
        f.dg(1).map_or(0, <[u8]>::len),
        f.dg(2).map_or(0, <[u8]>::len),
    ]
}
