//! `VirtualCard`: an ISO 7816-4 card model with a file system, behind `CardTransport`.
//!
//! Supported commands: SELECT (`A4`), READ BINARY (`B0`, odd `B1`), UPDATE BINARY (`D6`,
//! with command chaining) and GET RESPONSE (`C0`). Everything else is `6D00`, except on a
//! card with the IAS application (the CIE presets), which adds the commands of
//! [`crate::ias`] and secure messaging. The knobs in
//! [`CardConfig`] reproduce the behaviours real cards and readers differ on (extended
//! length, buffer size, `61xx` delivery, end-of-file status), so the core's APDU layer can
//! be tested against each.

use std::sync::{Mutex, MutexGuard};

use cie_core::transport::{CardTransport, TransportError, TransportInfo, TransportKind};

use crate::ber;
use crate::cns::{self, CnsApp};
use crate::command::Command;
use crate::emrtd::{self, EmrtdApp};
use crate::fs::{Access, Df, FileSystem, Node};
use crate::ias::{self, CieVariant, IasApp};

/// Status words used by the card.
mod sw {
    pub const OK: u16 = 0x9000;
    pub const EOF_WARNING: u16 = 0x6282;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const CHANNEL_NOT_SUPPORTED: u16 = 0x6881;
    pub const SM_NOT_SUPPORTED: u16 = 0x6882;
    pub const LAST_OF_CHAIN_EXPECTED: u16 = 0x6883;
    pub const CHAINING_NOT_SUPPORTED: u16 = 0x6884;
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const NO_CURRENT_EF: u16 = 0x6986;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const NOT_FOUND: u16 = 0x6A82;
    pub const NOT_ENOUGH_MEMORY: u16 = 0x6A84;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const WRONG_OFFSET: u16 = 0x6B00;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
}

/// Upper bound on data accumulated through command chaining, so a hostile chain cannot
/// grow the card's memory without limit.
const MAX_CHAINED_DATA: usize = 1 << 20;

/// What READ BINARY answers when Le asks for more than the file holds past the offset.
/// (An offset at or past the end is always `6B00`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EofMode {
    /// Return the shorter data with `9000`.
    ShortData,
    /// Return the shorter data with `6282` ("end of file reached before reading Le bytes").
    #[default]
    EndOfFile,
    /// Return no data and `6Cxx`, xx = the exact length available; the reader must resend
    /// with that Le. When the exact length does not fit one byte (over 255, possible only
    /// with extended Le), the card falls back to data + `6282`.
    WrongLe,
}

/// Behaviour and reported limits of a [`VirtualCard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardConfig {
    /// Accept extended-length commands; when false they get `6700`. Reported in `info()`.
    pub extended_length: bool,
    /// Most data bytes the card returns in one response (its I/O buffer). READ BINARY
    /// returns at most this much (with `9000` if the file goes on); any other response
    /// longer than this goes out through `61xx` / GET RESPONSE.
    pub max_response_data: usize,
    /// When set, a response with more data than this is sent as the first part plus `61xx`
    /// (xx = bytes remaining, `00` if 256 or more); the rest comes through GET RESPONSE.
    pub get_response_chunk: Option<usize>,
    /// READ BINARY behaviour at end of file.
    pub eof_mode: EofMode,
    /// Accept command chaining (CLA bit `0x10`) for UPDATE BINARY; when false, `6884`.
    pub chaining: bool,
    /// ATR reported by `info()`.
    pub atr: Option<Vec<u8>>,
    /// Link kind reported by `info()`.
    pub kind: TransportKind,
    /// Largest command APDU the simulated link carries; longer ones fail with
    /// `TransportError::Io`, as Android's `IsoDep` does.
    pub max_command_len: u32,
    /// Largest response (status word included) the simulated link carries; a longer one
    /// fails with `TransportError::Io`.
    pub max_response_len: u32,
}

impl Default for CardConfig {
    fn default() -> Self {
        Self::short()
    }
}

impl CardConfig {
    /// Short APDUs only: 256-byte responses, 261/258-byte link limits, `6282` at EOF,
    /// chaining on, no forced `61xx`, kind `Virtual`, no ATR.
    pub fn short() -> Self {
        Self {
            extended_length: false,
            max_response_data: 256,
            get_response_chunk: None,
            eof_mode: EofMode::EndOfFile,
            chaining: true,
            atr: None,
            kind: TransportKind::Virtual,
            max_command_len: 261,
            max_response_len: 258,
        }
    }

