//! The backend handle: the pool, namespaces, and the [`Persistence`] impl.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_core::persistence::{BackendCapabilities, Persistence, PersistenceError, WriterEpoch};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::config::{PostgresBuilder, Settings};
use crate::error::{PostgresError, deadline_error, driver_error, is_connection_error};
use crate::fence::UNCLAIMED;
use crate::sql::Statements;
use crate::write_order::WriteOrder;
use crate::{commit, fence, inventory, load};

/// What every handle on one pool shares.
struct Shared {
    pool: PgPool,
    statements: Statements,
    write_order: WriteOrder,
    schema: String,
    described: String,
    synchronous_commit: bool,
    deadline: Duration,
}

/// A [`Persistence`] backend on a PostgreSQL database, serving one namespace.
///
/// Cheap to clone: clones share the connection pool (and the writer claim). Many
/// namespaces (nodes) share one pool through [`with_namespace`](Self::with_namespace).
/// Operations need a Tokio runtime (the driver's); outside one they fail with
/// [`PersistenceError::Other`].
#[derive(Clone)]
pub struct PostgresPersistence {
    shared: Arc<Shared>,
    namespace: Arc<str>,
    /// The writer epoch this handle claimed (`fence::UNCLAIMED` before its first claim);
    /// shared by its clones, not by siblings made with `with_namespace`.
    claimed: Arc<AtomicU64>,
}

impl fmt::Debug for PostgresPersistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresPersistence")
            .field("server", &self.shared.described)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// The handle of a pool just configured (no connection is made here). The pool's
/// maintenance task needs a Tokio runtime, so outside one this fails.
pub(crate) fn open(settings: Settings) -> Result<PostgresPersistence, PostgresError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(PostgresError::NoRuntime);
    }
    let Settings {
        connect,
        pool,
        schema,
        namespace,
        synchronous_commit,
        deadline,
        described,
    } = settings;
    tracing::debug!(server = %described, namespace, "PostgreSQL persistence configured");
    Ok(PostgresPersistence {
        shared: Arc::new(Shared {
            pool: pool.connect_lazy_with(connect),
            statements: Statements::new(&schema),
            // Two channels on one stripe only wait for each other's writes; 256 keeps
            // that rare for the connection counts a pool has.
            write_order: WriteOrder::new(256),
            schema,
            described,
            synchronous_commit,
            deadline,
        }),
        namespace: Arc::from(namespace),
        claimed: Arc::new(AtomicU64::new(UNCLAIMED)),
    })
}

impl PostgresPersistence {
    /// Starts configuring a backend for the server `url` names
    /// (`postgres://user:password@host:port/database`, with the driver's query parameters,
    /// e.g. `sslmode`, and this crate's
    /// [`sds_schema`](crate::SCHEMA_URL_PARAMETER)).
    pub fn builder(url: &str) -> PostgresBuilder {
        PostgresBuilder::new(url)
    }

    /// A handle on the same pool serving another namespace.
    pub fn with_namespace(&self, namespace: impl Into<String>) -> Self {
        PostgresPersistence {
            shared: Arc::clone(&self.shared),
            namespace: Arc::from(namespace.into()),
            claimed: Arc::new(AtomicU64::new(UNCLAIMED)),
        }
    }

    /// The namespace this handle serves.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The server, database and schema, without credentials, as a URL
    /// (`postgres://host:port/database?sds_schema=schema`).
    pub fn describe(&self) -> &str {
        &self.shared.described
    }

    /// Whether commits wait for the server's WAL flush (see
    /// [`PostgresBuilder::synchronous_commit`]).
    pub fn synchronous_commit(&self) -> bool {
        self.shared.synchronous_commit
    }

    /// Closes the pool: waits for checked-out connections to come back and closes every
    /// connection. Every handle on the pool (siblings included) fails from then on.
    pub async fn close_pool(&self) {
        self.shared.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    pub(crate) fn statements(&self) -> &Statements {
        &self.shared.statements
    }

    pub(crate) fn namespace_bytes(&self) -> &[u8] {
        self.namespace.as_bytes()
    }

    /// The epoch this handle claimed, `None` if it never claimed.
    pub(crate) fn held_epoch(&self) -> Option<i64> {
        match self.claimed.load(Ordering::SeqCst) {
            UNCLAIMED => None,
            epoch => i64::try_from(epoch).ok(),
        }
    }

    pub(crate) fn set_claimed(&self, epoch: WriterEpoch) {
        self.claimed.store(epoch.get(), Ordering::SeqCst);
    }

    /// Runs `op` under the operation deadline, once more on a fresh connection if the
    /// first attempt failed because its connection broke (a server restart, an
    /// administrator's `pg_terminate_backend`, an idle connection cut by the network).
    /// Every operation is idempotent, so a second attempt is safe even when the first
    /// landed. Each attempt gets the whole deadline: when it passes, the server's
    /// `statement_timeout` has ended that attempt's statement (see `write_order`).
    pub(crate) async fn attempt<T, F, Fut>(&self, what: &str, op: F) -> Result<T, PersistenceError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let deadline = self.shared.deadline;
        let first = match tokio::time::timeout(deadline, op()).await {
            Ok(Err(err))
                if is_connection_error(&err) && !matches!(err, sqlx::Error::PoolTimedOut) =>
            {
                tracing::debug!(%err, what, "connection lost; trying once more");
                None
            }
            Ok(result) => Some(result),
            Err(_) => return Err(deadline_error(what, deadline)),
        };
        let result = match first {
            Some(result) => result,
            None => match tokio::time::timeout(deadline, op()).await {
                Ok(result) => result,
                Err(_) => return Err(deadline_error(what, deadline)),
            },
        };
        result.map_err(|err| driver_error(what, err))
    }

