use super::*;
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

#[test]
fn single_byte_tag_short_length() {
    let bytes = h("80 02 1234");
    let tlv = Tlv::from_bytes(&bytes).unwrap();
    assert_eq!(tlv.tag, Tag::new(0x80));
    assert_eq!(tlv.value, &[0x12, 0x34]);
    assert_eq!(tlv.tag.class(), Class::ContextSpecific);
    assert!(!tlv.tag.is_constructed());
}

#[test]
fn multi_byte_tags() {
    // 5F1F (MRZ in DG1), 7F61 (biometric group template), 7F2E, and a 3-byte tag.
    for (wire, tag) in [
        ("5F1F 01 AA", 0x5F1F),
        ("7F61 00", 0x7F61),
        ("9F8101 01 00", 0x9F8101),
    ] {
        let bytes = h(wire);
        let tlv = Tlv::from_bytes(&bytes).unwrap();
        assert_eq!(tlv.tag, Tag::new(tag), "{wire}");
        let mut round = Vec::new();
        encode(tlv.tag, tlv.value, &mut round);
        assert_eq!(round, bytes);
    }
    assert_eq!(Tag::new(0x7F61).class(), Class::Application);
    assert!(Tag::new(0x7F61).is_constructed());
}

#[test]
fn long_form_lengths() {
    let mut bytes = h("53 82 0100");
    bytes.extend(std::iter::repeat_n(7u8, 256));
    let tlv = Tlv::from_bytes(&bytes).unwrap();
    assert_eq!(tlv.value.len(), 256);
    // Non-minimal but legal BER length, as some cards emit.
    assert_eq!(Tlv::from_bytes(&h("80 81 01 FF")).unwrap().value, &[0xFF]);
    assert_eq!(encoded_len(&h("77 83 010000")).unwrap(), 5 + 0x10000);
}

#[test]
fn constructed_children_and_find() {
    let bytes = h("62 0A 80 02 5000 82 01 01 83 01 11");
    let fcp = Tlv::from_bytes(&bytes).unwrap();
    let kids: Vec<_> = fcp.children().collect::<Result<_, _>>().unwrap();
    assert_eq!(kids.len(), 3);
    assert_eq!(
        fcp.find(Tag::new(0x80)).unwrap().unwrap().value,
        &[0x50, 0x00]
    );
    assert_eq!(fcp.find(Tag::new(0x84)).unwrap(), None);
    assert_eq!(
        fcp.require(Tag::new(0x84), "DF name"),
        Err(DecodeError::Missing("DF name"))
    );
}

#[test]
fn malformed_inputs_give_typed_errors() {
    let cases: &[(&str, DecodeError)] = &[
        (
            "",
            DecodeError::Truncated {
                context: "tag",
                needed: 1,
                available: 0,
            },
        ),
        (
            "80",
            DecodeError::Truncated {
                context: "length",
                needed: 1,
                available: 0,
            },
        ),
        (
            "80 05 0102",
            DecodeError::Truncated {
                context: "value",
                needed: 5,
                available: 2,
            },
        ),
        (
            "80 82 01",
            DecodeError::Truncated {
                context: "long-form length",
                needed: 2,
                available: 1,
            },
        ),
        ("80 80", DecodeError::IndefiniteLength),
        ("80 85 0000000001", DecodeError::LengthTooLarge { bytes: 5 }),
        (
            "80 84 FFFFFFFF",
            DecodeError::Truncated {
                context: "value",
                needed: 0xFFFF_FFFF,
                available: 0,
            },
        ),
        (
            "5F",
            DecodeError::Truncated {
                context: "tag",
                needed: 1,
                available: 0,
            },
        ),
        ("5F 80 01 00", DecodeError::MalformedTag),
        ("5F 81 81 81 01 00", DecodeError::MalformedTag),
        (
            "80 00 00",
            DecodeError::TrailingData {
                context: "data object",
                count: 1,
            },
        ),
    ];
    for (wire, want) in cases {
        assert_eq!(
            Tlv::from_bytes(&h(wire)).as_ref(),
            Err(want),
            "input {wire}"
        );
    }
}

#[test]
fn children_stop_after_error() {
    let bytes = h("70 05 80 01 AA 81 09");
    let outer = Tlv::from_bytes(&bytes).unwrap();
    let items: Vec<_> = outer.children().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert!(items[1].is_err());
}

#[test]
fn padding_is_skipped_between_objects() {
    let bytes = h("00 80 01 AA FF FF 81 00 00 00");
    let all = parse_padded(&bytes).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].tag, Tag::new(0x81));
}

#[test]
fn encode_length_is_minimal() {
    for (len, wire) in [
        (0usize, "00"),
        (0x7F, "7F"),
        (0x80, "8180"),
        (0xFF, "81FF"),
        (0x100, "820100"),
        (0x10000, "83010000"),
    ] {
        let mut out = Vec::new();
        encode_length(len, &mut out);
        assert_eq!(hex::encode_upper(&out), wire);
    }
}

fn arb_tag() -> impl Strategy<Value = Tag> {
    prop_oneof![
        // One-byte tags other than the 1F escape and padding values.
        (1u32..=0xFE)
            .prop_filter("not escape", |t| t & 0x1F != 0x1F)
            .prop_map(Tag::new),
        // Two-byte tags: escape first byte, subsequent byte < 0x80 and >= 0x1F.
        (0u32..4, 0x1Fu32..0x80).prop_map(|(class, n)| Tag::new(((class << 6 | 0x1F) << 8) | n)),
    ]
}

proptest! {
    #[test]
    fn round_trip(tag in arb_tag(), value in proptest::collection::vec(any::<u8>(), 0..700)) {
        let bytes = encode_to_vec(tag, &value);
        let tlv = Tlv::from_bytes(&bytes).unwrap();
        prop_assert_eq!(tlv.tag, tag);
        prop_assert_eq!(tlv.value, &value[..]);
        prop_assert_eq!(encoded_len(&bytes).unwrap(), bytes.len());
    }

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Tlv::from_bytes(&bytes);
        let _ = parse_padded(&bytes);
        let _ = encoded_len(&bytes);
        if let Ok(tlv) = Tlv::from_bytes(&bytes) {
            // What decodes must re-encode to a value of the same length.
            for c in tlv.children().flatten() {
                prop_assert!(c.value.len() <= bytes.len());
            }
        }
    }
}

#[test]
fn find_deep_searches_nested_templates_within_a_depth_bound() {
    // 70{BFA101{A3{97 01 02}}}, the CIE's DH-parameter reply shape.
    let bytes = h("70 09 BFA101 05 A3 03 97 01 02");
    assert_eq!(
        find_deep(&bytes, Tag::new(0x97)).unwrap().unwrap().value,
        &[0x02]
    );
    assert_eq!(find_deep(&bytes, Tag::new(0x98)).unwrap(), None);
    // 200 nested constructed headers around the target: found only within MAX_DEPTH.
    let mut deep = encode_to_vec(Tag::new(0x97), &[1]);
    for _ in 0..200 {
        deep = encode_to_vec(Tag::new(0x70), &deep);
    }
    assert_eq!(find_deep(&deep, Tag::new(0x97)).unwrap(), None);
    let mut shallow = encode_to_vec(Tag::new(0x97), &[1]);
    for _ in 0..MAX_DEPTH {
        shallow = encode_to_vec(Tag::new(0x70), &shallow);
    }
    assert!(find_deep(&shallow, Tag::new(0x97)).unwrap().is_some());
}
