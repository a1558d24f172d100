//! `CardTransport` behaviour of the virtual card, `FaultyTransport` and `LinkModel`.

mod common;
use std::sync::Arc;
use std::time::Duration;

use card_sim::cie::synthetic_atr;
use card_sim::{
    BitRate, CardConfig, Fault, FaultyTransport, LinkConfig, LinkModel, LinkStats, VirtualCard,
};
use cie_core::transport::{CardTransport, TransportError, TransportKind};
use common::{h, tx};

const SELECT_CIE: &str = "00 A4 04 0C 06 A00000000039";

#[test]
fn info_and_link_limits() {
    let card = VirtualCard::cie();
    let info = card.info();
    assert_eq!(info.kind, TransportKind::Virtual);
    assert!(!info.extended_length);
    assert_eq!((info.max_command_len, info.max_response_len), (261, 258));
    assert_eq!(info.atr, Some(synthetic_atr()));
    assert_eq!(synthetic_atr().len(), 20);

    let ext = VirtualCard::cie().with_config(CardConfig {
        kind: TransportKind::Nfc,
        ..CardConfig::extended(4096)
    });
    let info = ext.info();
    assert_eq!(info.kind, TransportKind::Nfc);
    assert!(info.extended_length);
    assert_eq!((info.max_command_len, info.max_response_len), (65544, 4098));

    // A command longer than the link carries fails like IsoDep does; the card never sees it.
    let too_long = format!("00 D6 00 00 00 0100 {}", "00".repeat(256));
    assert!(matches!(
        tx(&card, &too_long),
        Err(TransportError::Io { .. })
    ));
    assert_eq!(card.apdu_count(), 0);
    assert_eq!(tx(&card, SELECT_CIE), Ok(h("9000")));
    assert_eq!(card.log(), vec![h(SELECT_CIE)]);
    card.clear_log();
    assert_eq!(card.apdu_count(), 0);

    // A response larger than the link's limit is an I/O error too.
    let narrow = VirtualCard::with_file(1000).with_config(CardConfig {
        max_response_len: 100,
        ..CardConfig::short()
    });
    assert_eq!(tx(&narrow, "00 A4 08 0C 04 5000 5001"), Ok(h("9000")));
    assert!(matches!(
        tx(&narrow, "00 B0 00 00 00"),
        Err(TransportError::Io { .. })
    ));
}

fn faulty(fault: Fault) -> (Arc<VirtualCard>, FaultyTransport) {
    let card = Arc::new(VirtualCard::cie());
    let t = FaultyTransport::new(card.clone()).fail_at(1, fault);
    (card, t)
}

#[test]
fn faults_fire_once_on_the_nth_apdu() {
    for (fault, expected) in [
        (Fault::TagLost, Err(TransportError::TagLost)),
        (Fault::Timeout, Err(TransportError::Timeout)),
        (Fault::CorruptByte { index: 0 }, Ok(h("6F00"))),
        (Fault::CorruptByte { index: 3 }, Ok(h("90FF"))), // 3 mod 2 = 1
        (Fault::Truncate { len: 1 }, Ok(h("90"))),
        (Fault::Empty, Ok(vec![])),
    ] {
        let (card, t) = faulty(fault.clone());
        assert_eq!(tx(&t, SELECT_CIE), Ok(h("9000")), "{fault:?}: APDU 0 clean");
        assert_eq!(tx(&t, SELECT_CIE), expected, "{fault:?}: APDU 1 faulted");
        assert_eq!(tx(&t, SELECT_CIE), Ok(h("9000")), "{fault:?}: APDU 2 clean");
        assert_eq!(t.apdu_count(), 3);
        // Link faults stop the command before the card; response faults do not.
        let reached = if matches!(fault, Fault::TagLost | Fault::Timeout) {
            2
        } else {
            3
        };
        assert_eq!(card.apdu_count(), reached, "{fault:?}");
        assert_eq!(t.info(), card.info());
    }
}

