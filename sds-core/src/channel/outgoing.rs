//! The outgoing buffer: messages we sent that nobody has acknowledged yet.
//!
//! Each entry is resent every `resend_interval_ms` until acknowledged (see
//! `acknowledgement`) or out of attempts. The buffer is bounded by `max_outgoing_buffer`
//! messages and `max_outgoing_buffer_bytes` bytes (each message counting its stored
//! encoding, without the bloom filter): past either, the oldest entries are given up, each
//! with [`Event::MessageSendFailed`], plus one [`Event::LimitReached`]
//! ([`Limit::OutgoingBuffer`]) saying how many. Nobody acknowledging is then a bounded cost:
//! the newest messages are still resent, and the log can no longer repair what is older than
//! it anyway.
//!
//! The buffer also answers a retried `wrap_outgoing` (see [`Channel::rewrap`]): a caller
//! whose wrap was cancelled or whose bytes were lost asks again with the same id and content
//! and gets the message that was wrapped, not a new one.

use std::collections::{BTreeSet, HashSet};

use sds_codec::wire::{SdsMessage, encode_message};
use tracing::debug;

use super::Channel;
use super::snapshot::Stored;
use crate::clock::UnixMillis;
use crate::error::SdsError;
use crate::event::{Event, Limit};

/// A message we sent that is not acknowledged yet.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The message as sent, without its bloom filter (a resend attaches the current one).
    /// Boxed: every snapshot walks the buffer's other fields, which then share a cache line.
    pub(crate) message: Box<SdsMessage>,
    /// `message` encoded once, shared with every snapshot.
    pub(crate) stored: Stored,
    pub(crate) sent_at: UnixMillis,
    pub(crate) resend_attempts: u32,
    pub(crate) possible_acks: u32,
    /// Senders whose bloom filter counted in `possible_acks` (each counts once).
    pub(crate) possible_ack_senders: BTreeSet<String>,
}

impl Outgoing {
    /// A message just sent.
    pub(crate) fn new(message: SdsMessage, stored: Stored, sent_at: UnixMillis) -> Self {
        Outgoing {
            message: Box::new(message),
            stored,
            sent_at,
            resend_attempts: 0,
            possible_acks: 0,
            possible_ack_senders: BTreeSet::new(),
        }
    }
}

/// The outgoing buffer: entries oldest first (in the order they were buffered), and which
/// of them changed since the last snapshot.
///
/// Every way of changing an entry goes through this type and records the snapshot chunk it
/// touched, so a snapshot reuses the other chunks without looking at their entries: after a
/// wrap it rebuilds one chunk whatever the buffer holds. A buffer emptied with
/// `std::mem::take` and refilled starts over as all changed (its entries are then compared
/// one by one).
#[derive(Debug)]
pub(crate) struct OutgoingBuffer {
    entries: Vec<Outgoing>,
    changed: Changed,
}

/// The snapshot chunks a buffer changed since its last snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Changed {
    /// Any of them (a fresh buffer, or too many to list).
    All,
    /// These chunk numbers, in the order first changed.
    Chunks(Vec<u64>),
}

impl Changed {
    /// More changed chunks than this are counted as all changed: listing them would cost
    /// more than comparing their entries.
    const MAX_LISTED: usize = 64;

    pub(crate) fn contains(&self, chunk: u64) -> bool {
        match self {
            Changed::All => true,
            Changed::Chunks(chunks) => chunks.contains(&chunk),
        }
    }

    fn mark(&mut self, chunk: u64) {
        if let Changed::Chunks(chunks) = self {
            if chunks.last() == Some(&chunk) || chunks.contains(&chunk) {
                return;
            }
            if chunks.len() >= Self::MAX_LISTED {
                *self = Changed::All;
            } else {
                chunks.push(chunk);
            }
        }
    }
}

impl Default for OutgoingBuffer {
    fn default() -> Self {
        OutgoingBuffer {
            entries: Vec::new(),
            changed: Changed::All,
        }
    }
}

