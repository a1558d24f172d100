//! Countdowns of the server's deadlines (a desktop code's expiry, a login's or a request's
//! deadline to decide) on the server's clock: the core corrects the device clock by the
//! offset it measured from the server's `Date`, so a phone whose clock is wrong still shows
//! the right seconds, and both shells show the same ones.

use super::CompanionClient;

/// How long a deadline has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Countdown {
    /// Whole seconds left; 0 once the deadline is reached.
    pub seconds_left: u64,
    /// The deadline is reached: the server refuses the code or the decision from now on
    /// (it refuses at `now >= expires_at`), so the screen says "expired" and stops ticking.
    pub expired: bool,
}

impl Countdown {
    /// The countdown to `expires_at` at `now` (both Unix seconds, server time).
    pub fn at(now: u64, expires_at: u64) -> Self {
        let seconds_left = expires_at.saturating_sub(now);
        Self {
            seconds_left,
            expired: seconds_left == 0,
        }
    }
}

#[uniffi::export]
impl CompanionClient {
    /// The countdown to `expires_at` (Unix seconds, server time: `DesktopCode`,
    /// `DesktopSession::expires_at`, `PendingApprovalInfo`), now, on the server's clock
    /// (the device's until the first answer from the server). Cheap: call it every second.
    pub fn countdown(&self, expires_at: u64) -> Countdown {
        Countdown::at(self.api.now(), expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_left_until_the_deadline_then_expired() {
        assert_eq!(
            Countdown::at(1_000, 1_090),
            Countdown {
                seconds_left: 90,
                expired: false
            }
        );
        assert_eq!(
            Countdown::at(1_089, 1_090),
            Countdown {
                seconds_left: 1,
                expired: false
            }
        );
        // The server refuses at `now >= expires_at`: so does the countdown.
        for now in [1_090, 1_091, u64::MAX] {
            assert_eq!(
                Countdown::at(now, 1_090),
                Countdown {
                    seconds_left: 0,
                    expired: true
                },
                "{now}"
            );
        }
        assert!(Countdown::at(0, 0).expired);
    }

    #[cfg(feature = "rustls-https")]
    #[test]
    fn the_client_counts_on_the_device_clock_before_any_answer() {
        let client = CompanionClient::new(
            vec!["https://login.example.it".into()],
            vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()],
            None,
        )
        .expect("client");
        let now = crate::net::device_now();
        let c = client.countdown(now + 120);
        assert!(!c.expired);
        // One second of slack: the clock may tick between the two readings.
        assert!((119..=120).contains(&c.seconds_left), "{c:?}");
        assert!(client.countdown(now.saturating_sub(1)).expired);
    }
}