#[test]
fn corrupt_byte_in_data() {
    let card = Arc::new(VirtualCard::cie());
    let t = FaultyTransport::new(card)
        .fail_at(2, Fault::CorruptByte { index: 1 })
        .fail_at(3, Fault::Truncate { len: 5 });
    assert_eq!(tx(&t, SELECT_CIE), Ok(h("9000")));
    assert_eq!(tx(&t, "00 A4 02 0C 02 1001"), Ok(h("9000")));
    let mut expected = b"000011112222".to_vec();
    expected[1] ^= 0xFF;
    expected.extend(h("9000"));
    assert_eq!(tx(&t, "00 B0 00 00 0C"), Ok(expected));
    assert_eq!(tx(&t, "00 B0 00 00 0C"), Ok(b"00001".to_vec()));
}

#[test]
fn link_arithmetic_by_hand() {
    // Default model: 106 kbit/s = fc/128, FSC = FSD = 256, 100 µs frame delay, 5 ms card.
    let cfg = LinkConfig::default();
    assert_eq!(cfg.bit_rate, BitRate::Kbps106);
    assert_eq!((cfg.fsc, cfg.fsd), (256, 256));
    // Blocks carry FS - 3 = 253 INF bytes.
    assert_eq!(LinkConfig::blocks(0, 256), 1);
    assert_eq!(LinkConfig::blocks(253, 256), 1);
    assert_eq!(LinkConfig::blocks(254, 256), 2);
    assert_eq!(
        LinkConfig::blocks(100, 8),
        8,
        "FS below 16 is treated as 16"
    );

    // SELECT (11 bytes) -> 9000 (2 bytes):
    //   command  (11 + 3) * 9 + 2 = 128 bits; response (2 + 3) * 9 + 2 = 47 bits.
    //   175 bits * 128 / 13.56 MHz = 1 651 917.1 ns -> 1 651 917 ns, + 5 ms.
    assert_eq!(
        cfg.apdu_time(11, 2),
        Duration::from_nanos(1_651_917) + Duration::from_millis(5)
    );
    // READ BINARY (5 bytes) -> 256 data + SW (258 bytes, two I-blocks):
    //   command 74 bits; response 258 * 9 + 2 * 29 = 2380 bits; one R(ACK) 29 bits.
    //   2483 bits -> 2483 * 128e9 / 13.56e6 = 23 438 348.0 ns; + 2 * 100 µs + 5 ms.
    assert_eq!(
        cfg.apdu_time(5, 258),
        Duration::from_nanos(23_438_348) + Duration::from_micros(200) + Duration::from_millis(5)
    );
    // Same SELECT at 848 kbit/s (fc/16): 175 * 16e9 / 13.56e6 = 206 489.7 ns.
    let fast = LinkConfig {
        bit_rate: BitRate::Kbps848,
        apdu_turnaround: Duration::ZERO,
        ..LinkConfig::default()
    };
    assert_eq!(fast.apdu_time(11, 2), Duration::from_nanos(206_489));

    // The wrapper sums the same (an 11-byte SELECT by path, then the read): 175 + 2483 = 2658 bits = 25 090 265.5 ns, + 10.2 ms.
    let card = Arc::new(VirtualCard::with_file(1000));
    let link = LinkModel::new(card, cfg);
    assert_eq!(tx(&link, "00 A4 08 0C 06 3F00 5000 5001"), Ok(h("9000")));
    let r = tx(&link, "00 B0 00 00 00").expect("read");
    assert_eq!(r.len(), 258);
    assert_eq!(
        link.stats(),
        LinkStats {
            apdus: 2,
            bytes_to_card: 11 + 5,
            bytes_from_card: 2 + 258,
            link_time: Duration::from_nanos(25_090_265) + Duration::from_micros(10_200),
        }
    );
    link.reset();
    assert_eq!(link.stats(), LinkStats::default());
}

#[test]
fn link_counts_failed_apdus() {
    let card = Arc::new(VirtualCard::cie());
    let faulty = Arc::new(FaultyTransport::new(card).fail_at(0, Fault::TagLost));
    let cfg = LinkConfig {
        apdu_turnaround: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let link = LinkModel::new(faulty, cfg);
    assert_eq!(tx(&link, SELECT_CIE), Err(TransportError::TagLost));
    let s = link.stats();
    assert_eq!((s.apdus, s.bytes_to_card, s.bytes_from_card), (1, 11, 0));
    // Command 128 bits + empty "response" frame 29 bits = 157 bits = 1 482 005.9 ns, + 1 ms.
    assert_eq!(
        s.link_time,
        Duration::from_nanos(1_482_005) + Duration::from_millis(1)
    );
}