impl OutgoingBuffer {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Outgoing> {
        self.entries.iter()
    }

    pub(crate) fn as_slice(&self) -> &[Outgoing] {
        &self.entries
    }

    /// Appends an entry (entries are appended in buffering order).
    pub(crate) fn push(&mut self, entry: Outgoing) {
        self.changed.mark(entry.stored.chunk());
        self.entries.push(entry);
    }

    /// Removes the `count` oldest entries.
    pub(crate) fn drain_oldest(&mut self, count: usize) -> Vec<Outgoing> {
        let count = count.min(self.entries.len());
        for entry in &self.entries[..count] {
            self.changed.mark(entry.stored.chunk());
        }
        self.entries.drain(..count).collect()
    }

    /// Removes the entry at `index`, if there is one.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, index: usize) -> Option<Outgoing> {
        let entry = self.entries.get(index)?;
        self.changed.mark(entry.stored.chunk());
        Some(self.entries.remove(index))
    }

    /// The entry at `index` for changing, if there is one.
    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Outgoing> {
        let entry = self.entries.get_mut(index)?;
        self.changed.mark(entry.stored.chunk());
        Some(entry)
    }

    /// What changed since the last call (the last snapshot), forgetting it.
    pub(crate) fn take_changes(&mut self) -> Changed {
        std::mem::replace(&mut self.changed, Changed::Chunks(Vec::new()))
    }
}

impl IntoIterator for OutgoingBuffer {
    type Item = Outgoing;
    type IntoIter = std::vec::IntoIter<Outgoing>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// What the channel keeps about the messages it sent, beside the buffer itself.
///
/// Entries leave the buffer from several places (acknowledgements, sweeps, the bounds), so
/// the two summaries here are kept conservative rather than exact, and checked against the
/// buffer only when they say something might be there: `ids` holds every buffered id (and
/// maybe some that left since), `bytes` is at least the buffer's stored size. Both make the
/// common case of a wrap (a new id, a buffer within its budget) cost no scan of the buffer.
#[derive(Debug, Default)]
pub(crate) struct OutgoingLedger {
    /// The last message wrapped and the bloom filter it was sent with: all a retry needs
    /// to return the same bytes (everything else is in the buffered message).
    last_wrap: Option<(String, Option<Vec<u8>>)>,
    /// A superset of the buffered ids.
    ids: HashSet<String>,
    /// An upper bound of the buffered messages' stored bytes.
    bytes: usize,
}

impl OutgoingLedger {
    /// Records an entry entering the buffer.
    fn add(&mut self, entry: &Outgoing) {
        self.ids.insert(entry.message.message_id.clone());
        self.bytes = self.bytes.saturating_add(entry.stored.len());
    }

    /// Forgets ids that left the buffer, once stale ones outnumber the live ones (so the
    /// cost is amortized over the entries added since).
    fn prune(&mut self, buffer: &OutgoingBuffer) {
        if self.ids.len() > 2 * buffer.len() + 64 {
            self.ids = buffer
                .iter()
                .map(|entry| entry.message.message_id.clone())
                .collect();
        }
    }
}

impl Channel {
    /// Buffers a message just sent, then gives up the oldest entries past the bounds. The
    /// bloom filter it was sent with is kept until the next wrap, for a retry.
    pub(super) fn buffer_outgoing(&mut self, entry: Outgoing, bloom_filter: Option<Vec<u8>>) {
        self.outgoing_ledger.last_wrap = Some((entry.message.message_id.clone(), bloom_filter));
        self.push_outgoing(entry);
        self.enforce_outgoing_bounds();
    }

    /// Adds an entry to the buffer (bounds are the caller's business).
    pub(super) fn push_outgoing(&mut self, entry: Outgoing) {
        self.outgoing_ledger.add(&entry);
        self.outgoing.push(entry);
        self.outgoing_ledger.prune(&self.outgoing);
    }

