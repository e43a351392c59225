//! Keeping one channel's writes in the order they were issued, also when a caller abandons
//! one: a building block for backends.
//!
//! The manager abandons a call by dropping its future (`commit_timeout_ms`), then retries.
//! A backend whose write keeps running after its future is dropped (a statement the server
//! already has, a script on the wire, a call on the blocking thread pool) must not let the
//! retry land first and the stale write overwrite it (see the module rules: "an abandoned
//! call never lands after a later one"). The usual cure: each write takes its channel's
//! turn in the caller, then runs where a dropped future cannot stop it (a task of its own,
//! the blocking pool) holding the turn until it has finished. The turn is a fair lock, first
//! come first served, so a retry waits for the abandoned write, and a write abandoned while
//! still waiting for its turn never starts.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// The per-channel write turns of one backend instance (and its namespace siblings),
/// striped by (namespace, channel): two channels on one stripe only wait for each other's
/// writes.
///
/// ```
/// use sds_core::persistence::write_order::ChannelWriteOrder;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let order = ChannelWriteOrder::default();
/// let turn = order.turn("node-a", "general").await;
/// assert!(order.is_busy("node-a", "general"));
/// drop(turn); // the write finished
/// assert!(!order.is_busy("node-a", "general"));
/// # }
/// ```
#[derive(Debug)]
pub struct ChannelWriteOrder {
    stripes: Vec<Arc<Mutex<()>>>,
}

/// Held by one write from before it is issued until it has finished.
pub type WriteTurn = OwnedMutexGuard<()>;

impl ChannelWriteOrder {
    /// The stripe count of [`ChannelWriteOrder::default`].
    pub const DEFAULT_STRIPES: usize = 64;

    /// Turns over `stripes` locks (at least one).
    pub fn new(stripes: usize) -> Self {
        ChannelWriteOrder {
            stripes: (0..stripes.max(1))
                .map(|_| Arc::new(Mutex::new(())))
                .collect(),
        }
    }

    fn stripe(&self, namespace: &str, channel: &str) -> Arc<Mutex<()>> {
        let mut hasher = DefaultHasher::new();
        (namespace, channel).hash(&mut hasher);
        // The remainder is below the stripe count, so it fits any usize and indexes.
        let index = usize::try_from(hasher.finish() % self.stripes.len() as u64).unwrap_or(0);
        Arc::clone(&self.stripes[index])
    }

    /// Waits for the channel's earlier writes to finish and returns the turn of this one.
    pub async fn turn(&self, namespace: &str, channel: &str) -> WriteTurn {
        self.stripe(namespace, channel).lock_owned().await
    }

    /// [`Self::turn`] for a caller outside any Tokio runtime (it blocks the thread).
    pub fn blocking_turn(&self, namespace: &str, channel: &str) -> WriteTurn {
        self.stripe(namespace, channel).blocking_lock_owned()
    }

    /// Whether a write to the channel (or to another on its stripe) holds its turn now.
    pub fn is_busy(&self, namespace: &str, channel: &str) -> bool {
        self.stripe(namespace, channel).try_lock().is_err()
    }
}

impl Default for ChannelWriteOrder {
    /// [`ChannelWriteOrder::DEFAULT_STRIPES`] stripes.
    fn default() -> Self {
        ChannelWriteOrder::new(Self::DEFAULT_STRIPES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_is_held_until_dropped_and_then_passes_to_the_next_in_line() {
        let order = Arc::new(ChannelWriteOrder::new(1));
        let first = order.turn("ns", "a").await;
        let waiting = tokio::spawn({
            let order = Arc::clone(&order);
            async move { order.turn("ns", "b").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one stripe: b waits for a's write");
        assert!(order.is_busy("ns", "b"));
        drop(first);
        let second = waiting.await.unwrap();
        drop(second);
        assert!(!order.is_busy("ns", "a"));
    }

    #[test]
    fn zero_stripes_means_one() {
        let order = ChannelWriteOrder::new(0);
        drop(order.blocking_turn("ns", "a"));
        assert!(!order.is_busy("ns", "a"));
    }
}
