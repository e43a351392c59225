//! Converting a channel to and from its stored form.
//!
//! A snapshot is built after every operation that changed the channel, so it must cost
//! what changed, not what is buffered. Each buffered message is encoded once, when it is
//! buffered ([`Stored`]), and shared by every snapshot after that. The buffers are handed
//! to the backend in shared chunks ([`Entries`]) of up to [`CHUNK`] consecutive entries,
//! kept between snapshots ([`SnapshotCache`]): a chunk whose entries did not change is
//! reused as is, so a snapshot of a buffer that gained a message rebuilds one chunk, and a
//! backend that keeps the snapshot (the in-memory one) copies a pointer per chunk.

use std::collections::BTreeMap;
use std::sync::Arc;

use sds_codec::storage::{
    Bytes, ChannelData, ChannelMeta, Entries, IncomingEntry, IncomingRepairEntry, OutgoingEntry,
    OutgoingRepairEntry, SCHEMA_VERSION, encode_buffered_message,
};
use sds_codec::wire::SdsMessage;

use super::outgoing::{Changed, Outgoing};
use super::{Channel, Incoming, IncomingRepair, OutgoingRepair, Settings};
use crate::error::SdsError;
use crate::persistence::PersistenceError;

impl Channel {
    /// The channel's snapshot: everything but the history and the bloom filter.
    ///
    /// Buffered messages are shared, not copied (see the module documentation).
    pub(crate) fn snapshot_meta(&mut self) -> ChannelMeta {
        let changed = self.outgoing.take_changes();
        let outgoing = chunked(
            &mut self.snapshots.outgoing,
            self.outgoing.as_slice(),
            &changed,
            |entry| &entry.stored,
            |stored, entry| {
                stored.sent_at_ms == entry.sent_at
                    && stored.resend_attempts == entry.resend_attempts
                    && stored.possible_acks == entry.possible_acks
                    && entry.stored.is(&stored.message)
            },
            |entry| OutgoingEntry {
                message: entry.stored.bytes.clone(),
                sent_at_ms: entry.sent_at,
                resend_attempts: entry.resend_attempts,
                possible_acks: entry.possible_acks,
            },
        );
        // The incoming buffer does not report its changes: every entry is compared (it is
        // small but under attack, and then bounded by `max_incoming_buffer`).
        let waiting: Vec<&Incoming> = self.incoming.iter().collect();
        let incoming = chunked(
            &mut self.snapshots.incoming,
            &waiting,
            &Changed::All,
            |entry| &entry.stored,
            // An entry's missing set only ever shrinks (dependencies resolve), so an
            // unchanged length is an unchanged set.
            |stored, entry| {
                stored.received_at_ms == entry.received_at
                    && stored.missing_dependencies.len() == entry.missing.len()
                    && entry.stored.is(&stored.message)
            },
            |entry| IncomingEntry {
                message: entry.stored.bytes.clone(),
                missing_dependencies: entry.missing.iter().cloned().collect(),
                received_at_ms: entry.received_at,
            },
        );
        ChannelMeta {
            schema_version: SCHEMA_VERSION,
            lamport: self.lamport,
            outgoing,
            incoming,
            outgoing_repairs: self
                .outgoing_repairs
                .values()
                .map(|repair| OutgoingRepairEntry {
                    entry: Some(repair.entry.clone()),
                    request_at_ms: repair.request_at,
                })
                .collect(),
            incoming_repairs: self
                .incoming_repairs
                .values()
                .map(|repair| IncomingRepairEntry {
                    entry: Some(repair.entry.clone()),
                    // A pending answer is an id: its bytes are encoded from the log when due.
                    message: Vec::new(),
                    respond_at_ms: repair.respond_at,
                })
                .collect(),
        }
    }

