//! The incoming buffer: received messages waiting for their causal dependencies.
//!
//! It is bounded three ways: messages (`max_incoming_buffer`), bytes
//! (`max_incoming_buffer_bytes`) and bytes per sender (`max_incoming_bytes_per_sender`).
//! A newcomer is made room for rather than dropped, at the expense of whoever holds the
//! most (see [`IncomingBuffer::make_room`]): one flooding sender cannot push out an honest
//! out-of-order message, and a single sender past its own share only displaces itself.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use sds_codec::wire::{SdsMessage, encode_message};
use tracing::debug;

use super::Channel;
use super::snapshot::Stored;
use crate::clock::UnixMillis;
use crate::event::{DropReason, Event};

/// A received message that cannot be delivered yet.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) message: SdsMessage,
    /// `message` (without its bloom filter) encoded once, shared with every snapshot; its
    /// length is the message's encoded size.
    pub(crate) stored: Stored,
    /// Dependencies not delivered yet: ids we never received and ids that wait in this
    /// buffer themselves.
    pub(crate) missing: BTreeSet<String>,
    pub(crate) received_at: UnixMillis,
}

/// The size a buffered message counts for: its encoded length (without the bloom filter,
/// which buffered copies drop).
pub(crate) fn message_size(message: &SdsMessage) -> usize {
    // A message that no longer encodes (over the size limit) cannot be buffered anyway:
    // counting it as oversized makes the budgets refuse it.
    encode_message(message).map_or(usize::MAX, |bytes| bytes.len())
}

/// The bounds of one channel's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_bytes_per_sender: usize,
}

/// What one sender holds in the buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Share {
    bytes: usize,
    messages: usize,
}

#[derive(Debug)]
struct Held {
    entry: Incoming,
    size: usize,
}

/// Buffered messages in arrival order, with an id index (every received message checks
/// each of its dependencies against the buffer, and a peer's causal history may name
/// hundreds of them) and per-sender byte and message counts.
#[derive(Debug, Default)]
pub(crate) struct IncomingBuffer {
    entries: Vec<Held>,
    ids: HashSet<String>,
    bytes: usize,
    shares: HashMap<String, Share>,
}

/// Evictions worked out on counts only, so a refused newcomer evicts nothing.
struct Plan<'a> {
    /// Each sender's messages, oldest first: (arrival position, id, size).
    queues: HashMap<&'a str, VecDeque<(usize, &'a str, usize)>>,
    shares: HashMap<&'a str, Share>,
    bytes: usize,
    messages: usize,
    victims: Vec<String>,
}

impl<'a> Plan<'a> {
    fn new(buffer: &'a IncomingBuffer) -> Self {
        let mut queues: HashMap<&str, VecDeque<(usize, &str, usize)>> = HashMap::new();
        for (position, held) in buffer.entries.iter().enumerate() {
            let message = &held.entry.message;
            queues
                .entry(message.sender_id.as_str())
                .or_default()
                .push_back((position, message.message_id.as_str(), held.size));
        }
        Plan {
            queues,
            shares: buffer
                .shares
                .iter()
                .map(|(id, share)| (id.as_str(), *share))
                .collect(),
            bytes: buffer.bytes,
            messages: buffer.entries.len(),
            victims: Vec::new(),
        }
    }

    /// Plans the eviction of `sender`'s oldest message; false if it holds none.
    fn evict_oldest(&mut self, sender: &str) -> bool {
        let Some((_, id, size)) = self.queues.get_mut(sender).and_then(VecDeque::pop_front) else {
            return false;
        };
        if let Some(share) = self.shares.get_mut(sender) {
            share.bytes = share.bytes.saturating_sub(size);
            share.messages = share.messages.saturating_sub(1);
        }
        self.bytes = self.bytes.saturating_sub(size);
        self.messages = self.messages.saturating_sub(1);
        self.victims.push(id.to_string());
        true
    }