    /// Runs a write to `channel` in its own task, in the channel's write order (see
    /// `write_order`): the caller may give up waiting, the write still finishes (or reaches
    /// its deadline) before the channel's next write starts.
    pub(crate) async fn run_write<T, F, Fut>(
        &self,
        channel: &str,
        what: &'static str,
        op: F,
    ) -> Result<T, PersistenceError>
    where
        T: Send + 'static,
        F: FnOnce(PostgresPersistence) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PersistenceError>> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(PersistenceError::other(format!(
                "{what}: the PostgreSQL backend needs a Tokio runtime"
            )));
        };
        let turn = self.shared.write_order.turn(&self.namespace, channel).await;
        let (reply, answer) = oneshot::channel();
        let this = self.clone();
        runtime.spawn(async move {
            // Held until the write is done, whether or not anyone still waits.
            let _turn = turn;
            let result = op(this).await;
            // The caller may have given up; the write's outcome then matters to nobody.
            let _ = reply.send(result);
        });
        answer.await.map_err(|_| {
            PersistenceError::other(format!("{what}: the write task ended without an answer"))
        })?
    }

    /// Makes every commit acknowledged so far durable when sessions run with
    /// `synchronous_commit` off: a transaction that takes a transaction id commits
    /// synchronously, and its WAL flush covers every earlier commit. Nothing to do when
    /// commits are synchronous already.
    pub(crate) async fn flush_wal(&self, what: &str) -> Result<(), PersistenceError> {
        if self.shared.synchronous_commit {
            return Ok(());
        }
        // One simple query (one round trip) holding the whole transaction.
        self.attempt(what, || {
            sqlx::raw_sql(
                "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT;",
            )
            .execute(self.pool())
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl Persistence for PostgresPersistence {
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.commit(channel, Some(meta), None).await
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.commit(channel, None, Some(update)).await
    }

    /// One statement, so one round trip, reading the snapshot and the history from one
    /// snapshot of the database.
    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        load::load_channel(self, channel).await
    }

    /// One statement (one transaction), durable before it returns.
    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        let owned = channel.to_owned();
        self.run_write(channel, "drop_channel", move |this| async move {
            commit::drop_channel(&this, &owned).await?;
            this.flush_wal("drop_channel").await
        })
        .await
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        let owned = channel.to_owned();
        let message_id = message_id.as_bytes().to_vec();
        let hint = hint.to_vec();
        self.run_write(channel, "set_retrieval_hint", move |this| async move {
            commit::set_retrieval_hint(&this, &owned, message_id, hint).await
        })
        .await
    }

    /// One statement (one transaction, one round trip) for the snapshot and the whole
    /// batch, the fence checked inside it.
    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        // Encoding is CPU work on data we only borrow: do it here, ship the bytes.
        let Some(planned) = commit::plan(channel, meta, history)? else {
            return Ok(());
        };
        let owned = channel.to_owned();
        self.run_write(channel, "commit", move |this| async move {
            commit::commit(&this, &owned, planned).await
        })
        .await
    }

    /// Atomic commit (one statement), persistence, listing and fencing; durable on
    /// acknowledge exactly when sessions run with `synchronous_commit` on.
    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::CONSERVATIVE
            .with_atomic_commit(true)
            .with_durable_on_ack(self.shared.synchronous_commit)
            .with_persistent(true)
            .with_list_channels(true)
            .with_fencing(true)
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        inventory::list_channels(self).await
    }

    /// Commits are durable once acknowledged with `synchronous_commit` on; off, this
    /// flushes the server's WAL up to the last commit. The pool stays open: siblings share
    /// it (see [`PostgresPersistence::close_pool`]).
    async fn close(&self) -> Result<(), PersistenceError> {
        self.flush_wal("close").await
    }

    /// One statement raising the namespace's epoch atomically; made durable before it
    /// returns.
    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        fence::claim(self).await.map(Some)
    }
}
