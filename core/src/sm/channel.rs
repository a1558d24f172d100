//! [`SecureChannel`]: an [`ApduChannel`] that protects every command and verifies every
//! response, over any inner channel (normally the raw [`crate::apdu::CardChannel`], whose
//! `61xx` handling collects the whole protected response before it is unwrapped).

use super::wrap::{self, DO8E_LEN, DO99_LEN, max_plain_in};
use super::{SmCipher, SmError, Ssc, unwrap};
use crate::apdu::{ApduChannel, ApduError, CLA_CHAINING, Command, Limits, Response, Sw};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Largest plaintext piece of one protected command: IAS-ECC §8.6.3.3 (cie.md §3.1) keeps
/// protected data within a short APDU, so longer data is split into 231-byte pieces *before*
/// wrapping, each with its own SSC and MAC. With 3DES, 231 is also exactly the most a short
/// APDU carries: `87 81 E9 01 ‖ 232` + `97 01 xx` + `8E 08 …` = 249 bytes.
pub const SM_CHAIN_PIECE: usize = 231;

struct State {
    ssc: Ssc,
    broken: bool,
}

/// Secure messaging over an inner channel. Commands are serialized: a second `transmit`
/// while one is running fails with [`SmError::Busy`] instead of corrupting the SSC. After
/// any failure past the point where the SSC was spent (MAC mismatch, lost card, a cancelled
/// exchange) the channel refuses further use with [`SmError::SessionBroken`].
pub struct SecureChannel<C: ApduChannel> {
    inner: C,
    cipher: Box<dyn SmCipher>,
    state: Mutex<State>,
    busy: AtomicBool,
}

impl<C: ApduChannel> fmt::Debug for SecureChannel<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureChannel")
            .field("cipher", &self.cipher)
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

/// Marks the channel busy for one exchange; if the exchange does not finish (an error, or
/// its future dropped), the session is marked broken.
struct InFlight<'a> {
    busy: &'a AtomicBool,
    state: &'a Mutex<State>,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(self.state).broken = true;
        }
        self.busy.store(false, Ordering::Release);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // No code panics while holding it; if one did, the broken flag still tells the truth.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: ApduChannel> SecureChannel<C> {
    /// Secure messaging with `cipher` over `inner`, the SSC starting at `ssc` (the next
    /// command uses `ssc + 1`).
    pub fn new(inner: C, cipher: Box<dyn SmCipher>, ssc: Ssc) -> Result<Self, SmError> {
        if ssc.len() != cipher.ssc_len() {
            return Err(SmError::SscLength {
                expected: cipher.ssc_len(),
                got: ssc.len(),
            });
        }
        Ok(Self {
            inner,
            cipher,
            state: Mutex::new(State { ssc, broken: false }),
            busy: AtomicBool::new(false),
        })
    }

    /// The inner channel.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Give back the inner channel (the session keys are dropped and wiped).
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// The current SSC (the value the last response was verified with).
    pub fn ssc(&self) -> Ssc {
        lock(&self.state).ssc.clone()
    }

    /// Re-seed the SSC, keeping the keys (the CIE does this after DAPP, cie.md §3.2 9.10).
    pub fn set_ssc(&self, ssc: Ssc) -> Result<(), SmError> {
        if ssc.len() != self.cipher.ssc_len() {
            return Err(SmError::SscLength {
                expected: self.cipher.ssc_len(),
                got: ssc.len(),
            });
        }
        lock(&self.state).ssc = ssc;
        Ok(())
    }

    /// Whether an earlier failure ended the session.
    pub fn is_broken(&self) -> bool {
        lock(&self.state).broken
    }

    fn begin(&self) -> Result<InFlight<'_>, SmError> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(SmError::Busy);
        }
        let guard = InFlight {
            busy: &self.busy,
            state: &self.state,
            done: true,
        };
        if lock(&self.state).broken {
            return Err(SmError::SessionBroken);
        }
        Ok(guard)
    }

    /// One protected APDU: wrap (lock held briefly), send (no lock), unwrap (lock again).
    async fn exchange(&self, cmd: &Command) -> Result<Response, ApduError> {
        let extended_ok = self.inner.limits().extended;
        let protected = {
            let mut st = lock(&self.state);
            wrap::wrap(&*self.cipher, &mut st.ssc, cmd, extended_ok)?
        };
        let resp = self.inner.transmit(&protected).await?;
        let mut st = lock(&self.state);
        Ok(unwrap::unwrap(&*self.cipher, &mut st.ssc, resp)?)
    }

    async fn transmit_locked(&self, cmd: &Command) -> Result<Response, ApduError> {
        let piece = self.limits().max_command_data;
        if cmd.data.len() <= piece {
            return self.exchange(cmd).await;
        }
        // SM command chaining: split the plaintext, protect each piece on its own; the
        // chaining bit on all but the last, which alone carries Le.
        let mut parts = cmd.data.chunks(piece).peekable();
        while let Some(part) = parts.next() {
            let mut one = Command::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2).with_data(part);
            if parts.peek().is_none() {
                one.le = cmd.le;
                return self.exchange(&one).await;
            }
            one.cla |= CLA_CHAINING;
            let resp = self.exchange(&one).await?;
            if resp.sw != Sw::OK {
                return Ok(resp);
            }
        }
        Err(ApduError::CardMisbehaved("empty command chain"))
    }
}

/// What fits through secure messaging over a link with `inner` limits, for a cipher with
/// `block`-byte blocks:
///
/// - command: the largest plaintext whose `DO87` plus `DO97` (3 bytes, 4 when extended)
///   plus `DO8E` (10) fits the inner Nc, and at most [`SM_CHAIN_PIECE`];
/// - response: the largest plaintext whose `DO87` plus `DO99` (4) plus `DO8E` (10) fits the
///   inner Ne.
///
/// Over a short link (Nc 255, Ne 256) that is 231 / 231 (`E7`) for 3DES and 223 / 223
/// (`DF`) for AES; over a 1 KiB extended link (Nc 1015, Ne 1022), 231 / 999 and 231 / 991.
pub fn sm_limits(inner: Limits, block: usize) -> Limits {
    let do97 = if inner.extended { 4 } else { 3 };
    let cmd_budget = inner.max_command_data.saturating_sub(do97 + DO8E_LEN);
    let resp_budget = inner.max_response_data.saturating_sub(DO99_LEN + DO8E_LEN);
    Limits {
        extended: inner.extended,
        max_command_data: max_plain_in(cmd_budget, block).clamp(1, SM_CHAIN_PIECE),
        max_response_data: max_plain_in(resp_budget, block).max(1),
    }
}

#[async_trait::async_trait]
impl<C: ApduChannel> ApduChannel for SecureChannel<C> {
    async fn transmit(&self, cmd: &Command) -> Result<Response, ApduError> {
        wrap::validate(cmd)?;
        let mut guard = self.begin()?;
        guard.done = false;
        let result = self.transmit_locked(cmd).await;
        guard.done = result.is_ok();
        result
    }

    fn limits(&self) -> Limits {
        sm_limits(self.inner.limits(), self.cipher.block_size())
    }

    fn card_refused_extended(&self) {
        self.inner.card_refused_extended();
    }
}
