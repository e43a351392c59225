//! What a backend's test code implements so the suite can run against it.

use std::fmt;

use async_trait::async_trait;
use sds_core::persistence::{BoxError, Persistence};
use thiserror::Error;

/// An optional ability a harness may offer. A harness declares each one either offered or
/// absent (with the reason); cases that need an absent one are reported as not run, naming
/// it, never as passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// [`Harness::write_raw_meta`] and [`Harness::write_raw_history_row`]: write raw bytes
    /// where a snapshot or a history row lives.
    RawWrites,
    /// [`Harness::open_unreachable`]: a backend pointed at a server that cannot be reached.
    Unreachable,
    /// [`Harness::abort_next_commit_after_meta`]: make the atomic commit fail after its
    /// snapshot is staged and before its history is, inside the same transaction.
    AbortCommitAfterMeta,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 3] = [
        Capability::RawWrites,
        Capability::Unreachable,
        Capability::AbortCommitAfterMeta,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Capability::RawWrites => "raw-writes",
            Capability::Unreachable => "unreachable",
            Capability::AbortCommitAfterMeta => "abort-commit-after-meta",
        }
    }

    fn index(self) -> usize {
        match self {
            Capability::RawWrites => 0,
            Capability::Unreachable => 1,
            Capability::AbortCommitAfterMeta => 2,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a harness declares about every [`Capability`]: offered, or absent for a stated
/// reason. There is no third state, so no case is skipped by omission: start from
/// [`Capabilities::ALL`] and take away, by name and with a reason, what the harness lacks.
///
/// ```
/// use sds_persist_conformance::{Capabilities, Capability};
///
/// let declared = Capabilities::ALL
///     .without(Capability::Unreachable, "an embedded database has no server to lose");
/// assert!(declared.has(Capability::RawWrites));
/// assert_eq!(
///     declared.absence(Capability::Unreachable),
///     Some("an embedded database has no server to lose")
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Indexed by [`Capability::index`]: `None` when offered, the reason when absent.
    absent: [Option<&'static str>; Capability::ALL.len()],
}

impl Capabilities {
    /// Every capability offered.
    pub const ALL: Capabilities = Capabilities {
        absent: [None; Capability::ALL.len()],
    };

    /// This declaration with `capability` declared absent because of `reason` (a short
    /// sentence fragment, e.g. "the in-memory backend stores no bytes"). Declaring it again
    /// replaces the reason.
    pub fn without(mut self, capability: Capability, reason: &'static str) -> Self {
        self.absent[capability.index()] = Some(reason);
        self
    }

    /// Whether `capability` is offered.
    pub fn has(&self, capability: Capability) -> bool {
        self.absence(capability).is_none()
    }

    /// Why `capability` is absent, or `None` when it is offered.
    pub fn absence(&self, capability: Capability) -> Option<&'static str> {
        self.absent[capability.index()]
    }

    /// The offered capabilities, in [`Capability::ALL`] order.
    pub fn offered(&self) -> impl Iterator<Item = Capability> + '_ {
        Capability::ALL
            .into_iter()
            .filter(|capability| self.has(*capability))
    }

    /// The capabilities declared absent, with their reasons, in [`Capability::ALL`] order.
    pub fn absent(&self) -> impl Iterator<Item = (Capability, &'static str)> + '_ {
        Capability::ALL
            .into_iter()
            .filter_map(|capability| Some((capability, self.absence(capability)?)))
    }
}

/// Why a harness could not do what the suite asked (set-up, not the backend under test).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The harness does not offer this capability.
    #[error("the harness does not offer the {0} capability")]
    Unsupported(Capability),
    /// Anything else: a server to connect to, a directory to create, ….
    #[error("harness failure: {message}")]
    Failed {
        /// What failed, in words.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl HarnessError {
    /// A [`HarnessError::Failed`] with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        HarnessError::Failed {
            message: message.into(),
            source: None,
        }
    }

    /// A [`HarnessError::Failed`] wrapping an underlying error.
    pub fn failed_from(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        HarnessError::Failed {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// What the suite needs from a backend's test code.
///
/// Every [`Harness::open`] must return a backend in a namespace (or database) no other call
/// returned, so cases never see each other's data and may run in parallel. The optional
/// methods belong to a [`Capability`]; [`Harness::capabilities`] declares each one offered
/// or absent. A case needing an absent one is reported as not run, with the capability and
/// the reason; a case needing an offered one runs, and fails if its method is not
/// implemented.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test.
    type Backend: Persistence + 'static;

    /// The backend's name, for reports (e.g. `"rocksdb"`).
    fn name(&self) -> String;

    /// What this harness offers and what it lacks, and why. There is no default: a
    /// harness states its absences explicitly (see [`Capabilities`]), so no case is skipped
    /// because someone forgot to declare a capability.
    fn capabilities(&self) -> Capabilities;

    /// A fresh backend in its own, empty namespace.
    async fn open(&self) -> Result<Self::Backend, HarnessError>;

    /// Another backend on the same storage (same database, same server) as `of`, in a
    /// different, empty namespace: what a second node sharing the database would use.
    async fn open_sibling(&self, of: &Self::Backend) -> Result<Self::Backend, HarnessError>;

    /// A new backend instance on the same storage and namespace as `of`, as a restarted
    /// process would open it. It must not share in-process caches with `of`; where the
    /// storage cannot be opened twice (an embedded database's lock), sharing the raw
    /// database handle is acceptable.
    async fn reopen(&self, of: &Self::Backend) -> Result<Self::Backend, HarnessError>;

    /// [`Capability::RawWrites`]: stores `bytes` as the snapshot of `channel`, exactly
    /// where and how the backend keeps the storage codec's encoding of a snapshot (apply
    /// any framing the backend adds around it).
    async fn write_raw_meta(
        &self,
        backend: &Self::Backend,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        let _ = (backend, channel, bytes);
        Err(HarnessError::Unsupported(Capability::RawWrites))
    }

    /// [`Capability::RawWrites`]: stores `bytes` as the history row of `message_id` at
    /// `lamport` in `channel` (replacing the row the suite appended there before), as if
    /// the storage codec had produced them.
    async fn write_raw_history_row(
        &self,
        backend: &Self::Backend,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        let _ = (backend, channel, lamport, message_id, bytes);
        Err(HarnessError::Unsupported(Capability::RawWrites))
    }

    /// [`Capability::Unreachable`]: a backend configured for a server that cannot be
    /// reached (its constructor must succeed; its operations fail).
    async fn open_unreachable(&self) -> Result<Self::Backend, HarnessError> {
        Err(HarnessError::Unsupported(Capability::Unreachable))
    }

    /// [`Capability::AbortCommitAfterMeta`]: the next [`Persistence::commit`] on `backend`
    /// that carries both a snapshot and a history batch fails after staging the snapshot
    /// and before staging the history, inside the backend's transaction.
    async fn abort_next_commit_after_meta(
        &self,
        backend: &Self::Backend,
    ) -> Result<(), HarnessError> {
        let _ = backend;
        Err(HarnessError::Unsupported(Capability::AbortCommitAfterMeta))
    }

    /// Removes what a case stored through `backend` (called once per backend the case
    /// opened, reachable ones only, after the case ends). Default: nothing.
    async fn cleanup(&self, backend: &Self::Backend) -> Result<(), HarnessError> {
        let _ = backend;
        Ok(())
    }
}
