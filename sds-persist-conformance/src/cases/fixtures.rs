//! Builders for the data the cases store, and readers for what they load.

use sds_codec::storage::{
    ChannelData, ChannelMeta, HistoryUpdate, IncomingEntry, IncomingRepairEntry, LoggedMessage,
    OutgoingEntry, OutgoingRepairEntry, encode_buffered_message,
};
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// The sender of the messages the storage-level cases store.
pub const SENDER: &str = "conformance-sender";

/// The size of a serialized bloom filter at the default capacity and error rate.
pub const FULL_BLOOM_BYTES: usize = 18_752;

/// Deterministic bytes that cover all 256 values (a simple xorshift stream).
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A content message with a causal history entry, a small bloom filter and a payload
/// derived from its id.
pub fn message(channel: &str, id: &str, lamport: u64) -> SdsMessage {
    SdsMessage {
        sender_id: SENDER.to_string(),
        message_id: id.to_string(),
        channel_id: channel.to_string(),
        lamport_timestamp: Some(lamport),
        causal_history: vec![HistoryEntry {
            message_id: format!("{id}-dep"),
            retrieval_hint: Some(vec![0, 1, 0xFE, 0xFF]),
            sender_id: Some("peer".to_string()),
        }],
        bloom_filter: Some(pseudo_random_bytes(32, lamport)),
        repair_request: Vec::new(),
        content: Some(format!("content of {id} at {lamport}").into_bytes()),
    }
}

/// [`message`] as a history entry without a hint.
pub fn logged(channel: &str, id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(message(channel, id, lamport)),
        retrieval_hint: None,
    }
}

/// [`message`] as a history entry carrying `hint`.
pub fn logged_with_hint(channel: &str, id: &str, lamport: u64, hint: &[u8]) -> LoggedMessage {
    LoggedMessage {
        message: Some(message(channel, id, lamport)),
        retrieval_hint: Some(hint.to_vec()),
    }
}

/// A small history entry (short payload, nothing else), for volume.
pub fn lean_logged(channel: &str, id: String, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            sender_id: SENDER.to_string(),
            content: Some(id.as_bytes().to_vec()),
            message_id: id,
            channel_id: channel.to_string(),
            lamport_timestamp: Some(lamport),
            ..Default::default()
        }),
        retrieval_hint: None,
    }
}

/// An update that only appends.
pub fn append(entries: impl IntoIterator<Item = LoggedMessage>) -> HistoryUpdate {
    HistoryUpdate {
        append: entries.into_iter().collect(),
        evict: Vec::new(),
    }
}

/// An update that only evicts.
pub fn evict(ids: &[&str]) -> HistoryUpdate {
    HistoryUpdate {
        append: Vec::new(),
        evict: ids.iter().map(|id| (*id).to_string()).collect(),
    }
}

/// An empty snapshot with this Lamport clock.
pub fn meta_with_lamport(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    }
}

/// A snapshot with entries in every buffer, repair times at the edges of `i64`, and
/// full-size bloom filters on the outgoing messages.
pub fn full_meta(channel: &str) -> ChannelMeta {
    let with_bloom = |id: &str, lamport: u64, seed: u64| SdsMessage {
        bloom_filter: Some(pseudo_random_bytes(FULL_BLOOM_BYTES, seed)),
        ..message(channel, id, lamport)
    };
    let entry = |id: &str, hint: Option<Vec<u8>>| HistoryEntry {
        message_id: id.to_string(),
        retrieval_hint: hint,
        sender_id: Some("peer-ü".to_string()),
    };
    ChannelMeta {
        lamport: 1_700_000_000_321,
        outgoing: vec![
            OutgoingEntry {
                message: encode_buffered_message(&with_bloom("out-1", 1_700_000_000_100, 1)),
                sent_at_ms: 1_700_000_000_100,
                resend_attempts: 0,
                possible_acks: 0,
            },
            OutgoingEntry {
                message: encode_buffered_message(&with_bloom("out-2", 1_700_000_000_200, 2)),
                sent_at_ms: 1_700_000_060_200,
                resend_attempts: 3,
                possible_acks: 1,
            },
        ]
        .into(),
        incoming: vec![
            IncomingEntry {
                message: encode_buffered_message(&message(channel, "in-1", 1_700_000_000_150)),
                missing_dependencies: vec!["gone-1".to_string(), "gone-2".to_string()],
                received_at_ms: 1_700_000_000_151,
            },
            IncomingEntry {
                message: encode_buffered_message(&message(channel, "in-2", 7)),
                missing_dependencies: vec!["gone-1".to_string()],
                received_at_ms: 0,
            },
        ]
        .into(),
        outgoing_repairs: vec![
            OutgoingRepairEntry {
                entry: Some(entry("gone-1", Some(pseudo_random_bytes(32, 9)))),
                request_at_ms: 1_700_000_030_000,
            },
            OutgoingRepairEntry {
                entry: Some(entry("gone-2", None)),
                request_at_ms: i64::MAX,
            },
        ],
        incoming_repairs: vec![
            IncomingRepairEntry {
                entry: Some(entry("asked-1", Some(b"hash".to_vec()))),
                message: pseudo_random_bytes(300, 11),
                respond_at_ms: 1_700_000_000_999,
            },
            IncomingRepairEntry {
                entry: Some(entry("asked-2", None)),
                message: Vec::new(),
                respond_at_ms: i64::MIN,
            },
        ],
        ..ChannelMeta::empty()
    }
}

/// The ids of a loaded history, oldest first.
pub fn history_ids(data: &ChannelData) -> Vec<String> {
    data.history
        .iter()
        .map(|entry| entry.message_id().to_string())
        .collect()
}

/// The (lamport, id) keys of a loaded history, oldest first.
pub fn history_keys(data: &ChannelData) -> Vec<(u64, String)> {
    data.history
        .iter()
        .map(|entry| (entry.lamport(), entry.message_id().to_string()))
        .collect()
}

/// `entries` sorted the way a load must return them: (lamport, id) ascending.
pub fn sorted(mut entries: Vec<LoggedMessage>) -> Vec<LoggedMessage> {
    entries.sort_by(|a, b| (a.lamport(), a.message_id()).cmp(&(b.lamport(), b.message_id())));
    entries
}

/// The data a channel holding this snapshot and history must load as.
pub fn data(meta: ChannelMeta, history: Vec<LoggedMessage>) -> ChannelData {
    ChannelData {
        meta: Some(meta),
        history: sorted(history),
    }
}
