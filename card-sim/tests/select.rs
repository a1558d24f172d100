//! SELECT in every form, on the CIE preset and the test cards.

mod common;
use card_sim::VirtualCard;
use common::{h, send, sw};

#[test]
fn select_mf_forms() {
    let card = VirtualCard::cie();
    // Case 1, P2=0C: no data back.
    assert_eq!(send(&card, "00 A4 00 0C"), (vec![], 0x9000));
    assert_eq!(send(&card, "00 A4 00 0C 02 3F00"), (vec![], 0x9000));
    // FCP of the MF: DF descriptor and its FID.
    assert_eq!(
        send(&card, "00 A4 00 04 02 3F00 00"),
        (h("62 07 8201 38 8302 3F00"), 0x9000)
    );
    // FCI (P2=00) wraps the same objects in 6F.
    assert_eq!(
        send(&card, "00 A4 00 00 02 3F00 00"),
        (h("6F 07 8201 38 8302 3F00"), 0x9000)
    );
    // Path from MF that names only the MF.
    assert_eq!(sw(&card, "00 A4 08 0C 02 3F00"), 0x9000);
}

#[test]
fn select_ef_atr_and_read() {
    let card = VirtualCard::cie();
    let (fcp, s) = send(&card, "00 A4 00 04 02 2F01 00");
    assert_eq!(s, 0x9000);
    // EF.ATR is 16 prefix bytes + "SYNTHETIC" = 25 bytes.
    assert_eq!(fcp, h("62 0B 8002 0019 8201 01 8302 2F01"));
    let (data, s) = send(&card, "00 B0 00 00 00");
    assert_eq!(s, 0x6282, "default EOF mode: short data + 6282");
    assert_eq!(data.len(), 25);
    assert_eq!(&data[..4], &h("80 00 43 01")[..]);
}

#[test]
fn nis_read_sequence_from_research() {
    // The IPZS Android NIS sequence, research §3.2 phase A.
    let card = VirtualCard::cie();
    assert_eq!(
        sw(&card, "00 A4 04 0C 0D A0000000308000000009816001"),
        0x9000
    );
    let (fcp, s) = send(&card, "00 A4 04 04 06 A00000000039 00");
    assert_eq!(s, 0x9000);
    assert_eq!(fcp, h("62 0B 8201 38 8406 A00000000039"));
    let (fcp, s) = send(&card, "00 A4 02 04 02 1001 00");
    assert_eq!(s, 0x9000);
    assert_eq!(fcp, h("62 0E 8002 000C 8201 01 8302 1001 8801 08"));
    assert_eq!(
        send(&card, "00 B0 00 00 0C"),
        (b"000011112222".to_vec(), 0x9000)
    );
    // Short form through the SFI (P1 bit 8), research §3.2 step 4.
    assert_eq!(sw(&card, "00 A4 04 0C 06 A00000000039"), 0x9000);
    assert_eq!(
        send(&card, "00 B0 81 00 0C"),
        (b"000011112222".to_vec(), 0x9000)
    );
    // The SFI read made 1001 current: a plain READ BINARY now works.
    assert_eq!(send(&card, "00 B0 00 06 06"), (b"112222".to_vec(), 0x9000));
}

#[test]
fn emrtd_and_card_access() {
    let card = VirtualCard::cie();
    assert_eq!(sw(&card, "00 A4 04 0C 07 A0000002471001"), 0x9000);
    assert_eq!(sw(&card, "00 A4 02 0C 02 011E"), 0x9000);
    // The LDS1 files need BAC or PACE first (tests/emrtd_chip.rs runs them).
    assert_eq!(send(&card, "00 B0 00 00 00"), (vec![], 0x6982));
    assert_eq!(sw(&card, "00 A4 02 0C 02 011D"), 0x9000);
    assert_eq!(send(&card, "00 B0 9D 00 01"), (vec![], 0x6982));
    // EF.CardAccess lives in the MF: not found as a child of the eMRTD DF...
    assert_eq!(sw(&card, "00 A4 02 0C 02 011C"), 0x6A82);
    // ...but P1=00 searches the parent (MF) level too.
    assert_eq!(sw(&card, "00 A4 00 0C 02 011C"), 0x9000);
    let (ca, s) = send(&card, "00 B0 00 00 00");
    assert_eq!((ca[..2].to_vec(), ca.len(), s), (h("31 14"), 22, 0x6282));
}

