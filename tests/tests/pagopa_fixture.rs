//! Replays the public scripted exchange from PagoPA's Android CIE SDK tests (NIS, EF 1005 in
//! two chunks, the IAS SOD through odd-INS `B1` by SFI) and checks the core reads and parses
//! all three from it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use cie_core::apdu::CardChannel;
use cie_core::applets::ias::IasApplet;
use cie_core::transport::{CardTransport, TransportError, TransportInfo, TransportKind};
use std::sync::{Arc, Mutex};

struct Exchange {
    header_and_data: Vec<u8>,
    le: Option<usize>,
    response: Vec<u8>,
}

/// The fixture's decoder: a non-hex digit counts as -1, as the SDK's test `Utils` does.
fn sdk_hex(s: &str) -> Vec<u8> {
    let digit = |c: u8| -> i32 {
        match c {
            b'0'..=b'9' => i32::from(c - b'0'),
            b'A'..=b'F' => i32::from(c - b'A' + 10),
            b'a'..=b'f' => i32::from(c - b'a' + 10),
            _ => -1,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| (digit(p[0]) * 16 + digit(p[1])) as u8)
        .collect()
}

/// Split a short-form command into (header + Lc + data, Le).
fn split_le(cmd: &[u8]) -> (Vec<u8>, Option<usize>) {
    match cmd.len() {
        4 => (cmd.to_vec(), None),
        5 => (
            cmd[..4].to_vec(),
            Some(if cmd[4] == 0 {
                256
            } else {
                usize::from(cmd[4])
            }),
        ),
        _ => {
            let lc = usize::from(cmd[4]);
            let end = 5 + lc;
            let le = cmd
                .get(end)
                .map(|&b| if b == 0 { 256 } else { usize::from(b) });
            (cmd[..end].to_vec(), le)
        }
    }
}

/// Answers only the recorded commands. The header and data must match byte for byte; Le
/// is matched as the card treats it, a capacity: a recorded answer of n data bytes answers
/// any Le of at least n (the SDK asked `00`/`E7`, we may ask for exactly what is left).
struct Replay {
    script: Vec<Exchange>,
    used: Mutex<Vec<Vec<u8>>>,
}

#[async_trait::async_trait]
impl CardTransport for Replay {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let (head, le) = split_le(&apdu);
        let hit = self.script.iter().find(|e| {
            e.header_and_data == head && (e.le.is_none() || le.unwrap_or(0) >= e.response.len() - 2)
        });
        self.used.lock().unwrap().push(apdu.clone());
        match hit {
            Some(e) => Ok(e.response.clone()),
            None => Err(TransportError::Io {
                reason: format!(
                    "APDU not in the recorded script: {}",
                    hex::encode_upper(&apdu)
                ),
            }),
        }
    }
    fn info(&self) -> TransportInfo {
        TransportInfo::short(TransportKind::Nfc)
    }
}

fn replay() -> Arc<Replay> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagopa_cie_sdk_android.json"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let script = json["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (header_and_data, le) = split_le(&sdk_hex(e["command"].as_str().unwrap()));
            let mut response = sdk_hex(e["data"].as_str().unwrap());
            response.extend(sdk_hex(e["sw"].as_str().unwrap()));
            Exchange {
                header_and_data,
                le,
                response,
            }
        })
        .collect();
    Arc::new(Replay {
        script,
        used: Mutex::new(Vec::new()),
    })
}

#[test]
fn reads_nis_key_and_sod_from_the_pagopa_script() {
    let card = replay();
    let ch = CardChannel::new(card.clone());
    let (nis, key, sod) = pollster::block_on(async {
        let ias = IasApplet::select(&ch).await.unwrap();
        let nis = ias.read_nis().await.unwrap();
        let key = ias.read_nis_public_key().await.unwrap();
        let sod = ias.read_sod().await.unwrap();
        (nis, key, sod)
    });
    // The recorded NIS is not ASCII digits (the fixture is sanitised): kept as bytes.
    assert_eq!(nis.text(), "393843139389135159633972");
    assert!(
        !format!("{nis:?}").contains("39384313"),
        "Debug hides most of the NIS"
    );

    assert_eq!(key.der.len(), 270);
    assert_eq!(key.bits(), 2048);
    assert_eq!(key.exponent, vec![0x01, 0x00, 0x01]);

    assert_eq!(sod.der.len(), 4 + 0x0B20);
    // SHA-512 (2.16.840.1.101.3.4.2.3), the newer cards' choice (cie.md §2.2).
    assert_eq!(
        sod.digest_algorithm,
        hex::decode("608648016503040203").unwrap()
    );
    let tags: Vec<u8> = sod.hashes.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, vec![0xA5, 0x1B, 0xA4, 0xA3, 0xA2, 0xA1]);
    assert!(sod.hashes.iter().all(|(_, h)| h.len() == 64));

    // Every APDU we sent was in the recording: 2 SELECTs, 1 NIS read, 2 key reads, 13 SOD reads.
    let used = card.used.lock().unwrap();
    assert_eq!(used.len(), 2 + 1 + 2 + 13);
    assert_eq!(used[2], hex::decode("00B081000C").unwrap());
}
