//! DG2, the facial image: CBEFF (ISO/IEC 19785) wrapping an ISO/IEC 19794-5 facial record,
//! whose image is JPEG or JPEG 2000 (the CIE uses JPEG 2000). [`FaceImage::decode`] turns
//! it into RGB pixels for the shells with maintained pure-Rust decoders (zune-jpeg,
//! hayro-jpeg2000).

use super::{LdsError, outer};
use crate::tlv::{Reader, Tag, Tlv};

const FILE: &str = "DG2";

/// How the face image is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ImageFormat {
    /// JPEG (ISO 10918).
    Jpeg,
    /// JPEG 2000, JP2 container or raw codestream.
    Jpeg2000,
}

/// One face image as stored on the chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceImage {
    /// Encoding (from the magic bytes, which win over the header's data type: headers lie).
    pub format: ImageFormat,
    /// Width in pixels, as the header states.
    pub width: u16,
    /// Height in pixels, as the header states.
    pub height: u16,
    /// The encoded image.
    pub data: Vec<u8>,
}

/// Decoded pixels: 8-bit RGB, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// `width × height × 3` bytes.
    pub pixels: Vec<u8>,
}

const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const JP2_MAGIC: &[u8] = &[
    0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
];
const J2K_MAGIC: &[u8] = &[0xFF, 0x4F, 0xFF, 0x51];
/// Largest side we decode: chip portraits are ~ 400×500; this bounds memory on hostile input.
pub const MAX_SIDE: u32 = 4096;

fn sniff(data: &[u8]) -> Option<ImageFormat> {
    if data.starts_with(JPEG_MAGIC) {
        Some(ImageFormat::Jpeg)
    } else if data.starts_with(JP2_MAGIC) || data.starts_with(J2K_MAGIC) {
        Some(ImageFormat::Jpeg2000)
    } else {
        None
    }
}

fn invalid(reason: impl Into<String>) -> LdsError {
    LdsError::invalid(FILE, reason)
}

fn be(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
}

/// Parse an ISO/IEC 19794-5 facial record block (`FAC\0`), returning its images.
pub fn parse_facial_record(bdb: &[u8]) -> Result<Vec<FaceImage>, LdsError> {
    let mut r = Reader::new(bdb);
    let t = LdsError::tlv(FILE);
    if r.take(4, "format identifier").map_err(&t)? != b"FAC\0" {
        return Err(invalid(
            "not an ISO/IEC 19794-5 facial record (no FAC header)",
        ));
    }
    let _version = r.take(4, "version").map_err(&t)?;
    let _record_len = r.take(4, "record length").map_err(&t)?;
    let faces = be(r.take(2, "number of faces").map_err(&t)?);
    let mut out = Vec::new();
    for _ in 0..faces {
        let block_len = be(r.take(4, "facial record length").map_err(&t)?);
        let points = be(r.take(2, "feature points").map_err(&t)?);
        // gender, eye, hair, property mask (3), expression (2), pose (3), uncertainty (3).
        r.take(14, "facial information").map_err(&t)?;
        r.take(points.saturating_mul(8), "feature points")
            .map_err(&t)?;
        let info = r.take(12, "image information").map_err(&t)?;
        let (width, height) = (be(&info[2..4]), be(&info[4..6]));
        let fixed = 20 + points * 8 + 12;
        let image_len = block_len.checked_sub(fixed).ok_or_else(|| {
            invalid(format!(
                "facial record length {block_len} below its fixed part {fixed}"
            ))
        })?;
        // Encoders are known to get the length wrong by a few bytes (gmrtd tolerates 8):
        // take what is there when it is close.
        let image_len = if image_len > r.remaining() && image_len - r.remaining() <= 8 {
            r.remaining()
        } else {
            image_len
        };
        let data = r.take(image_len, "image data").map_err(&t)?;
        let format = sniff(data).ok_or_else(|| {
            invalid(match info[1] {
                0 => "image claims JPEG but has no JPEG signature",
                1 => "image claims JPEG 2000 but has no JPEG 2000 signature",
                _ => "unknown image data type",
            })
        })?;
        out.push(FaceImage {
            format,
            width: u16::try_from(width).unwrap_or(u16::MAX),
            height: u16::try_from(height).unwrap_or(u16::MAX),
            data: data.to_vec(),
        });
    }
    Ok(out)
}

