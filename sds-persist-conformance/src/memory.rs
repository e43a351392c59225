//! The harness for `sds-core`'s in-memory backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sds_core::persistence::Persistence as _;
use sds_core::persistence::memory::{MemoryPersistence, MemoryStore};

use crate::harness::{Capabilities, Capability, Harness, HarnessError};

/// Runs the suite against [`MemoryPersistence`]: every [`Harness::open`] is a new
/// namespace of one shared [`MemoryStore`].
///
/// Offers [`Capability::AbortCommitAfterMeta`] (the backend's own test hook). It has no raw
/// bytes to corrupt and no server to lose, so the cases needing those do not run.
#[derive(Debug, Clone, Default)]
pub struct MemoryHarness {
    store: MemoryStore,
    next_namespace: Arc<AtomicU64>,
}

impl MemoryHarness {
    /// A harness over a fresh store.
    pub fn new() -> Self {
        MemoryHarness::default()
    }

    /// The store every backend of this harness lives in.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn fresh_namespace(&self) -> String {
        let n = self.next_namespace.fetch_add(1, Ordering::SeqCst);
        format!("conformance-{n}")
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    type Backend = MemoryPersistence;

    fn name(&self) -> String {
        "memory".to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
            .without(
                Capability::RawWrites,
                "the in-memory backend keeps decoded values, no stored bytes to corrupt",
            )
            .without(
                Capability::Unreachable,
                "the in-memory backend has no server to lose",
            )
    }

    async fn open(&self) -> Result<MemoryPersistence, HarnessError> {
        Ok(self.store.namespace(self.fresh_namespace()))
    }

    async fn open_sibling(
        &self,
        of: &MemoryPersistence,
    ) -> Result<MemoryPersistence, HarnessError> {
        Ok(of.store().namespace(self.fresh_namespace()))
    }

    async fn reopen(&self, of: &MemoryPersistence) -> Result<MemoryPersistence, HarnessError> {
        Ok(of.store().namespace(of.namespace()))
    }

    async fn abort_next_commit_after_meta(
        &self,
        backend: &MemoryPersistence,
    ) -> Result<(), HarnessError> {
        backend.abort_next_commit_after_meta();
        Ok(())
    }

    async fn cleanup(&self, backend: &MemoryPersistence) -> Result<(), HarnessError> {
        // Through an instance that never claimed: the case's own may have been fenced.
        let backend = backend.store().namespace(backend.namespace());
        let channels = backend
            .channels()
            .map_err(|err| HarnessError::failed_from("listing channels", err))?;
        for channel in channels {
            backend
                .drop_channel(&channel)
                .await
                .map_err(|err| HarnessError::failed_from("dropping a channel", err))?;
        }
        Ok(())
    }
}
