//! The conformance harness for this backend (feature `conformance`): lets this crate's
//! tests and the `sds conformance` command run the shared suite against a real server.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sds_core::persistence::PersistenceError;
use sds_persist_conformance::{Capabilities, Harness, HarnessError, async_trait};

use crate::{PostgresBuilder, PostgresError, PostgresPersistence};

/// Numbers the namespaces of this process.
static NEXT_NAMESPACE: AtomicU64 = AtomicU64::new(0);

/// When this process made its first namespace (nanoseconds since the epoch): with the
/// process id, it keeps namespaces of reruns on the same database apart.
fn process_stamp() -> u128 {
    static STAMP: OnceLock<u128> = OnceLock::new();
    *STAMP.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos())
    })
}

/// A namespace no other call, process or earlier run returns.
pub fn unique_namespace(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        process_stamp(),
        NEXT_NAMESPACE.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs the suite on one database: every `open` is a fresh namespace (see
/// [`unique_namespace`]) on the harness's pool, siblings share that pool, and a "reopen" is
/// a new pool on the same schema and namespace (no state shared with the first instance).
/// Every capability is offered: raw writes go to the tables, the unreachable server is a
/// closed local port, and the mid-commit abort is a trigger raising inside the server.
/// Clean-up deletes the namespace's rows.
pub struct PostgresHarness {
    base: PostgresPersistence,
    builder: PostgresBuilder,
}

impl std::fmt::Debug for PostgresHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresHarness")
            .field("server", &self.base.describe())
            .finish_non_exhaustive()
    }
}

impl PostgresHarness {
    /// Connects with `builder` (migrating its schema) and installs the fault trigger.
    pub async fn connect(builder: PostgresBuilder) -> Result<Self, PostgresError> {
        let base = builder.clone().connect().await?;
        base.install_test_faults()
            .await
            .map_err(|err| PostgresError::Migrate {
                schema: base.schema().to_owned(),
                source: Box::new(err),
            })?;
        Ok(PostgresHarness { base, builder })
    }

    fn fresh(&self) -> PostgresPersistence {
        self.base.with_namespace(unique_namespace("conformance"))
    }
}

fn hook_failure(what: &'static str) -> impl FnOnce(PersistenceError) -> HarnessError {
    move |err| HarnessError::failed_from(what, err)
}

/// A local TCP port nothing listens on: bound by the system, then released.
fn closed_port() -> Result<u16, HarnessError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|err| HarnessError::failed_from("bind a local port", err))?;
    let port = listener
        .local_addr()
        .map_err(|err| HarnessError::failed_from("read the bound port", err))?
        .port();
    drop(listener);
    Ok(port)
}

#[async_trait]
impl Harness for PostgresHarness {
    type Backend = PostgresPersistence;

    fn name(&self) -> String {
        self.base.describe().to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn open(&self) -> Result<PostgresPersistence, HarnessError> {
        Ok(self.fresh())
    }

    async fn open_sibling(
        &self,
        _of: &PostgresPersistence,
    ) -> Result<PostgresPersistence, HarnessError> {
        Ok(self.fresh())
    }

    async fn reopen(&self, of: &PostgresPersistence) -> Result<PostgresPersistence, HarnessError> {
        self.builder
            .clone()
            .namespace(of.namespace())
            .connect_lazy()
            .map_err(|err| HarnessError::failed_from("reopen on a new pool", err))
    }

    async fn write_raw_meta(
        &self,
        backend: &PostgresPersistence,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        backend
            .write_raw_meta(channel, bytes)
            .await
            .map_err(hook_failure("raw snapshot write"))
    }

    async fn write_raw_history_row(
        &self,
        backend: &PostgresPersistence,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        backend
            .write_raw_history_row(channel, lamport, message_id, bytes)
            .await
            .map_err(hook_failure("raw history write"))
    }

    async fn open_unreachable(&self) -> Result<PostgresPersistence, HarnessError> {
        let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port()?);
        PostgresPersistence::builder(&url)
            .namespace(unique_namespace("unreachable"))
            .connect_timeout(Duration::from_millis(300))
            .statement_timeout(Duration::from_secs(1))
            .connect_lazy()
            .map_err(|err| HarnessError::failed_from("build a backend for a closed port", err))
    }

    async fn abort_next_commit_after_meta(
        &self,
        backend: &PostgresPersistence,
    ) -> Result<(), HarnessError> {
        backend
            .fail_next_history_write()
            .await
            .map_err(hook_failure("arm the fault trigger"))
    }

    async fn cleanup(&self, backend: &PostgresPersistence) -> Result<(), HarnessError> {
        backend
            .delete_namespace()
            .await
            .map_err(hook_failure("delete the namespace's rows"))
    }
}