/// Parse DG2: `75 { 7F61 { 02 count, 7F60 { A1 header, 5F2E|7F2E data } … } }`.
pub fn parse(bytes: &[u8]) -> Result<Vec<FaceImage>, LdsError> {
    let dg = outer(bytes, 0x75, FILE)?;
    let t = LdsError::tlv(FILE);
    let group = dg
        .require(Tag::new(0x7F61), "biometric information group (7F61)")
        .map_err(&t)?;
    let mut faces = Vec::new();
    for child in group.children() {
        let child = child.map_err(&t)?;
        if child.tag != Tag::new(0x7F60) {
            continue;
        }
        if let Some(bdb) = child.find(Tag::new(0x5F2E)).map_err(&t)? {
            faces.extend(parse_facial_record(bdb.value)?);
        } else if let Some(bdb) = child.find(Tag::new(0x7F2E)).map_err(&t)? {
            // ISO/IEC 39794-5 (LDS 2 era): the image sits in a nested DER structure; take the
            // first object whose content has an image signature.
            faces.extend(find_image_39794(bdb)?);
        }
    }
    if faces.is_empty() {
        return Err(invalid("no face image"));
    }
    Ok(faces)
}

fn find_image_39794(obj: Tlv<'_>) -> Result<Vec<FaceImage>, LdsError> {
    let mut stack = vec![(obj, 0usize)];
    while let Some((o, depth)) = stack.pop() {
        if let Some(format) = sniff(o.value) {
            return Ok(vec![FaceImage {
                format,
                width: 0,
                height: 0,
                data: o.value.to_vec(),
            }]);
        }
        if o.tag.is_constructed() && depth < crate::tlv::MAX_DEPTH {
            for c in o.children().flatten() {
                stack.push((c, depth + 1));
            }
        }
    }
    Err(invalid("no image in the ISO/IEC 39794-5 record"))
}

/// Why an image could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("face image not decodable: {reason}")]
pub struct ImageError {
    /// The decoder's reason.
    pub reason: String,
}

impl FaceImage {
    /// Decode to RGB. Decoders run behind `catch_unwind`: they are third-party code fed
    /// chip bytes, and a panic there must become an error, not a crash of the app.
    pub fn decode(&self) -> Result<Rgb8, ImageError> {
        let data = self.data.as_slice();
        let format = self.format;
        std::panic::catch_unwind(move || match format {
            ImageFormat::Jpeg => decode_jpeg(data),
            ImageFormat::Jpeg2000 => decode_jpeg2000(data),
        })
        .unwrap_or_else(|_| {
            Err(ImageError {
                reason: "decoder panicked".into(),
            })
        })
    }
}

fn too_big(w: u32, h: u32) -> Result<(), ImageError> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(ImageError {
            reason: format!("size {w}×{h} outside 1..={MAX_SIDE}"),
        });
    }
    Ok(())
}

fn decode_jpeg(data: &[u8]) -> Result<Rgb8, ImageError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), opts);
    let pixels = d.decode().map_err(|e| ImageError {
        reason: format!("JPEG: {e:?}"),
    })?;
    let (w, h) = d.dimensions().ok_or_else(|| ImageError {
        reason: "JPEG: no dimensions".into(),
    })?;
    let (w, h) = (w as u32, h as u32);
    too_big(w, h)?;
    if pixels.len() != (w as usize) * (h as usize) * 3 {
        return Err(ImageError {
            reason: "JPEG: unexpected pixel count".into(),
        });
    }
    Ok(Rgb8 {
        width: w,
        height: h,
        pixels,
    })
}

