//! Shared workloads for the criterion benchmarks in `benches/`: every backend runs the
//! same snapshots, batches and protocol traffic, so their numbers compare.
//!
//! Run with `cargo bench -p sds-benches`.

use sds_codec::storage::{
    ChannelMeta, HistoryUpdate, LoggedMessage, OutgoingEntry, encode_buffered_message,
};
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// A delivered message of `content_len` bytes with ten causal dependencies, as a peer with
/// default settings would log it.
pub fn logged_message(sender: &str, n: u64, content_len: usize) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            sender_id: sender.to_string(),
            message_id: format!("{sender}-{n:08}"),
            channel_id: "bench".to_string(),
            lamport_timestamp: Some(1_700_000_000_000 + n),
            causal_history: (n.saturating_sub(10)..n)
                .map(|dep| HistoryEntry {
                    message_id: format!("{sender}-{dep:08}"),
                    retrieval_hint: None,
                    sender_id: Some(sender.to_string()),
                })
                .collect(),
            bloom_filter: None,
            repair_request: Vec::new(),
            content: Some(vec![0x5a; content_len]),
        }),
        retrieval_hint: None,
    }
}

/// A "steady" snapshot: `outgoing` unacknowledged messages of 100 B, nothing else.
pub fn steady_meta(outgoing: u64, lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        outgoing: (0..outgoing)
            .map(|n| OutgoingEntry {
                message: logged_message("me", lamport + n, 100)
                    .message
                    .as_ref()
                    .map(encode_buffered_message)
                    .unwrap_or_default(),
                sent_at_ms: 1_700_000_000_000,
                resend_attempts: 0,
                possible_acks: 0,
            })
            .collect(),
        ..ChannelMeta::empty()
    }
}

/// The history batch of one delivery in a full log: append the new message, evict the
/// oldest.
pub fn delivery_batch(n: u64, history: u64) -> HistoryUpdate {
    HistoryUpdate {
        append: vec![logged_message("peer", n, 100)],
        evict: vec![format!("peer-{:08}", n.saturating_sub(history))],
    }
}