    /// Extended length with a `max_response_data`-byte buffer; the link carries any
    /// extended command (65 544 bytes) and `max_response_data + 2` byte responses.
    pub fn extended(max_response_data: usize) -> Self {
        Self {
            extended_length: true,
            max_response_data,
            max_command_len: 4 + 3 + 65535 + 2,
            max_response_len: u32::try_from(max_response_data.saturating_add(2))
                .unwrap_or(u32::MAX),
            ..Self::short()
        }
    }

    /// What `CardTransport::info` reports for this configuration.
    pub fn info(&self) -> TransportInfo {
        TransportInfo {
            kind: self.kind,
            extended_length: self.extended_length,
            max_command_len: self.max_command_len,
            max_response_len: self.max_response_len,
            atr: self.atr.clone(),
        }
    }
}

/// Response data not yet fetched with GET RESPONSE, and the final status word.
#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    sw: u16,
}

/// An unfinished command chain.
#[derive(Debug)]
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

#[derive(Debug)]
struct State {
    fs: FileSystem,
    /// Path of the current DF (child indices from the MF).
    current_df: Vec<usize>,
    /// Index of the current EF among the current DF's children.
    current_ef: Option<usize>,
    pending: Option<Pending>,
    chain: Option<Chain>,
    log: Vec<Vec<u8>>,
    /// The IAS application (CIE presets only).
    ias: Option<IasApp>,
    /// The CNS application (the virtual CNS only).
    cns: Option<CnsApp>,
    /// The eMRTD application's protocol state (cards with [`crate::emrtd`]).
    emrtd: Option<EmrtdApp>,
    /// The command being run came under the eMRTD application's secure messaging.
    secure_emrtd: bool,
    /// Whether the command being run arrived under secure messaging.
    secure: bool,
}

/// One card answer before `61xx` delivery: data and status word.
struct Reply {
    data: Vec<u8>,
    sw: u16,
}

impl Reply {
    fn sw(sw: u16) -> Self {
        Self {
            data: Vec::new(),
            sw,
        }
    }

    fn ok(data: Vec<u8>) -> Self {
        Self { data, sw: sw::OK }
    }
}

type CardResult<T> = Result<T, u16>;

/// Where a SELECT lands.
struct Target {
    df: Vec<usize>,
    ef: Option<usize>,
}

/// A virtual ISO 7816-4 card. State sits behind a `Mutex` so the card is `Send + Sync`
/// and can be shared as `Arc<dyn CardTransport>`.
#[derive(Debug)]
pub struct VirtualCard {
    config: CardConfig,
    state: Mutex<State>,
}

impl VirtualCard {
    /// A card with file system `fs` and behaviour `config`; the MF is selected.
    pub fn new(fs: FileSystem, config: CardConfig) -> Self {
        Self::with_parts(fs, config, None, None)
    }

    /// A card with the eMRTD application (see [`crate::emrtd`]) and, optionally, the IAS one.
    pub(crate) fn with_emrtd_and_ias(
        fs: FileSystem,
        config: CardConfig,
        app: EmrtdApp,
        ias: Option<CieVariant>,
    ) -> Self {
        Self::with_parts(fs, config, ias.map(IasApp::new), Some(app))
    }

    /// A card with the eMRTD application only.
    pub(crate) fn with_emrtd(fs: FileSystem, config: CardConfig, app: EmrtdApp) -> Self {
        Self::with_emrtd_and_ias(fs, config, app, None)
    }

    /// A card with the CNS application only.
    pub(crate) fn with_cns(fs: FileSystem, config: CardConfig, app: CnsApp) -> Self {
        let card = Self::with_parts(fs, config, None, None);
        card.lock().cns = Some(app);
        card
    }

