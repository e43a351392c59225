//! The writer fence: which writer of a namespace is the current one.
//!
//! Two processes misconfigured onto one namespace would otherwise overwrite each other's
//! snapshots without anyone noticing. A writer claims the namespace
//! ([`Persistence::claim_writer`](super::Persistence::claim_writer)); the backend keeps a
//! per-namespace counter, the epoch, that every claim raises, and refuses the writes of an
//! instance whose claim a newer one superseded with
//! [`PersistenceError::Fenced`](super::PersistenceError::Fenced).

use std::fmt;

/// The epoch of one claim on a namespace: claims of the same namespace return strictly
/// increasing epochs, the first one 1, across instances, processes and restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriterEpoch(u64);

impl WriterEpoch {
    /// The epoch of the first claim of a namespace.
    pub const FIRST: WriterEpoch = WriterEpoch(1);

    /// The epoch `value`, as a backend read it from storage.
    pub const fn new(value: u64) -> Self {
        WriterEpoch(value)
    }

    /// The number, as a backend stores it.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The epoch a claim after this one takes; `None` past `u64::MAX` claims.
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(value) => Some(WriterEpoch(value)),
            None => None,
        }
    }
}

impl fmt::Display for WriterEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_order_and_step_by_one() {
        assert_eq!(WriterEpoch::FIRST.get(), 1);
        assert_eq!(WriterEpoch::FIRST.next(), Some(WriterEpoch::new(2)));
        assert!(WriterEpoch::new(2) > WriterEpoch::FIRST);
        assert_eq!(WriterEpoch::new(u64::MAX).next(), None);
        assert_eq!(WriterEpoch::new(7).to_string(), "7");
    }
}
