//! What a backend declares it can promise beyond the operations every backend has.

use std::fmt;

/// What a backend promises beyond the contract every backend keeps (see
/// [`Persistence::capabilities`](super::Persistence::capabilities)).
///
/// Every field defaults to `false` ([`BackendCapabilities::CONSERVATIVE`]): a backend that
/// declares nothing is assumed to promise nothing more than the operations themselves. The
/// manager logs the declaration when it is built and relies on
/// [`list_channels`](Self::list_channels); the conformance suite runs the cases of each
/// declared promise and reports the others as not run, naming the promise.
///
/// Built with the `with_*` methods, so new fields can be added without breaking backends:
///
/// ```
/// use sds_core::persistence::BackendCapabilities;
///
/// let caps = BackendCapabilities::CONSERVATIVE
///     .with_atomic_commit(true)
///     .with_list_channels(true);
/// assert!(caps.atomic_commit && !caps.durable_on_ack);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct BackendCapabilities {
    /// [`commit`](super::Persistence::commit) applies its snapshot and its history batch
    /// all or nothing, also when it fails or is abandoned midway (one transaction, one write
    /// batch, one script). Without it the trait's default commit (snapshot, then history)
    /// may leave the snapshot saved and the history not; the manager still recovers (it
    /// resends both), but a crash in between restarts from a snapshot newer than its
    /// history.
    pub atomic_commit: bool,
    /// A write that returned `Ok` survives a crash of the machine (power loss, kernel
    /// panic): it was fsynced, or acknowledged by a quorum, before returning. Without it an
    /// acknowledged write survives a crash of the process but the last ones may be lost
    /// with the machine; [`close`](super::Persistence::close) makes them durable.
    pub durable_on_ack: bool,
    /// What is stored outlives the process: a new backend instance on the same storage and
    /// namespace, in a new process, loads it. False for an in-memory store.
    pub persistent: bool,
    /// [`list_channels`](super::Persistence::list_channels) is implemented: it lists every
    /// channel stored in the namespace. Without it the manager's
    /// `reset` and `reopen_stored_channels` know only the channels it has open or joined.
    pub list_channels: bool,
    /// [`claim_writer`](super::Persistence::claim_writer) is implemented: the backend keeps
    /// a per-namespace writer epoch and refuses the writes of a superseded writer as
    /// [`Fenced`](super::PersistenceError::Fenced). Without it two managers misconfigured
    /// onto one namespace overwrite each other's state unnoticed.
    pub fencing: bool,
}

impl BackendCapabilities {
    /// Promises nothing: the default of [`Persistence::capabilities`](super::Persistence::capabilities).
    pub const CONSERVATIVE: BackendCapabilities = BackendCapabilities {
        atomic_commit: false,
        durable_on_ack: false,
        persistent: false,
        list_channels: false,
        fencing: false,
    };

    /// This declaration with [`atomic_commit`](Self::atomic_commit) set.
    #[must_use]
    pub const fn with_atomic_commit(mut self, value: bool) -> Self {
        self.atomic_commit = value;
        self
    }

    /// This declaration with [`durable_on_ack`](Self::durable_on_ack) set.
    #[must_use]
    pub const fn with_durable_on_ack(mut self, value: bool) -> Self {
        self.durable_on_ack = value;
        self
    }

    /// This declaration with [`persistent`](Self::persistent) set.
    #[must_use]
    pub const fn with_persistent(mut self, value: bool) -> Self {
        self.persistent = value;
        self
    }

    /// This declaration with [`list_channels`](Self::list_channels) set.
    #[must_use]
    pub const fn with_list_channels(mut self, value: bool) -> Self {
        self.list_channels = value;
        self
    }

    /// This declaration with [`fencing`](Self::fencing) set.
    #[must_use]
    pub const fn with_fencing(mut self, value: bool) -> Self {
        self.fencing = value;
        self
    }

    /// Each promise by name, with whether it is declared, for logs and reports.
    pub fn promises(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("atomic_commit", self.atomic_commit),
            ("durable_on_ack", self.durable_on_ack),
            ("persistent", self.persistent),
            ("list_channels", self.list_channels),
            ("fencing", self.fencing),
        ]
    }
}

impl fmt::Display for BackendCapabilities {
    /// The declared promises, comma-separated (`none` when there is none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let declared: Vec<&str> = self
            .promises()
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
        if declared.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&declared.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_promises_nothing_and_display_names_what_is_declared() {
        assert_eq!(
            BackendCapabilities::default(),
            BackendCapabilities::CONSERVATIVE
        );
        assert_eq!(BackendCapabilities::CONSERVATIVE.to_string(), "none");
        let caps = BackendCapabilities::CONSERVATIVE
            .with_atomic_commit(true)
            .with_list_channels(true);
        assert_eq!(caps.to_string(), "atomic_commit, list_channels");
        assert_eq!(
            caps.promises().iter().filter(|(_, on)| *on).count(),
            2,
            "{caps:?}"
        );
    }
}
