//! READ BINARY (B0/B1), EOF modes, 61xx delivery, extended length, UPDATE BINARY chaining.

mod common;
use card_sim::cie::{TEST_EF, test_pattern};
use card_sim::{CardConfig, EofMode, VirtualCard};
use common::{h, send, sw};

fn large_ext(max_data: usize) -> VirtualCard {
    VirtualCard::with_large_files().with_config(CardConfig::extended(max_data))
}

#[test]
fn no_current_ef() {
    let card = VirtualCard::with_large_files();
    assert_eq!(sw(&card, "00 B0 00 00 10"), 0x6986);
    assert_eq!(sw(&card, "00 B1 00 00 03 5401 00 00"), 0x6986);
    assert_eq!(sw(&card, "00 D6 00 00 01 AA"), 0x6986);
}

#[test]
fn b0_offsets_and_sfi() {
    let card = VirtualCard::with_large_files();
    let p = test_pattern(40 * 1024);
    assert_eq!(sw(&card, "00 A4 08 0C 04 5000 5040"), 0x9000);
    // Highest 15-bit offset.
    assert_eq!(
        send(&card, "00 B0 7F FF 00"),
        (p[32767..33023].to_vec(), 0x9000)
    );
    // SFI 3 (P1 = 83), offset in P2.
    assert_eq!(
        send(&card, "00 B0 83 10 10"),
        (p[0x10..0x20].to_vec(), 0x9000)
    );
    // SFI 2 switches to the 20 KiB file; offset at its end is 6B00.
    assert_eq!(sw(&card, "00 B0 82 00 01"), 0x9000);
    assert_eq!(sw(&card, "00 B0 50 00 10"), 0x6B00);
    assert_eq!(sw(&card, "00 B0 5F 00 10"), 0x6B00);
    // Bad SFI forms.
    assert_eq!(sw(&card, "00 B0 84 00 01"), 0x6A82, "no SFI 4");
    assert_eq!(sw(&card, "00 B0 80 00 01"), 0x6A86, "SFI 0");
    assert_eq!(sw(&card, "00 B0 A1 00 01"), 0x6A86, "P1 bits 6-7 set");
    // Missing Le / data in B0.
    assert_eq!(sw(&card, "00 B0 00 00"), 0x6700);
    assert_eq!(sw(&card, "00 B0 00 00 01 00 10"), 0x6700);
}

#[test]
fn b1_offsets_above_32767() {
    let card = VirtualCard::with_large_files();
    let p = test_pattern(40 * 1024);
    assert_eq!(sw(&card, "00 A4 08 0C 02 5000"), 0x9000);
    // P1P2 = FID 5040, offset 0x9000 = 36864; Le 256 fits 53 81 FD + 253 bytes.
    let (d, s) = send(&card, "00 B1 50 40 04 54 02 9000 00");
    assert_eq!(s, 0x9000);
    assert_eq!(&d[..3], &h("53 81 FD")[..]);
    assert_eq!(&d[3..], &p[36864..36864 + 253]);
    // P1P2 = 0000: the current EF (now 5040), small Le.
    assert_eq!(
        send(&card, "00 B1 00 00 04 54 02 8000 06"),
        ([h("53 04"), p[32768..32772].to_vec()].concat(), 0x9000)
    );
    // P1P2 = 0002: SFI 2 (the 20 KiB file), 1-byte offset.
    assert_eq!(
        send(&card, "00 B1 00 02 03 54 01 05 05"),
        ([h("53 03"), p[5..8].to_vec()].concat(), 0x9000)
    );
    // Past the end of the 40 KiB file.
    assert_eq!(sw(&card, "00 B1 50 40 04 54 02 A000 00"), 0x6B00);
    // Near the end: EOF warning with the wrapped rest.
    let (d, s) = send(&card, "00 B1 50 40 04 54 02 9FF0 00");
    assert_eq!((d, s), ([h("53 10"), p[40944..].to_vec()].concat(), 0x6282));
    // Malformed offset object / unknown file.
    assert_eq!(sw(&card, "00 B1 00 00 03 55 01 00 00"), 0x6A80);
    assert_eq!(sw(&card, "00 B1 00 00 03 54 02 00 00"), 0x6A80);
    assert_eq!(sw(&card, "00 B1 00 00 00"), 0x6700, "no offset object");
    assert_eq!(sw(&card, "00 B1 12 34 03 54 01 00 00"), 0x6A82);
}

