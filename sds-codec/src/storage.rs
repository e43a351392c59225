//! The storage snapshot types and their schema-versioned codec.
//!
//! Backends store [`ChannelMeta`] as one opaque blob (replaced whole on every save) and the
//! history as one [`LoggedMessage`] per row or key, so that an append or an eviction touches
//! only the rows it names.

use prost::Message as _;

use crate::CodecError;
// The generated storage code names wire types as `super::wire::…`.
use crate::wire;

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/sds.storage.rs"));
}

pub use generated::{
    ChannelData, ChannelMeta, HistoryUpdate, IncomingEntry, IncomingRepairEntry, LoggedMessage,
    OutgoingEntry, OutgoingRepairEntry,
};

/// The snapshot schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

impl ChannelMeta {
    /// The snapshot of a channel that has no state yet, at the current schema version.
    pub fn empty() -> Self {
        ChannelMeta {
            schema_version: SCHEMA_VERSION,
            ..Default::default()
        }
    }
}

impl ChannelData {
    /// The bootstrap payload of a channel that was never saved.
    pub fn empty() -> Self {
        ChannelData {
            meta: Some(ChannelMeta::empty()),
            history: Vec::new(),
        }
    }
}

impl HistoryUpdate {
    /// True when the update neither appends nor evicts anything.
    pub fn is_empty(&self) -> bool {
        self.append.is_empty() && self.evict.is_empty()
    }
}

impl LoggedMessage {
    /// The logged message's id (empty if the message itself is missing).
    pub fn message_id(&self) -> &str {
        self.message
            .as_ref()
            .map_or("", |message| message.message_id.as_str())
    }

    /// The logged message's Lamport timestamp (0 if absent).
    pub fn lamport(&self) -> u64 {
        self.message
            .as_ref()
            .and_then(|message| message.lamport_timestamp)
            .unwrap_or(0)
    }
}

fn check_schema(found: u32) -> Result<(), CodecError> {
    if found == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(CodecError::UnsupportedSchema {
            found,
            supported: SCHEMA_VERSION,
        })
    }
}

/// Encodes a channel snapshot.
pub fn encode_channel_meta(meta: &ChannelMeta) -> Vec<u8> {
    meta.encode_to_vec()
}

/// Decodes a channel snapshot, refusing malformed bytes and unknown schema versions.
pub fn decode_channel_meta(bytes: &[u8]) -> Result<ChannelMeta, CodecError> {
    let meta =
        ChannelMeta::decode(bytes).map_err(|err| CodecError::malformed("channel meta", err))?;
    check_schema(meta.schema_version)?;
    Ok(meta)
}

/// Encodes one history row.
pub fn encode_logged_message(message: &LoggedMessage) -> Vec<u8> {
    message.encode_to_vec()
}

/// Decodes one history row, refusing a row that carries no message (a truncated or
/// empty value would otherwise load as a bogus entry with an empty id).
pub fn decode_logged_message(bytes: &[u8]) -> Result<LoggedMessage, CodecError> {
    let logged =
        LoggedMessage::decode(bytes).map_err(|err| CodecError::malformed("logged message", err))?;
    if logged.message.is_none() {
        return Err(CodecError::Malformed {
            what: "logged message",
            reason: "the row holds no message".to_string(),
        });
    }
    Ok(logged)
}

/// Encodes a whole bootstrap payload (for backends that keep a channel in one value).
pub fn encode_channel_data(data: &ChannelData) -> Vec<u8> {
    data.encode_to_vec()
}

/// Decodes a bootstrap payload; a missing snapshot decodes as [`ChannelMeta::empty`], an
/// unknown schema version is refused.
pub fn decode_channel_data(bytes: &[u8]) -> Result<ChannelData, CodecError> {
    let mut data =
        ChannelData::decode(bytes).map_err(|err| CodecError::malformed("channel data", err))?;
    match &data.meta {
        Some(meta) => check_schema(meta.schema_version)?,
        None => data.meta = Some(ChannelMeta::empty()),
    }
    Ok(data)
}

/// Encodes a history batch.
pub fn encode_history_update(update: &HistoryUpdate) -> Vec<u8> {
    update.encode_to_vec()
}

/// Decodes a history batch.
pub fn decode_history_update(bytes: &[u8]) -> Result<HistoryUpdate, CodecError> {
    HistoryUpdate::decode(bytes).map_err(|err| CodecError::malformed("history update", err))
}
