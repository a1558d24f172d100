//! The validating side (the reference server's): RFC 6238 §5.2 / RFC 4226 §7.
//!
//! - TOTP: a window of ±`window` steps (1 by default, RFC 6238's "at most one step for
//!   network delay") centred on the account's recorded drift, so a phone whose clock slowly
//!   walks off keeps working;
//! - each step is accepted once: a code for a step at or before the last accepted one is
//!   refused as a replay (RFC 6238 §5.2 MUST);
//! - after `max_failures` consecutive failures the account is locked for a time that
//!   doubles per further failure, capped, so a guesser is slowed to a crawl but the owner
//!   is never locked out for good;
//! - every candidate in the window is compared in constant time and all are always
//!   computed, so timing tells nothing about which one (if any) matched.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::hotp::{Algorithm, Secret, TimeStep, hotp};

/// Tunables, with the defaults the reference server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Steps accepted on either side of the expected one (TOTP) / look-ahead (HOTP).
    pub window: u32,
    /// Largest drift (in steps) recorded and followed; beyond it the user must fix the clock.
    pub max_drift_steps: i64,
    /// Failures allowed before throttling starts.
    pub max_failures: u32,
    /// First lockout, seconds; doubles per further failure.
    pub lockout_base: u64,
    /// Longest lockout, seconds.
    pub lockout_max: u64,
}

impl Default for Policy {
    fn default() -> Self {
        // 5 free tries, then 30 s, 60 s, … capped at 15 min: ~100 guesses a day at most
        // against a 10^6 space, and the owner waits at most 15 minutes.
        Self {
            window: 1,
            max_drift_steps: 10,
            max_failures: 5,
            lockout_base: 30,
            lockout_max: 900,
        }
    }
}

/// Per-account validation state; the server stores it with the account and writes it back
/// in the same transaction as the verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// TOTP: last accepted step. HOTP: next expected counter.
    pub last_step: Option<u64>,
    /// Recorded drift in steps (accepted step minus expected step).
    pub drift_steps: i64,
    /// Consecutive failures.
    pub failures: u32,
    /// Unix time before which attempts are refused unseen.
    pub locked_until: u64,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; the step (TOTP) or counter (HOTP) matched and the drift now recorded.
    Accepted {
        /// Matched step or counter.
        step: u64,
        /// Drift recorded, in steps.
        drift_steps: i64,
    },
    /// Not a valid code now.
    Wrong,
    /// A code already used (or older than one used).
    Replayed,
    /// Too many failures: wait.
    Throttled {
        /// Seconds until attempts are looked at again.
        retry_after: u64,
    },
}

fn same_code(expected: &str, given: &str) -> bool {
    // Lengths are public (the digit count); contents compared in constant time.
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

fn fail(state: &mut AccountState, now: u64, policy: &Policy) {
    state.failures = state.failures.saturating_add(1);
    if state.failures >= policy.max_failures {
        let extra = state.failures - policy.max_failures;
        let wait = policy
            .lockout_base
            .saturating_mul(1u64 << extra.min(20))
            .min(policy.lockout_max);
        state.locked_until = now.saturating_add(wait);
    }
}

/// The secret and code parameters of the account being checked.
#[derive(Debug, Clone)]
pub struct Credential<'a> {
    /// Seed.
    pub secret: &'a Secret,
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: u8,
}

/// The first candidate counter whose code equals `code`. Every candidate is computed and
/// compared in constant time, with no early exit.
fn find_match(
    cred: &Credential<'_>,
    code: &str,
    candidates: impl Iterator<Item = u64>,
) -> Option<u64> {
    let code = code.trim();
    let mut matched = None;
    for candidate in candidates {
        let Ok(value) = hotp(cred.secret, candidate, cred.digits, cred.algorithm) else {
            continue;
        };
        if same_code(&value, code) && matched.is_none() {
            matched = Some(candidate);
        }
    }
    matched
}

fn accept(state: &mut AccountState, step: u64, last_step: u64, drift_steps: i64) -> Verdict {
    state.last_step = Some(last_step);
    state.drift_steps = drift_steps;
    state.failures = 0;
    state.locked_until = 0;
    Verdict::Accepted { step, drift_steps }
}

fn throttled(state: &AccountState, now: u64) -> Option<Verdict> {
    (now < state.locked_until).then(|| Verdict::Throttled {
        retry_after: state.locked_until - now,
    })
}

/// Check a TOTP `code` at server time `now`, updating `state`.
pub fn verify_totp(
    cred: &Credential<'_>,
    step: TimeStep,
    code: &str,
    now: u64,
    state: &mut AccountState,
    policy: &Policy,
) -> Verdict {
    if let Some(v) = throttled(state, now) {
        return v;
    }
    let Ok(expected_step) = step.counter(now) else {
        fail(state, now, policy);
        return Verdict::Wrong;
    };
    let centre = i128::from(expected_step) + i128::from(state.drift_steps);
    let w = i128::from(policy.window);
    let candidates = ((centre - w)..=(centre + w)).filter_map(|c| u64::try_from(c).ok());
    match find_match(cred, code, candidates) {
        Some(s) if state.last_step.is_some_and(|last| s <= last) => {
            fail(state, now, policy);
            Verdict::Replayed
        }
        Some(s) => {
            let max = i128::from(policy.max_drift_steps);
            let drift = (i128::from(s) - i128::from(expected_step)).clamp(-max, max);
            accept(state, s, s, i64::try_from(drift).unwrap_or(0))
        }
        None => {
            fail(state, now, policy);
            Verdict::Wrong
        }
    }
}