#[test]
fn extended_length() {
    let p = test_pattern(40 * 1024);
    // Short card: extended commands are refused.
    let short = VirtualCard::with_large_files();
    assert_eq!(sw(&short, "00 A4 08 0C 00 0004 5000 5040"), 0x6700);
    assert_eq!(sw(&short, "00 A4 08 0C 04 5000 5040"), 0x9000);
    assert_eq!(sw(&short, "00 B0 00 00 00 10 00"), 0x6700);
    // Extended card with a 4 KiB buffer.
    let card = large_ext(4096);
    assert_eq!(sw(&card, "00 A4 08 0C 00 0004 5000 5040"), 0x9000);
    let (d, s) = send(&card, "00 B0 00 00 00 10 00");
    assert_eq!((d.as_slice(), s), (&p[..4096], 0x9000));
    // Le 0000 = 65536, clipped to the 4 KiB buffer, file goes on: 9000.
    let (d, s) = send(&card, "00 B0 10 00 00 00 00");
    assert_eq!((d.as_slice(), s), (&p[4096..8192], 0x9000));
    // Extended B1 at offset 0x9F00 with Le 0000 on a 64 KiB buffer: the last 256 bytes.
    let card = large_ext(65536);
    assert_eq!(sw(&card, "00 A4 08 0C 04 5000 5040"), 0x9000);
    let (d, s) = send(&card, "00 B1 00 00 00 0004 54 02 9F00 0000");
    assert_eq!(s, 0x6282);
    assert_eq!(&d[..4], &h("53 82 0100")[..]);
    assert_eq!(&d[4..], &p[0x9F00..]);
}

fn file_card(size: usize, config: CardConfig) -> VirtualCard {
    let card = VirtualCard::with_file(size).with_config(config);
    assert_eq!(sw(&card, "00 A4 08 0C 04 5000 5001"), 0x9000);
    card
}

#[test]
fn eof_modes() {
    let p = test_pattern(300);
    let mode = |eof_mode| CardConfig {
        eof_mode,
        ..CardConfig::short()
    };
    let card = file_card(300, mode(EofMode::ShortData));
    assert_eq!(send(&card, "00 B0 01 00 00"), (p[256..].to_vec(), 0x9000));
    let card = file_card(300, mode(EofMode::EndOfFile));
    assert_eq!(send(&card, "00 B0 01 00 00"), (p[256..].to_vec(), 0x6282));
    let card = file_card(300, mode(EofMode::WrongLe));
    assert_eq!(send(&card, "00 B0 01 00 00"), (vec![], 0x6C2C));
    assert_eq!(send(&card, "00 B0 01 00 2C"), (p[256..].to_vec(), 0x9000));
    // B1 in 6Cxx mode: xx is the wrapped length (53 2C + 44 bytes = 46).
    assert_eq!(
        send(&card, "00 B1 00 00 04 54 02 0100 00"),
        (vec![], 0x6C2E)
    );
    // Exactly at the end of the file: 6B00 in every mode.
    assert_eq!(sw(&card, "00 B0 01 2C 01"), 0x6B00);
}

#[test]
fn get_response_61xx() {
    let p = test_pattern(300);
    let config = CardConfig {
        get_response_chunk: Some(100),
        ..CardConfig::short()
    };
    let card = file_card(300, config);
    let (d, s) = send(&card, "00 B0 00 00 00");
    assert_eq!((d.as_slice(), s), (&p[..100], 0x619C));
    let (d, s) = send(&card, "00 C0 00 00 9C");
    assert_eq!((d.as_slice(), s), (&p[100..200], 0x6138));
    let (d, s) = send(&card, "00 C0 00 00 38");
    assert_eq!((d.as_slice(), s), (&p[200..256], 0x9000));
    assert_eq!(sw(&card, "00 C0 00 00 10"), 0x6985, "nothing pending");
    // The final status of the original command survives (EOF warning here).
    let (d, s) = send(&card, "00 B0 00 C8 00");
    assert_eq!((d.as_slice(), s), (&p[200..300], 0x6282));
    // Another command forfeits pending data.
    let (_, s) = send(&card, "00 B0 00 00 00");
    assert_eq!(s, 0x619C);
    assert_eq!(sw(&card, "00 B0 00 00 01"), 0x9000);
    assert_eq!(sw(&card, "00 C0 00 00 00"), 0x6985);
    // Wrong P1P2 in GET RESPONSE.
    assert_eq!(sw(&card, "00 C0 01 00 00"), 0x6A86);
}