fn decode_jpeg2000(data: &[u8]) -> Result<Rgb8, ImageError> {
    use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};
    let err = |e: &dyn std::fmt::Debug| ImageError {
        reason: format!("JPEG 2000: {e:?}"),
    };
    let image = Image::new(data, &DecodeSettings::default()).map_err(|e| err(&e))?;
    let (w, h) = (image.width(), image.height());
    too_big(w, h)?;
    let channels = usize::from(image.color_space().num_channels()) + usize::from(image.has_alpha());
    let mut ctx = DecoderContext::default();
    let decoded = image.decode(&mut ctx).map_err(|e| err(&e))?;
    let raw = decoded.data_u8();
    let n = (w as usize) * (h as usize);
    if raw.len() != n * channels {
        return Err(ImageError {
            reason: format!("JPEG 2000: {} bytes for {n} pixels × {channels}", raw.len()),
        });
    }
    let pixels = match channels {
        1 => raw.iter().flat_map(|&g| [g, g, g]).collect(),
        2 => raw
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        3 => raw,
        4 => raw
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        c => {
            return Err(ImageError {
                reason: format!("JPEG 2000: {c} channels"),
            });
        }
    };
    Ok(Rgb8 {
        width: w,
        height: h,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::encode_to_vec;

    pub(crate) fn facial_record(
        image: &[u8],
        data_type: u8,
        w: u16,
        h: u16,
        len_error: isize,
    ) -> Vec<u8> {
        let mut face = Vec::new();
        let block = 20 + 12 + image.len();
        face.extend_from_slice(&((block as isize + len_error) as u32).to_be_bytes());
        face.extend_from_slice(&[0, 0]); // no feature points
        face.extend_from_slice(&[0; 14]);
        face.extend_from_slice(&[1, data_type]);
        face.extend_from_slice(&w.to_be_bytes());
        face.extend_from_slice(&h.to_be_bytes());
        face.extend_from_slice(&[0; 6]);
        face.extend_from_slice(image);
        let mut rec = [&b"FAC\0"[..], b"010\0"].concat();
        rec.extend_from_slice(&((14 + face.len()) as u32).to_be_bytes());
        rec.extend_from_slice(&[0, 1]);
        rec.extend(face);
        rec
    }

    fn dg2(bdb: &[u8]) -> Vec<u8> {
        let header = encode_to_vec(Tag::new(0xA1), &[0x80, 0x02, 0x01, 0x01]);
        let inst = encode_to_vec(
            Tag::new(0x7F60),
            &[header, encode_to_vec(Tag::new(0x5F2E), bdb)].concat(),
        );
        let group = encode_to_vec(Tag::new(0x7F61), &[vec![0x02, 0x01, 0x01], inst].concat());
        encode_to_vec(Tag::new(0x75), &group)
    }

    #[test]
    fn extracts_image_and_tolerates_small_length_errors() {
        let fake_jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
        for err in [0, 4, 8] {
            let faces = parse(&dg2(&facial_record(&fake_jpeg, 0, 60, 80, err))).unwrap();
            assert_eq!(faces.len(), 1);
            assert_eq!(faces[0].format, ImageFormat::Jpeg);
            assert_eq!((faces[0].width, faces[0].height), (60, 80));
            assert_eq!(faces[0].data, fake_jpeg);
        }
        assert!(
            parse(&dg2(&facial_record(&fake_jpeg, 0, 60, 80, 9))).is_err(),
            "9 bytes too long"
        );
        assert!(
            parse(&dg2(&facial_record(&[1, 2, 3], 0, 60, 80, 0))).is_err(),
            "no signature"
        );
        assert!(parse(&dg2(b"FAC\0")).is_err(), "truncated");
        assert!(
            FaceImage {
                format: ImageFormat::Jpeg,
                width: 1,
                height: 1,
                data: fake_jpeg.to_vec()
            }
            .decode()
            .is_err()
        );
        assert!(
            FaceImage {
                format: ImageFormat::Jpeg2000,
                width: 1,
                height: 1,
                data: J2K_MAGIC.to_vec()
            }
            .decode()
            .is_err()
        );
    }
}
