//! A virtual card client for vsmartcard's `vpcd`, the pcscd driver behind the "Virtual PCD"
//! reader. With it, real PC/SC software (pcscd, OpenSC, browsers, our own PC/SC transport)
//! sees the virtual CIE as a card in a reader.
//!
//! Wire protocol, confirmed against vsmartcard's `virtualsmartcard/src/vpcd/vpcd.{c,h}` at
//! tag `virtualsmartcard-0.8` (the version Debian 12 ships as `vsmartcard-vpcd` 3.3+dfsg-2)
//! and the installed package:
//! - vpcd listens on TCP port 35963 (`VPCDPORT`; `/etc/reader.conf.d/vpcd` has
//!   `CHANNELID 0x8C7B` = 35963 and `DEVICENAME /dev/null:0x8C7B`, i.e. listen on all
//!   interfaces); the virtual card connects to it as a client. Each further slot adds 1 to
//!   the port, and pcsc-lite names slot 0 "Virtual PCD 00 00".
//! - Every message, both ways, is a 2-byte big-endian length followed by that many bytes.
//! - A 1-byte message from vpcd is a control code (`VPCD_CTRL_*`): 0x00 power off, 0x01 power
//!   on, 0x02 reset (no answer to any of these), 0x04 get ATR (answer: the ATR). vpcd sends
//!   "get ATR" every time pcscd polls for card presence, so it arrives often.
//! - Any longer message is a command APDU; the answer is the response APDU.
//! - A closed socket (or an empty answer) means "card removed".

use std::io::{self, Read, Write};
use std::net::TcpStream;

use cie_core::transport::SharedTransport;

/// vpcd's default port (`VPCDPORT` in vpcd.h).
pub const DEFAULT_PORT: u16 = 35963;

/// Control codes (`VPCD_CTRL_*` in vpcd.h).
pub mod ctrl {
    /// Power the card off.
    pub const OFF: u8 = 0x00;
    /// Power the card on.
    pub const ON: u8 = 0x01;
    /// Warm reset.
    pub const RESET: u8 = 0x02;
    /// Ask for the ATR.
    pub const ATR: u8 = 0x04;
}

/// Used when the card model exposes no ATR: a valid T=1 ATR with no historical bytes
/// (`3B 80 80 01 01`, TCK included).
pub const FALLBACK_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// What happened during one session, for the final message and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Command APDUs answered.
    pub apdus: u64,
    /// ATR requests answered.
    pub atr_requests: u64,
    /// Power-on and reset requests (each gives a fresh card).
    pub resets: u64,
}

/// Connect to vpcd at `host:port`.
pub fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn read_message(stream: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut payload)?;
    Ok(Some(payload))
}

fn write_message(stream: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 65535 bytes"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)?;
    stream.flush()
}

/// Serve one vpcd connection until vpcd closes it. `new_card` is called at the start and on
/// every power-on and reset and gives the card in its power-on state (the desktop program
/// power-cycles one card, so its PIN counters persist across resets as on a real card).
///
/// A transport error on one APDU is answered with SW `6F 00` (no precise diagnosis) and
/// logged; it does not end the session.
pub fn serve<S, F>(stream: &mut S, mut new_card: F) -> io::Result<Stats>
where
    S: Read + Write,
    F: FnMut() -> SharedTransport,
{
    let mut stats = Stats::default();
    let mut card = new_card();
    while let Some(msg) = read_message(stream)? {
        match msg.as_slice() {
            [ctrl::OFF] => {}
            [ctrl::ON] | [ctrl::RESET] => {
                stats.resets += 1;
                card = new_card();
            }
            [ctrl::ATR] => {
                stats.atr_requests += 1;
                let atr = card.info().atr.unwrap_or_else(|| FALLBACK_ATR.to_vec());
                write_message(stream, &atr)?;
            }
            [other] => eprintln!("vpcd: ignoring unknown control code {other:#04x}"),
            [] => {}
            apdu => {
                stats.apdus += 1;
                let answer = match pollster::block_on(card.transmit(apdu.to_vec())) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("vpcd: virtual card failed: {e}");
                        vec![0x6F, 0x00]
                    }
                };
                write_message(stream, &answer)?;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cie_core::transport::{CardTransport, TransportError, TransportInfo, TransportKind};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// Answers every APDU with its INS byte then 90 00.
    struct Echo;

    #[async_trait::async_trait]
    impl CardTransport for Echo {
        async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
            Ok(vec![apdu[1], 0x90, 0x00])
        }
        fn info(&self) -> TransportInfo {
            let mut i = TransportInfo::short(TransportKind::Virtual);
            i.atr = Some(vec![0x3B, 0x00]);
            i
        }
    }

    #[test]
    fn speaks_the_vpcd_protocol_over_tcp() -> io::Result<()> {
        // This listener plays vpcd: it sends what the driver sends and checks the answers.
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let driver = std::thread::spawn(move || -> io::Result<Vec<Vec<u8>>> {
            let (mut s, _) = listener.accept()?;
            let mut answers = Vec::new();
            write_message(&mut s, &[ctrl::ON])?;
            write_message(&mut s, &[ctrl::ATR])?;
            answers.push(read_message(&mut s)?.unwrap_or_default());
            write_message(&mut s, &[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00])?;
            answers.push(read_message(&mut s)?.unwrap_or_default());
            write_message(&mut s, &[ctrl::RESET])?;
            write_message(&mut s, &[ctrl::OFF])?;
            write_message(&mut s, &[0x00, 0xB0, 0x00, 0x00])?;
            answers.push(read_message(&mut s)?.unwrap_or_default());
            Ok(answers) // dropping `s` closes the socket: the client must end cleanly
        });
        let mut stream = connect("127.0.0.1", port)?;
        let mut cards = 0;
        let stats = serve(&mut stream, || {
            cards += 1;
            Arc::new(Echo) as SharedTransport
        })?;
        let answers = driver
            .join()
            .map_err(|_| io::Error::other("driver panicked"))??;
        assert_eq!(
            answers,
            vec![
                vec![0x3B, 0x00],
                vec![0xA4, 0x90, 0x00],
                vec![0xB0, 0x90, 0x00]
            ]
        );
        assert_eq!(
            stats,
            Stats {
                apdus: 2,
                atr_requests: 1,
                resets: 2
            }
        );
        assert_eq!(cards, 3);
        Ok(())
    }

    #[test]
    fn frames_are_big_endian_length_prefixed() -> io::Result<()> {
        let mut out = Vec::new();
        write_message(&mut out, &[0xAA; 0x0102])?;
        assert_eq!(&out[..2], &[0x01, 0x02]);
        let mut r = io::Cursor::new(out);
        assert_eq!(read_message(&mut r)?.map(|m| m.len()), Some(0x0102));
        assert_eq!(read_message(&mut r)?, None);
        Ok(())
    }
}
