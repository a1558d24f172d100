//! The APDU channel: one command in, one complete response out, over any transport.
//!
//! It owns the link-level rules so nothing above repeats them: short or extended form,
//! command chaining for long data, `61xx` (GET RESPONSE until done) and `6Cxx` (resend with
//! the Le the card asked for). Secure messaging (later) wraps a channel and is a channel.

use super::command::{
    CLA_CHAINING, Command, EXTENDED_MAX_DATA, EXTENDED_MAX_LE, SHORT_MAX_DATA, SHORT_MAX_LE,
};
use super::{ApduError, Response, Sw, SwKind};
use crate::transport::{SharedTransport, TransportInfo};
use std::sync::atomic::{AtomicBool, Ordering};

/// GET RESPONSE instruction.
const INS_GET_RESPONSE: u8 = 0xC0;
/// Logical-channel bits of an interindustry CLA (channels 0-3).
const CLA_CHANNEL_MASK: u8 = 0x03;
/// Stop collecting `61xx` parts past this size: no CIE or eMRTD object comes close, and an
/// endless stream of `61xx` must not grow memory without bound.
const MAX_CHAINED_RESPONSE: usize = 1 << 20;

/// Sizes a channel can carry in one exchange, after its own overheads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whether extended-length APDUs may be sent.
    pub extended: bool,
    /// Largest Nc in one command APDU (longer data is chained).
    pub max_command_data: usize,
    /// Largest Ne worth asking for in one command.
    pub max_response_data: usize,
}

impl Limits {
    /// What a transport's stated limits allow.
    pub fn from_transport(info: &TransportInfo) -> Self {
        let max_cmd = info.max_command_len as usize;
        let max_resp = (info.max_response_len as usize).saturating_sub(2);
        // Header 4 bytes; short Lc 1 + Le 1; extended Lc 3 + Le 2.
        let short_cmd = max_cmd.saturating_sub(6).min(SHORT_MAX_DATA);
        let short_resp = max_resp.min(SHORT_MAX_LE);
        let ext_cmd = max_cmd.saturating_sub(9).min(EXTENDED_MAX_DATA);
        let ext_resp = max_resp.min(EXTENDED_MAX_LE);
        // Extended length only helps if the link carries more than short APDUs would.
        if info.extended_length && (ext_cmd > short_cmd || ext_resp > short_resp) {
            Self {
                extended: true,
                max_command_data: ext_cmd.max(1),
                max_response_data: ext_resp.max(1),
            }
        } else {
            Self::short(short_cmd, short_resp)
        }
    }

    fn short(cmd: usize, resp: usize) -> Self {
        Self {
            extended: false,
            max_command_data: cmd.clamp(1, SHORT_MAX_DATA),
            max_response_data: resp.clamp(1, SHORT_MAX_LE),
        }
    }
}

/// Anything that exchanges whole commands for whole responses: the raw [`CardChannel`],
/// and later the secure-messaging wrapper around it.
#[async_trait::async_trait]
pub trait ApduChannel: Send + Sync {
    /// Send `cmd`; return the complete response (any SW, including errors).
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError>;

    /// What one exchange can carry now.
    fn limits(&self) -> Limits;

    /// Called when the card answered `6700` to an extended-length request the link allows:
    /// from now on, stay within short APDUs. Default: nothing to adapt.
    fn card_refused_extended(&self) {}
}

/// The channel straight over a transport.
pub struct CardChannel {
    transport: SharedTransport,
    info: TransportInfo,
    /// Set once the card has refused extended length (some contactless CIE chips answer
    /// `6700` although the phone allows it).
    short_only: AtomicBool,
}

impl std::fmt::Debug for CardChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardChannel")
            .field("info", &self.info)
            .field("short_only", &self.short_only)
            .finish_non_exhaustive()
    }
}

impl CardChannel {
    /// A channel over `transport`, reading its limits once.
    pub fn new(transport: SharedTransport) -> Self {
        let info = transport.info();
        Self {
            transport,
            info,
            short_only: AtomicBool::new(false),
        }
    }

    /// The transport's self-description.
    pub fn info(&self) -> &TransportInfo {
        &self.info
    }

