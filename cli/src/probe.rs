//! `card info`: which known applications answer, and what the link says about itself.
//! The APDUs themselves are the core's (`cie_core::applets::probe`); this formats them.

use cie_core::apdu::{ApduError, CardChannel};
use cie_core::applets::probe::{self as core_probe, KnownApplication, Probe};
use cie_core::transport::{SharedTransport, TransportInfo, TransportKind};

use crate::error::CliError;

/// What `card info` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The link's self-description.
    pub info: TransportInfo,
    /// The core's probe: SELECT status of each known application, and EF.ATR.
    pub probe: Probe,
}

fn apdu_error(e: ApduError) -> CliError {
    match e {
        ApduError::Transport(t) => CliError::Transport(t),
        other => CliError::Card {
            reason: other.to_string(),
        },
    }
}

/// Probe the card behind `transport` with the core's probe (IAS, CIE DF, eMRTD, CNS and
/// EF.ATR). Link failures are errors; anything the card refuses is part of the report.
pub async fn probe(transport: SharedTransport) -> Result<Report, CliError> {
    let ch = CardChannel::new(transport);
    let info = ch.info().clone();
    let probe = core_probe::probe(&ch).await.map_err(apdu_error)?;
    Ok(Report { info, probe })
}

/// Whether any known application answered.
pub fn any_present(report: &Report) -> bool {
    report.probe.answers.iter().any(|a| a.present())
}

fn short_name(app: KnownApplication) -> &'static str {
    match app {
        KnownApplication::CieIas => "IAS",
        KnownApplication::CieDf => "CIE",
        KnownApplication::IcaoEmrtd => "eMRTD",
        KnownApplication::Cns => "CNS",
    }
}

/// Bytes as spaced uppercase hex (`3B 8F 80`).
pub fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn kind_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Nfc => "contactless (NFC, ISO 14443)",
        TransportKind::Contact => "contact (ISO 7816-3)",
        TransportKind::Virtual => "virtual card (card-sim)",
    }
}

impl Report {
    /// The human-readable listing.
    pub fn render(&self, reader: &str) -> String {
        let i = &self.info;
        let atr_label = match i.kind {
            TransportKind::Nfc => "ATS",
            _ => "ATR",
        };
        let atr = i
            .atr
            .as_deref()
            .map_or("not exposed".to_string(), hex_spaced);
        let limits = format!(
            "{} APDUs, commands up to {} bytes, responses up to {} bytes",
            if i.extended_length {
                "extended-length"
            } else {
                "short"
            },
            i.max_command_len,
            i.max_response_len
        );
        let mut out = format!(
            "Reader:     {reader}\nTransport:  {}\n{atr_label}:        {atr}\nLimits:     {limits}\n\nApplications (SELECT by AID):\n",
            kind_name(i.kind)
        );
        for ans in &self.probe.answers {
            let app = ans.application;
            let status = if ans.present() {
                format!("answers (SW {})", ans.sw)
            } else {
                format!("not present (SW {})", ans.sw)
            };
            out.push_str(&format!(
                "  {:<6} {:<26} {:<26} {status}\n",
                short_name(app),
                app.label(),
                hex::encode_upper(app.aid())
            ));
        }
        match &self.probe.ef_atr {
            Some(d) => out.push_str(&format!(
                "\nEF.ATR (3F00/2F01): {} ({} bytes)\n",
                hex_spaced(d),
                d.len()
            )),
            None => out.push_str("\nEF.ATR (3F00/2F01): not present or not readable\n"),
        }
        out
    }

    /// The same as a JSON object (hand-written: every value is a name, a number or hex).
    pub fn to_json(&self, reader: &str) -> String {
        let i = &self.info;
        let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let atr = i
            .atr
            .as_deref()
            .map_or("null".into(), |a| q(&hex::encode_upper(a)));
        let apps: Vec<String> = self
            .probe
            .answers
            .iter()
            .map(|ans| {
                format!(
                    "{{\"name\":{},\"aid\":{},\"answers\":{},\"sw\":{}}}",
                    q(short_name(ans.application)),
                    q(&hex::encode_upper(ans.application.aid())),
                    ans.present(),
                    q(&ans.sw.to_string())
                )
            })
            .collect();
        let ef_atr = self
            .probe
            .ef_atr
            .as_deref()
            .map_or("null".into(), |d| q(&hex::encode_upper(d)));
        format!(
            "{{\"reader\":{},\"kind\":{},\"atr\":{atr},\"extended_length\":{},\"max_command_len\":{},\"max_response_len\":{},\"applications\":[{}],\"ef_atr\":{ef_atr}}}",
            q(reader),
            q(&format!("{:?}", i.kind).to_lowercase()),
            i.extended_length,
            i.max_command_len,
            i.max_response_len,
            apps.join(",")
        )
    }
}
