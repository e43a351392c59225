//! What a backend's test code implements so the suite can run against it.

use std::fmt;

use async_trait::async_trait;
use sds_core::persistence::{BoxError, Persistence};
use thiserror::Error;

/// An optional ability a harness may offer; cases that need one it lacks are reported as
/// not run, never as passed.
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
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of optional abilities a harness offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// See [`Capability::RawWrites`].
    pub raw_writes: bool,
    /// See [`Capability::Unreachable`].
    pub unreachable: bool,
    /// See [`Capability::AbortCommitAfterMeta`].
    pub abort_commit_after_meta: bool,
}

impl Capabilities {
    /// No optional ability.
    pub const NONE: Capabilities = Capabilities {
        raw_writes: false,
        unreachable: false,
        abort_commit_after_meta: false,
    };

    /// Every optional ability.
    pub const ALL: Capabilities = Capabilities {
        raw_writes: true,
        unreachable: true,
        abort_commit_after_meta: true,
    };

    /// Whether `capability` is offered.
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::RawWrites => self.raw_writes,
            Capability::Unreachable => self.unreachable,
            Capability::AbortCommitAfterMeta => self.abort_commit_after_meta,
        }
    }

    /// This set with `capability` added.
    pub fn with(mut self, capability: Capability) -> Self {
        match capability {
            Capability::RawWrites => self.raw_writes = true,
            Capability::Unreachable => self.unreachable = true,
            Capability::AbortCommitAfterMeta => self.abort_commit_after_meta = true,
        }
        self
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
/// methods belong to a [`Capability`]; a harness that implements one also declares it in
/// [`Harness::capabilities`] (a declared capability whose method is not implemented makes
/// the cases that need it fail, an undeclared one makes them "not run").
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test.
    type Backend: Persistence + 'static;

    /// The backend's name, for reports (e.g. `"rocksdb"`).
    fn name(&self) -> String;

    /// The optional abilities this harness offers. Default: none.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

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