    fn with_parts(
        fs: FileSystem,
        config: CardConfig,
        ias: Option<IasApp>,
        emrtd: Option<EmrtdApp>,
    ) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                fs,
                current_df: Vec::new(),
                current_ef: None,
                pending: None,
                chain: None,
                log: Vec::new(),
                ias,
                cns: None,
                secure: false,
                emrtd,
                secure_emrtd: false,
            }),
        }
    }

    /// The same card (same files, keys and PIN counters; fresh session) with another
    /// configuration.
    pub fn with_config(self, config: CardConfig) -> Self {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut ias = state.ias;
        if let Some(ias) = ias.as_mut() {
            ias.power_cycle();
        }
        let mut emrtd = state.emrtd;
        if let Some(e) = emrtd.as_mut() {
            e.power_cycle();
        }
        let mut cns = state.cns;
        if let Some(c) = cns.as_mut() {
            c.power_cycle();
        }
        let card = Self::with_parts(state.fs, config, ias, emrtd);
        card.lock().cns = cns;
        card
    }

    /// Take the card out of the field and back ("a new tap"): the MF is selected again and
    /// pending responses, command chains and the IAS session (SM keys, DAPP state, verified
    /// PIN) are dropped. Files, keys and PIN/PUK retry counters persist. The APDU log is kept.
    pub fn power_cycle(&self) {
        let mut state = self.lock();
        state.current_df.clear();
        state.current_ef = None;
        state.pending = None;
        state.chain = None;
        if let Some(ias) = state.ias.as_mut() {
            ias.power_cycle();
        }
        if let Some(e) = state.emrtd.as_mut() {
            e.power_cycle();
        }
        if let Some(c) = state.cns.as_mut() {
            c.power_cycle();
        }
    }

    /// Same as [`VirtualCard::power_cycle`] (a card reset).
    pub fn reset(&self) {
        self.power_cycle();
    }

    /// PIN tries left (3 = none spent, 0 = blocked); `None` without the IAS or CNS
    /// application.
    pub fn pin_tries_left(&self) -> Option<u8> {
        let state = self.lock();
        match (&state.ias, &state.cns) {
            (Some(ias), _) => Some(ias.pin_tries_left()),
            (None, Some(cns)) => Some(cns.pin_tries_left()),
            (None, None) => None,
        }
    }

    /// PUK tries left (10 = none spent); `None` without the IAS application.
    pub fn puk_tries_left(&self) -> Option<u8> {
        self.lock().ias.as_ref().map(IasApp::puk_tries_left)
    }

    /// The CIE variant of the IAS application, if the card has one.
    pub fn variant(&self) -> Option<CieVariant> {
        self.lock().ias.as_ref().map(|i| i.variant().clone())
    }

    /// The configuration in use.
    pub fn config(&self) -> &CardConfig {
        &self.config
    }

    /// Every command APDU received so far (including malformed ones), in order.
    pub fn log(&self) -> Vec<Vec<u8>> {
        self.lock().log.clone()
    }

    /// Number of command APDUs received so far.
    pub fn apdu_count(&self) -> usize {
        self.lock().log.len()
    }

    /// Forget the recorded APDUs.
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Contents of the EF reached by `fids` from the MF (e.g. `&[0x5000, 0x5001]`), for
    /// tests that check UPDATE BINARY.
    pub fn file_contents(&self, fids: &[u16]) -> Option<Vec<u8>> {
        let state = self.lock();
        let (last, dfs) = fids.split_last()?;
        let mut df = state.fs.mf();
        for fid in dfs {
            match df.children().get(df.child_df(*fid)?) {
                Some(Node::Df(child)) => df = child,
                _ => return None,
            }
        }
        df.ef(df.child_ef(*last)?).map(|ef| ef.data().to_vec())
    }

    /// Run one command APDU through the card model and return the response (data ‖ SW1 SW2).
    /// This is the card alone: link limits are not applied (see [`CardTransport::transmit`]).
    /// Never panics; malformed input gets an error status word.
    pub fn process(&self, apdu: &[u8]) -> Vec<u8> {
        let mut state = self.lock();
        state.log.push(apdu.to_vec());
        let reply = self.dispatch(&mut state, apdu);
        self.deliver(&mut state, reply)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock must not make the card unusable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Largest data part sent in one response before switching to `61xx`.
    fn chunk_limit(&self) -> usize {
        self.config
            .get_response_chunk
            .unwrap_or(usize::MAX)
            .min(self.config.max_response_data)
            .max(1)
    }

    /// Split long answers into first part + `61xx`, keeping the rest for GET RESPONSE.
    fn deliver(&self, state: &mut State, reply: Reply) -> Vec<u8> {
        let Reply { mut data, sw } = reply;
        let chunk = self.chunk_limit();
        let sw = if data.len() > chunk {
            let rest = data.split_off(chunk);
            let more = sw_61(rest.len());
            // Keep the command's own final status for the last GET RESPONSE.
            state.pending = Some(Pending { data: rest, sw });
            more
        } else {
            sw
        };
        data.extend_from_slice(&sw.to_be_bytes());
        data
    }

    fn dispatch(&self, state: &mut State, apdu: &[u8]) -> Reply {
        match self.dispatch_inner(state, apdu) {
            Ok(reply) => reply,
            Err(sw) => Reply::sw(sw),
        }
    }

    fn dispatch_inner(&self, state: &mut State, apdu: &[u8]) -> CardResult<Reply> {
        // Check order as on real cards: header length, class, instruction, then body.
        let (&cla, &ins) = match apdu {
            [cla, ins, _, _, ..] => (cla, ins),
            _ => return Err(sw::WRONG_LENGTH),
        };
        let emrtd_sm = state.emrtd.as_ref().is_some_and(EmrtdApp::sm_established);
        let sm_ready = emrtd_sm || state.ias.as_ref().is_some_and(IasApp::sm_established);
        let secure = check_cla(cla, sm_ready)?;
        let ias_ins = state.ias.is_some() && ias::IAS_INS.contains(&ins);
        let emrtd_ins = state.emrtd.is_some() && emrtd::EMRTD_INS.contains(&ins);
        let cns_ins = state.cns.is_some() && cns::CNS_INS.contains(&ins);
        if !matches!(ins, 0xA4 | 0xB0 | 0xB1 | 0xD6 | 0xC0) && !ias_ins && !emrtd_ins && !cns_ins {
            return Err(sw::INS_NOT_SUPPORTED);
        }
        let cmd = Command::decode(apdu).map_err(|_| sw::WRONG_LENGTH)?;
        if cmd.extended && !self.config.extended_length {
            return Err(sw::WRONG_LENGTH);
        }
        if !secure {
            if ins != 0xC0 {
                if let Some(ias) = state.ias.as_mut() {
                    ias.on_clear_command();
                }
                if let Some(e) = state.emrtd.as_mut() {
                    e.on_clear_command(ins);
                }
            }
            let reply = self.run(state, cmd);
            if let Some(e) = state.emrtd.as_mut() {
                e.finish();
            }
            return reply;
        }
        if emrtd_sm {
            // eMRTD secure messaging (BAC, PACE or CA keys): SM errors answer in clear.
            let Some(app) = state.emrtd.as_mut() else {
                return Err(sw::SM_NOT_SUPPORTED);
            };
            let plain = app.unwrap(&cmd)?;
            state.secure = true;
            state.secure_emrtd = true;
            let reply = match self.run(state, plain) {
                Ok(r) => r,
                Err(sw) => Reply::sw(sw),
            };
            state.secure = false;
            state.secure_emrtd = false;
            let Some(app) = state.emrtd.as_mut() else {
                return Ok(reply);
            };
            let data = app.wrap(ins, &reply.data, reply.sw);
            app.finish();
            return Ok(Reply { data, sw: reply.sw });
        }
        let Some(ias) = state.ias.as_mut() else {
            return Err(sw::SM_NOT_SUPPORTED);
        };
        // Secure messaging: SM errors answer in clear (and end the session); everything
        // else, errors included, is protected.
        let plain = ias.unwrap(&cmd)?;
        state.secure = true;
        let reply = match self.run(state, plain) {
            Ok(r) => r,
            Err(sw) => Reply::sw(sw),
        };
        state.secure = false;
        let Some(ias) = state.ias.as_mut() else {
            return Ok(reply);
        };
        let (data, sw) = ias.wrap(ins, &reply.data, reply.sw);
        Ok(Reply { data, sw })
    }

    /// Run a plain (or already unwrapped) command.
    fn run(&self, state: &mut State, mut cmd: Command) -> CardResult<Reply> {
        let ins = cmd.ins;
        // Any command other than GET RESPONSE forfeits undelivered response data.
        if ins != 0xC0 {
            state.pending = None;
        }
        // Command chaining: collect pieces until the last one, then run the whole command.
        if let Some(prev) = state.chain.take() {
            if (prev.ins, prev.p1, prev.p2) != (cmd.ins, cmd.p1, cmd.p2) {
                return Err(sw::LAST_OF_CHAIN_EXPECTED);
            }
            let mut data = prev.data;
            data.extend_from_slice(&cmd.data);
            cmd.data = data;
        }
        // PACE's GENERAL AUTHENTICATE steps carry the chaining bit but are whole commands,
        // each answered on its own (9303-11 §4.4).
        let pace_step = cmd.ins == 0x86 && state.emrtd.is_some();
        if cmd.is_chained() && !pace_step {
            let chainable = cmd.ins == 0xD6
                || (state.ias.is_some() && matches!(cmd.ins, 0x22 | 0x2A | 0x82 | 0x88 | 0x24))
                || (state.cns.is_some() && cmd.ins == 0x2A);
            if !self.config.chaining || !chainable {
                return Err(sw::CHAINING_NOT_SUPPORTED);
            }
            if cmd.data.len() > MAX_CHAINED_DATA {
                return Err(sw::NOT_ENOUGH_MEMORY);
            }
            state.chain = Some(Chain {
                ins: cmd.ins,
                p1: cmd.p1,
                p2: cmd.p2,
                data: cmd.data,
            });
            return Ok(Reply::ok(Vec::new()));
        }
        match cmd.ins {
            0xA4 => self.select(state, &cmd),
            0xB0 => self.read_binary(state, &cmd),
            0xB1 => self.read_binary_odd(state, &cmd),
            0xD6 => self.update_binary(state, &cmd),
            0xC0 => self.get_response(state, &cmd),
            _ => {
                if let Some(app) = state.cns.as_mut() {
                    let (data, sw) = app.command(&cmd)?;
                    return Ok(Reply { data, sw });
                }
                let secure = state.secure;
                if state.emrtd.is_some() && routes_to_emrtd(state, &cmd) {
                    let app = state.emrtd.as_mut().ok_or(sw::INS_NOT_SUPPORTED)?;
                    let (data, sw) = app.command(&cmd, secure)?;
                    return Ok(Reply { data, sw });
                }
                let ias = state.ias.as_mut().ok_or(sw::INS_NOT_SUPPORTED)?;
                let (data, sw) = ias.command(&cmd, secure)?;
                Ok(Reply { data, sw })
            }
        }
    }

    // ---- SELECT ----------------------------------------------------------------------

    fn select(&self, state: &mut State, cmd: &Command) -> CardResult<Reply> {
        // P2: bits 3-4 choose the answer; occurrence bits other than "first" unsupported.
        let template = match cmd.p2 {
            0x00 => Some(0x6F), // FCI
            0x04 => Some(0x62), // FCP
            0x0C => None,       // no data
            _ => return Err(sw::WRONG_P1P2),
        };
        let data = cmd.data.as_slice();
        let target = match cmd.p1 {
            0x00 => match data {
                [] => Target {
                    df: vec![],
                    ef: None,
                },
                [hi, lo] => select_fid(state, u16::from_be_bytes([*hi, *lo]))?,
                _ => return Err(sw::WRONG_LENGTH),
            },
            0x01 => {
                let fid = two_bytes(data)?;
                let df = current_df(state)?;
                let i = df.child_df(fid).ok_or(sw::NOT_FOUND)?;
                Target {
                    df: child_path(&state.current_df, i),
                    ef: None,
                }
            }
            0x02 => {
                let fid = two_bytes(data)?;
                let i = current_df(state)?.child_ef(fid).ok_or(sw::NOT_FOUND)?;
                Target {
                    df: state.current_df.clone(),
                    ef: Some(i),
                }
            }
            0x03 => {
                if !data.is_empty() {
                    return Err(sw::WRONG_LENGTH);
                }
                let mut df = state.current_df.clone();
                df.pop().ok_or(sw::NOT_FOUND)?;
                Target { df, ef: None }
            }
            0x04 => {
                if data.is_empty() || data.len() > 16 {
                    return Err(sw::WRONG_LENGTH);
                }
                let df = state.fs.find_df_by_name(data).ok_or(sw::NOT_FOUND)?;
                Target { df, ef: None }
            }
            0x08 | 0x09 => {
                if data.is_empty() || !data.len().is_multiple_of(2) {
                    return Err(sw::WRONG_LENGTH);
                }
                let mut fids: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let start = if cmd.p1 == 0x08 {
                    // The path excludes the MF's own id; tolerate readers that include it.
                    if fids.first() == Some(&crate::fs::MF_FID) {
                        fids.remove(0);
                    }
                    Vec::new()
                } else {
                    state.current_df.clone()
                };
                walk_path(&state.fs, start, &fids)?
            }
            _ => return Err(sw::WRONG_P1P2),
        };
        state.current_df = target.df;
        state.current_ef = target.ef;
        let Some(tag) = template else {
            return Ok(Reply::ok(Vec::new()));
        };
        let df = current_df(state)?;
        let contents = match state.current_ef.and_then(|i| df.ef(i)) {
            Some(ef) => {
                let mut c = ber::tlv(&[0x80], &size_bytes(ef.data().len()));
                c.extend(ber::tlv(&[0x82], &[0x01])); // working EF, transparent
                c.extend(ber::tlv(&[0x83], &ef.fid().to_be_bytes()));
                if let Some(sfi) = ef.sfi() {
                    c.extend(ber::tlv(&[0x88], &[sfi << 3]));
                }
                c
            }
            None => {
                let mut c = ber::tlv(&[0x82], &[0x38]); // DF
                if let Some(fid) = df.fid() {
                    c.extend(ber::tlv(&[0x83], &fid.to_be_bytes()));
                }
                if let Some(name) = df.name() {
                    c.extend(ber::tlv(&[0x84], name));
                }
                c
            }
        };
        Ok(Reply::ok(ber::tlv(&[tag], &contents)))
    }

    // ---- READ BINARY -----------------------------------------------------------------

    /// `B0`: offset in P1-P2 (15 bits), or SFI in P1 (bit 8 set) and offset in P2.
    fn read_binary(&self, state: &mut State, cmd: &Command) -> CardResult<Reply> {
        if !cmd.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let le = cmd.le.ok_or(sw::WRONG_LENGTH)?;
        let offset = resolve_even(state, cmd)?;
        check_read_access(state)?;
        let sm_block = emrtd_sm_block(state);
        let content = current_ef_data(state)?;
        Ok(self.read(content, offset, le, false, sm_block))
    }

    /// `B1`: P1-P2 names the EF (`0000` current, SFI, or FID); the offset is in data object
    /// `54`; the data comes back wrapped in data object `53`.
    fn read_binary_odd(&self, state: &mut State, cmd: &Command) -> CardResult<Reply> {
        let le = cmd.le.ok_or(sw::WRONG_LENGTH)?;
        if cmd.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let offset = match ber::parse_single(&cmd.data) {
            Some((0x54, v)) if !v.is_empty() && v.len() <= 4 => {
                v.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
            }
            _ => return Err(sw::WRONG_DATA),
        };
        let p1p2 = cmd.p1p2();
        if p1p2 != 0 {
            let sfi = (p1p2 & 0x1F) as u8;
            // First eleven bits zero and bits 5-1 not all equal: an SFI; otherwise a FID.
            let index = if p1p2 & 0xFFE0 == 0 && sfi != 0x1F {
                current_df(state)?.ef_by_sfi(sfi)
            } else {
                current_df(state)?.child_ef(p1p2)
            };
            state.current_ef = Some(index.ok_or(sw::NOT_FOUND)?);
        }
        check_read_access(state)?;
        if le < 2 {
            // Not even room for an empty `53 00`.
            return Err(sw::WRONG_LENGTH);
        }
        let sm_block = emrtd_sm_block(state);
        let content = current_ef_data(state)?;
        Ok(self.read(content, offset, le, true, sm_block))
    }

    /// Shared READ BINARY core: `wrap` selects the odd-INS `53` wrapping; `sm_block` (the
    /// eMRTD SM cipher's block size) shrinks the answer so its protected form fits the
    /// card's buffer, as chips do (223 plaintext bytes for AES in a short response).
    fn read(
        &self,
        content: &[u8],
        offset: usize,
        le: usize,
        wrap: bool,
        sm_block: Option<usize>,
    ) -> Reply {
        if offset >= content.len() {
            return Reply::sw(sw::WRONG_OFFSET);
        }
        let available = content.len() - offset;
        // What the reader asked for, clipped to the card's buffer.
        let buffer = self.config.max_response_data.max(1);
        let buffer = match sm_block {
            Some(block) => sm_plain_fit(buffer, block).max(1),
            None => buffer,
        };
        let cap = le.min(buffer);
        let fit = if wrap { fit_wrapped(cap) } else { cap };
        let n = available.min(fit);
        let body = &content[offset..offset + n];
        let data = if wrap {
            ber::tlv(&[0x53], body)
        } else {
            body.to_vec()
        };
        if available >= fit {
            return Reply::ok(data);
        }
        match self.config.eof_mode {
            EofMode::ShortData => Reply::ok(data),
            EofMode::EndOfFile => Reply {
                data,
                sw: sw::EOF_WARNING,
            },
            EofMode::WrongLe => match u8::try_from(data.len()) {
                Ok(exact) if exact > 0 => Reply::sw(0x6C00 | u16::from(exact)),
                _ => Reply {
                    data,
                    sw: sw::EOF_WARNING,
                },
            },
        }
    }

    // ---- UPDATE BINARY ---------------------------------------------------------------

    fn update_binary(&self, state: &mut State, cmd: &Command) -> CardResult<Reply> {
        if cmd.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let offset = resolve_even(state, cmd)?;
        let index = state.current_ef.ok_or(sw::NO_CURRENT_EF)?;
        let path = state.current_df.clone();
        let ef = state
            .fs
            .df_mut(&path)
            .and_then(|df| df.ef_mut(index))
            .ok_or(sw::NO_CURRENT_EF)?;
        let file = ef.data_mut();
        if offset > file.len() {
            return Err(sw::WRONG_OFFSET);
        }
        // Transparent EFs have a fixed size: writing past the end is refused.
        let end = offset
            .checked_add(cmd.data.len())
            .filter(|end| *end <= file.len())
            .ok_or(sw::NOT_ENOUGH_MEMORY)?;
        file[offset..end].copy_from_slice(&cmd.data);
        Ok(Reply::ok(Vec::new()))
    }

    // ---- GET RESPONSE ----------------------------------------------------------------

    fn get_response(&self, state: &mut State, cmd: &Command) -> CardResult<Reply> {
        if cmd.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if !cmd.data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        let le = cmd.le.ok_or(sw::WRONG_LENGTH)?;
        let Pending { mut data, sw } = state.pending.take().ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        let n = le.min(data.len()).min(self.chunk_limit());
        let rest = data.split_off(n);
        if rest.is_empty() {
            Ok(Reply { data, sw })
        } else {
            let more = sw_61(rest.len());
            state.pending = Some(Pending { data: rest, sw });
            Ok(Reply { data, sw: more })
        }
    }
}

