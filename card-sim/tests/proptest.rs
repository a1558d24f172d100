//! Property tests: no input makes the card panic, and every answer carries a status word.

mod common;
use card_sim::{CardConfig, EofMode, VirtualCard};
use proptest::prelude::*;

/// Commands biased towards the supported instructions, so the interesting paths run.
fn command() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            prop::sample::select(vec![0x00u8, 0x10, 0x80, 0x0C, 0x01]),
            prop::sample::select(vec![0xA4u8, 0xB0, 0xB1, 0xD6, 0xC0, 0x12]),
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(cla, ins, p1, p2, body)| {
                let mut c = vec![cla, ins, p1, p2];
                c.extend(body);
                c
            }),
    ]
}

fn configs() -> impl Strategy<Value = CardConfig> {
    (
        any::<bool>(),
        prop::option::of(1usize..400),
        prop::sample::select(vec![
            EofMode::ShortData,
            EofMode::EndOfFile,
            EofMode::WrongLe,
        ]),
        any::<bool>(),
    )
        .prop_map(|(extended, chunk, eof_mode, chaining)| CardConfig {
            get_response_chunk: chunk,
            eof_mode,
            chaining,
            ..if extended {
                CardConfig::extended(65536)
            } else {
                CardConfig::short()
            }
        })
}

proptest! {
    #[test]
    fn random_commands_never_panic(
        config in configs(),
        large in any::<bool>(),
        commands in proptest::collection::vec(command(), 1..20),
    ) {
        let card = if large { VirtualCard::with_large_files() } else { VirtualCard::cie() };
        let card = card.with_config(config);
        for c in &commands {
            let r = card.process(c);
            prop_assert!(r.len() >= 2);
        }
        prop_assert_eq!(card.apdu_count(), commands.len());
    }

    #[test]
    fn random_bytes_through_transmit(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let card = VirtualCard::cie().with_config(CardConfig::extended(65536));
        let r = pollster::block_on(cie_core::transport::CardTransport::transmit(&card, bytes));
        prop_assert!(r.is_ok_and(|r| r.len() >= 2));
    }
}
