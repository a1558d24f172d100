//! Entry points for `cargo fuzz` (see `fuzz/`): each target is one call into here, so the
//! fuzzers exercise exactly the code the app runs (the rustls `msgs::fuzzing` pattern).
//! Every function must return normally for any input; a panic is a bug.

use crate::apdu::{ApduChannel, CardChannel, Command, Response, files};
use crate::applets::probe;
use crate::tlv::{self, Tlv};
use crate::transport::{CardTransport, TransportError, TransportInfo, TransportKind};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// BER-TLV decoding, walked recursively, with a decode → encode → decode round trip.
pub fn tlv(data: &[u8]) {
    let _ = tlv::parse_padded(data);
    let _ = tlv::encoded_len(data);
    if let Ok(obj) = Tlv::from_bytes(data) {
        walk(&obj, 0);
        let again = tlv::encode_to_vec(obj.tag, obj.value);
        let back = Tlv::from_bytes(&again).expect("re-encoded TLV must decode");
        assert_eq!(back, obj, "TLV round trip changed the object");
    }
}

fn walk(obj: &Tlv<'_>, depth: usize) {
    if depth > 64 || !obj.tag.is_constructed() {
        return;
    }
    for child in obj.children().flatten() {
        walk(&child, depth + 1);
    }
}

/// Response APDU splitting and FCP parsing.
pub fn response(data: &[u8]) {
    if let Ok(resp) = Response::from_bytes(data.to_vec()) {
        let _ = resp.sw.kind().message_en();
        let _ = files::FileInfo::parse(&resp.data);
    }
}

/// A card whose answers come from the fuzzer: the input is split into responses, each
/// prefixed by one length byte (and an `FF` prefix meaning "the tag was lost").
struct FuzzCard {
    answers: Mutex<VecDeque<Result<Vec<u8>, TransportError>>>,
    info: TransportInfo,
}

#[async_trait::async_trait]
impl CardTransport for FuzzCard {
    async fn transmit(&self, _apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.pop_front().unwrap_or(Err(TransportError::TagLost))
    }

    fn info(&self) -> TransportInfo {
        self.info.clone()
    }
}

fn fuzz_card(data: &[u8]) -> Arc<FuzzCard> {
    let (flags, mut rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let mut answers = VecDeque::new();
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0xFF {
            answers.push_back(Err(TransportError::TagLost));
            rest = tail;
            continue;
        }
        let n = usize::from(len).min(tail.len());
        // Stretch short answers so multi-kilobyte reads are reachable: the byte count is
        // scaled by the low flag bits.
        let scale = 1usize << (flags & 0x07);
        let mut answer = tail[..n].repeat(scale.min(64));
        // Keep the recorded SW last (the harness's own bug, found by the fuzzer: a 1-byte
        // answer has no SW to keep).
        if n >= 2 && answer.len() > 2 {
            let l = answer.len();
            answer[l - 2..].copy_from_slice(&tail[n.saturating_sub(2)..n]);
        }
        answers.push_back(Ok(answer));
        rest = &tail[n..];
    }
    let mut info = TransportInfo::short(TransportKind::Virtual);
    if flags & 0x08 != 0 {
        info.extended_length = true;
        info.max_command_len = 65_544;
        info.max_response_len = 65_538;
    }
    Arc::new(FuzzCard {
        answers: Mutex::new(answers),
        info,
    })
}

/// The whole APDU layer (GET RESPONSE, 6Cxx, chaining, chunked B0/B1 reads, TLV-sized
/// reads, the application probe) against a card that answers anything.
pub fn card_session(data: &[u8]) {
    let card = fuzz_card(data);
    let ch = CardChannel::new(card);
    let flags = data.first().copied().unwrap_or(0);
    run(async {
        match flags >> 4 {
            0 => drop(files::read_ef(&ch, [0x01, 0x1E]).await),
            1 => drop(files::read_to_end(&ch, None).await),
            2 => drop(files::read_tlv_object(&ch).await),
            3 => drop(probe::probe(&ch).await),
            4 => drop(files::read_to_end(&ch, Some(40_000)).await),
            5 => drop(
                ch.transmit(&Command::new(0, 0xD6, 0, 0).with_data(vec![0; 600]))
                    .await,
            ),
            _ => drop(files::read_binary(&ch, 0x9000, 200).await),
        }
    });
}

/// Secure-messaging response verification with fixed test keys. The first byte picks the
/// suite (bits 0-1: 3DES, AES-128, AES-256, AES-192), whether the SSC starts one short of
/// exhaustion (bit 3), and whether the rest is taken as the data objects of a response whose
/// correct MAC is appended here (bit 2), so the fuzzer also reaches everything after the MAC
/// check: status, decryption, padding. Oracle: with a correct MAC appended, the answer is
/// never `MacMismatch`.
pub fn sm_unwrap(data: &[u8]) {
    use crate::sm::{Aes, SmCipher, SmError, Ssc, Tdes, cipher::pad};
    let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let cipher: Box<dyn SmCipher> = match flags & 0x03 {
        0 => Box::new(Tdes::from_keys(&[0x11; 16], &[0x22; 16])),
        n => {
            let len = [16, 16, 32, 24][usize::from(n)];
            let Ok(aes) = Aes::new(&vec![0x33; len], &vec![0x44; len]) else {
                return;
            };
            Box::new(aes)
        }
    };
    let block = cipher.block_size();
    let mut start = vec![0u8; block];
    if flags & 0x08 != 0 {
        start.fill(0xFF);
        start[block - 1] = 0xFE;
    }
    let Ok(mut ssc) = Ssc::from_bytes(&start) else {
        return;
    };
    let fixed_mac = flags & 0x04 != 0;
    let raw = if fixed_mac {
        // The counter the response will be verified with.
        let mut next = ssc.clone();
        if next.increment().is_err() {
            return;
        }
        let mut mac_input = next.as_bytes().to_vec();
        mac_input.extend_from_slice(rest);
        let mac = cipher.mac(&pad(&mac_input, block));
        let mut raw = rest.to_vec();
        raw.extend_from_slice(&[0x8E, 0x08]);
        raw.extend_from_slice(&mac);
        raw.extend_from_slice(&[0x90, 0x00]);
        raw
    } else {
        rest.to_vec()
    };
    let Ok(resp) = Response::from_bytes(raw) else {
        return;
    };
    let result = crate::sm::unwrap(&*cipher, &mut ssc, resp);
    if fixed_mac {
        assert_ne!(result, Err(SmError::MacMismatch), "correct MAC refused");
    }
    if let Ok(plain) = result {
        let _ = plain.sw.kind().message_en();
    }
}

/// Drive a future whose I/O is always ready (fuzz and test transports answer at once).
fn run<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_accept_edge_inputs() {
        for input in [
            &[][..],
            &[0x00],
            &[0xFF; 40],
            &[0x10, 0x02, 0x90, 0x00],
            &[0x38, 3, 1, 0x61, 0x05],
        ] {
            tlv(input);
            response(input);
            card_session(input);
            sm_unwrap(input);
        }
    }
}