    /// One APDU on the wire; the response split into data and SW.
    async fn exchange(&self, cmd: &Command) -> Result<Response, ApduError> {
        let bytes = cmd.encode(self.limits().extended)?;
        let raw = self.transport.transmit(bytes).await?;
        Response::from_bytes(raw)
    }

    /// One logical command (data fits one APDU), with `6Cxx` and `61xx` handled.
    async fn transmit_single(&self, cmd: &Command) -> Result<Response, ApduError> {
        let mut resp = self.exchange(cmd).await?;
        if let SwKind::WrongLe { exact } = resp.sw.kind() {
            // ISO 7816-3 §12.2.3: resend the same command with Le = SW2, once.
            let retry = cmd.clone().with_le(usize::from(exact));
            resp = self.exchange(&retry).await?;
            if matches!(resp.sw.kind(), SwKind::WrongLe { .. }) {
                return Err(ApduError::CardMisbehaved(
                    "repeated 6Cxx for the same command",
                ));
            }
        }
        let mut data = std::mem::take(&mut resp.data);
        let mut sw = resp.sw;
        while let SwKind::BytesRemaining { remaining } = sw.kind() {
            // GET RESPONSE goes in clear on the same logical channel: no chaining bit and
            // no secure-messaging bits, even when the command was protected (the protected
            // answer is collected whole, then unwrapped; cie.md §3.1, ISO 7816-4 §5.3.4).
            let get = Command::new(cmd.cla & CLA_CHANNEL_MASK, INS_GET_RESPONSE, 0, 0)
                .with_le(usize::from(remaining).min(self.limits().max_response_data));
            let part = self.exchange(&get).await?;
            if part.data.is_empty() && matches!(part.sw.kind(), SwKind::BytesRemaining { .. }) {
                return Err(ApduError::CardMisbehaved("61xx with no data"));
            }
            data.extend_from_slice(&part.data);
            if data.len() > MAX_CHAINED_RESPONSE {
                return Err(ApduError::CardMisbehaved("endless GET RESPONSE"));
            }
            sw = part.sw;
        }
        Ok(Response { data, sw })
    }
}

#[async_trait::async_trait]
impl ApduChannel for CardChannel {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        let max = self.limits().max_command_data;
        if cmd.data.len() <= max {
            return self.transmit_single(cmd).await;
        }
        // Command chaining (ISO 7816-4 §5.4.1): every part but the last carries the chaining
        // bit and no Le; each must be acknowledged with 9000 before the next is sent.
        let mut parts = cmd.data.chunks(max).peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            let mut piece = Command::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2).with_data(part);
            if last {
                piece.le = cmd.le;
                return self.transmit_single(&piece).await;
            }
            piece.cla |= CLA_CHAINING;
            let resp = self.exchange(&piece).await?;
            if resp.sw != Sw::OK {
                return Ok(resp);
            }
        }
        Err(ApduError::CardMisbehaved("empty command chain"))
    }

    fn limits(&self) -> Limits {
        let limits = Limits::from_transport(&self.info);
        if self.short_only.load(Ordering::Relaxed) {
            Limits::short(limits.max_command_data, limits.max_response_data)
        } else {
            limits
        }
    }

    fn card_refused_extended(&self) {
        self.short_only.store(true, Ordering::Relaxed);
    }
}

// A borrowed or shared channel is a channel: secure messaging and applets can run over a
// `&CardChannel` without taking it over.
#[async_trait::async_trait]
impl<T: ApduChannel + ?Sized> ApduChannel for &T {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        (**self).transmit(cmd).await
    }

    fn limits(&self) -> Limits {
        (**self).limits()
    }

    fn card_refused_extended(&self) {
        (**self).card_refused_extended()
    }
}

#[async_trait::async_trait]
impl<T: ApduChannel + ?Sized> ApduChannel for std::sync::Arc<T> {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        (**self).transmit(cmd).await
    }

    fn limits(&self) -> Limits {
        (**self).limits()
    }

    fn card_refused_extended(&self) {
        (**self).card_refused_extended()
    }
}
