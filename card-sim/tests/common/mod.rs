//! Test helpers: hex APDUs in, hex responses out. No core APDU code is used.
#![allow(dead_code)]

pub mod terminal;

use card_sim::VirtualCard;
use cie_core::transport::{CardTransport, TransportError};

/// Parse hex, ignoring spaces.
pub fn h(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("bad hex digit {b}"),
        })
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// Send a hex APDU through `CardTransport::transmit`.
pub fn tx(card: &dyn CardTransport, apdu: &str) -> Result<Vec<u8>, TransportError> {
    pollster::block_on(card.transmit(h(apdu)))
}

/// Send through the card model and split into (data, SW).
pub fn send(card: &VirtualCard, apdu: &str) -> (Vec<u8>, u16) {
    split(card.process(&h(apdu)))
}

/// Split a response into data and SW.
pub fn split(mut r: Vec<u8>) -> (Vec<u8>, u16) {
    assert!(r.len() >= 2, "response shorter than a status word");
    let sw2 = r.pop().expect("sw2");
    let sw1 = r.pop().expect("sw1");
    (r, u16::from(sw1) << 8 | u16::from(sw2))
}

/// Just the SW.
pub fn sw(card: &VirtualCard, apdu: &str) -> u16 {
    send(card, apdu).1
}
