//! SELECT and READ BINARY over any [`ApduChannel`]: whole-file reads in the fewest APDUs
//! the link and the card allow.

use super::{ApduChannel, ApduError, Command, Response, Sw, SwKind};
use crate::tlv::{self, Reader, Tag, Tlv};

const INS_SELECT: u8 = 0xA4;
const INS_READ_BINARY: u8 = 0xB0;
/// READ BINARY with an offset data object, for offsets above 32767 (ISO 7816-4 §11.3.3).
const INS_READ_BINARY_ODD: u8 = 0xB1;
/// Highest offset the even READ BINARY can address (P1 bit 8 must stay 0).
const MAX_B0_OFFSET: usize = 0x7FFF;
/// Refuse to accumulate more than this from one EF: the largest CIE/eMRTD file (DG2
/// photo) is far below, and a lying card must not exhaust memory.
pub const MAX_FILE_SIZE: usize = 1 << 20;

/// What SELECT learned about a file from its FCP template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInfo {
    /// Data size of a transparent EF (tag `80`, or `81` total size).
    pub size: Option<usize>,
}

impl FileInfo {
    /// Parse an FCP (`62`) or FCI (`6F`) template; an empty answer tells nothing.
    pub fn parse(data: &[u8]) -> Result<Self, ApduError> {
        if data.is_empty() {
            return Ok(Self::default());
        }
        let tpl = Tlv::from_bytes(data)?;
        // FCI `6F` may wrap an FCP; the size objects are the same.
        let fcp = match tpl.tag.value() {
            0x62 => tpl,
            0x6F => tpl.find(Tag::new(0x62))?.unwrap_or(tpl),
            _ => {
                return Err(ApduError::CardMisbehaved(
                    "SELECT answer is not an FCP/FCI template",
                ));
            }
        };
        let size_obj = match fcp.find(Tag::new(0x80))? {
            Some(obj) => Some(obj),
            None => fcp.find(Tag::new(0x81))?,
        };
        let size = match size_obj {
            Some(obj) if (1..=4).contains(&obj.value.len()) => Some(
                obj.value
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            ),
            Some(_) => return Err(ApduError::CardMisbehaved("file size object of bad length")),
            None => None,
        };
        Ok(Self { size })
    }
}

/// SELECT an application by AID. Succeeds only on `9000`.
pub async fn select_aid<C: ApduChannel + ?Sized>(ch: &C, aid: &[u8]) -> Result<(), ApduError> {
    ch.transmit(&Command::select_aid(aid))
        .await?
        .check(INS_SELECT)
}

/// SELECT a DF by file identifier: a child of the current DF (P1 `01`), or the MF for
/// `3F00` (P1 `00`). No FCI is asked for.
pub async fn select_df<C: ApduChannel + ?Sized>(ch: &C, fid: [u8; 2]) -> Result<(), ApduError> {
    let p1 = if fid == [0x3F, 0x00] { 0x00 } else { 0x01 };
    let cmd = Command::new(0x00, INS_SELECT, p1, 0x0C).with_data(fid);
    ch.transmit(&cmd).await?.check(INS_SELECT)
}

/// SELECT an EF by file identifier under the current DF, asking for its FCP so the
/// size is known. Cards that refuse P2=`04` (`6A86`) are asked again without FCP.
pub async fn select_file<C: ApduChannel + ?Sized>(
    ch: &C,
    fid: [u8; 2],
) -> Result<FileInfo, ApduError> {
    let with_fcp = Command::new(0x00, INS_SELECT, 0x02, 0x04)
        .with_data(fid)
        .with_le(ch.limits().max_response_data.min(256));
    let resp = ch.transmit(&with_fcp).await?;
    match resp.sw.kind() {
        SwKind::Ok => FileInfo::parse(&resp.data),
        SwKind::WrongParameters | SwKind::NotSupported => {
            let bare = Command::new(0x00, INS_SELECT, 0x02, 0x0C).with_data(fid);
            ch.transmit(&bare).await?.check(INS_SELECT)?;
            Ok(FileInfo::default())
        }
        _ => Err(ApduError::Status {
            sw: resp.sw,
            ins: INS_SELECT,
        }),
    }
}

/// Which EF a READ BINARY addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EfRef {
    /// The current EF (selected before).
    Current,
    /// A short EF identifier (1..=30) of the current DF: the read selects the EF itself,
    /// saving the SELECT round trip.
    Sfi(u8),
}

/// One READ BINARY of up to `ne` bytes at `offset` of the current EF: `B0` up to offset
/// 32767, `B1` with an offset data object beyond. Returns the content and the SW.
pub async fn read_binary<C: ApduChannel + ?Sized>(
    ch: &C,
    offset: usize,
    ne: usize,
) -> Result<Response, ApduError> {
    read_binary_at(ch, EfRef::Current, false, offset, ne).await
}

