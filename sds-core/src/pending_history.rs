//! The R2 pending-history queue: history changes waiting to be written.
//!
//! Appends and evictions are not written where they happen; they are queued on the channel
//! as ids and flushed once at the end of the operation. A failed flush keeps the queue, and
//! the next operation's changes merge into it with "latest wins" per id: an append cancels a
//! pending evict of the same id and an evict cancels a pending append.
//!
//! An evict that cancels an append the backend was never offered leaves nothing queued:
//! the backend cannot hold that message, so there is nothing to remove. Once an append was
//! part of a flush (which may have failed after storing it, a timeout say), its id may be
//! stored and a later evict of it is queued. This keeps the queue within the log's size plus
//! what earlier flushes offered, however long the backend keeps failing.

use std::collections::HashMap;

/// What is pending for one message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingOp {
    /// The message must be in the stored history.
    Append,
    /// The message must not be in the stored history.
    Evict,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    op: PendingOp,
    // The backend may hold the message: an earlier flush offered it, or an evict was
    // queued for it (only ids that were written get evicts).
    maybe_stored: bool,
}

/// Queued history changes of one channel, in the order they were made.
#[derive(Debug, Default, Clone)]
pub struct PendingHistory {
    // Sequence numbers keep delivery order across merges without shifting a Vec.
    ops: HashMap<String, Pending>,
    next_seq: u64,
}

impl PendingHistory {
    /// Queues an append; cancels a pending evict of the same id.
    pub fn queue_append(&mut self, message_id: &str) {
        let maybe_stored = self
            .ops
            .get(message_id)
            .is_some_and(|pending| pending.maybe_stored || pending.op == PendingOp::Evict);
        self.queue(message_id, PendingOp::Append, maybe_stored);
    }

    /// Queues an eviction; cancels a pending append of the same id.
    ///
    /// An append never offered to the backend is simply dropped (nothing to evict). One
    /// that was offered by a flush whose outcome is unknown may have been stored, so the
    /// evict is recorded; so is an evict of an id with nothing pending (it was written).
    pub fn queue_evict(&mut self, message_id: &str) {
        match self.ops.get(message_id) {
            Some(pending) if pending.op == PendingOp::Append && !pending.maybe_stored => {
                self.ops.remove(message_id);
            }
            _ => self.queue(message_id, PendingOp::Evict, true),
        }
    }

    fn queue(&mut self, message_id: &str, op: PendingOp, maybe_stored: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ops.insert(
            message_id.to_string(),
            Pending {
                seq,
                op,
                maybe_stored,
            },
        );
    }

    /// Records that everything queued is being offered to the backend: from now on an
    /// evict of these ids is kept even if the flush fails.
    pub fn mark_offered(&mut self) {
        for pending in self.ops.values_mut() {
            pending.maybe_stored = true;
        }
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of pending ids.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// What is pending for `message_id`, if anything.
    pub fn get(&self, message_id: &str) -> Option<PendingOp> {
        self.ops.get(message_id).map(|pending| pending.op)
    }

    /// Pending appends and evictions, each in the order they were queued.
    pub fn ordered(&self) -> (Vec<&str>, Vec<&str>) {
        let mut entries: Vec<(u64, &str, PendingOp)> = self
            .ops
            .iter()
            .map(|(id, pending)| (pending.seq, id.as_str(), pending.op))
            .collect();
        entries.sort_unstable_by_key(|(seq, _, _)| *seq);
        let mut appends = Vec::new();
        let mut evicts = Vec::new();
        for (_, id, op) in entries {
            match op {
                PendingOp::Append => appends.push(id),
                PendingOp::Evict => evicts.push(id),
            }
        }
        (appends, evicts)
    }

    /// Forgets everything: after a successful flush, or when the queue is given up for a
    /// rewrite of the whole history.
    pub fn clear(&mut self) {
        self.ops.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An append offered by a failed flush may be stored: appended again and then evicted
    /// before the next flush, its evict must reach the backend.
    #[test]
    fn an_offered_append_appended_again_keeps_a_later_evict() {
        let mut pending = PendingHistory::default();
        pending.queue_append("a");
        pending.mark_offered();
        pending.queue_append("a");
        pending.queue_evict("a");
        assert_eq!(pending.ordered(), (vec![], vec!["a"]));
    }

    /// An append never offered, queued twice and then evicted, leaves nothing: the backend
    /// never saw the message.
    #[test]
    fn an_append_never_offered_is_cancelled_by_its_evict_however_often_queued() {
        let mut pending = PendingHistory::default();
        pending.queue_append("a");
        pending.queue_append("a");
        pending.queue_evict("a");
        assert!(pending.is_empty());
    }

    /// An id that was stored (its evict was queued), re-appended and evicted again before
    /// any flush may still be stored: the last evict must reach the backend.
    #[test]
    fn evict_append_evict_of_a_stored_id_keeps_the_evict() {
        let mut pending = PendingHistory::default();
        pending.queue_evict("a");
        pending.queue_append("a");
        pending.queue_evict("a");
        assert_eq!(pending.ordered(), (vec![], vec!["a"]));
    }

    #[test]
    fn append_then_evict_of_an_offered_id_leaves_evict() {
        let mut pending = PendingHistory::default();
        pending.queue_append("a");
        pending.mark_offered();
        pending.queue_evict("a");
        assert_eq!(pending.get("a"), Some(PendingOp::Evict));
        assert_eq!(pending.ordered(), (vec![], vec!["a"]));
    }

    #[test]
    fn evict_cancels_an_append_never_offered() {
        let mut pending = PendingHistory::default();
        pending.queue_append("a");
        pending.queue_append("b");
        pending.queue_evict("a");
        assert_eq!(pending.get("a"), None);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.ordered(), (vec!["b"], vec![]));
    }

    #[test]
    fn readded_evicted_id_keeps_its_evict_when_evicted_again() {
        // "a" was written earlier (its evict is queued), comes back, and leaves again
        // before any flush: the stored copy must still be removed.
        let mut pending = PendingHistory::default();
        pending.queue_evict("a");
        pending.queue_append("a");
        pending.queue_evict("a");
        assert_eq!(pending.ordered(), (vec![], vec!["a"]));
    }

    #[test]
    fn queue_stays_within_the_log_when_nothing_is_offered() {
        // A log of 10 and 1,000 messages through it while no flush is attempted: only the
        // 10 appends still in the log are queued.
        let mut pending = PendingHistory::default();
        for n in 0..1_000 {
            pending.queue_append(&format!("m{n}"));
            if n >= 10 {
                pending.queue_evict(&format!("m{}", n - 10));
            }
        }
        assert_eq!(pending.len(), 10);
    }

    #[test]
    fn evict_then_append_leaves_append() {
        let mut pending = PendingHistory::default();
        pending.queue_evict("a");
        pending.queue_append("a");
        assert_eq!(pending.ordered(), (vec!["a"], vec![]));
    }

    #[test]
    fn appends_keep_queue_order_across_merges() {
        let mut pending = PendingHistory::default();
        for id in ["c", "a", "b"] {
            pending.queue_append(id);
        }
        pending.queue_evict("a");
        pending.queue_append("a");
        assert_eq!(pending.ordered(), (vec!["c", "b", "a"], vec![]));
        pending.clear();
        assert!(pending.is_empty());
    }
}
