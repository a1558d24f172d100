//! ISO 7816-4 APDUs: commands of every case, responses, status words, and the channel that
//! handles GET RESPONSE, wrong-Le retries, command chaining and chunked file reads.

mod channel;
mod command;
mod error;
pub mod files;
mod response;
mod sw;
#[cfg(test)]
mod tests;

pub use channel::{ApduChannel, CardChannel, Limits};
pub use command::{
    CLA_CHAINING, Case, Command, EXTENDED_MAX_DATA, EXTENDED_MAX_LE, SHORT_MAX_DATA, SHORT_MAX_LE,
};
pub use error::ApduError;
pub use response::Response;
pub use sw::{Sw, SwKind};