#[test]
fn get_response_6100_when_256_or_more_remain() {
    let p = test_pattern(2000);
    let config = CardConfig {
        get_response_chunk: Some(200),
        ..CardConfig::extended(1000)
    };
    let card = file_card(2000, config);
    let (mut all, mut s) = send(&card, "00 B0 00 00 00 03 E8");
    assert_eq!(s, 0x6100, "800 remain");
    let mut rounds = 0;
    while s >> 8 == 0x61 {
        let (d, next) = send(&card, "00 C0 00 00 00");
        all.extend(d);
        s = next;
        rounds += 1;
    }
    assert_eq!((all.as_slice(), s, rounds), (&p[..1000], 0x9000, 4));
    // Log: SELECT + READ + 4 GET RESPONSE.
    assert_eq!(card.apdu_count(), 6);
    assert_eq!(card.log()[2], h("00 C0 00 00 00"));
}

#[test]
fn update_binary_with_chaining() {
    let card = file_card(600, CardConfig::short());
    let first = format!("10 D6 00 00 FF {}", "AA".repeat(255));
    let second = format!("10 D6 00 00 FF {}", "BB".repeat(255));
    let last = format!("00 D6 00 00 0A {}", "CC".repeat(10));
    assert_eq!(sw(&card, &first), 0x9000);
    assert_eq!(sw(&card, &second), 0x9000);
    assert_eq!(sw(&card, &last), 0x9000);
    let mut expected = [vec![0xAA; 255], vec![0xBB; 255], vec![0xCC; 10]].concat();
    expected.extend_from_slice(&test_pattern(600)[520..]);
    assert_eq!(card.file_contents(&[0x5000, TEST_EF]), Some(expected));
    // Unchained write at an offset, then read back.
    assert_eq!(sw(&card, "00 D6 02 50 02 1234"), 0x9000);
    assert_eq!(send(&card, "00 B0 02 50 02"), (h("1234"), 0x9000));
    // Writing past the end of the fixed-size EF, or starting beyond it.
    assert_eq!(sw(&card, "00 D6 02 57 02 1234"), 0x6A84);
    assert_eq!(sw(&card, "00 D6 03 00 01 12"), 0x6B00);
    // A chain interrupted by another command.
    assert_eq!(sw(&card, &first), 0x9000);
    assert_eq!(sw(&card, "00 B0 00 00 01"), 0x6883);
    // Chaining an instruction other than UPDATE BINARY.
    assert_eq!(sw(&card, "10 B0 00 00 01"), 0x6884);
    // Chaining disabled.
    let card = file_card(
        600,
        CardConfig {
            chaining: false,
            ..CardConfig::short()
        },
    );
    assert_eq!(sw(&card, &first), 0x6884);
    assert_eq!(
        card.file_contents(&[0x5000, TEST_EF]),
        Some(test_pattern(600))
    );
}

#[test]
fn malformed_commands() {
    let card = VirtualCard::cie();
    assert_eq!(card.process(&[]), h("6700"));
    assert_eq!(sw(&card, "00"), 0x6700);
    assert_eq!(sw(&card, "00 A4 00"), 0x6700);
    assert_eq!(
        sw(&card, "00 A4 00 0C 03 3F00"),
        0x6700,
        "Lc longer than data"
    );
    assert_eq!(
        sw(&card, "00 A4 00 0C 01 3F00"),
        0x6700,
        "Lc shorter than data"
    );
    assert_eq!(sw(&card, "00 A4 00 0C 00 3F"), 0x6700, "short Lc 0");
    assert_eq!(sw(&card, "80 A4 00 0C"), 0x6E00, "proprietary class");
    assert_eq!(sw(&card, "FF A4 00 0C"), 0x6E00);
    assert_eq!(sw(&card, "20 A4 00 0C"), 0x6E00, "RFU class");
    assert_eq!(sw(&card, "0C A4 00 0C"), 0x6882, "secure messaging");
    assert_eq!(sw(&card, "01 A4 00 0C"), 0x6881, "logical channel 1");
    assert_eq!(sw(&card, "40 A4 00 0C"), 0x6881, "logical channel 4");
    assert_eq!(sw(&card, "00 12 00 00"), 0x6D00);
    assert_eq!(sw(&card, "00 60 00 00"), 0x6D00);
    assert_eq!(
        sw(&card, "00 88 00 00 08 0102030405060708 00"),
        0x6985,
        "INTERNAL AUTHENTICATE before any MSE SET: no key selected"
    );
    // CLA is checked before INS, INS before length.
    assert_eq!(sw(&card, "80 12 00"), 0x6700);
    assert_eq!(sw(&card, "80 12 00 00 05"), 0x6E00);
    assert_eq!(sw(&card, "00 12 00 00 05"), 0x6D00);
    assert_eq!(card.apdu_count(), 18);
}