/// Check an HOTP `code`: the expected counter and up to `window` ahead (RFC 4226 §7.4
/// resynchronisation); `state.last_step` holds the next expected counter.
pub fn verify_hotp(
    cred: &Credential<'_>,
    code: &str,
    now: u64,
    state: &mut AccountState,
    policy: &Policy,
) -> Verdict {
    if let Some(v) = throttled(state, now) {
        return v;
    }
    let next = state.last_step.unwrap_or(0);
    match find_match(
        cred,
        code,
        next..=next.saturating_add(u64::from(policy.window)),
    ) {
        Some(c) => accept(
            state,
            c,
            c.saturating_add(1),
            i64::try_from(c - next).unwrap_or(i64::MAX),
        ),
        None => {
            fail(state, now, policy);
            Verdict::Wrong
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"12345678901234567890".to_vec())
    }

    fn sha1_6(s: &Secret) -> Credential<'_> {
        Credential {
            secret: s,
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }

    fn code_at(s: &Secret, t: u64) -> String {
        super::super::hotp::totp(s, t, TimeStep::default(), 6, Algorithm::Sha1)
            .unwrap()
            .to_string()
    }

    #[test]
    fn window_replay_and_drift() {
        let s = secret();
        let cred = sha1_6(&s);
        let p = Policy::default();
        let mut st = AccountState::default();
        let now = 1_700_000_000;
        // Phone 30 s behind: previous step accepted, drift -1 recorded.
        let v = verify_totp(
            &cred,
            TimeStep::default(),
            &code_at(&s, now - 30),
            now,
            &mut st,
            &p,
        );
        assert_eq!(
            v,
            Verdict::Accepted {
                step: now / 30 - 1,
                drift_steps: -1
            }
        );
        // Same code again: replay.
        let v = verify_totp(
            &cred,
            TimeStep::default(),
            &code_at(&s, now - 30),
            now + 1,
            &mut st,
            &p,
        );
        assert_eq!(v, Verdict::Replayed);
        // Two steps away from the recorded drift: refused.
        let v = verify_totp(
            &cred,
            TimeStep::default(),
            &code_at(&s, now + 60),
            now,
            &mut st,
            &p,
        );
        assert_eq!(v, Verdict::Wrong);
        // The phone keeps drifting: 60 s behind is within ±1 of the recorded -1.
        let later = now + 300;
        let v = verify_totp(
            &cred,
            TimeStep::default(),
            &code_at(&s, later - 60),
            later,
            &mut st,
            &p,
        );
        assert_eq!(
            v,
            Verdict::Accepted {
                step: later / 30 - 2,
                drift_steps: -2
            }
        );
        // Garbage and wrong lengths just fail.
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(
                verify_totp(&cred, TimeStep::default(), bad, later + 30, &mut st, &p),
                Verdict::Wrong
            );
        }
    }

    #[test]
    fn throttling_grows_and_is_capped_and_lifts() {
        let s = secret();
        let cred = sha1_6(&s);
        let p = Policy::default();
        let mut st = AccountState::default();
        let mut now = 1_700_000_000;
        for _ in 0..4 {
            assert_eq!(
                verify_totp(&cred, TimeStep::default(), "000000", now, &mut st, &p),
                Verdict::Wrong
            );
        }
        assert_eq!(st.locked_until, 0, "4 failures: no lockout yet");
        assert_eq!(
            verify_totp(&cred, TimeStep::default(), "000000", now, &mut st, &p),
            Verdict::Wrong
        );
        assert_eq!(st.locked_until, now + 30);
        // While locked, even the right code is not looked at (and does not count).
        let good = code_at(&s, now);
        assert_eq!(
            verify_totp(&cred, TimeStep::default(), &good, now + 10, &mut st, &p),
            Verdict::Throttled { retry_after: 20 }
        );
        assert_eq!(st.failures, 5);
        // Doubling, capped at 15 minutes.
        let mut last_wait = 30;
        for _ in 0..10 {
            now = st.locked_until;
            let _ = verify_totp(&cred, TimeStep::default(), "000000", now, &mut st, &p);
            let wait = st.locked_until - now;
            assert!(wait >= last_wait && wait <= 900, "{wait}");
            last_wait = wait;
        }
        assert_eq!(last_wait, 900);
        // After the lockout the right code works and clears everything.
        now = st.locked_until;
        let v = verify_totp(
            &cred,
            TimeStep::default(),
            &code_at(&s, now),
            now,
            &mut st,
            &p,
        );
        assert!(matches!(v, Verdict::Accepted { .. }), "{v:?}");
        assert_eq!((st.failures, st.locked_until), (0, 0));
    }

    #[test]
    fn hotp_look_ahead_and_no_reuse() {
        let s = secret();
        let cred = sha1_6(&s);
        let p = Policy {
            window: 3,
            ..Policy::default()
        };
        let mut st = AccountState::default();
        // RFC 4226 App. D: counter 2 is 359152; the user pressed twice unseen.
        assert_eq!(
            verify_hotp(&cred, "359152", 0, &mut st, &p),
            Verdict::Accepted {
                step: 2,
                drift_steps: 2
            }
        );
        assert_eq!(st.last_step, Some(3));
        assert_eq!(
            verify_hotp(&cred, "359152", 0, &mut st, &p),
            Verdict::Wrong,
            "used counter"
        );
        assert_eq!(
            verify_hotp(&cred, "969429", 0, &mut st, &p),
            Verdict::Accepted {
                step: 3,
                drift_steps: 0
            }
        );
        // Beyond the look-ahead (counter 9 = 520489 from next 4, window 3): refused.
        assert_eq!(verify_hotp(&cred, "520489", 0, &mut st, &p), Verdict::Wrong);
    }

    #[test]
    fn state_round_trips_through_json() {
        let st = AccountState {
            last_step: Some(7),
            drift_steps: -1,
            failures: 2,
            locked_until: 99,
        };
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<AccountState>(&json).unwrap(), st);
    }
}
