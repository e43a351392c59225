//! Writes to one channel take effect in the order they were issued, also when the caller
//! abandons one (the manager's `commit_timeout_ms` drops the future).
//!
//! A RocksDB call runs on the blocking thread pool and cannot be stopped once started: a
//! dropped future leaves it running, and without care the caller's retry, issued next,
//! could land first and then be overwritten by the stale write. Every write therefore holds
//! its channel's lock from before it is handed to the pool until it has finished, and the
//! lock is fair (first come, first served): a retry waits for the abandoned write, and a
//! write abandoned while still waiting for the lock never starts.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// How many locks the channels share. Two channels on one lock only wait for each other's
/// writes, which RocksDB serializes into its write-ahead log anyway.
const STRIPES: usize = 64;

/// The per-channel write locks of one open database (striped by channel).
#[derive(Debug)]
pub(crate) struct WriteOrder {
    stripes: Vec<Arc<Mutex<()>>>,
}

impl Default for WriteOrder {
    fn default() -> Self {
        WriteOrder {
            stripes: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
        }
    }
}

/// Held by one write from before it is issued until it has finished.
pub(crate) type WriteTurn = OwnedMutexGuard<()>;

impl WriteOrder {
    fn stripe(&self, namespace: &str, channel: &str) -> Arc<Mutex<()>> {
        let mut hasher = DefaultHasher::new();
        (namespace, channel).hash(&mut hasher);
        // The remainder is below STRIPES, so it fits any usize.
        let index = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0);
        Arc::clone(&self.stripes[index])
    }

    /// Waits for the channel's earlier writes to finish and returns the turn of this one.
    pub(crate) async fn turn(&self, namespace: &str, channel: &str) -> WriteTurn {
        self.stripe(namespace, channel).lock_owned().await
    }

    /// Whether a write to the channel holds its turn now.
    #[cfg(test)]
    pub(crate) fn is_busy(&self, namespace: &str, channel: &str) -> bool {
        self.stripe(namespace, channel).try_lock().is_err()
    }

    /// [`Self::turn`] for a caller outside any Tokio runtime (it blocks the thread).
    pub(crate) fn blocking_turn(&self, namespace: &str, channel: &str) -> WriteTurn {
        self.stripe(namespace, channel).blocking_lock_owned()
    }
}