    /// The sender holding the most bytes (or messages), the newcomer counting for its
    /// sender, which loses ties; between other senders, the one holding the oldest message.
    fn heaviest<'s>(&self, newcomer: &'s str, size: usize, by_bytes: bool) -> &'s str
    where
        'a: 's,
    {
        let weight = |share: &Share, extra_bytes: usize, extra_messages: usize| {
            if by_bytes {
                share.bytes.saturating_add(extra_bytes)
            } else {
                share.messages.saturating_add(extra_messages)
            }
        };
        let own = self.shares.get(newcomer).copied().unwrap_or_default();
        // (weight, is the newcomer's sender, oldest first): the newcomer's sender wins ties.
        let mut best = ((weight(&own, size, 1), true, Reverse(0)), newcomer);
        for (sender, share) in &self.shares {
            if *sender == newcomer {
                continue;
            }
            let Some((oldest, _, _)) = self.queues.get(sender).and_then(VecDeque::front) else {
                continue;
            };
            let candidate = (weight(share, 0, 0), false, Reverse(*oldest));
            if candidate > best.0 {
                best = (candidate, *sender);
            }
        }
        best.1
    }
}

impl IncomingBuffer {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held, as [`message_size`] counts them.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn contains(&self, message_id: &str) -> bool {
        self.ids.contains(message_id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Incoming> {
        self.entries.iter().map(|held| &held.entry)
    }

    /// Buffers a message; a second copy of a buffered id is ignored. The budgets are the
    /// caller's business ([`Self::make_room`] first): a restored snapshot is taken whole.
    pub(crate) fn push(&mut self, entry: Incoming) {
        if !self.ids.insert(entry.message.message_id.clone()) {
            return;
        }
        let size = message_size(&entry.message);
        self.bytes = self.bytes.saturating_add(size);
        let share = self
            .shares
            .entry(entry.message.sender_id.clone())
            .or_default();
        share.bytes = share.bytes.saturating_add(size);
        share.messages += 1;
        self.entries.push(Held { entry, size });
    }

    fn forget(&mut self, held: &Held) {
        self.ids.remove(&held.entry.message.message_id);
        self.bytes = self.bytes.saturating_sub(held.size);
        let sender = held.entry.message.sender_id.as_str();
        if let Some(share) = self.shares.get_mut(sender) {
            share.bytes = share.bytes.saturating_sub(held.size);
            share.messages = share.messages.saturating_sub(1);
            if share.messages == 0 {
                self.shares.remove(sender);
            }
        }
    }

    /// Removes a buffered message.
    pub(crate) fn remove(&mut self, message_id: &str) -> Option<Incoming> {
        if !self.ids.contains(message_id) {
            return None;
        }
        let position = self
            .entries
            .iter()
            .position(|held| held.entry.message.message_id == message_id)?;
        let held = self.entries.remove(position);
        self.forget(&held);
        Some(held.entry)
    }

    /// Which buffered messages to evict so a newcomer of `size` bytes from `sender` fits
    /// the budget, oldest first; `None` when the newcomer itself must be dropped. Nothing
    /// is changed here: the caller evicts, so a refused newcomer evicts nothing.
    ///
    /// The rule: past its own sender's byte budget, that sender's oldest messages go. Past
    /// the whole buffer's byte budget (or message count), the oldest message of the sender
    /// holding the most bytes (or messages) goes, the newcomer counting for its sender and
    /// its sender losing ties; when that sender is the newcomer's and it holds nothing more,
    /// the newcomer is dropped. A newcomer larger than a budget on its own is dropped.
    pub(crate) fn make_room(
        &self,
        sender: &str,
        size: usize,
        budget: &Budget,
    ) -> Option<Vec<String>> {
        if size > budget.max_bytes_per_sender || size > budget.max_bytes {
            return None;
        }
        let own = self.shares.get(sender).map_or(0, |share| share.bytes);
        if own.saturating_add(size) <= budget.max_bytes_per_sender
            && self.bytes.saturating_add(size) <= budget.max_bytes
            && self.entries.len() < budget.max_messages
        {
            return Some(Vec::new());
        }
        let mut plan = Plan::new(self);
        while plan
            .shares
            .get(sender)
            .is_some_and(|own| own.bytes.saturating_add(size) > budget.max_bytes_per_sender)
        {
            if !plan.evict_oldest(sender) {
                return None;
            }
        }
        loop {
            let over_bytes = plan.bytes.saturating_add(size) > budget.max_bytes;
            if !over_bytes && plan.messages < budget.max_messages {
                return Some(plan.victims);
            }
            let from = plan.heaviest(sender, size, over_bytes);
            if !plan.evict_oldest(from) {
                // The newcomer's sender is the heaviest and holds nothing more to give.
                return None;
            }
        }
    }

    /// Forgets `met` in every entry's missing set.
    pub(crate) fn resolve(&mut self, met: &[String]) {
        for held in &mut self.entries {
            for id in met {
                held.entry.missing.remove(id);
            }
        }
    }

    /// Removes and returns the entries `leave` selects, in (lamport, id) order: the
    /// order they are delivered in.
    pub(crate) fn take_where(&mut self, mut leave: impl FnMut(&Incoming) -> bool) -> Vec<Incoming> {
        let (taken, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|held| leave(&held.entry));
        self.entries = kept;
        for held in &taken {
            self.forget(held);
        }
        let mut taken: Vec<Incoming> = taken.into_iter().map(|held| held.entry).collect();
        taken.sort_by(|a, b| {
            (a.message.lamport_timestamp, &a.message.message_id)
                .cmp(&(b.message.lamport_timestamp, &b.message.message_id))
        });
        taken
    }
}

impl Channel {
    pub(super) fn incoming_budget(&self) -> Budget {
        let config = self.config();
        Budget {
            max_messages: config.max_incoming_buffer,
            max_bytes: config.max_incoming_buffer_bytes,
            max_bytes_per_sender: config.max_incoming_bytes_per_sender,
        }
    }