    /// Rebuilds a channel from what a backend loaded: buffers from the snapshot, log and
    /// bloom filter from the history.
    ///
    /// Refuses data that would bootstrap a wrong channel: an unknown schema version, a
    /// history that is not oldest-first, or entries without their message.
    pub(crate) fn restore(
        id: &str,
        settings: Arc<Settings>,
        data: ChannelData,
    ) -> Result<Self, SdsError> {
        let corrupt = |detail: String| {
            SdsError::Persistence(PersistenceError::corrupt(format!(
                "channel {id:?}: {detail}"
            )))
        };
        let meta = data.meta.unwrap_or_else(ChannelMeta::empty);
        if meta.schema_version != SCHEMA_VERSION {
            return Err(SdsError::Persistence(PersistenceError::UnsupportedSchema {
                found: meta.schema_version,
                supported: SCHEMA_VERSION,
            }));
        }
        let mut channel = Channel::new(id, settings)?;
        let capacity = channel.config().max_message_history;

        let mut previous: Option<(u64, String)> = None;
        for (position, logged) in data.history.into_iter().enumerate() {
            let Some(message) = logged.message else {
                return Err(corrupt(format!("history entry {position} has no message")));
            };
            let key = (
                message.lamport_timestamp.unwrap_or(0),
                message.message_id.clone(),
            );
            if let Some(previous) = previous.as_ref().filter(|previous| **previous >= key) {
                return Err(corrupt(format!(
                    "history is not oldest-first: entry {position} {key:?} follows {previous:?}"
                )));
            }
            previous = Some(key);
            channel.bloom.insert(&message.message_id);
            // A history longer than the configured cap (the cap was lowered) is trimmed
            // and the trim is written back with the next commit.
            for evicted in channel.log.insert(message, logged.retrieval_hint, capacity) {
                channel.pending.queue_evict(&evicted);
            }
        }

        for (position, entry) in meta.outgoing.iter().enumerate() {
            let message = buffered_message(entry.decode_message())
                .map_err(|err| corrupt(format!("outgoing entry {position}: {err}")))?;
            channel.bloom.insert(&message.message_id);
            let stored = channel.snapshots.adopt(entry.message.clone());
            channel.push_outgoing(Outgoing {
                resend_attempts: entry.resend_attempts,
                possible_acks: entry.possible_acks,
                ..Outgoing::new(message, stored, entry.sent_at_ms)
            });
        }
        for (position, entry) in meta.incoming.iter().enumerate() {
            let message = buffered_message(entry.decode_message())
                .map_err(|err| corrupt(format!("incoming entry {position}: {err}")))?;
            channel.bloom.insert(&message.message_id);
            let stored = channel.snapshots.adopt(entry.message.clone());
            channel.incoming.push(Incoming {
                message,
                stored,
                missing: entry.missing_dependencies.iter().cloned().collect(),
                received_at: entry.received_at_ms,
            });
        }
        let mut outgoing_repairs = BTreeMap::new();
        for repair in meta.outgoing_repairs {
            let entry = repair
                .entry
                .ok_or_else(|| corrupt("outgoing repair has no entry".into()))?;
            outgoing_repairs.insert(
                entry.message_id.clone(),
                OutgoingRepair::new(entry, repair.request_at_ms),
            );
        }
        // Older snapshots carry each answer's bytes too; they are not needed (answers are
        // encoded from the log), and an answer whose message is no longer logged is dropped.
        // At most `max_incoming_repairs` are kept, the soonest due.
        let mut incoming_repairs: Vec<IncomingRepair> = Vec::new();
        for repair in meta.incoming_repairs {
            let entry = repair
                .entry
                .ok_or_else(|| corrupt("incoming repair has no entry".into()))?;
            if channel.log.contains(&entry.message_id) {
                incoming_repairs.push(IncomingRepair {
                    entry,
                    respond_at: repair.respond_at_ms,
                });
            }
        }
        incoming_repairs.sort_by(|a, b| {
            (a.respond_at, &a.entry.message_id).cmp(&(b.respond_at, &b.entry.message_id))
        });
        incoming_repairs.truncate(channel.config().max_incoming_repairs);
        channel.outgoing_repairs = outgoing_repairs;
        channel.trim_outgoing_repairs();
        channel.incoming_repairs = incoming_repairs
            .into_iter()
            .map(|repair| (repair.entry.message_id.clone(), repair))
            .collect();
        channel.lamport = meta.lamport.max(channel.log.max_lamport());
        // A buffer stored under a larger bound (the bound was lowered) is trimmed now, and
        // the trim saved with the next commit.
        channel.enforce_outgoing_bounds();
        Ok(channel)
    }
}

