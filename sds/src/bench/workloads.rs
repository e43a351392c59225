//! The data every benchmark writes: snapshot profiles from idle to pathological, logged
//! messages, the history batch of one delivery, and the same bytes laid out for a raw
//! baseline. Shared by `sds bench` and the criterion benches, so their numbers compare.

use sds_codec::storage::{
    ChannelMeta, HistoryUpdate, IncomingEntry, IncomingRepairEntry, LoggedMessage, OutgoingEntry,
    OutgoingRepairEntry, encode_buffered_message, encode_channel_meta, encode_logged_message,
};
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// Causal dependencies each logged message carries (the protocol's default).
const CAUSAL_DEPENDENCIES: u64 = 10;

/// Lamport timestamps start here, as a peer's wall clock in milliseconds would.
const LAMPORT_BASE: u64 = 1_700_000_000_000;

/// How full a channel's snapshot is: buffered messages and repair entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotProfile {
    /// Short name used in reports (`idle`, `steady`, …).
    pub name: &'static str,
    /// Sent messages not acknowledged yet.
    pub outgoing: usize,
    /// Received messages waiting for dependencies.
    pub incoming: usize,
    /// SDS-R entries, as many outgoing (to request) as incoming (to answer).
    pub repairs: usize,
}

/// The profiles from an idle channel to a pathological one (the protocol's bounds: 50
/// unacknowledged, 20 waiting, 50 repair entries).
pub const PROFILES: [SnapshotProfile; 5] = [
    SnapshotProfile {
        name: "idle",
        outgoing: 0,
        incoming: 0,
        repairs: 0,
    },
    SnapshotProfile {
        name: "steady",
        outgoing: 2,
        incoming: 0,
        repairs: 0,
    },
    SnapshotProfile {
        name: "busy",
        outgoing: 10,
        incoming: 5,
        repairs: 10,
    },
    SnapshotProfile {
        name: "lossy",
        outgoing: 25,
        incoming: 10,
        repairs: 25,
    },
    SnapshotProfile {
        name: "pathological",
        outgoing: 50,
        incoming: 20,
        repairs: 50,
    },
];

/// The content sizes every profile runs with.
pub const PAYLOADS: [usize; 2] = [100, 1_000];

/// A content message of `content_len` bytes from `sender` with ten causal dependencies, as
/// a peer with default settings sends it.
pub fn content_message(sender: &str, n: u64, content_len: usize) -> SdsMessage {
    SdsMessage {
        sender_id: sender.to_string(),
        message_id: message_id(sender, n),
        channel_id: "bench".to_string(),
        lamport_timestamp: Some(LAMPORT_BASE + n),
        causal_history: (n.saturating_sub(CAUSAL_DEPENDENCIES)..n)
            .map(|dep| HistoryEntry {
                message_id: message_id(sender, dep),
                retrieval_hint: None,
                sender_id: Some(sender.to_string()),
            })
            .collect(),
        bloom_filter: None,
        repair_request: Vec::new(),
        content: Some(vec![0x5a; content_len]),
    }
}

/// The id of message `n` of `sender`: fixed width, so ids sort like their numbers.
pub fn message_id(sender: &str, n: u64) -> String {
    format!("{sender}-{n:010}")
}

/// A delivered message of `content_len` bytes as the log stores it.
pub fn logged_message(sender: &str, n: u64, content_len: usize) -> LoggedMessage {
    LoggedMessage {
        message: Some(content_message(sender, n, content_len)),
        retrieval_hint: None,
    }
}

/// The snapshot of a channel in `profile` whose buffered messages carry `payload` bytes.
pub fn snapshot(profile: &SnapshotProfile, payload: usize, lamport: u64) -> ChannelMeta {
    let buffered = |sender: &str, n: u64| {
        encode_buffered_message(&content_message(sender, lamport + n, payload))
    };
    let entry = |n: u64| HistoryEntry {
        message_id: message_id("peer", n),
        retrieval_hint: Some(vec![0xab; 32]),
        sender_id: Some("peer".to_string()),
    };
    let ids = |count: usize| (0..count as u64).map(move |n| lamport.saturating_sub(n + 1));
    ChannelMeta {
        lamport,
        outgoing: ids(profile.outgoing)
            .map(|n| OutgoingEntry {
                message: buffered("me", n),
                sent_at_ms: 1_700_000_000_000,
                resend_attempts: 1,
                possible_acks: 0,
            })
            .collect(),
        incoming: ids(profile.incoming)
            .map(|n| IncomingEntry {
                message: buffered("peer", n),
                missing_dependencies: vec![message_id("peer", n.saturating_sub(1))],
                received_at_ms: 1_700_000_000_000,
            })
            .collect(),
        outgoing_repairs: ids(profile.repairs)
            .map(|n| OutgoingRepairEntry {
                entry: Some(entry(n)),
                request_at_ms: 1_700_000_030_000,
            })
            .collect(),
        incoming_repairs: ids(profile.repairs)
            .map(|n| IncomingRepairEntry {
                entry: Some(entry(n)),
                message: content_message("peer", n, payload)
                    .content
                    .unwrap_or_default(),
                respond_at_ms: 1_700_000_030_000,
            })
            .collect(),
        ..ChannelMeta::empty()
    }
}

