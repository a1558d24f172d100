//! The core's APDU layer against the independent virtual card (`card-sim`): each checks the
//! other's reading of ISO 7816-4, since they share no protocol code.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use card_sim::{CardConfig, EofMode, Fault, FaultyTransport, LinkConfig, LinkModel, VirtualCard};
use cie_core::apdu::{ApduChannel, ApduError, CardChannel, Command, Sw, files};
use cie_core::applets::probe::{self, KnownApplication};
use cie_core::tlv::DecodeError;
use cie_core::transport::{CardTransport, TransportError, TransportInfo};
use std::sync::Arc;

const DF: [u8; 2] = [0x50, 0x00];
const EF_20K: [u8; 2] = [0x50, 0x20];
const EF_40K: [u8; 2] = [0x50, 0x40];

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn large(config: CardConfig) -> Arc<VirtualCard> {
    Arc::new(VirtualCard::with_large_files().with_config(config))
}

/// Select DF 5000 then read `ef` whole; returns the bytes and the APDUs used.
fn read_large(card: &Arc<VirtualCard>, ef: [u8; 2]) -> (Result<Vec<u8>, ApduError>, usize) {
    let ch = CardChannel::new(card.clone());
    block(files::select_df(&ch, DF)).expect("select DF");
    card.clear_log();
    let out = block(files::read_ef(&ch, ef));
    (out, card.apdu_count())
}

fn expected(card: &VirtualCard, ef: [u8; 2]) -> Vec<u8> {
    card.file_contents(&[0x5000, u16::from_be_bytes(ef)])
        .expect("file exists on the sim")
}

#[test]
fn twenty_kb_short_apdus_takes_exactly_80_reads() {
    let card = large(CardConfig::short());
    let (data, apdus) = read_large(&card, EF_20K);
    assert_eq!(data.unwrap(), expected(&card, EF_20K));
    // SELECT with FCP (gives the size), then 20480 / 256 = 80 READ BINARY, no probing read.
    assert_eq!(apdus, 1 + 80);
}

#[test]
fn twenty_kb_extended_link_takes_one_read() {
    let card = large(CardConfig::extended(65_536));
    let (data, apdus) = read_large(&card, EF_20K);
    assert_eq!(data.unwrap(), expected(&card, EF_20K));
    assert_eq!(apdus, 1 + 1);
}

#[test]
fn twenty_kb_card_buffer_smaller_than_link() {
    // The phone allows 64 KiB but the chip returns at most 4 KiB per READ BINARY.
    let card = large(CardConfig::extended(4096));
    let (data, apdus) = read_large(&card, EF_20K);
    assert_eq!(data.unwrap(), expected(&card, EF_20K));
    assert_eq!(apdus, 1 + 5);
}

#[test]
fn twenty_kb_over_a_1k_android_link() {
    let mut config = CardConfig::extended(65_536);
    config.max_command_len = 1024;
    config.max_response_len = 1024;
    let card = large(config);
    let (data, apdus) = read_large(&card, EF_20K);
    assert_eq!(data.unwrap(), expected(&card, EF_20K));
    // 1022 data bytes per response: ceil(20480 / 1022) = 21.
    assert_eq!(apdus, 1 + 21);
}

#[test]
fn forty_kb_reads_past_offset_32767_with_odd_ins() {
    let card = large(CardConfig::short());
    let (data, apdus) = read_large(&card, EF_40K);
    assert_eq!(data.unwrap(), expected(&card, EF_40K));
    let log = card.log();
    // B0 up to offset 32767 (128 reads of 256 reach exactly 32768), then B1 reads of
    // 253 content bytes (256 minus the `53 81 FD` wrapper): ceil(8192 / 253) = 33.
    let b0 = log.iter().filter(|a| a[1] == 0xB0).count();
    let b1 = log.iter().filter(|a| a[1] == 0xB1).count();
    assert_eq!((b0, b1), (128, 33));
    assert_eq!(apdus, 1 + 128 + 33);
    // The first B1 carries offset 0x8000 in a 54 object.
    let first_b1 = log.iter().find(|a| a[1] == 0xB1).unwrap();
    assert_eq!(&first_b1[4..9], &[0x04, 0x54, 0x02, 0x80, 0x00]);
}

#[test]
fn forty_kb_extended() {
    let card = large(CardConfig::extended(65_536));
    let (data, apdus) = read_large(&card, EF_40K);
    assert_eq!(data.unwrap(), expected(&card, EF_40K));
    assert_eq!(apdus, 1 + 1);
}

