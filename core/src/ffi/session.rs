//! `CardSession`: one tap, one session object over a foreign transport.

use super::CardError;
use crate::apdu::{CardChannel, files};
use crate::applets::probe::{self, KnownApplication};
use crate::transport::{CardTransport, TransportInfo};
use std::sync::Arc;

/// A session with one card over a transport the app provides.
#[derive(uniffi::Object)]
pub struct CardSession {
    channel: CardChannel,
}

/// How one known application answered SELECT.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApplicationAnswer {
    /// Which application.
    pub application: KnownApplication,
    /// Human name.
    pub label: String,
    /// Whether it answered `9000`.
    pub present: bool,
    /// Its status word.
    pub sw: u16,
}

/// What a card probe found.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CardProbe {
    /// The transport's self-description (kind, limits, ATR/ATS).
    pub transport: TransportInfo,
    /// Every known application's answer.
    pub applications: Vec<ApplicationAnswer>,
    /// EF.ATR, when readable.
    pub ef_atr: Option<Vec<u8>>,
}

#[uniffi::export]
impl CardSession {
    /// A session over `transport`; nothing is sent yet.
    #[uniffi::constructor]
    pub fn new(transport: Arc<dyn CardTransport>) -> Arc<Self> {
        Arc::new(Self {
            channel: CardChannel::new(transport),
        })
    }

    /// The transport's limits as read at the start.
    pub fn transport_info(&self) -> TransportInfo {
        self.channel.info().clone()
    }

    /// Which known applications the card has, and its EF.ATR.
    pub async fn probe(&self) -> Result<CardProbe, CardError> {
        let found = probe::probe(&self.channel).await?;
        Ok(CardProbe {
            transport: self.channel.info().clone(),
            applications: found
                .answers
                .iter()
                .map(|a| ApplicationAnswer {
                    application: a.application,
                    label: a.application.label().to_string(),
                    present: a.present(),
                    sw: a.sw.0,
                })
                .collect(),
            ef_atr: found.ef_atr,
        })
    }

    /// SELECT an application by AID.
    pub async fn select_application(&self, aid: Vec<u8>) -> Result<(), CardError> {
        Ok(files::select_aid(&self.channel, &aid).await?)
    }

    /// SELECT a DF by its 2-byte file identifier (`3F00` for the MF), for cards or files
    /// reached by path rather than by AID.
    pub async fn select_df(&self, fid: Vec<u8>) -> Result<(), CardError> {
        Ok(files::select_df(&self.channel, fid_of(fid)?).await?)
    }

    /// SELECT the EF `fid` (2 bytes) under the current application and read all of it.
    pub async fn read_file(&self, fid: Vec<u8>) -> Result<Vec<u8>, CardError> {
        Ok(files::read_ef(&self.channel, fid_of(fid)?).await?)
    }
}

fn fid_of(fid: Vec<u8>) -> Result<[u8; 2], CardError> {
    fid.try_into().map_err(|_| CardError::NotSupported {
        reason: "file identifiers are 2 bytes".into(),
    })
}