#[async_trait::async_trait]
impl CardTransport for VirtualCard {
    /// Applies the configured link limits, then [`VirtualCard::process`].
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        if apdu.len() > self.config.max_command_len as usize {
            return Err(TransportError::Io {
                reason: format!(
                    "command of {} bytes exceeds the link maximum of {}",
                    apdu.len(),
                    self.config.max_command_len
                ),
            });
        }
        let response = self.process(&apdu);
        if response.len() > self.config.max_response_len as usize {
            return Err(TransportError::Io {
                reason: format!(
                    "response of {} bytes exceeds the link maximum of {}",
                    response.len(),
                    self.config.max_response_len
                ),
            });
        }
        Ok(response)
    }

    fn info(&self) -> TransportInfo {
        self.config.info()
    }
}

/// Interindustry class `0x00..=0x1F` only, no logical channels. Secure messaging
/// (`0x0C`) only when `sm_ready` (an IAS session with keys); returns whether the command is
/// protected.
fn check_cla(cla: u8, sm_ready: bool) -> CardResult<bool> {
    if cla & 0x80 != 0 || cla & 0xE0 == 0x20 {
        // Proprietary classes (incl. FF) and the RFU 001x xxxx range.
        return Err(sw::CLA_NOT_SUPPORTED);
    }
    if cla & 0x40 != 0 {
        // Further interindustry class: logical channels 4-19.
        return Err(sw::CHANNEL_NOT_SUPPORTED);
    }
    let secure = match cla & 0x0C {
        0 => false,
        0x0C if sm_ready => true,
        _ => return Err(sw::SM_NOT_SUPPORTED),
    };
    if cla & 0x03 != 0 {
        return Err(sw::CHANNEL_NOT_SUPPORTED);
    }
    Ok(secure)
}

