//! APDU trace (`RUST_LOG=cie_companion=trace`): every command's header and length and
//! every response's status word and length, never data that can hold a secret.
//!
//! Command data is shown only for SELECT (file and application ids); VERIFY, CHANGE
//! REFERENCE DATA and RESET RETRY COUNTER carry PINs and PUKs, other commands keys,
//! signatures or personal data (under secure messaging too: the INS stays in clear), so
//! their data is replaced by its length. Responses (certificates with the codice fiscale,
//! data groups, challenges) likewise: length and status word only.

use cie_core::transport::{CardTransport, SharedTransport, TransportError, TransportInfo};

/// A transport that logs each exchange at trace level.
pub struct Traced(pub SharedTransport);

/// INS of SELECT, the one command whose data is shown.
const SELECT: u8 = 0xA4;

/// The trace line of a command APDU: `CLA INS P1 P2`, then the data (SELECT) or its length.
pub fn describe_command(apdu: &[u8]) -> String {
    let Some(header) = apdu.get(..4) else {
        return format!("short command ({} bytes)", apdu.len());
    };
    let body = &apdu[4..];
    let head = hex::encode_upper(header);
    if header[1] == SELECT && body.len() > 1 {
        return format!("{head} data {}", hex::encode_upper(body));
    }
    match body.len() {
        0 => head,
        1 => format!("{head} Le"),
        n => format!("{head} +{n} bytes (redacted)"),
    }
}

/// The trace line of a response: its length and status word.
pub fn describe_response(resp: &[u8]) -> String {
    match resp.len().checked_sub(2) {
        Some(n) => format!("SW {} +{n} bytes", hex::encode_upper(&resp[n..])),
        None => format!("short response ({} bytes)", resp.len()),
    }
}

#[async_trait::async_trait]
impl CardTransport for Traced {
    async fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        tracing::trace!(command = %describe_command(&apdu), "apdu >");
        let resp = self.0.transmit(apdu).await;
        match &resp {
            Ok(r) => tracing::trace!(response = %describe_response(r), "apdu <"),
            Err(e) => tracing::trace!(error = %e, "apdu failed"),
        }
        resp
    }

    fn info(&self) -> TransportInfo {
        self.0.info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_data_are_redacted() {
        // VERIFY with PIN "12345678" in ASCII.
        let verify = [
            0x00, 0x20, 0x00, 0x81, 0x08, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
        ];
        let line = describe_command(&verify);
        assert_eq!(line, "00200081 +9 bytes (redacted)");
        assert!(!line.contains("3132"));
        for ins in [0x24, 0x2C, 0x2A, 0x88] {
            let c = [0x00, ins, 0x00, 0x00, 0x02, 0xAB, 0xCD];
            assert!(!describe_command(&c).contains("ABCD"));
        }
        assert_eq!(
            describe_command(&[0x00, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00]),
            "00A4040C data 023F00"
        );
        assert_eq!(
            describe_command(&[0x00, 0xB0, 0x00, 0x00, 0x00]),
            "00B00000 Le"
        );
        assert_eq!(
            describe_response(&[0x54, 0x53, 0x90, 0x00]),
            "SW 9000 +2 bytes"
        );
        assert_eq!(describe_response(&[0x90]), "short response (1 bytes)");
    }
}