    /// The buffered message sent under `message_id`, if any.
    pub(super) fn outgoing_message(&self, message_id: &str) -> Option<&SdsMessage> {
        if !self.outgoing_ledger.ids.contains(message_id) {
            return None;
        }
        self.outgoing
            .iter()
            .map(|entry| &*entry.message)
            .find(|message| message.message_id == message_id)
    }

    /// Gives up the oldest unacknowledged messages until the buffer is within
    /// `max_outgoing_buffer` messages and `max_outgoing_buffer_bytes` bytes. Returns how many
    /// were given up.
    pub(super) fn enforce_outgoing_bounds(&mut self) -> usize {
        let max_messages = self.config().max_outgoing_buffer;
        let max_bytes = self.config().max_outgoing_buffer_bytes;
        let mut over = self.outgoing.len().saturating_sub(max_messages);
        if over == 0 && self.outgoing_ledger.bytes <= max_bytes {
            return 0;
        }
        let buffered = self.outgoing.as_slice();
        let mut bytes: usize = buffered.iter().map(|entry| entry.stored.len()).sum();
        for entry in &buffered[..over] {
            bytes -= entry.stored.len();
        }
        for entry in &buffered[over..] {
            if bytes <= max_bytes {
                break;
            }
            bytes -= entry.stored.len();
            over += 1;
        }
        self.outgoing_ledger.bytes = bytes;
        if over == 0 {
            return 0;
        }
        let given_up = self.outgoing.drain_oldest(over);
        debug!(channel = %self.id, dropped = over, buffered = self.outgoing.len(),
            "outgoing buffer full: giving up the oldest unacknowledged messages");
        for entry in given_up {
            self.events.push(Event::MessageSendFailed {
                channel: self.id.clone(),
                message_id: entry.message.message_id,
            });
        }
        self.events.push(Event::LimitReached {
            channel: self.id.clone(),
            limit: Limit::OutgoingBuffer,
            dropped: over,
        });
        self.meta_dirty = true;
        over
    }

    /// The answer to a wrap of an id we already hold: the message we sent under it when the
    /// sender and content are ours, [`SdsError::DuplicateMessageId`] otherwise; `None` when
    /// the id is new here. Changes nothing.
    ///
    /// The last message wrapped on the channel comes back byte for byte (it is rebuilt with
    /// the bloom filter it was sent with). An older one still in the log or the outgoing
    /// buffer comes back re-encoded: the same message (id, sender, channel, Lamport
    /// timestamp, causal history, repair requests, content) with our current bloom filter,
    /// as a resend carries.
    pub(super) fn rewrap(
        &self,
        message_id: &str,
        content: &[u8],
    ) -> Result<Option<Vec<u8>>, SdsError> {
        let held = match self.log.get(message_id) {
            Some(entry) => Some(&entry.message),
            None => self.outgoing_message(message_id),
        };
        let duplicate = || SdsError::DuplicateMessageId {
            channel: self.id.clone(),
            message_id: message_id.to_string(),
        };
        let Some(held) = held else {
            // A buffered message is someone else's (ours are never buffered as incoming):
            // ids are first-come.
            return if self.is_buffered(message_id) {
                Err(duplicate())
            } else {
                Ok(None)
            };
        };
        if held.sender_id != self.settings.participant_id
            || held.content.as_deref() != Some(content)
        {
            return Err(duplicate());
        }
        let bloom_filter = match &self.outgoing_ledger.last_wrap {
            Some((last, bloom_filter)) if last == message_id => bloom_filter.clone(),
            _ => Some(self.bloom.to_bytes()),
        };
        let message = SdsMessage {
            bloom_filter,
            ..held.clone()
        };
        debug!(channel = %self.id, message_id, "wrap retried: returning the message sent");
        Ok(Some(encode_message(&message)?))
    }