/// `6982` unless the current EF may be read by this command.
fn check_read_access(state: &State) -> CardResult<()> {
    let index = state.current_ef.ok_or(sw::NO_CURRENT_EF)?;
    let access = current_df(state)?
        .ef(index)
        .map(|ef| ef.read_access())
        .ok_or(sw::NO_CURRENT_EF)?;
    if access == Access::AfterEmrtdAccessControl {
        let ok = state.secure_emrtd && state.emrtd.as_ref().is_some_and(EmrtdApp::authenticated);
        return if ok {
            Ok(())
        } else {
            Err(sw::SECURITY_NOT_SATISFIED)
        };
    }
    match (access, &state.ias) {
        (Access::Always, _) => Ok(()),
        (access, Some(ias)) if ias.may_read(access, state.secure) => Ok(()),
        _ => Err(sw::SECURITY_NOT_SATISFIED),
    }
}

/// Which application runs a command both could take (GET CHALLENGE, EXTERNAL/INTERNAL
/// AUTHENTICATE, MSE SET): the eMRTD one under its own SM, for PACE, on a card without the
/// IAS application, or when the eMRTD application is the current DF.
fn routes_to_emrtd(state: &State, cmd: &Command) -> bool {
    if state.secure_emrtd || state.ias.is_none() || cmd.ins == 0x86 {
        return true;
    }
    if cmd.ins == 0x22 && cmd.p1p2() == 0xC1A4 {
        return true;
    }
    !state.secure && current_df(state).is_ok_and(|df| df.name() == Some(&emrtd::AID[..]))
}