#[test]
fn get_response_mode_delivers_whole_answers() {
    let mut config = CardConfig::short();
    config.get_response_chunk = Some(100);
    let card = large(config);
    let (data, _) = read_large(&card, EF_20K);
    assert_eq!(data.unwrap(), expected(&card, EF_20K));
    assert!(
        card.log().iter().any(|a| a[1] == 0xC0),
        "GET RESPONSE was exercised"
    );
}

#[test]
fn unknown_size_reads_stop_at_each_kind_of_end() {
    for mode in [EofMode::ShortData, EofMode::EndOfFile, EofMode::WrongLe] {
        // 1000 bytes: not a multiple of 256, so the last read runs past the end.
        let card = Arc::new(VirtualCard::with_file(1000).with_config(CardConfig {
            eof_mode: mode,
            ..CardConfig::short()
        }));
        let ch = CardChannel::new(card.clone());
        block(files::select_df(&ch, DF)).unwrap();
        block(ch.transmit(&Command::new(0, 0xA4, 0x02, 0x0C).with_data([0x50, 0x01]))).unwrap();
        let data = block(files::read_to_end(&ch, None)).unwrap();
        assert_eq!(
            data,
            card.file_contents(&[0x5000, 0x5001]).unwrap(),
            "{mode:?}"
        );
    }
    // 1024 bytes: the end falls on a chunk boundary, so the card answers 6B00 at offset 1024.
    let card = Arc::new(VirtualCard::with_file(1024));
    let ch = CardChannel::new(card.clone());
    block(files::select_df(&ch, DF)).unwrap();
    block(ch.transmit(&Command::new(0, 0xA4, 0x02, 0x0C).with_data([0x50, 0x01]))).unwrap();
    assert_eq!(block(files::read_to_end(&ch, None)).unwrap().len(), 1024);
}

#[test]
fn tlv_sized_read_uses_the_header() {
    let card = Arc::new(VirtualCard::cie());
    let ch = CardChannel::new(card.clone());
    // EF.CardAccess (MF/011C): readable in clear, unlike the eMRTD files behind BAC/PACE.
    block(ch.transmit(&Command::new(0, 0xA4, 0x02, 0x0C).with_data([0x01, 0x1C]))).unwrap();
    let ca = block(files::read_tlv_object(&ch)).unwrap();
    assert_eq!(ca[0], 0x31, "EF.CardAccess starts with its SET tag");
    assert_eq!(cie_core::tlv::encoded_len(&ca).unwrap(), ca.len());
}

#[test]
fn chained_update_then_read_back() {
    let card = Arc::new(VirtualCard::with_file(1000));
    let ch = CardChannel::new(card.clone());
    block(files::select_df(&ch, DF)).unwrap();
    let info = block(files::select_file(&ch, [0x50, 0x01])).unwrap();
    assert_eq!(info.size, Some(1000));
    let new: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
    card.clear_log();
    let resp = block(ch.transmit(&Command::new(0, 0xD6, 0, 0).with_data(new.clone()))).unwrap();
    assert_eq!(resp.sw, Sw::OK);
    let log = card.log();
    assert_eq!(log.len(), 3, "600 bytes = 255 + 255 + 90");
    assert_eq!(log[0][0], 0x10);
    assert_eq!(log[1][0], 0x10);
    assert_eq!(log[2][0], 0x00);
    let back = block(files::read_to_end(&ch, info.size)).unwrap();
    assert_eq!(&back[..600], &new[..]);
}

#[test]
fn chaining_refused_by_the_card_is_reported() {
    let card = Arc::new(VirtualCard::with_file(1000).with_config(CardConfig {
        chaining: false,
        ..CardConfig::short()
    }));
    let ch = CardChannel::new(card.clone());
    block(files::select_df(&ch, DF)).unwrap();
    block(files::select_file(&ch, [0x50, 0x01])).unwrap();
    let resp = block(ch.transmit(&Command::new(0, 0xD6, 0, 0).with_data(vec![1; 600]))).unwrap();
    assert_eq!(resp.sw, Sw::CHAINING_NOT_SUPPORTED);
}

#[test]
fn tag_lost_at_every_apdu_of_a_long_read() {
    let card = large(CardConfig::short());
    let total = {
        let (_, apdus) = read_large(&card, EF_40K);
        apdus + 1 // the DF select
    };
    for n in 0..total {
        for fault in [Fault::TagLost, Fault::Timeout] {
            let faulty = Arc::new(
                FaultyTransport::new(large(CardConfig::short())).fail_at(n, fault.clone()),
            );
            let ch = CardChannel::new(faulty.clone());
            let result = block(async {
                files::select_df(&ch, DF).await?;
                files::read_ef(&ch, EF_40K).await
            });
            let want = match fault {
                Fault::TagLost => TransportError::TagLost,
                _ => TransportError::Timeout,
            };
            assert_eq!(result, Err(ApduError::Transport(want)), "fault at APDU {n}");
            assert_eq!(faulty.apdu_count(), n + 1, "nothing sent after the fault");
        }
    }
}