/// One READ BINARY addressing `ef`. The even form is used where it can address `offset`
/// (with an SFI only offsets up to 255 fit in P2), unless `odd` asks for `B1`; `B1`
/// carries the offset in a `54` object and answers inside a `53` object, which is unwrapped.
pub async fn read_binary_at<C: ApduChannel + ?Sized>(
    ch: &C,
    ef: EfRef,
    odd: bool,
    offset: usize,
    ne: usize,
) -> Result<Response, ApduError> {
    let sfi = match ef {
        EfRef::Sfi(sfi) if (1..=30).contains(&sfi) => Some(sfi),
        EfRef::Sfi(_) => {
            return Err(ApduError::CardMisbehaved(
                "short EF identifier out of range",
            ));
        }
        EfRef::Current => None,
    };
    let even = match sfi {
        _ if odd => None,
        Some(sfi) if offset <= 0xFF => Some((0x80 | sfi, offset as u8)),
        Some(_) => None,
        None if offset <= MAX_B0_OFFSET => Some(((offset >> 8) as u8, offset as u8)),
        None => None,
    };
    if let Some((p1, p2)) = even {
        let cmd = Command::new(0x00, INS_READ_BINARY, p1, p2).with_le(ne);
        return ch.transmit(&cmd).await;
    }
    let offset = u32::try_from(offset).map_err(|_| ApduError::InvalidLe { ne: offset })?;
    let off_bytes = offset.to_be_bytes();
    let skip = off_bytes.iter().take_while(|b| **b == 0).count().min(2);
    // P1-P2 of B1: `0000` for the current EF, or `00` then the SFI in the low 5 bits.
    let cmd = Command::new(0x00, INS_READ_BINARY_ODD, 0x00, sfi.unwrap_or(0))
        .with_data(tlv::encode_to_vec(Tag::new(0x54), &off_bytes[skip..]))
        .with_le(ne);
    let resp = ch.transmit(&cmd).await?;
    if resp.data.is_empty() {
        return Ok(resp);
    }
    let mut r = Reader::new(&resp.data);
    let content = r.expect_tlv(Tag::new(0x53))?.value.to_vec();
    r.expect_empty("READ BINARY (B1) response")?;
    Ok(Response {
        data: content,
        sw: resp.sw,
    })
}

/// Whether a read at `offset` of `ef` goes out as `B1`.
fn uses_odd(ef: EfRef, odd: bool, offset: usize) -> bool {
    odd || match ef {
        EfRef::Sfi(_) => offset > 0xFF,
        EfRef::Current => offset > MAX_B0_OFFSET,
    }
}

/// Read the current EF from offset 0. With `size` known (from the FCP) it asks for exactly
/// what is left, in chunks as large as the channel allows; without it, it reads until the
/// card signals the end (short read, `6282`, or `6B00` at a chunk boundary).
pub async fn read_to_end<C: ApduChannel + ?Sized>(
    ch: &C,
    size: Option<usize>,
) -> Result<Vec<u8>, ApduError> {
    read_span(ch, ReadPlan::CURRENT, 0, size, &mut |_| {}).await
}

/// [`read_to_end`], calling `progress(bytes so far)` after each chunk (for a progress bar
/// over a 20 KB photo).
pub async fn read_to_end_with_progress<C: ApduChannel + ?Sized>(
    ch: &C,
    size: Option<usize>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Vec<u8>, ApduError> {
    read_span(ch, ReadPlan::CURRENT, 0, size, progress).await
}

/// How a file is read: which EF reference, and whether to use `B1` from the start
/// (some cards serve large files only that way; it also saves switching forms mid-file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// EF reference for every chunk (an SFI read also makes the EF current).
    pub ef: EfRef,
    /// Use `B1` for every chunk.
    pub odd: bool,
}

impl ReadPlan {
    /// The current EF, even INS where possible.
    pub const CURRENT: ReadPlan = ReadPlan {
        ef: EfRef::Current,
        odd: false,
    };
}

/// How much to ask for with `left` bytes wanted: (content wanted, Ne).
fn chunk(max: usize, odd: bool, left: usize) -> (usize, usize) {
    if !odd {
        let want = left.min(max);
        return (want, want);
    }
    // B1 answers wrap the content in `53 L`, inside Ne: ask for the most content whose
    // wrapper still fits (253 content bytes in a 256-byte answer).
    let mut want = left.min(max.saturating_sub(2)).max(1);
    while want > 1 && want + b1_header_len(want) > max {
        want -= 1;
    }
    (want, (want + b1_header_len(want)).min(max.max(3)))
}

/// Size of the `53` tag and BER length in front of `content` bytes.
fn b1_header_len(content: usize) -> usize {
    match content {
        0..=0x7F => 2,
        0x80..=0xFF => 3,
        0x100..=0xFFFF => 4,
        _ => 5,
    }
}