/// `61xx`: xx = remaining bytes, `00` when 256 or more.
fn sw_61(remaining: usize) -> u16 {
    0x6100 | u16::from(u8::try_from(remaining).unwrap_or(0))
}

/// The eMRTD SM block size when the current command came under eMRTD SM.
fn emrtd_sm_block(state: &State) -> Option<usize> {
    if state.secure_emrtd {
        state.emrtd.as_ref().and_then(EmrtdApp::sm_block)
    } else {
        None
    }
}

/// Largest plaintext whose protected response (`87 L 01 ‖ padded cipher`, `99 02 SW`,
/// `8E 08 MAC`) fits `buffer` bytes.
fn sm_plain_fit(buffer: usize, block: usize) -> usize {
    let wrapped = |p: usize| {
        let c = (p / block + 1) * block;
        1 + ber::len_of_len(c + 1) + 1 + c + 4 + 10
    };
    let mut p = buffer;
    while p > 0 && wrapped(p) > buffer {
        p -= 1;
    }
    p
}

/// Largest content length whose `53 L content` encoding fits `cap` bytes.
fn fit_wrapped(cap: usize) -> usize {
    let mut n = cap.saturating_sub(2);
    while n > 0 && 1 + ber::len_of_len(n) + n > cap {
        n -= 1;
    }
    n
}