#[test]
fn empty_and_one_byte_responses_are_typed_errors() {
    for (fault, len) in [(Fault::Empty, 0), (Fault::Truncate { len: 1 }, 1)] {
        for n in 0..3 {
            let faulty = Arc::new(
                FaultyTransport::new(large(CardConfig::short())).fail_at(n, fault.clone()),
            );
            let ch = CardChannel::new(faulty);
            let result = block(async {
                files::select_df(&ch, DF).await?;
                files::read_ef(&ch, EF_20K).await
            });
            assert_eq!(
                result,
                Err(ApduError::ResponseTooShort { len }),
                "{fault:?} at {n}"
            );
        }
    }
}

/// Forwards to the card but replaces the answer to the n-th APDU.
struct Rewrite {
    inner: Arc<VirtualCard>,
    at: usize,
    answer: Vec<u8>,
    seen: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl CardTransport for Rewrite {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let real = self.inner.transmit(apdu).await?;
        Ok(if n == self.at {
            self.answer.clone()
        } else {
            real
        })
    }
    fn info(&self) -> TransportInfo {
        self.inner.info()
    }
}

fn with_rewrite(at: usize, answer: &str) -> Result<Vec<u8>, ApduError> {
    let t = Arc::new(Rewrite {
        inner: large(CardConfig::short()),
        at,
        answer: hex::decode(answer.replace(' ', "")).unwrap(),
        seen: Default::default(),
    });
    let ch = CardChannel::new(t);
    block(async {
        files::select_df(&ch, DF).await?;
        files::read_ef(&ch, EF_20K).await
    })
}

#[test]
fn malformed_fcp_gives_typed_errors() {
    // APDU 1 is the SELECT with FCP.
    assert_eq!(
        with_rewrite(1, "62 04 80 02 50 9000"),
        Err(ApduError::Decode(DecodeError::Truncated {
            context: "value",
            needed: 4,
            available: 3
        }))
    );
    assert_eq!(
        with_rewrite(1, "62 85 0000000004 9000"),
        Err(ApduError::Decode(DecodeError::LengthTooLarge { bytes: 5 }))
    );
    assert!(matches!(
        with_rewrite(1, "62 84 FFFFFFFF 9000"),
        Err(ApduError::Decode(DecodeError::Truncated { .. }))
    ));
    // A declared size beyond any CIE file is refused before reading.
    assert!(matches!(
        with_rewrite(1, "62 06 80 04 7FFFFFFF 9000"),
        Err(ApduError::CardMisbehaved(_))
    ));
    // A card that sends more than asked is caught, not trusted.
    let mut big = vec![0u8; 300];
    big.extend_from_slice(&[0x90, 0x00]);
    assert!(matches!(
        with_rewrite(2, &hex::encode(&big)),
        Err(ApduError::CardMisbehaved(_))
    ));
}

#[test]
fn probe_finds_the_cie_applications() {
    let card = Arc::new(VirtualCard::cie());
    let ch = CardChannel::new(card.clone());
    let found = block(probe::probe(&ch)).unwrap();
    let present: Vec<_> = found
        .answers
        .iter()
        .filter(|a| a.present())
        .map(|a| a.application)
        .collect();
    assert!(present.contains(&KnownApplication::CieIas));
    assert!(present.contains(&KnownApplication::CieDf));
    assert!(present.contains(&KnownApplication::IcaoEmrtd));
    assert!(!present.contains(&KnownApplication::Cns));
    assert_eq!(found.ef_atr, card.file_contents(&[0x2F01]));
}

#[test]
fn link_model_counts_the_read() {
    let card = large(CardConfig::short());
    let link = Arc::new(LinkModel::new(card.clone(), LinkConfig::default()));
    let ch = CardChannel::new(link.clone());
    block(files::select_df(&ch, DF)).unwrap();
    link.reset();
    block(files::read_ef(&ch, EF_20K)).unwrap();
    let stats = link.stats();
    assert_eq!(stats.apdus, 81);
    // 20480 data bytes + 2 SW per response, + the FCP answer.
    assert!(stats.bytes_from_card >= 20_480 + 81 * 2);
    assert!(stats.link_time > std::time::Duration::ZERO);
}