/// Read bytes from `start` to `end` (absolute; `None` = until the card says the file ends).
async fn read_span<C: ApduChannel + ?Sized>(
    ch: &C,
    plan: ReadPlan,
    start: usize,
    end: Option<usize>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Vec<u8>, ApduError> {
    let size = end;
    if size.is_some_and(|s| s > MAX_FILE_SIZE) {
        return Err(ApduError::CardMisbehaved("file larger than any CIE file"));
    }
    let mut out = Vec::with_capacity(size.map_or(0, |s| s.saturating_sub(start)));
    loop {
        let offset = start + out.len();
        let left = match size {
            Some(s) if offset >= s => return Ok(out),
            Some(s) => s - offset,
            None => MAX_FILE_SIZE.saturating_sub(offset),
        };
        if left == 0 {
            return Err(ApduError::CardMisbehaved("file larger than any CIE file"));
        }
        let odd = uses_odd(plan.ef, plan.odd, offset);
        let (want, ne) = chunk(ch.limits().max_response_data, odd, left);
        let resp = read_binary_at(ch, plan.ef, odd, offset, ne).await?;
        match resp.sw.kind() {
            SwKind::Ok => {
                let got = resp.data.len();
                if got > want {
                    return Err(ApduError::CardMisbehaved(
                        "READ BINARY returned more than asked",
                    ));
                }
                out.extend_from_slice(&resp.data);
                progress(out.len());
                if got == 0 {
                    return match size {
                        None => Ok(out),
                        Some(_) => Err(ApduError::CardMisbehaved("empty read before end of file")),
                    };
                }
                // Without a size, a short read is the end; with one, the card just sent
                // less than asked (its own buffer limit) and we go on from where it stopped.
                if size.is_none() && got < want {
                    return Ok(out);
                }
            }
            SwKind::EndOfFile => {
                out.extend_from_slice(&resp.data);
                return match size {
                    Some(s) if start + out.len() < s => Err(ApduError::CardMisbehaved(
                        "end of file before the size the card declared",
                    )),
                    _ => Ok(out),
                };
            }
            // Offset exactly at the end of a file whose size we did not know.
            SwKind::WrongParameters
                if size.is_none() && offset > 0 && resp.sw == Sw::WRONG_P1P2 =>
            {
                return Ok(out);
            }
            SwKind::WrongLength if ch.limits().extended && ne > 256 => {
                // The link allows extended length but the card does not: go short and retry.
                ch.card_refused_extended();
            }
            _ => {
                return Err(ApduError::Status {
                    sw: resp.sw,
                    ins: if odd {
                        INS_READ_BINARY_ODD
                    } else {
                        INS_READ_BINARY
                    },
                });
            }
        }
    }
}

/// Select the EF `fid` under the current DF and read it whole.
pub async fn read_ef<C: ApduChannel + ?Sized>(ch: &C, fid: [u8; 2]) -> Result<Vec<u8>, ApduError> {
    let info = select_file(ch, fid).await?;
    read_to_end(ch, info.size).await
}

/// Read the current EF when it holds one BER-TLV object (eMRTD files, certificates): the
/// first chunk's header gives the total length, so the rest is read in exact chunks.
pub async fn read_tlv_object<C: ApduChannel + ?Sized>(ch: &C) -> Result<Vec<u8>, ApduError> {
    read_tlv_object_with(ch, ReadPlan::CURRENT).await
}

/// [`read_tlv_object`] with an explicit [`ReadPlan`] (e.g. by SFI, without a SELECT).
pub async fn read_tlv_object_with<C: ApduChannel + ?Sized>(
    ch: &C,
    plan: ReadPlan,
) -> Result<Vec<u8>, ApduError> {
    read_tlv_object_progress(ch, plan, &mut |_, _| {}).await
}

/// [`read_tlv_object_with`], calling `progress(bytes so far, object length)` after each
/// chunk, the first included ("lettura certificato 40%").
pub async fn read_tlv_object_progress<C: ApduChannel + ?Sized>(
    ch: &C,
    plan: ReadPlan,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<u8>, ApduError> {
    let odd = uses_odd(plan.ef, plan.odd, 0);
    let (_, ne) = chunk(ch.limits().max_response_data, odd, usize::MAX);
    let first = read_binary_at(ch, plan.ef, odd, 0, ne).await?;
    match first.sw.kind() {
        SwKind::Ok | SwKind::EndOfFile => {}
        _ => {
            return Err(ApduError::Status {
                sw: first.sw,
                ins: if odd {
                    INS_READ_BINARY_ODD
                } else {
                    INS_READ_BINARY
                },
            });
        }
    }
    let total = tlv::encoded_len(&first.data)?;
    if total > MAX_FILE_SIZE {
        return Err(ApduError::CardMisbehaved("object larger than any CIE file"));
    }
    let mut out = first.data;
    if out.len() >= total {
        // Files are often padded past the object (EF.Cert_CIE): keep the object only.
        out.truncate(total);
        progress(total, total);
        return Ok(out);
    }
    if first.sw == Sw::END_OF_FILE {
        return Err(ApduError::CardMisbehaved(
            "file shorter than its TLV length",
        ));
    }
    let head = out.len();
    progress(head, total);
    let rest = read_span(ch, plan, head, Some(total), &mut |n| {
        progress(head + n, total)
    })
    .await?;
    out.extend_from_slice(&rest);
    Ok(out)
}