/// File size for FCP tag `80`: two bytes, more only if the file needs them.
fn size_bytes(size: usize) -> Vec<u8> {
    match u16::try_from(size) {
        Ok(s) => s.to_be_bytes().to_vec(),
        Err(_) => (size as u64).to_be_bytes()[4..].to_vec(),
    }
}

fn two_bytes(data: &[u8]) -> CardResult<u16> {
    match data {
        [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(sw::WRONG_LENGTH),
    }
}

fn child_path(parent: &[usize], i: usize) -> Vec<usize> {
    let mut p = parent.to_vec();
    p.push(i);
    p
}

fn current_df(state: &State) -> CardResult<&Df> {
    // The current path always points at a DF; fall back to "not found" rather than panic.
    state.fs.df(&state.current_df).ok_or(sw::NOT_FOUND)
}

fn current_ef_data(state: &State) -> CardResult<&[u8]> {
    let index = state.current_ef.ok_or(sw::NO_CURRENT_EF)?;
    current_df(state)?
        .ef(index)
        .map(|ef| ef.data())
        .ok_or(sw::NO_CURRENT_EF)
}

/// P1-P2 of even-INS READ/UPDATE BINARY: SFI form (selects that EF) or 15-bit offset.
fn resolve_even(state: &mut State, cmd: &Command) -> CardResult<usize> {
    if cmd.p1 & 0x80 == 0 {
        return Ok(usize::from(cmd.p1p2()));
    }
    let sfi = cmd.p1 & 0x1F;
    if cmd.p1 & 0x60 != 0 || sfi == 0 || sfi == 0x1F {
        return Err(sw::WRONG_P1P2);
    }
    let index = current_df(state)?.ef_by_sfi(sfi).ok_or(sw::NOT_FOUND)?;
    state.current_ef = Some(index);
    Ok(usize::from(cmd.p2))
}

/// SELECT P1=00 with a FID: the MF, the current DF, its children, its parent, or the
/// parent's children (the search order of ISO 7816-4 §7.1.1).
fn select_fid(state: &State, fid: u16) -> CardResult<Target> {
    if fid == crate::fs::MF_FID {
        return Ok(Target {
            df: vec![],
            ef: None,
        });
    }
    let cur = &state.current_df;
    let df = current_df(state)?;
    if df.fid() == Some(fid) {
        return Ok(Target {
            df: cur.clone(),
            ef: None,
        });
    }
    if let Some(t) = child_target(df, cur, fid) {
        return Ok(t);
    }
    if let Some((_, parent_path)) = cur.split_last() {
        let parent = state.fs.df(parent_path).ok_or(sw::NOT_FOUND)?;
        if parent.fid() == Some(fid) {
            return Ok(Target {
                df: parent_path.to_vec(),
                ef: None,
            });
        }
        if let Some(t) = child_target(parent, parent_path, fid) {
            return Ok(t);
        }
    }
    Err(sw::NOT_FOUND)
}

/// The child `fid` of `df` (at `path`) as a selection target.
fn child_target(df: &Df, path: &[usize], fid: u16) -> Option<Target> {
    let i = df.child_by_fid(fid)?;
    Some(match df.children().get(i)? {
        Node::Df(_) => Target {
            df: child_path(path, i),
            ef: None,
        },
        Node::Ef(_) => Target {
            df: path.to_vec(),
            ef: Some(i),
        },
    })
}

/// Follow `fids` from the DF at `start`: all but the last must be DFs.
fn walk_path(fs: &FileSystem, start: Vec<usize>, fids: &[u16]) -> CardResult<Target> {
    let mut path = start;
    let Some((last, dfs)) = fids.split_last() else {
        return Ok(Target { df: path, ef: None });
    };
    for fid in dfs {
        let df = fs.df(&path).ok_or(sw::NOT_FOUND)?;
        let i = df.child_df(*fid).ok_or(sw::NOT_FOUND)?;
        path.push(i);
    }
    let df = fs.df(&path).ok_or(sw::NOT_FOUND)?;
    child_target(df, &path, *last).ok_or(sw::NOT_FOUND)
}