/// A buffered entry's message, refusing one without an id (it could never be matched,
/// acknowledged or delivered).
fn buffered_message(
    decoded: Result<SdsMessage, sds_codec::CodecError>,
) -> Result<SdsMessage, String> {
    let message = decoded.map_err(|err| err.to_string())?;
    if message.message_id.is_empty() {
        return Err("the message has no id".to_string());
    }
    Ok(message)
}

/// Most consecutive buffered entries in one shared snapshot chunk. Small enough that a
/// changed entry costs little to rebuild, large enough that a backend keeping a snapshot of
/// thousands of entries copies only tens of pointers.
pub(crate) const CHUNK: u64 = 32;

/// A buffered message in the form snapshots store it: encoded once, when buffered, and
/// shared by every snapshot while it stays buffered.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) bytes: Bytes,
    /// Buffering order within the channel; consecutive entries share a snapshot chunk.
    seq: u64,
}

impl Stored {
    /// The stored encoding's length in bytes (what the buffer byte budgets count).
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The snapshot chunk this message belongs to.
    pub(crate) fn chunk(&self) -> u64 {
        self.seq / CHUNK
    }

    /// Whether `bytes` is this very encoding (the same shared buffer), not merely equal
    /// bytes: a cached snapshot entry holds a reference to the buffer, so the address
    /// cannot be reused by another message while the comparison matters.
    fn is(&self, bytes: &Bytes) -> bool {
        !bytes.is_empty()
            && bytes.len() == self.bytes.len()
            && bytes.as_ptr() == self.bytes.as_ptr()
    }
}

/// The chunks of the last snapshot, reused by the next one where nothing changed, and the
/// numbering of buffered messages that decides which entries share a chunk.
#[derive(Debug, Default)]
pub(crate) struct SnapshotCache {
    next_seq: u64,
    outgoing: Vec<(u64, Arc<Vec<OutgoingEntry>>)>,
    incoming: Vec<(u64, Arc<Vec<IncomingEntry>>)>,
}

impl SnapshotCache {
    /// Encodes a message being buffered (its bloom filter already stripped).
    pub(crate) fn store(&mut self, message: &SdsMessage) -> Stored {
        self.adopt(encode_buffered_message(message))
    }

    /// Takes an encoding already at hand (a loaded snapshot's) as a buffered message's.
    fn adopt(&mut self, bytes: Bytes) -> Stored {
        let seq = self.next_seq;
        self.next_seq += 1;
        Stored { bytes, seq }
    }
}

