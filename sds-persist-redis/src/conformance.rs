//! The conformance harness for this backend (feature `conformance`): lets this crate's
//! tests and the `sds conformance --backend redis://…` command run the shared suite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sds_core::persistence::PersistenceError;
use sds_persist_conformance::{Capabilities, Harness, HarnessError, async_trait};

use crate::{RedisBackendError, RedisBuilder, RedisPersistence};

/// Runs the suite on one server or Cluster: every `open` is a fresh namespace (named
/// `conformance-<process>-<start time>-<n>`, so runs and processes never collide), siblings
/// are namespaces on the same connection, and a "reopen" is a new connection to the same
/// server and namespace. `cleanup` deletes what each case stored.
#[derive(Debug)]
pub struct RedisHarness {
    builder: RedisBuilder,
    base: RedisPersistence,
    run: String,
    next_namespace: AtomicU64,
}

impl RedisHarness {
    /// A harness over the server or Cluster `url` names (see [`RedisPersistence::builder`]),
    /// connecting now.
    pub async fn connect(url: &str) -> Result<Self, RedisBackendError> {
        RedisHarness::over(RedisPersistence::builder(url)?).await
    }

    /// A harness over the backend `builder` configures (its namespace is not used).
    pub async fn over(builder: RedisBuilder) -> Result<Self, RedisBackendError> {
        let base = builder.clone().connect().await?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        Ok(RedisHarness {
            builder,
            base,
            run: format!("{}-{started:x}", std::process::id()),
            next_namespace: AtomicU64::new(0),
        })
    }

    fn fresh(&self) -> RedisPersistence {
        let n = self.next_namespace.fetch_add(1, Ordering::SeqCst);
        self.base
            .with_namespace(format!("conformance-{}-{n}", self.run))
    }
}

fn raw_write_error(err: PersistenceError) -> HarnessError {
    HarnessError::failed_from("raw write", err)
}

#[async_trait]
impl Harness for RedisHarness {
    type Backend = RedisPersistence;

    fn name(&self) -> String {
        self.base.describe()
    }

    /// Everything: the abort hook aborts the commit script between staging its snapshot
    /// and staging its history, before its first write.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn open(&self) -> Result<RedisPersistence, HarnessError> {
        Ok(self.fresh())
    }

    async fn open_sibling(&self, _of: &RedisPersistence) -> Result<RedisPersistence, HarnessError> {
        Ok(self.fresh())
    }

    async fn reopen(&self, of: &RedisPersistence) -> Result<RedisPersistence, HarnessError> {
        self.builder
            .clone()
            .namespace(of.namespace())
            .connect()
            .await
            .map_err(|err| HarnessError::failed_from("reconnect", err))
    }

    async fn write_raw_meta(
        &self,
        backend: &RedisPersistence,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        backend
            .write_raw_meta(channel, bytes)
            .await
            .map_err(raw_write_error)
    }

    async fn write_raw_history_row(
        &self,
        backend: &RedisPersistence,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        backend
            .write_raw_history_row(channel, lamport, message_id, bytes)
            .await
            .map_err(raw_write_error)
    }

    /// A backend for a port nothing listens on (port 1 of the loopback), short timeouts.
    async fn open_unreachable(&self) -> Result<RedisPersistence, HarnessError> {
        let builder = if self.base.is_cluster() {
            RedisPersistence::cluster_builder(["redis://127.0.0.1:1"])
        } else {
            RedisPersistence::builder("redis://127.0.0.1:1")
                .map_err(|err| HarnessError::failed_from("unreachable URL", err))?
        };
        builder
            .connect_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_millis(500))
            .connect_lazy()
            .map_err(|err| HarnessError::failed_from("unreachable backend", err))
    }

    async fn abort_next_commit_after_meta(
        &self,
        backend: &RedisPersistence,
    ) -> Result<(), HarnessError> {
        backend.abort_next_commit_after_meta();
        Ok(())
    }

    /// Deletes the namespace: every channel, its channel set and its epoch.
    async fn cleanup(&self, backend: &RedisPersistence) -> Result<(), HarnessError> {
        backend
            .delete_namespace()
            .await
            .map_err(|err| HarnessError::failed_from("cleanup", err))
    }
}
