//! Exact knowledge of message ids that left the log or never entered it.
//!
//! The bloom filter is what we tell peers we hold; it is never what we decide by. A
//! dependency is met only by exact knowledge: the id is in the log, or it is remembered here
//! as delivered and since evicted from the log, marked met by the application, or given up
//! as lost. A bloom false positive (about 0.1% of ids at the default rate, every id once a
//! flood saturates a filter) therefore never delivers a message before its dependency and
//! never swallows a new message as a duplicate.
//!
//! The set is bounded: it keeps the newest `bloom_capacity` ids (10,000 by default) and
//! forgets the oldest first. That is the horizon of the bloom filter we advertise (it rolls
//! between 80% and 120% of its capacity), so exact knowledge reaches about as far back as
//! the acknowledgement signal peers see, beyond the `max_message_history` ids of the log
//! itself. It is not persisted, as the bloom filter is not: after a restart the log and the
//! buffers are what we know. Memory is one shared copy of each id, held only once ids leave
//! the log: nothing for a channel whose traffic fits in its log.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How an id came to be known without being in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Delivered here, then evicted from the log: a later message under this id is a copy
    /// of it (or a conflicting claim we can no longer tell apart), never new.
    Evicted,
    /// Never delivered here: marked met by the application, or given up as lost. It
    /// satisfies dependencies; the message itself may still arrive.
    Met,
}

/// A bounded, exact, first-in first-out set of ids with how each became known.
#[derive(Debug)]
pub(crate) struct KnownIds {
    capacity: usize,
    order: VecDeque<Arc<str>>,
    kinds: HashMap<Arc<str>, Known>,
}

impl KnownIds {
    /// An empty set remembering at most `capacity` ids (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        KnownIds {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            kinds: HashMap::new(),
        }
    }

    /// How `id` is known, if it is.
    pub(crate) fn get(&self, id: &str) -> Option<Known> {
        self.kinds.get(id).copied()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.kinds.contains_key(id)
    }

    /// Remembers `id` as `kind`, forgetting the oldest ids past the capacity. An id known
    /// already keeps its place; `Evicted` overrides `Met` (it was delivered after all), never
    /// the reverse.
    pub(crate) fn remember(&mut self, id: &str, kind: Known) {
        if let Some(known) = self.kinds.get_mut(id) {
            if kind == Known::Evicted {
                *known = Known::Evicted;
            }
            return;
        }
        let id: Arc<str> = Arc::from(id);
        self.order.push_back(Arc::clone(&id));
        self.kinds.insert(id, kind);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.kinds.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_ids_are_forgotten_past_capacity() {
        let mut known = KnownIds::new(3);
        for id in ["a", "b", "c", "d"] {
            known.remember(id, Known::Met);
        }
        assert_eq!(known.kinds.len(), 3);
        assert!(!known.contains("a"));
        assert!(known.contains("b") && known.contains("d"));
    }

    #[test]
    fn evicted_overrides_met_and_not_the_reverse() {
        let mut known = KnownIds::new(10);
        known.remember("x", Known::Met);
        known.remember("x", Known::Evicted);
        assert_eq!(known.get("x"), Some(Known::Evicted));
        known.remember("x", Known::Met);
        assert_eq!(known.get("x"), Some(Known::Evicted));
        assert_eq!(known.kinds.len(), 1);
    }
}