/// A buffer as snapshot chunks: entries are grouped by buffering order, [`CHUNK`] numbers
/// to a chunk. A chunk the buffer reports unchanged since the last snapshot is reused as
/// cached, without looking at its entries; another is reused when its cached copy holds
/// exactly the group's entries, unchanged, and built afresh otherwise. `cache` then holds
/// this snapshot's chunks.
fn chunked<B, E>(
    cache: &mut Vec<(u64, Arc<Vec<E>>)>,
    buffer: &[B],
    changed: &Changed,
    stored: impl Fn(&B) -> &Stored,
    unchanged: impl Fn(&E, &B) -> bool,
    build: impl Fn(&B) -> E,
) -> Entries<E> {
    let same = |chunk: &[E], group: &[B]| {
        chunk.len() == group.len()
            && chunk
                .iter()
                .zip(group)
                .all(|(old, entry)| unchanged(old, entry))
    };
    let mut previous = std::mem::take(cache).into_iter().peekable();
    let mut rest = buffer;
    while let Some(first) = rest.first() {
        let number = stored(first).chunk();
        while previous.next_if(|(cached, _)| *cached < number).is_some() {}
        let cached = previous
            .next_if(|(cached, _)| *cached == number)
            .map(|(_, chunk)| chunk);
        let (chunk, len) = match cached {
            Some(chunk) if !changed.contains(number) && chunk.len() <= rest.len() => {
                let len = chunk.len();
                debug_assert!(
                    same(&chunk, &rest[..len])
                        && rest[..len]
                            .iter()
                            .all(|entry| stored(entry).chunk() == number)
                        && rest
                            .get(len)
                            .is_none_or(|entry| stored(entry).chunk() != number),
                    "snapshot chunk {number} changed without being reported"
                );
                (chunk, len)
            }
            cached => {
                let len = rest
                    .iter()
                    .position(|entry| stored(entry).chunk() != number)
                    .unwrap_or(rest.len());
                let group = &rest[..len];
                let chunk = match cached {
                    Some(chunk) if same(&chunk, group) => chunk,
                    _ => Arc::new(group.iter().map(&build).collect()),
                };
                (chunk, len)
            }
        };
        rest = &rest[len..];
        cache.push((number, chunk));
    }
    Entries::from_chunks(cache.iter().map(|(_, chunk)| chunk.clone()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use sds_codec::storage::{
        Bytes, ChannelData, ChannelMeta, IncomingEntry, LoggedMessage, OutgoingEntry,
        OutgoingRepairEntry, encode_buffered_message,
    };
    use sds_codec::wire::{HistoryEntry, SdsMessage};

    use super::super::{Channel, Settings};
    use crate::clock::UnixMillis;
    use crate::config::ReliabilityConfig;
    use crate::error::SdsError;
    use crate::persistence::PersistenceErrorKind;

    const NOW: UnixMillis = 1_700_000_000_000;

    fn settings(participant: &str) -> Arc<Settings> {
        Arc::new(Settings {
            participant_id: participant.into(),
            config: ReliabilityConfig {
                bloom_capacity: 200,
                ..ReliabilityConfig::default()
            },
        })
    }

    fn ids(meta: &ChannelMeta) -> Vec<String> {
        meta.outgoing
            .iter()
            .map(|entry| entry.decode_message().unwrap().message_id)
            .collect()
    }

    fn shared(a: &ChannelMeta, b: &ChannelMeta) -> Vec<bool> {
        b.outgoing
            .chunks()
            .iter()
            .map(|chunk| {
                a.outgoing
                    .chunks()
                    .iter()
                    .any(|old| Arc::ptr_eq(old, chunk))
            })
            .collect()
    }

    /// Chunks whose entries are untouched are reused as they are; a chunk with a changed
    /// entry (a possible acknowledgement counted, an entry acknowledged) is rebuilt, and
    /// the snapshot always says what the buffer holds: it restores to the same snapshot.
    #[test]
    fn only_changed_chunks_are_rebuilt_and_snapshots_follow_the_buffer() {
        let mut alice = Channel::new("room", settings("alice")).unwrap();
        for n in 0..40 {
            alice
                .wrap(NOW + n, format!("m{n:02}"), b"hi".to_vec(), None)
                .unwrap();
        }
        let first = alice.snapshot_meta();
        assert_eq!(first.outgoing.len(), 40);
        let unchanged = alice.snapshot_meta();
        assert_eq!(shared(&first, &unchanged), [true, true]);

        let resent = alice.outgoing.get_mut(3).unwrap();
        resent.possible_acks = 1;
        resent.resend_attempts = 2;
        let counted = alice.snapshot_meta();
        assert_eq!(shared(&unchanged, &counted), [false, true]);
        assert_eq!(counted.outgoing[3].possible_acks, 1);
        assert_eq!(counted.outgoing[3].resend_attempts, 2);

        alice.outgoing.remove(35);
        let acked = alice.snapshot_meta();
        assert_eq!(shared(&counted, &acked), [true, false]);
        assert_eq!(acked.outgoing.len(), 39);
        assert!(!ids(&acked).contains(&"m35".to_string()));

        // The first chunk empties: the second is still matched to its cached copy.
        alice.outgoing.drain_oldest(32);
        let drained = alice.snapshot_meta();
        assert_eq!(shared(&acked, &drained), [true]);
        assert_eq!(drained.outgoing.len(), 7);

        let data = ChannelData {
            meta: Some(acked.clone()),
            history: Vec::new(),
        };
        let mut restored = Channel::restore("room", settings("alice"), data).unwrap();
        assert_eq!(restored.snapshot_meta(), acked);
    }

    /// A chunk that lost one entry and gained another of the same size, sent in the same
    /// millisecond (every field but the bytes equal), is rebuilt: entries are matched by
    /// their encoding, not by their fields.
    #[test]
    fn a_chunk_with_an_entry_replaced_is_rebuilt() {
        let mut alice = Channel::new("room", settings("alice")).unwrap();
        for n in 0..40 {
            alice
                .wrap(NOW, format!("m{n:02}"), b"hi".to_vec(), None)
                .unwrap();
        }
        let before = alice.snapshot_meta();
        alice.outgoing.remove(35);
        alice
            .wrap(NOW, "m40".to_string(), b"hi".to_vec(), None)
            .unwrap();
        let after = alice.snapshot_meta();
        assert_eq!(shared(&before, &after), [true, false]);
        let expected: Vec<String> = (0..41)
            .filter(|n| *n != 35)
            .map(|n| format!("m{n:02}"))
            .collect();
        assert_eq!(ids(&after), expected);
    }

    /// The incoming buffer reports no changes, so its entries are compared: an unchanged
    /// buffer's snapshot shares every chunk with the one before.
    #[test]
    fn an_unchanged_incoming_buffer_is_shared_between_snapshots() {
        let mut bob = Channel::new("room", settings("bob")).unwrap();
        for n in 0..40 {
            let waiting = SdsMessage {
                sender_id: "alice".into(),
                message_id: format!("a{n:02}"),
                channel_id: "room".into(),
                lamport_timestamp: Some(n + 2),
                causal_history: vec![HistoryEntry {
                    message_id: "lost".into(),
                    ..Default::default()
                }],
                content: Some(b"hi".to_vec()),
                ..Default::default()
            };
            bob.unwrap(NOW, waiting);
        }
        let before = bob.snapshot_meta();
        let after = bob.snapshot_meta();
        assert_eq!(after.incoming.len(), 40);
        assert_eq!(after.incoming.chunks().len(), 2);
        for chunk in after.incoming.chunks() {
            assert!(
                before
                    .incoming
                    .chunks()
                    .iter()
                    .any(|old| Arc::ptr_eq(old, chunk))
            );
        }
    }

    /// A history stored without its snapshot (the snapshot was lost, or never written)
    /// restores the clock from the newest logged message, so the next send is stamped past
    /// it.
    #[test]
    fn the_clock_restores_from_the_history_without_a_snapshot() {
        let logged = |id: &str, lamport: u64| LoggedMessage {
            message: Some(SdsMessage {
                sender_id: "alice".into(),
                message_id: id.into(),
                channel_id: "room".into(),
                lamport_timestamp: Some(lamport),
                content: Some(b"hi".to_vec()),
                ..Default::default()
            }),
            retrieval_hint: None,
        };
        let data = ChannelData {
            meta: None,
            history: vec![logged("a1", 5), logged("a2", 9_000)],
        };
        let restored = Channel::restore("room", settings("bob"), data).unwrap();
        assert_eq!(restored.lamport, 9_000);
    }

    /// Stored repair requests past a lowered `max_outgoing_repairs` are trimmed on restore,
    /// keeping the soonest due (2 of 5 here).
    #[test]
    fn restored_repair_requests_are_trimmed_to_the_cap() {
        let settings = Arc::new(Settings {
            participant_id: "bob".into(),
            config: ReliabilityConfig {
                bloom_capacity: 200,
                max_outgoing_repairs: 2,
                ..ReliabilityConfig::default()
            },
        });
        let meta = ChannelMeta {
            outgoing_repairs: [50, 10, 40, 20, 30]
                .iter()
                .map(|due| OutgoingRepairEntry {
                    entry: Some(HistoryEntry {
                        message_id: format!("lost-{due}"),
                        ..Default::default()
                    }),
                    request_at_ms: NOW + due,
                })
                .collect(),
            ..ChannelMeta::empty()
        };
        let data = ChannelData {
            meta: Some(meta),
            history: Vec::new(),
        };
        let restored = Channel::restore("room", settings, data).unwrap();
        let kept: Vec<&str> = restored
            .outgoing_repairs
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(kept, ["lost-10", "lost-20"]);
        assert!(
            restored.meta_dirty,
            "the trim is saved with the next commit"
        );
    }

    /// A buffered message's missing dependencies shrink as they are met, and the snapshot
    /// follows.
    #[test]
    fn incoming_entries_follow_their_missing_dependencies() {
        let mut bob = Channel::new("room", settings("bob")).unwrap();
        let waiting = SdsMessage {
            sender_id: "alice".into(),
            message_id: "a3".into(),
            channel_id: "room".into(),
            lamport_timestamp: Some(3),
            causal_history: ["a1", "a2"]
                .iter()
                .map(|id| HistoryEntry {
                    message_id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
            content: Some(b"hi".to_vec()),
            ..Default::default()
        };
        bob.unwrap(NOW, waiting.clone());
        let before = bob.snapshot_meta();
        let entry = before.incoming.get(0).unwrap();
        assert_eq!(entry.missing_dependencies, ["a1", "a2"]);
        assert_eq!(entry.decode_message(), Ok(waiting));

        bob.mark_dependencies_met(&["a1".to_string()]);
        let after = bob.snapshot_meta();
        assert_eq!(after.incoming.get(0).unwrap().missing_dependencies, ["a2"]);
        assert_eq!(after.incoming.get(0).unwrap().message, entry.message);
    }

    /// A stored buffer entry without a message, with bytes that are not a wire message, or
    /// with a message without an id is corrupt data: bootstrap fails with a typed error
    /// naming the entry, and never panics.
    #[test]
    fn malformed_buffered_entries_are_refused_as_corrupt() {
        let no_id = encode_buffered_message(&SdsMessage {
            lamport_timestamp: Some(1),
            ..Default::default()
        });
        let garbage = Bytes::from_static(&[0x0A, 0x05, 0x08]);
        let cases = [
            (
                ChannelMeta {
                    outgoing: vec![OutgoingEntry::default()].into(),
                    ..ChannelMeta::empty()
                },
                "outgoing entry 0",
            ),
            (
                ChannelMeta {
                    outgoing: vec![OutgoingEntry {
                        message: no_id,
                        ..Default::default()
                    }]
                    .into(),
                    ..ChannelMeta::empty()
                },
                "no id",
            ),
            (
                ChannelMeta {
                    incoming: vec![IncomingEntry {
                        message: garbage,
                        ..Default::default()
                    }]
                    .into(),
                    ..ChannelMeta::empty()
                },
                "incoming entry 0",
            ),
        ];
        for (meta, expected) in cases {
            let data = ChannelData {
                meta: Some(meta),
                history: Vec::new(),
            };
            match Channel::restore("room", settings("bob"), data) {
                Err(SdsError::Persistence(err)) => {
                    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt);
                    assert!(err.to_string().contains(expected), "{err}");
                }
                other => panic!("expected a corrupt-data error, got {other:?}"),
            }
        }
    }
}