    /// Evicts buffered messages to make room. An evicted message is forgotten as if never
    /// received: not delivered, and a message naming it finds it unknown and requests it.
    pub(super) fn evict_incoming(&mut self, evicted: &[String]) {
        if evicted.is_empty() {
            return;
        }
        for victim in evicted {
            if self.incoming.remove(victim).is_none() {
                continue;
            }
            debug!(channel = %self.id, message_id = %victim, buffered_bytes = self.incoming.bytes(),
                "evicting buffered message for space");
            self.events.push(Event::MessageDropped {
                channel: self.id.clone(),
                message_id: victim.clone(),
                reason: DropReason::EvictedForSpace,
            });
        }
        self.meta_dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::SnapshotCache;
    use super::*;

    fn entry(sender: &str, id: &str, padding: usize) -> Incoming {
        let message = SdsMessage {
            sender_id: sender.into(),
            message_id: id.into(),
            channel_id: "c".into(),
            lamport_timestamp: Some(1),
            content: Some(vec![7; padding]),
            ..Default::default()
        };
        Incoming {
            stored: SnapshotCache::default().store(&message),
            message,
            missing: BTreeSet::from(["dep".to_string()]),
            received_at: 0,
        }
    }

    fn budget(max_messages: usize, max_bytes: usize, per_sender: usize) -> Budget {
        Budget {
            max_messages,
            max_bytes,
            max_bytes_per_sender: per_sender,
        }
    }

    #[test]
    fn counts_follow_pushes_and_removals() {
        let mut buffer = IncomingBuffer::default();
        let first = entry("a", "1", 100);
        let size = message_size(&first.message);
        buffer.push(first);
        buffer.push(entry("a", "1", 100));
        buffer.push(entry("b", "2", 100));
        assert_eq!((buffer.len(), buffer.bytes()), (2, 2 * size));
        assert!(buffer.remove("1").is_some());
        assert!(buffer.remove("1").is_none());
        assert_eq!((buffer.len(), buffer.bytes()), (1, size));
        assert!(!buffer.shares.contains_key("a"));
        buffer.take_where(|_| true);
        assert_eq!((buffer.len(), buffer.bytes()), (0, 0));
        assert!(buffer.shares.is_empty());
    }

    #[test]
    fn a_sender_past_its_budget_evicts_its_own_oldest() {
        let mut buffer = IncomingBuffer::default();
        let size = message_size(&entry("a", "a1", 100).message);
        assert_eq!(size, message_size(&entry("b", "b1", 100).message));
        for id in ["a1", "a2", "a3"] {
            buffer.push(entry("a", id, 100));
        }
        buffer.push(entry("b", "b1", 100));
        let room = buffer.make_room("a", size, &budget(100, 100 * size, 3 * size));
        assert_eq!(room, Some(vec!["a1".to_string()]));
        let room = buffer.make_room("b", size, &budget(100, 100 * size, 3 * size));
        assert_eq!(room, Some(vec![]));
    }

    #[test]
    fn a_full_buffer_evicts_from_the_heaviest_sender() {
        let mut buffer = IncomingBuffer::default();
        // Same-length senders and ids: every message has the same size.
        let size = message_size(&entry("hon", "h0", 100).message);
        buffer.push(entry("hon", "h0", 100));
        for n in 0..3 {
            buffer.push(entry("flo", &format!("f{n}"), 100));
        }
        // By bytes: the flooder's oldest goes for a newcomer of anyone.
        let tight = budget(100, 4 * size, 100 * size);
        assert_eq!(
            buffer.make_room("hon", size, &tight),
            Some(vec!["f0".to_string()])
        );
        assert_eq!(
            buffer.make_room("flo", size, &tight),
            Some(vec!["f0".to_string()])
        );
        // By count.
        let by_count = budget(4, 100 * size, 100 * size);
        assert_eq!(
            buffer.make_room("neo", size, &by_count),
            Some(vec!["f0".to_string()])
        );
    }

    /// Budgets are inclusive: a newcomer that exactly fills its sender's budget, or the
    /// whole buffer's bytes, or takes the last message slot, fits without evicting.
    #[test]
    fn a_newcomer_that_exactly_fills_a_budget_fits() {
        let size = message_size(&entry("a", "a1", 100).message);
        let empty = IncomingBuffer::default();
        assert_eq!(
            empty.make_room("a", size, &budget(1, size, size)),
            Some(vec![])
        );
        let mut buffer = IncomingBuffer::default();
        buffer.push(entry("a", "a1", 100));
        assert_eq!(
            buffer.make_room("b", size, &budget(2, 2 * size, size)),
            Some(vec![])
        );
        assert_eq!(
            buffer.make_room("a", size, &budget(2, 2 * size, 2 * size)),
            Some(vec![])
        );
        // One byte or one slot less, and the heaviest sender's oldest goes.
        let a1 = Some(vec!["a1".to_string()]);
        let room = |budget: Budget| buffer.make_room("a", size, &budget);
        assert_eq!(room(budget(2, 2 * size - 1, 2 * size)), a1);
        assert_eq!(room(budget(1, 2 * size, 2 * size)), a1);
        assert_eq!(room(budget(2, 2 * size, 2 * size - 1)), a1);
    }

    #[test]
    fn a_newcomer_that_cannot_fit_evicts_nothing() {
        let mut buffer = IncomingBuffer::default();
        let small = message_size(&entry("a", "a1", 10).message);
        let big = message_size(&entry("b", "b1", 400).message);
        buffer.push(entry("a", "a1", 10));
        buffer.push(entry("c", "c1", 10));
        // Larger than any share and the buffer is full: the newcomer goes.
        assert_eq!(
            buffer.make_room("b", big, &budget(100, 2 * small + big - 1, big)),
            None
        );
        // Larger than a budget on its own.
        assert_eq!(
            buffer.make_room("b", big, &budget(100, 10 * big, big - 1)),
            None
        );
    }
}
