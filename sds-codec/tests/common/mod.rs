//! Proptest strategies for every wire and storage type, shared by the property tests.
//!
//! Collections are kept short so a few hundred cases stay fast in debug builds; the values
//! inside them (ids, hints, clocks, times) range over their whole domain.

// Each test file uses a different subset of these strategies.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use sds_codec::storage::{
    Bytes, ChannelData, ChannelMeta, HistoryUpdate, IncomingEntry, IncomingRepairEntry,
    LoggedMessage, OutgoingEntry, OutgoingRepairEntry, SCHEMA_VERSION, encode_buffered_message,
};
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// Any short string, including non-ASCII characters, control characters and the empty string.
pub fn text() -> impl Strategy<Value = String> {
    "(?s).{0,12}"
}

/// Any short byte string, including the empty one.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

/// Any history entry: a causal-history or repair-request reference.
pub fn history_entry() -> impl Strategy<Value = HistoryEntry> {
    (text(), option::of(bytes()), option::of(text())).prop_map(
        |(message_id, retrieval_hint, sender_id)| HistoryEntry {
            message_id,
            retrieval_hint,
            sender_id,
        },
    )
}

/// Any wire message: content, sync or ephemeral, with or without history, bloom and repairs.
pub fn sds_message() -> impl Strategy<Value = SdsMessage> {
    (
        (text(), text(), text()),
        option::of(any::<u64>()),
        vec(history_entry(), 0..4),
        option::of(bytes()),
        vec(history_entry(), 0..3),
        option::of(bytes()),
    )
        .prop_map(
            |(
                (sender_id, message_id, channel_id),
                lamport_timestamp,
                causal_history,
                bloom_filter,
                repair_request,
                content,
            )| SdsMessage {
                sender_id,
                message_id,
                channel_id,
                lamport_timestamp,
                causal_history,
                bloom_filter,
                repair_request,
                content,
            },
        )
}

/// What a buffered entry holds: an encoded message, or any bytes (an entry written by a
/// foreign or broken writer must still round-trip).
pub fn buffered_message() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        sds_message().prop_map(|message| encode_buffered_message(&message)),
        bytes().prop_map(Bytes::from),
    ]
}

/// Any outgoing-buffer entry.
pub fn outgoing_entry() -> impl Strategy<Value = OutgoingEntry> {
    (buffered_message(), any::<i64>(), any::<u32>(), any::<u32>()).prop_map(
        |(message, sent_at_ms, resend_attempts, possible_acks)| OutgoingEntry {
            message,
            sent_at_ms,
            resend_attempts,
            possible_acks,
        },
    )
}

/// Any incoming-buffer entry.
pub fn incoming_entry() -> impl Strategy<Value = IncomingEntry> {
    (buffered_message(), vec(text(), 0..4), any::<i64>()).prop_map(
        |(message, missing_dependencies, received_at_ms)| IncomingEntry {
            message,
            missing_dependencies,
            received_at_ms,
        },
    )
}

/// Any outgoing repair entry (SDS-R).
pub fn outgoing_repair_entry() -> impl Strategy<Value = OutgoingRepairEntry> {
    (option::of(history_entry()), any::<i64>()).prop_map(|(entry, request_at_ms)| {
        OutgoingRepairEntry {
            entry,
            request_at_ms,
        }
    })
}

/// Any incoming repair entry (SDS-R).
pub fn incoming_repair_entry() -> impl Strategy<Value = IncomingRepairEntry> {
    (option::of(history_entry()), bytes(), any::<i64>()).prop_map(
        |(entry, message, respond_at_ms)| IncomingRepairEntry {
            entry,
            message,
            respond_at_ms,
        },
    )
}

/// Any snapshot at the current schema version, with every kind of buffer populated or not.
pub fn channel_meta() -> impl Strategy<Value = ChannelMeta> {
    (
        any::<u64>(),
        vec(outgoing_entry(), 0..3),
        vec(incoming_entry(), 0..3),
        vec(outgoing_repair_entry(), 0..3),
        vec(incoming_repair_entry(), 0..3),
    )
        .prop_map(
            |(lamport, outgoing, incoming, outgoing_repairs, incoming_repairs)| ChannelMeta {
                schema_version: SCHEMA_VERSION,
                lamport,
                outgoing: outgoing.into(),
                incoming: incoming.into(),
                outgoing_repairs,
                incoming_repairs,
            },
        )
}

/// Any history row.
/// A history row as backends store it: always with its message.
pub fn stored_row() -> impl Strategy<Value = LoggedMessage> {
    (sds_message(), option::of(bytes())).prop_map(|(message, retrieval_hint)| LoggedMessage {
        message: Some(message),
        retrieval_hint,
    })
}

pub fn logged_message() -> impl Strategy<Value = LoggedMessage> {
    (option::of(sds_message()), option::of(bytes())).prop_map(|(message, retrieval_hint)| {
        LoggedMessage {
            message,
            retrieval_hint,
        }
    })
}

/// Any bootstrap payload whose snapshot is present (a missing snapshot decodes as
/// [`ChannelMeta::empty`], which the storage tests check separately).
pub fn channel_data() -> impl Strategy<Value = ChannelData> {
    (channel_meta(), vec(logged_message(), 0..4)).prop_map(|(meta, history)| ChannelData {
        meta: Some(meta),
        history,
    })
}

/// Any history batch.
pub fn history_update() -> impl Strategy<Value = HistoryUpdate> {
    (vec(logged_message(), 0..4), vec(text(), 0..4))
        .prop_map(|(append, evict)| HistoryUpdate { append, evict })
}

/// Byte strings to feed a decoder: either arbitrary bytes, or a valid encoding (made by
/// `encode` from a value of `values`) with a few bytes overwritten and possibly truncated,
/// which reaches far deeper into the decoder than random noise does.
pub fn decoder_input<T, S>(values: S, encode: fn(&T) -> Vec<u8>) -> impl Strategy<Value = Vec<u8>>
where
    T: std::fmt::Debug + 'static,
    S: Strategy<Value = T> + 'static,
{
    let noise = vec(any::<u8>(), 0..256);
    let mutated = (
        values,
        vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        option::of(any::<prop::sample::Index>()),
    )
        .prop_map(move |(value, edits, cut)| {
            let mut bytes = encode(&value);
            if !bytes.is_empty() {
                for (at, byte) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len()));
                }
            }
            bytes
        });
    prop_oneof![noise, mutated]
}
