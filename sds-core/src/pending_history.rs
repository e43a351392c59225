//! The R2 pending-history queue: history changes waiting to be written.
//!
//! Appends and evictions are not written where they happen; they are queued on the channel
//! as ids and flushed once at the end of the operation. A failed flush keeps the queue, and
//! the next operation's changes merge into it with "latest wins" per id: an append cancels a
//! pending evict of the same id and an evict cancels a pending append.

use std::collections::HashMap;

/// What is pending for one message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingOp {
    /// The message must be in the stored history.
    Append,
    /// The message must not be in the stored history.
    Evict,
}

/// Queued history changes of one channel, in the order they were made.
#[derive(Debug, Default, Clone)]
pub struct PendingHistory {
    // Sequence numbers keep delivery order across merges without shifting a Vec.
    ops: HashMap<String, (u64, PendingOp)>,
    next_seq: u64,
}

impl PendingHistory {
    /// Queues an append; cancels a pending evict of the same id.
    pub fn queue_append(&mut self, message_id: &str) {
        self.queue(message_id, PendingOp::Append);
    }

    /// Queues an eviction; cancels a pending append of the same id.
    ///
    /// The evict is still recorded (rather than just dropping the append) because an
    /// earlier flush whose outcome was unknown may have stored the message after all.
    pub fn queue_evict(&mut self, message_id: &str) {
        self.queue(message_id, PendingOp::Evict);
    }

    fn queue(&mut self, message_id: &str, op: PendingOp) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ops.insert(message_id.to_string(), (seq, op));
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
        self.ops.get(message_id).map(|(_, op)| *op)
    }

    /// Pending appends and evictions, each in the order they were queued.
    pub fn ordered(&self) -> (Vec<&str>, Vec<&str>) {
        let mut entries: Vec<(u64, &str, PendingOp)> = self
            .ops
            .iter()
            .map(|(id, (seq, op))| (*seq, id.as_str(), *op))
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

    /// Forgets everything after a successful flush.
    pub fn clear(&mut self) {
        self.ops.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_then_evict_leaves_evict() {
        let mut pending = PendingHistory::default();
        pending.queue_append("a");
        pending.queue_evict("a");
        assert_eq!(pending.get("a"), Some(PendingOp::Evict));
        assert_eq!(pending.ordered(), (vec![], vec!["a"]));
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
