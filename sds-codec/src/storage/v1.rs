//! Encoders of the version-1 layout: plain protobuf, without the envelope.
//!
//! Builds before schema version 2 stored this, and this build still reads it (see
//! [`crate::storage`]). Nothing here is for writing production data: these exist so tests
//! and migration tools can produce exactly what an earlier build left in a store.

use prost::Message as _;

use super::{ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage};

/// A snapshot as version 1 stored it. The snapshot's `schema_version` is written as it is:
/// set it to 1 for what an earlier build wrote.
pub fn encode_channel_meta(meta: &ChannelMeta) -> Vec<u8> {
    meta.encode_to_vec()
}

/// A history row as version 1 stored it.
pub fn encode_logged_message(message: &LoggedMessage) -> Vec<u8> {
    message.encode_to_vec()
}

/// A bootstrap payload as version 1 stored it (its snapshot's `schema_version` as it is).
pub fn encode_channel_data(data: &ChannelData) -> Vec<u8> {
    data.encode_to_vec()
}

/// A history batch as version 1 stored it.
pub fn encode_history_update(update: &HistoryUpdate) -> Vec<u8> {
    update.encode_to_vec()
}
