//! What a screen does after the core refused: one decision per function, each an enum the
//! Kotlin and Swift shells branch on, so neither re-derives it from error cases (the shells
//! used to, each its own copy). The message to show is always `flow_error_message`.

use super::{CardError, FlowError};
use crate::flows::wire::ErrorCode;

/// What a PIN-and-tap screen (phone login, desktop approval with the card, device
/// enrolment) shows after a tap failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CardTapStep {
    /// Ask for the PIN again (the PUK and new PIN on the unblock screen), with the message;
    /// `tries_left` after a wrong PIN or PUK (the screen shows the count big). No try was spent by the other causes (PIN malformed, card not
    /// paired for 4 digits, PIN no longer held, keystore unavailable).
    EnterPin {
        /// Tries left before the card blocks, after a wrong PIN.
        tries_left: Option<u8>,
    },
    /// Show the message and wait for the card again: the core resumes where the tap stopped
    /// (card moved away, slow or garbled answer, another card, reader hiccup).
    TapAgain,
    /// One try left: ask "sure?" before the core spends it (then `confirm_last_try`).
    ConfirmLastTry,
    /// The PIN is blocked: stop; the message says to unblock it with the PUK.
    PinBlocked,
    /// Stop with the message (server, network, a card or phone that cannot do it).
    Stop,
}

/// The step after a failed PIN-and-tap (`tap`, `approve_with_card`, enrolment `tap`).
#[uniffi::export]
pub fn card_tap_step(error: FlowError) -> CardTapStep {
    let FlowError::Card { error } = error else {
        return match error {
            // Another call on the same session is still running: the next tap goes on.
            FlowError::Busy => CardTapStep::TapAgain,
            _ => CardTapStep::Stop,
        };
    };
    match error {
        CardError::WrongPin { remaining: 0 } | CardError::PinBlocked => CardTapStep::PinBlocked,
        CardError::WrongPin { remaining } | CardError::WrongPuk { remaining } => {
            CardTapStep::EnterPin {
                tries_left: Some(remaining),
            }
        }
        CardError::InvalidPin { .. }
        | CardError::NewPinRejected { .. }
        | CardError::InvalidPuk
        | CardError::PinNeeded
        | CardError::NotPaired
        | CardError::AccessDenied
        | CardError::Storage { .. } => CardTapStep::EnterPin { tries_left: None },
        CardError::LastTryNeedsConfirmation | CardError::LastPukTryNeedsConfirmation => {
            CardTapStep::ConfirmLastTry
        }
        CardError::TagLost
        | CardError::Timeout
        | CardError::Reader { .. }
        | CardError::InvalidResponse { .. }
        | CardError::DifferentCard
        | CardError::Busy => CardTapStep::TapAgain,
        CardError::NotFound
        | CardError::NotSupported { .. }
        | CardError::Refused { .. }
        | CardError::NotGenuine
        | CardError::PhoneUnsupported
        | CardError::WrongCan
        | CardError::WrongMrz
        | CardError::AccessBlocked
        | CardError::InvalidAccessKey { .. }
        | CardError::PukBlocked => CardTapStep::Stop,
    }
}

/// What a screen that scans (or takes a typed) code does after the core refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ScanStep {
    /// Stay on the camera and the text field with the message. The text just refused is
    /// not sent again on its own (the camera keeps seeing the same QR); a new code, or the
    /// user typing one, is.
    ScanAgain,
    /// Leave the camera: show the message; "try again" starts over.
    Stop,
}

/// The step after a desktop login QR was refused (`claim_desktop_qr`): another QR is the
/// answer only when this one is not a login code or has expired (the page shows a new one).
#[uniffi::export]
pub fn desktop_qr_step(error: FlowError) -> ScanStep {
    match error {
        FlowError::NotALoginCode
        | FlowError::Server {
            code: ErrorCode::Expired,
            ..
        } => ScanStep::ScanAgain,
        _ => ScanStep::Stop,
    }
}

/// The step after an enrolment code was refused (`enroll_device_with_code`): the server
/// refused the code itself (unknown, used, expired, wrong, too many tries or requests),
/// so the page's new code is the answer; anything else a new code does not fix.
#[uniffi::export]
pub fn enrolment_code_step(error: FlowError) -> ScanStep {
    match error {
        FlowError::Server {
            code:
                ErrorCode::NotFound
                | ErrorCode::Expired
                | ErrorCode::Replayed
                | ErrorCode::WrongCode
                | ErrorCode::TooManyAttempts
                | ErrorCode::RateLimited,
            ..
        } => ScanStep::ScanAgain,
        _ => ScanStep::Stop,
    }
}

/// What the approvals inbox shows after a decision failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ApprovalStep {
    /// The number picked was not the computer's: the server cancelled the request (one
    /// guess only); show the message, then the refreshed inbox.
    WrongNumber,
    /// Show the message; "back" refreshes the inbox.
    Stop,
}

