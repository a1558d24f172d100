//! Clock drift: the first cause of "codes don't work" (andOTP #285, FreeOTPPlus #233,
//! nextcloud/twofactor_totp #43). The core corrects the device clock by the offset seen in
//! the HTTP `Date` of the last exchange with a pinned server, and tells the user when their
//! clock is wrong enough to matter.

use super::OtpError;

/// Offset of the device clock against a trusted server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ClockOffset {
    /// Server time minus device time, in seconds (positive: the device is behind).
    pub offset_seconds: i64,
    /// Device time (Unix seconds) when it was measured.
    pub measured_at: u64,
}

impl ClockOffset {
    /// From an HTTP `Date` header (RFC 9110 IMF-fixdate, or the obsolete forms) received at
    /// device time `local_unix`.
    pub fn from_http_date(date: &str, local_unix: u64) -> Result<Self, OtpError> {
        let server =
            httpdate::parse_http_date(date.trim()).map_err(|_| OtpError::BadServerTime {
                reason: "unreadable HTTP Date header".into(),
            })?;
        let server = server
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| OtpError::BadServerTime {
                reason: "HTTP Date before 1970".into(),
            })?
            .as_secs();
        let offset = i128::from(server) - i128::from(local_unix);
        let offset_seconds = i64::try_from(offset).map_err(|_| OtpError::BadServerTime {
            reason: "HTTP Date out of range".into(),
        })?;
        Ok(Self {
            offset_seconds,
            measured_at: local_unix,
        })
    }

    /// `local_unix` corrected by the offset (saturating: never wraps).
    pub fn apply(&self, local_unix: u64) -> u64 {
        local_unix.saturating_add_signed(self.offset_seconds)
    }
}

/// How far off the device clock is, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DriftStatus {
    /// Within the HTTP Date's own one-second resolution plus network delay.
    InSync,
    /// Off by more than a few seconds but under one step: codes are corrected here, but other
    /// apps on this device may fail near step boundaries.
    Drifting,
    /// Off by a step or more: without the correction codes would be refused.
    Wrong,
}

/// The drift diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DriftDiagnostic {
    /// Server minus device, seconds.
    pub offset_seconds: i64,
    /// Verdict.
    pub status: DriftStatus,
    /// What to tell the user, in English.
    pub message_en: String,
    /// What to tell the user, in Italian.
    pub message_it: String,
}

/// Up to this many seconds counts as in sync (1 s Date resolution + a slow round trip).
pub const IN_SYNC_SECONDS: u64 = 5;

impl DriftDiagnostic {
    /// Judge an offset against a step length (30 s for nearly every token).
    pub fn judge(offset: &ClockOffset, period: u64) -> Self {
        let off = offset.offset_seconds;
        let abs = off.unsigned_abs();
        let status = if abs <= IN_SYNC_SECONDS {
            DriftStatus::InSync
        } else if abs < period.max(1) {
            DriftStatus::Drifting
        } else {
            DriftStatus::Wrong
        };
        let (ahead_en, ahead_it) = if off < 0 {
            ("ahead", "avanti")
        } else {
            ("behind", "indietro")
        };
        let (message_en, message_it) = match status {
            DriftStatus::InSync => (
                "The device clock is correct.".to_owned(),
                "L'orologio del dispositivo è corretto.".to_owned(),
            ),
            DriftStatus::Drifting => (
                format!(
                    "The device clock is {abs} s {ahead_en}: codes here are corrected; set date and time to automatic."
                ),
                format!(
                    "L'orologio del dispositivo è {ahead_it} di {abs} s: qui i codici sono corretti; imposta data e ora automatiche."
                ),
            ),
            DriftStatus::Wrong => (
                format!(
                    "The device clock is {abs} s {ahead_en}: codes here are corrected, but set date and time to automatic in the device settings."
                ),
                format!(
                    "L'orologio del dispositivo è {ahead_it} di {abs} s: qui i codici sono corretti, ma imposta data e ora automatiche nelle impostazioni."
                ),
            ),
        };
        Self {
            offset_seconds: off,
            status,
            message_en,
            message_it,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_offset_and_verdicts() {
        // 1994-11-06T08:49:37Z = 784111777 (RFC 9110's example).
        let o = ClockOffset::from_http_date("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 - 120)
            .unwrap();
        assert_eq!(o.offset_seconds, 120);
        assert_eq!(o.apply(1000), 1120);
        let d = DriftDiagnostic::judge(&o, 30);
        assert_eq!(d.status, DriftStatus::Wrong);
        assert!(
            d.message_it.contains("indietro di 120 s"),
            "{}",
            d.message_it
        );

        let o = ClockOffset::from_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777 + 10)
            .unwrap();
        assert_eq!(o.offset_seconds, -10);
        assert_eq!(DriftDiagnostic::judge(&o, 30).status, DriftStatus::Drifting);
        let o = ClockOffset::from_http_date("Sun Nov  6 08:49:39 1994", 784_111_777).unwrap();
        assert_eq!(DriftDiagnostic::judge(&o, 30).status, DriftStatus::InSync);
        assert_eq!(o.apply(0), 2);
        let neg = ClockOffset {
            offset_seconds: -5,
            measured_at: 0,
        };
        assert_eq!(neg.apply(3), 0, "saturates, never wraps");
    }

    #[test]
    fn garbage_date_is_an_error() {
        assert!(ClockOffset::from_http_date("yesterday", 0).is_err());
        assert!(ClockOffset::from_http_date("", 0).is_err());
    }
}
