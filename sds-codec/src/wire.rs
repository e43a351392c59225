//! The SDS wire message (RFC layout) and its size-limited codec.

use prost::Message as _;

use crate::CodecError;

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/sds.wire.rs"));
}

pub use generated::{HistoryEntry, SdsMessage};

/// The largest encoded wire message accepted, in bytes (1 MiB, as nim-sds).
pub const MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// What kind of message an [`SdsMessage`] is, as the RFC defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Lamport timestamp and non-empty content: delivered, logged and acknowledged.
    Content,
    /// Lamport timestamp and no (or empty) content: carries causal history and a bloom
    /// filter for acknowledgements, never logged or buffered.
    Sync,
    /// No Lamport timestamp: delivered at once, outside causal ordering and reliability.
    Ephemeral,
}

impl SdsMessage {
    /// Tells a content, sync and ephemeral message apart.
    pub fn kind(&self) -> MessageKind {
        match (self.lamport_timestamp, self.content.as_deref()) {
            (None, _) => MessageKind::Ephemeral,
            (Some(_), Some(content)) if !content.is_empty() => MessageKind::Content,
            (Some(_), _) => MessageKind::Sync,
        }
    }
}

/// Encodes a wire message, refusing one over [`MAX_MESSAGE_SIZE`].
pub fn encode_message(message: &SdsMessage) -> Result<Vec<u8>, CodecError> {
    let size = message.encoded_len();
    if size > MAX_MESSAGE_SIZE {
        return Err(CodecError::TooLarge {
            what: "wire message",
            size,
            limit: MAX_MESSAGE_SIZE,
        });
    }
    Ok(message.encode_to_vec())
}

/// Decodes a wire message, refusing input over [`MAX_MESSAGE_SIZE`] before parsing it.
pub fn decode_message(bytes: &[u8]) -> Result<SdsMessage, CodecError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(CodecError::TooLarge {
            what: "wire message",
            size: bytes.len(),
            limit: MAX_MESSAGE_SIZE,
        });
    }
    SdsMessage::decode(bytes).map_err(|err| CodecError::malformed("wire message", err))
}