#[test]
fn select_child_df_parent_and_paths() {
    let card = VirtualCard::with_large_files();
    // P1=01: child DF of the current DF (MF).
    assert_eq!(sw(&card, "00 A4 01 0C 02 5000"), 0x9000);
    // P1=02: EF in the current DF.
    assert_eq!(sw(&card, "00 A4 02 0C 02 5040"), 0x9000);
    assert_eq!(send(&card, "00 B0 00 00 02"), (h("00 01"), 0x9000));
    // P1=01 with an EF id is not a DF.
    assert_eq!(sw(&card, "00 A4 01 0C 02 5020"), 0x6A82);
    // P1=03: parent DF.
    assert_eq!(sw(&card, "00 A4 03 0C"), 0x9000);
    assert_eq!(sw(&card, "00 A4 03 0C"), 0x6A82, "the MF has no parent");
    // P1=08: path from the MF, with and without the MF's own id.
    assert_eq!(sw(&card, "00 A4 08 0C 04 5000 5020"), 0x9000);
    assert_eq!(sw(&card, "00 A4 08 0C 06 3F00 5000 5040"), 0x9000);
    assert_eq!(sw(&card, "00 A4 08 0C 04 5000 9999"), 0x6A82);
    // P1=09: path from the current DF.
    assert_eq!(sw(&card, "00 A4 00 0C 02 3F00"), 0x9000);
    assert_eq!(sw(&card, "00 A4 09 0C 04 5000 5020"), 0x9000);
    assert_eq!(sw(&card, "00 A4 09 0C 02 5020"), 0x9000, "from DF 5000 now");
    // P1=09 path with an FCP back.
    let (fcp, s) = send(&card, "00 A4 09 04 02 5040 00");
    assert_eq!(
        (fcp, s),
        (h("62 0E 8002 A000 8201 01 8302 5040 8801 18"), 0x9000)
    );
}

#[test]
fn select_errors_keep_selection() {
    let card = VirtualCard::cie();
    assert_eq!(sw(&card, "00 A4 04 0C 06 A00000000039"), 0x9000);
    assert_eq!(sw(&card, "00 A4 02 0C 02 1001"), 0x9000);
    assert_eq!(sw(&card, "00 A4 02 0C 02 1234"), 0x6A82);
    assert_eq!(sw(&card, "00 A4 04 0C 05 A000000001"), 0x6A82);
    assert_eq!(
        sw(&card, "00 A4 05 0C 02 1001"),
        0x6A86,
        "P1 05 is not defined"
    );
    assert_eq!(
        sw(&card, "00 A4 02 01 02 1001"),
        0x6A86,
        "P2 01 unsupported"
    );
    assert_eq!(
        sw(&card, "00 A4 02 0C 03 100100"),
        0x6700,
        "FID must be 2 bytes"
    );
    assert_eq!(sw(&card, "00 A4 08 0C 03 500050"), 0x6700, "odd path");
    assert_eq!(sw(&card, "00 A4 04 0C"), 0x6700, "AID missing");
    // The failed SELECTs left EF 1001 current.
    assert_eq!(
        send(&card, "00 B0 00 00 0C"),
        (b"000011112222".to_vec(), 0x9000)
    );
    // Sibling search of P1=00: D003 is in the parent (IAS) DF.
    assert_eq!(sw(&card, "00 A4 00 0C 02 D003"), 0x9000);
}