/// The step after `decide_approval` failed.
#[uniffi::export]
pub fn approval_step(error: FlowError) -> ApprovalStep {
    match error {
        FlowError::Server {
            code: ErrorCode::WrongNumber,
            ..
        } => ApprovalStep::WrongNumber,
        _ => ApprovalStep::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::flow_error::tests::all_flow_errors;

    fn server(code: ErrorCode, status: u16) -> FlowError {
        FlowError::Server {
            code,
            status,
            message_en: "m".into(),
            message_it: "m".into(),
            tries_left: None,
            retry_after: None,
        }
    }

    fn card(error: CardError) -> FlowError {
        FlowError::Card { error }
    }

    #[test]
    fn a_failed_tap_goes_to_the_screen_its_message_asks_for() {
        use CardTapStep as S;
        assert_eq!(
            card_tap_step(card(CardError::WrongPin { remaining: 2 })),
            S::EnterPin {
                tries_left: Some(2)
            }
        );
        assert_eq!(
            card_tap_step(card(CardError::WrongPin { remaining: 1 })),
            S::EnterPin {
                tries_left: Some(1)
            }
        );
        assert_eq!(
            card_tap_step(card(CardError::WrongPin { remaining: 0 })),
            S::PinBlocked
        );
        assert_eq!(card_tap_step(card(CardError::PinBlocked)), S::PinBlocked);
        for e in [
            CardError::InvalidPin { reason: "r".into() },
            CardError::PinNeeded,
            CardError::NotPaired,
            CardError::AccessDenied,
            CardError::Storage { reason: "r".into() },
        ] {
            assert_eq!(
                card_tap_step(card(e.clone())),
                S::EnterPin { tries_left: None },
                "{e:?}"
            );
        }
        assert_eq!(
            card_tap_step(card(CardError::LastTryNeedsConfirmation)),
            S::ConfirmLastTry
        );
        for e in [
            CardError::TagLost,
            CardError::Timeout,
            CardError::Reader { reason: "r".into() },
            CardError::InvalidResponse { reason: "r".into() },
            CardError::DifferentCard,
            CardError::Busy,
        ] {
            assert_eq!(card_tap_step(card(e.clone())), S::TapAgain, "{e:?}");
        }
        assert_eq!(card_tap_step(FlowError::Busy), S::TapAgain);
        for e in [
            card(CardError::NotFound),
            card(CardError::NotSupported { reason: "r".into() }),
            card(CardError::Refused {
                sw: 0x6985,
                reason: "r".into(),
            }),
            card(CardError::NotGenuine),
            card(CardError::PhoneUnsupported),
            card(CardError::WrongCan),
            card(CardError::WrongMrz),
            card(CardError::AccessBlocked),
            card(CardError::InvalidAccessKey { reason: "r".into() }),
            server(ErrorCode::Expired, 410),
            FlowError::Network { reason: "r".into() },
            FlowError::Timeout,
            FlowError::Cancelled,
        ] {
            assert_eq!(card_tap_step(e.clone()), S::Stop, "{e:?}");
        }
    }

    #[test]
    fn every_tap_step_matches_what_its_message_says() {
        // The message and the screen agree: a message that says to tap again comes with
        // the card screen, one that says to type the PIN with the PIN pad.
        for e in all_flow_errors() {
            let it = e.message_it().to_lowercase();
            match card_tap_step(e.clone()) {
                CardTapStep::TapAgain => assert!(
                    it.contains("avvicina") || it.contains("riprova") || it.contains("attendi"),
                    "{e:?}: {it}"
                ),
                CardTapStep::EnterPin { .. } => {
                    assert!(it.contains("pin") || it.contains("puk"), "{e:?}: {it}")
                }
                CardTapStep::PinBlocked => assert!(it.contains("puk"), "{e:?}: {it}"),
                CardTapStep::ConfirmLastTry => assert!(it.contains("conferma"), "{e:?}: {it}"),
                CardTapStep::Stop => {}
            }
        }
    }

    #[test]
    fn a_refused_desktop_qr_keeps_the_camera_only_when_another_qr_helps() {
        assert_eq!(
            desktop_qr_step(FlowError::NotALoginCode),
            ScanStep::ScanAgain
        );
        assert_eq!(
            desktop_qr_step(server(ErrorCode::Expired, 410)),
            ScanStep::ScanAgain
        );
        for e in [
            FlowError::UntrustedSite { origin: "o".into() },
            FlowError::AppTooOld,
            server(ErrorCode::AlreadyClaimed, 409),
            server(ErrorCode::NotFound, 404),
            FlowError::Network { reason: "r".into() },
            FlowError::UntrustedServer { reason: "r".into() },
        ] {
            assert_eq!(desktop_qr_step(e.clone()), ScanStep::Stop, "{e:?}");
        }
    }

    #[test]
    fn a_refused_enrolment_code_asks_for_a_new_one_only_when_the_code_was_the_problem() {
        for code in [
            ErrorCode::NotFound,
            ErrorCode::Expired,
            ErrorCode::Replayed,
            ErrorCode::WrongCode,
            ErrorCode::TooManyAttempts,
            ErrorCode::RateLimited,
        ] {
            assert_eq!(
                enrolment_code_step(server(code, 404)),
                ScanStep::ScanAgain,
                "{code:?}"
            );
        }
        for e in [
            // A bad device key or name: a new code is refused the same way.
            server(ErrorCode::BadRequest, 400),
            // A proxy's 404 without the server's answer: not the code's fault.
            server(ErrorCode::Internal, 404),
            server(ErrorCode::Internal, 500),
            FlowError::Network { reason: "r".into() },
            FlowError::Storage { reason: "r".into() },
            FlowError::DeviceKey { reason: "r".into() },
            FlowError::NotALoginCode,
        ] {
            assert_eq!(enrolment_code_step(e.clone()), ScanStep::Stop, "{e:?}");
        }
    }

    #[test]
    fn only_a_wrong_number_cancels_the_request() {
        assert_eq!(
            approval_step(server(ErrorCode::WrongNumber, 403)),
            ApprovalStep::WrongNumber
        );
        for e in [
            server(ErrorCode::Expired, 410),
            server(ErrorCode::NotFound, 404),
            FlowError::InvalidChoice,
            FlowError::Network { reason: "r".into() },
        ] {
            assert_eq!(approval_step(e.clone()), ApprovalStep::Stop, "{e:?}");
        }
    }
}
