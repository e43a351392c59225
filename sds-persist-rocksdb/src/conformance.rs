//! The conformance harness for this backend (feature `conformance`): lets this crate's
//! tests and the `sds conformance --backend rocksdb://…` command run the shared suite.

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sds_core::persistence::PersistenceError;
use sds_persist_conformance::{Capabilities, Capability, Harness, HarnessError, async_trait};

use crate::{RocksDbError, RocksDbPersistence};

/// Runs the suite on one open database: every `open` is a fresh namespace in it (named
/// `conformance-<process>-<n>`, so runs never collide), siblings are namespaces of the same
/// database, and a "reopen" is a new handle on the same database and namespace (RocksDB's
/// lock forbids opening a directory twice in a process; restarts across processes are proven
/// by this crate's crash test).
pub struct RocksDbHarness {
    base: RocksDbPersistence,
    next_namespace: AtomicU64,
    // Whatever must outlive the database, e.g. the temporary directory holding it.
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for RocksDbHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbHarness")
            .field("path", &self.base.path())
            .finish_non_exhaustive()
    }
}

impl RocksDbHarness {
    /// A harness over the database at `path` (created if missing).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RocksDbError> {
        Ok(RocksDbHarness::over(
            RocksDbPersistence::builder(path).open()?,
        ))
    }

    /// A harness over an already open database.
    pub fn over(db: RocksDbPersistence) -> Self {
        RocksDbHarness {
            base: db,
            next_namespace: AtomicU64::new(0),
            _guard: None,
        }
    }

    /// Keeps `guard` alive as long as the harness (dropped after the database handle).
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    fn fresh(&self) -> RocksDbPersistence {
        let n = self.next_namespace.fetch_add(1, Ordering::SeqCst);
        self.base
            .with_namespace(format!("conformance-{}-{n}", std::process::id()))
    }
}

fn raw_write_error(err: PersistenceError) -> HarnessError {
    HarnessError::failed_from("raw write", err)
}

#[async_trait]
impl Harness for RocksDbHarness {
    type Backend = RocksDbPersistence;

    fn name(&self) -> String {
        format!("rocksdb://{}", self.base.path().display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL.without(
            Capability::Unreachable,
            "an embedded database has no server to lose",
        )
    }

    async fn open(&self) -> Result<RocksDbPersistence, HarnessError> {
        Ok(self.fresh())
    }

    async fn open_sibling(
        &self,
        _of: &RocksDbPersistence,
    ) -> Result<RocksDbPersistence, HarnessError> {
        Ok(self.fresh())
    }

    async fn reopen(&self, of: &RocksDbPersistence) -> Result<RocksDbPersistence, HarnessError> {
        // The backend keeps no in-process state besides the database handle.
        Ok(of.with_namespace(of.namespace().to_owned()))
    }

    async fn write_raw_meta(
        &self,
        backend: &RocksDbPersistence,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        backend
            .write_raw_meta(channel, bytes)
            .map_err(raw_write_error)
    }

    async fn write_raw_history_row(
        &self,
        backend: &RocksDbPersistence,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        backend
            .write_raw_history_row(channel, lamport, message_id, bytes)
            .map_err(raw_write_error)
    }

    async fn abort_next_commit_after_meta(
        &self,
        backend: &RocksDbPersistence,
    ) -> Result<(), HarnessError> {
        backend.abort_next_commit_after_meta();
        Ok(())
    }
}
