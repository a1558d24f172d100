//! Minimal BER-TLV helpers for the card side (FCP/FCI templates, the `53`/`54` data objects
//! of odd-INS READ BINARY). Kept private and tiny on purpose: the card must not borrow the
//! core's TLV code, or a shared bug would go unnoticed.

/// Encode a BER length (short form below 128, else `81`/`82`/`83`/`84` long form).
pub(crate) fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Number of bytes `encode_len(len)` produces.
pub(crate) fn len_of_len(len: usize) -> usize {
    let mut v = Vec::new();
    encode_len(len, &mut v);
    v.len()
}

/// `tag ‖ length ‖ value`.
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 5 + value.len());
    out.extend_from_slice(tag);
    encode_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// Parse exactly one TLV with a one-byte tag that fills `input` completely.
/// Returns `(tag, value)`, or `None` when malformed (bad length, trailing bytes).
pub(crate) fn parse_single(input: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        // 0x80 (indefinite) and lengths wider than 4 bytes are not valid here.
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    (rest.len() == len).then_some((tag, rest))
}

/// One BER-TLV object with a tag of one or more bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The tag bytes as encoded (e.g. `[0x7F, 0x49]`).
    pub tag: &'a [u8],
    /// The value.
    pub value: &'a [u8],
}

/// Parse a concatenation of BER-TLV objects (multi-byte tags, definite lengths up to four
/// bytes) that fills `input` exactly. `None` when malformed.
pub(crate) fn parse_all(mut input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = parse_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Some(out)
}

/// Parse one BER-TLV object at the start of `input`; returns it and the bytes after it.
pub(crate) fn parse_one(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let first = *input.first()?;
    let mut tag_len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *input.get(tag_len)?;
            tag_len += 1;
            if b & 0x80 == 0 {
                break;
            }
            if tag_len > 4 {
                return None;
            }
        }
    }
    let (tag, rest) = input.split_at(tag_len);
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        (
            len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((Tlv { tag, value }, rest))
}

/// The value of the first object tagged `tag` among `tlvs`.
pub(crate) fn find<'a>(tlvs: &[Tlv<'a>], tag: &[u8]) -> Option<&'a [u8]> {
    tlvs.iter().find(|t| t.tag == tag).map(|t| t.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(tlv(&[0x53], &[1, 2]), vec![0x53, 2, 1, 2]);
        assert_eq!(len_of_len(127), 1);
        assert_eq!(len_of_len(128), 2);
        assert_eq!(len_of_len(255), 2);
        assert_eq!(len_of_len(256), 3);
        assert_eq!(len_of_len(65536), 4);
        assert_eq!(
            parse_single(&[0x54, 0x02, 0x80, 0x00]),
            Some((0x54, &[0x80, 0][..]))
        );
        assert_eq!(
            parse_single(&[0x54, 0x81, 0x01, 0x07]),
            Some((0x54, &[7][..]))
        );
        assert_eq!(parse_single(&[0x54, 0x03, 0x80]), None);
        assert_eq!(parse_single(&[0x54]), None);
        let all = parse_all(&[0x7F, 0x49, 0x02, 0x81, 0x00, 0x5F, 0x20, 0x01, 0xAA]).expect("tlvs");
        assert_eq!(all.len(), 2);
        assert_eq!(find(&all, &[0x5F, 0x20]), Some(&[0xAA][..]));
        assert_eq!(parse_all(&[0x7F, 0x49, 0x03, 0x81]), None);
    }
}
