//! The incoming buffer: received messages waiting for their causal dependencies.

use std::collections::{BTreeSet, HashSet};

use sds_codec::wire::SdsMessage;

use crate::clock::UnixMillis;

/// A received message that cannot be delivered yet.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) message: SdsMessage,
    /// Dependencies not delivered yet: ids we never received and ids that wait in this
    /// buffer themselves.
    pub(crate) missing: BTreeSet<String>,
    pub(crate) received_at: UnixMillis,
}

/// Buffered messages in arrival order, with an id index: every received message checks
/// each of its dependencies against the buffer, and a peer's causal history may name
/// hundreds of them.
#[derive(Debug, Default)]
pub(crate) struct IncomingBuffer {
    entries: Vec<Incoming>,
    ids: HashSet<String>,
}

impl IncomingBuffer {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn contains(&self, message_id: &str) -> bool {
        self.ids.contains(message_id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Incoming> {
        self.entries.iter()
    }

    /// Buffers a message; a second copy of a buffered id is ignored.
    pub(crate) fn push(&mut self, entry: Incoming) {
        if self.ids.insert(entry.message.message_id.clone()) {
            self.entries.push(entry);
        }
    }

    /// Forgets `met` in every entry's missing set.
    pub(crate) fn resolve(&mut self, met: &[String]) {
        for entry in &mut self.entries {
            for id in met {
                entry.missing.remove(id);
            }
        }
    }

    /// Removes and returns the entries `leave` selects, in (lamport, id) order: the
    /// order they are delivered in.
    pub(crate) fn take_where(&mut self, mut leave: impl FnMut(&Incoming) -> bool) -> Vec<Incoming> {
        let (mut taken, kept): (Vec<Incoming>, Vec<Incoming>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(&mut leave);
        self.entries = kept;
        for entry in &taken {
            self.ids.remove(&entry.message.message_id);
        }
        taken.sort_by(|a, b| {
            (a.message.lamport_timestamp, &a.message.message_id)
                .cmp(&(b.message.lamport_timestamp, &b.message.message_id))
        });
        taken
    }
}