/// The encoded size of a profile's snapshot, in bytes.
pub fn snapshot_bytes(profile: &SnapshotProfile, payload: usize) -> usize {
    encode_channel_meta(&snapshot(profile, payload, 1_000)).len()
}

/// Messages `from..to` of `peer`, 100 B each, as one history batch.
pub fn fill_batch(from: u64, to: u64) -> HistoryUpdate {
    HistoryUpdate {
        append: (from..to).map(|n| logged_message("peer", n, 100)).collect(),
        evict: Vec::new(),
    }
}

/// The history batch of delivery `n` in a log kept at `history` entries: append message
/// `n`, evict message `n - history` (the oldest).
pub fn delivery_batch(n: u64, history: u64) -> HistoryUpdate {
    HistoryUpdate {
        append: vec![logged_message("peer", n, 100)],
        evict: n
            .checked_sub(history)
            .map(|old| vec![message_id("peer", old)])
            .unwrap_or_default(),
    }
}

/// One history row as a raw baseline stores it: where it sorts and its encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// The message id.
    pub id: String,
    /// Its Lamport timestamp (the row's position in the log).
    pub lamport: u64,
    /// The storage codec's encoding of the row (what the backend stores).
    pub bytes: Vec<u8>,
}

/// The bytes one commit writes, laid out for a raw baseline: the encoded snapshot, the
/// encoded rows to append and the rows to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawCommit {
    /// The encoded snapshot, if the commit saves one.
    pub meta: Option<Vec<u8>>,
    /// Rows to write.
    pub rows: Vec<RawRow>,
    /// Rows to delete: (id, lamport).
    pub evict: Vec<(String, u64)>,
}

impl RawCommit {
    /// The same bytes a backend's commit of `meta` and `history` stores. Evicted ids are
    /// expected to be the fixed-width ids of this module (their lamport is derived from
    /// them, as a baseline does not read before it writes).
    pub fn of(meta: Option<&ChannelMeta>, history: Option<&HistoryUpdate>) -> RawCommit {
        let rows = history
            .map(|update| {
                update
                    .append
                    .iter()
                    .map(|message| RawRow {
                        id: message.message_id().to_string(),
                        lamport: message.lamport(),
                        bytes: encode_logged_message(message),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let evict = history
            .map(|update| {
                update
                    .evict
                    .iter()
                    .map(|id| (id.clone(), lamport_of_id(id)))
                    .collect()
            })
            .unwrap_or_default();
        RawCommit {
            meta: meta.map(encode_channel_meta),
            rows,
            evict,
        }
    }
}

/// The lamport of a message id made by [`message_id`] (0 for any other id).
fn lamport_of_id(id: &str) -> u64 {
    id.rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .map_or(0, |n| LAMPORT_BASE + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sds_codec::storage::decode_channel_meta;

    #[test]
    fn profiles_grow_from_idle_to_pathological() {
        let sizes: Vec<usize> = PROFILES
            .iter()
            .map(|profile| snapshot_bytes(profile, 1_000))
            .collect();
        assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]), "{sizes:?}");
        let worst = snapshot(&PROFILES[4], 1_000, 5_000);
        assert_eq!(worst.outgoing.len(), 50);
        assert_eq!(worst.incoming.len(), 20);
        assert_eq!(worst.outgoing_repairs.len(), 50);
        assert_eq!(worst.incoming_repairs.len(), 50);
        let decoded = decode_channel_meta(&encode_channel_meta(&worst)).unwrap();
        assert_eq!(decoded, worst);
    }

    #[test]
    fn a_delivery_evicts_the_oldest_entry_and_raw_rows_find_it() {
        let batch = delivery_batch(1_500, 1_000);
        assert_eq!(batch.append[0].message_id(), message_id("peer", 1_500));
        assert_eq!(batch.evict, vec![message_id("peer", 500)]);
        assert!(delivery_batch(10, 1_000).evict.is_empty());
        let raw = RawCommit::of(None, Some(&batch));
        assert_eq!(raw.rows[0].lamport, batch.append[0].lamport());
        assert_eq!(
            raw.evict,
            vec![(
                message_id("peer", 500),
                logged_message("peer", 500, 1).lamport()
            )]
        );
    }
}