    /// Resends unacknowledged messages whose interval passed, or gives up on them; marks
    /// the snapshot dirty when it did either.
    pub(crate) fn sweep_outgoing(&mut self, now: UnixMillis) {
        let interval = i64::try_from(self.config().resend_interval_ms).unwrap_or(i64::MAX);
        let max_attempts = self.config().max_resend_attempts;
        let mut changed = false;
        let mut bloom = None;
        let outgoing = std::mem::take(&mut self.outgoing);
        for mut entry in outgoing {
            if now.saturating_sub(entry.sent_at) < interval {
                self.outgoing.push(entry);
                continue;
            }
            changed = true;
            let id = entry.message.message_id.clone();
            if entry.resend_attempts >= max_attempts {
                self.events.push(Event::MessageSendFailed {
                    channel: self.id.clone(),
                    message_id: id,
                });
                continue;
            }
            // The current filter is lent to each message in turn for encoding: neither the
            // message nor the ~18 KB filter is copied.
            entry.message.bloom_filter =
                Some(bloom.take().unwrap_or_else(|| self.bloom.to_bytes()));
            let encoded = encode_message(&entry.message);
            bloom = entry.message.bloom_filter.take();
            match encoded {
                Ok(bytes) => {
                    entry.resend_attempts += 1;
                    entry.sent_at = now;
                    self.events.push(Event::Resend {
                        channel: self.id.clone(),
                        message_id: id,
                        bytes,
                        attempt: entry.resend_attempts,
                    });
                    self.outgoing.push(entry);
                }
                Err(err) => {
                    // Cannot happen for a message that was encoded once; never resend garbage.
                    debug!(channel = %self.id, message_id = %id, %err, "dropping unencodable message");
                    self.events.push(Event::MessageSendFailed {
                        channel: self.id.clone(),
                        message_id: id,
                    });
                }
            }
        }
        self.meta_dirty |= changed;
    }
}

#[cfg(test)]
mod tests {
    use sds_codec::wire::SdsMessage;

    use super::*;
    use crate::channel::snapshot::SnapshotCache;

    fn entry(cache: &mut SnapshotCache, id: &str) -> Outgoing {
        let message = SdsMessage {
            message_id: id.to_string(),
            ..SdsMessage::default()
        };
        let stored = cache.store(&message);
        Outgoing::new(message, stored, 0)
    }

    /// The ledger rebuilds its id set from the buffer only once departed ids outnumber
    /// twice the buffer plus 64: with 3 buffered, 70 ids are kept and a 71st triggers it.
    #[test]
    fn the_ledger_forgets_departed_ids_past_twice_the_buffer_plus_64() {
        let mut cache = SnapshotCache::default();
        let mut buffer = OutgoingBuffer::default();
        let mut ledger = OutgoingLedger::default();
        for n in 0..3 {
            let live = entry(&mut cache, &format!("live-{n}"));
            ledger.add(&live);
            buffer.push(live);
        }
        for n in 0..67 {
            ledger.add(&entry(&mut cache, &format!("gone-{n}")));
        }
        ledger.prune(&buffer);
        assert_eq!(ledger.ids.len(), 70, "within 2 x 3 + 64: kept");

        ledger.add(&entry(&mut cache, "gone-67"));
        ledger.prune(&buffer);
        let mut kept: Vec<&str> = ledger.ids.iter().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["live-0", "live-1", "live-2"]);
    }

    /// Up to 64 changed chunks are listed, each once; the 65th turns the list into "all".
    #[test]
    fn changed_chunks_are_listed_up_to_64() {
        let mut changed = Changed::Chunks(Vec::new());
        for chunk in 0..64 {
            changed.mark(chunk);
            changed.mark(chunk);
        }
        changed.mark(3);
        assert_eq!(changed, Changed::Chunks((0..64).collect()));
        assert!(!changed.contains(64));
        changed.mark(64);
        assert_eq!(changed, Changed::All);
        assert!(changed.contains(64));
    }
}
