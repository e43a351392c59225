//! The backend handle: opening the database, namespaces, and the [`Persistence`] impl that
//! runs RocksDB calls on Tokio's blocking thread pool (commits without fsync inline).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use async_trait::async_trait;
use rocksdb::{DB, DBRecoveryMode, Options, WriteOptions};
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_core::persistence::{BackendCapabilities, Persistence, PersistenceError, WriterEpoch};

use crate::config::RocksDbBuilder;
use crate::error::{classify_io_error, classify_open_error, storage_error};
use crate::fence::{ClaimLock, UNCLAIMED};
use crate::keys::{ChannelKeys, LAYOUT_KEY, LAYOUT_VERSION};
use crate::write_order::WriteOrder;
use crate::{RocksDbError, commit, fence, load, namespace};

/// Test hook states: commits run normally, the next one fails, or all fail.
pub(crate) const FAIL_OFF: u8 = 0;
pub(crate) const FAIL_ONCE: u8 = 1;
pub(crate) const FAIL_ALWAYS: u8 = 2;

/// What every handle on one open database shares.
struct Shared {
    db: DB,
    path: PathBuf,
    write_order: WriteOrder,
    claims: ClaimLock,
}

/// A [`Persistence`] backend on an embedded RocksDB database, serving one namespace.
///
/// Cheap to clone: clones share the open database. Many namespaces (nodes) can share one
/// database directory through [`with_namespace`](Self::with_namespace); RocksDB lets only
/// one process open a directory at a time, so within a process open it once and hand out
/// siblings. The database closes when the last handle is dropped.
///
/// Every operation runs on Tokio's blocking thread pool (`spawn_blocking`), never on an
/// executor worker, except commits without [`sync_writes`](RocksDbBuilder::sync_writes):
/// they cost microseconds (point reads of hot keys, a memtable insert, a write into the
/// page cache), less than the hand-off to the pool, so they run on the calling task, and go
/// to the pool only when RocksDB would stall them. Called outside a Tokio runtime (another
/// executor), an operation runs inline on the calling thread: it works, but blocks that
/// executor's thread.
/// [`Persistence::commit`] writes the snapshot and the history batch of one protocol
/// operation as one RocksDB write batch: both land or neither does.
#[derive(Clone)]
pub struct RocksDbPersistence {
    shared: Arc<Shared>,
    namespace: Arc<str>,
    sync_writes: bool,
    fail_commit_after_meta: Arc<AtomicU8>,
    /// The writer epoch this handle claimed (`fence::UNCLAIMED` before its first claim);
    /// shared by its clones, not by siblings made with `with_namespace`.
    claimed: Arc<AtomicU64>,
}

impl fmt::Debug for RocksDbPersistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbPersistence")
            .field("path", &self.shared.path)
            .field("namespace", &self.namespace)
            .field("sync_writes", &self.sync_writes)
            .finish_non_exhaustive()
    }
}

impl RocksDbPersistence {
    /// Starts configuring a database at `path` (a directory, created if missing unless
    /// [`RocksDbBuilder::create_if_missing`] says otherwise).
    pub fn builder(path: impl AsRef<Path>) -> RocksDbBuilder {
        RocksDbBuilder::new(path)
    }

    /// A handle on the same open database serving another namespace, with the same
    /// durability setting.
    pub fn with_namespace(&self, namespace: impl Into<String>) -> Self {
        RocksDbPersistence {
            shared: Arc::clone(&self.shared),
            namespace: Arc::from(namespace.into()),
            sync_writes: self.sync_writes,
            fail_commit_after_meta: Arc::new(AtomicU8::new(FAIL_OFF)),
            claimed: Arc::new(AtomicU64::new(UNCLAIMED)),
        }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The namespace this handle serves.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether commits wait for an fsync of the write-ahead log.
    pub fn sync_writes(&self) -> bool {
        self.sync_writes
    }

    pub(crate) fn db(&self) -> &DB {
        &self.shared.db
    }

    pub(crate) fn keys(&self, channel: &str) -> ChannelKeys {
        ChannelKeys::new(self.namespace.as_bytes(), channel.as_bytes())
    }

    /// Write options of ordinary commits: WAL on, fsync per the durability setting.
    pub(crate) fn write_options(&self) -> WriteOptions {
        durable_write_options(self.sync_writes)
    }

    /// Whether the armed test hook makes this commit fail between its two halves (consuming
    /// a one-shot arming).
    pub(crate) fn take_commit_failure(&self) -> bool {
        let hook = &self.fail_commit_after_meta;
        hook.load(Ordering::SeqCst) == FAIL_ALWAYS
            || hook
                .compare_exchange(FAIL_ONCE, FAIL_OFF, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Orders writer claims against fenced writes on this database (see `fence`).
    pub(crate) fn claim_lock(&self) -> &ClaimLock {
        &self.shared.claims
    }

    /// The epoch this handle claimed.
    pub(crate) fn claimed_epoch(&self) -> &AtomicU64 {
        &self.claimed
    }

    pub(crate) fn arm_commit_failure(&self, mode: u8) {
        self.fail_commit_after_meta.store(mode, Ordering::SeqCst);
    }

    /// Runs `op` with a clone of this handle on the blocking thread pool.
    pub(crate) async fn run_blocking<T, F>(
        &self,
        what: &'static str,
        op: F,
    ) -> Result<T, PersistenceError>
    where
        T: Send + 'static,
        F: FnOnce(&RocksDbPersistence) -> Result<T, PersistenceError> + Send + 'static,
    {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(move || op(&this))
                .await
                .map_err(|join| {
                    PersistenceError::other_from(format!("{what}: task failed"), join)
                })?,
            // Not inside Tokio: there is no blocking pool to use, so block the caller (its
            // executor's thread) rather than panic.
            Err(_) => op(&this),
        }
    }

    /// Whether a write to `channel` holds its turn now (see `write_order`).
    #[cfg(test)]
    pub(crate) fn write_in_progress(&self, channel: &str) -> bool {
        self.shared.write_order.is_busy(&self.namespace, channel)
    }

    /// [`Self::run_blocking`] for a write to `channel`: it takes effect after every write to
    /// the channel issued before it, even one whose caller gave up (see `write_order`).
    pub(crate) async fn run_write<T, F>(
        &self,
        channel: &str,
        what: &'static str,
        op: F,
    ) -> Result<T, PersistenceError>
    where
        T: Send + 'static,
        F: FnOnce(&RocksDbPersistence) -> Result<T, PersistenceError> + Send + 'static,
    {
        let this = self.clone();
        let order = &self.shared.write_order;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let turn = order.turn(&self.namespace, channel).await;
                runtime
                    .spawn_blocking(move || {
                        // Held until the write is done, whether or not anyone still waits.
                        let _turn = turn;
                        op(&this)
                    })
                    .await
                    .map_err(|join| {
                        PersistenceError::other_from(format!("{what}: task failed"), join)
                    })?
            }
            Err(_) => {
                let _turn = order.blocking_turn(&self.namespace, channel);
                op(&this)
            }
        }
    }
}

/// Write options of a commit run on an executor thread: the log on, no fsync, and an
/// immediate `Incomplete` error instead of a write stall (see [`is_write_stall`]).
pub(crate) fn stall_free_write_options() -> WriteOptions {
    let mut options = durable_write_options(false);
    options.set_no_slowdown(true);
    options
}

/// Whether a write failed only because RocksDB would have stalled it (memtables full,
/// too many level-0 files): nothing was written, and the write may be retried.
pub(crate) fn is_write_stall(err: &PersistenceError) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<rocksdb::Error>())
        .is_some_and(|source| source.kind() == rocksdb::ErrorKind::Incomplete)
}

/// Write options with the write-ahead log on and fsync as asked.
pub(crate) fn durable_write_options(sync: bool) -> WriteOptions {
    let mut options = WriteOptions::default();
    options.disable_wal(false);
    options.set_sync(sync);
    options
}

/// The file RocksDB writes first into every database directory it creates.
const ROCKSDB_MARKERS: [&str; 3] = ["CURRENT", "IDENTITY", "LOCK"];

/// Checks the path before RocksDB sees it, so the common mistakes get precise errors.
pub(crate) fn check_path(path: &Path, create_if_missing: bool) -> Result<(), RocksDbError> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_dir() => {
            return Err(RocksDbError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if !create_if_missing {
                return Err(RocksDbError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            std::fs::create_dir_all(path).map_err(|err| classify_io_error(path.into(), err))?;
            return Ok(());
        }
        Err(err) => return Err(classify_io_error(path.to_path_buf(), err)),
    }
    let entries = std::fs::read_dir(path).map_err(|err| classify_io_error(path.into(), err))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| classify_io_error(path.into(), err))?;
        names.push(entry.file_name());
    }
    let looks_like_rocksdb = names
        .iter()
        .any(|name| ROCKSDB_MARKERS.iter().any(|marker| name == marker));
    if !names.is_empty() && !looks_like_rocksdb {
        return Err(RocksDbError::NotADatabase {
            path: path.to_path_buf(),
            reason: format!(
                "the directory holds {} other entries and no RocksDB CURRENT, IDENTITY or LOCK file",
                names.len()
            ),
        });
    }
    if names.is_empty() && !create_if_missing {
        return Err(RocksDbError::NotFound {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Reads the layout marker, writing it into a database that has none.
fn check_layout(db: &DB, path: &Path) -> Result<(), RocksDbError> {
    let open_error = |source| RocksDbError::Open {
        path: path.to_path_buf(),
        source,
    };
    match db.get(LAYOUT_KEY).map_err(open_error)? {
        None => db
            .put_opt(
                LAYOUT_KEY,
                LAYOUT_VERSION.to_be_bytes(),
                &durable_write_options(true),
            )
            .map_err(open_error),
        Some(bytes) => check_layout_marker(&bytes, path),
    }
}

/// Refuses a layout marker this build cannot read.
pub(crate) fn check_layout_marker(bytes: &[u8], path: &Path) -> Result<(), RocksDbError> {
    let found = <[u8; 4]>::try_from(bytes)
        .map(u32::from_be_bytes)
        .map_err(|_| RocksDbError::NotADatabase {
            path: path.to_path_buf(),
            reason: format!("layout marker has {} bytes, expected 4", bytes.len()),
        })?;
    if found == LAYOUT_VERSION {
        Ok(())
    } else {
        Err(RocksDbError::UnsupportedLayout {
            path: path.to_path_buf(),
            found,
            supported: LAYOUT_VERSION,
        })
    }
}

pub(crate) fn open(builder: RocksDbBuilder) -> Result<RocksDbPersistence, RocksDbError> {
    let RocksDbBuilder {
        path,
        namespace,
        sync_writes,
        create_if_missing,
    } = builder;
    check_path(&path, create_if_missing)?;

    let mut options = Options::default();
    options.create_if_missing(create_if_missing);
    // Replay the log up to the last complete write batch: a torn tail is dropped, a
    // committed batch is never half applied.
    options.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    options.set_keep_log_file_num(4);
    let db = DB::open(&options, &path).map_err(|err| classify_open_error(path.clone(), err))?;
    check_layout(&db, &path)?;
    tracing::debug!(path = %path.display(), namespace, sync_writes, "opened RocksDB persistence");

    Ok(RocksDbPersistence::from_open_db(
        db,
        path,
        namespace,
        sync_writes,
    ))
}

impl RocksDbPersistence {
    /// The first handle on a database just opened (read-write or read-only).
    pub(crate) fn from_open_db(
        db: DB,
        path: PathBuf,
        namespace: String,
        sync_writes: bool,
    ) -> Self {
        RocksDbPersistence {
            shared: Arc::new(Shared {
                db,
                path,
                write_order: WriteOrder::default(),
                claims: ClaimLock::default(),
            }),
            namespace: Arc::from(namespace),
            sync_writes,
            fail_commit_after_meta: Arc::new(AtomicU8::new(FAIL_OFF)),
            claimed: Arc::new(AtomicU64::new(UNCLAIMED)),
        }
    }
}

#[async_trait]
impl Persistence for RocksDbPersistence {
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

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        let channel = channel.to_owned();
        self.run_blocking("load_channel", move |this| {
            load::load_channel(this, &channel)
        })
        .await
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        let owned = channel.to_owned();
        self.run_write(channel, "drop_channel", move |this| {
            commit::drop_channel(this, &owned)
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
        let message_id = message_id.to_owned();
        let hint = hint.to_vec();
        self.run_write(channel, "set_retrieval_hint", move |this| {
            commit::set_retrieval_hint(this, &owned, &message_id, hint)
        })
        .await
    }

    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        let history = history.filter(|update| !update.is_empty());
        if meta.is_none() && history.is_none() {
            return Ok(());
        }
        // Encoding is CPU work on data we only borrow: do it here, ship the bytes.
        let meta = meta.map(sds_codec::storage::encode_channel_meta);
        if !self.sync_writes && tokio::runtime::Handle::try_current().is_ok() {
            // Without fsync a commit is a few point reads of hot keys, a memtable insert and
            // a write(2) into the page cache: microseconds, several times less than handing
            // it to the blocking pool and back (measured: 5x the raw write batch with the
            // hand-off). So it runs here, holding its turn like any write, with RocksDB told
            // never to stall it; a write RocksDB would stall goes to the pool instead.
            let turn = self.shared.write_order.turn(&self.namespace, channel).await;
            let inline = commit::commit(
                self,
                channel,
                meta.as_deref(),
                history,
                &stall_free_write_options(),
            );
            drop(turn);
            match inline {
                Err(err) if is_write_stall(&err) => {
                    tracing::debug!(channel, "commit would stall: retried on the blocking pool");
                }
                done => return done,
            }
        }
        // The blocking pool needs owned inputs.
        let owned = channel.to_owned();
        let history = history.cloned();
        self.run_write(channel, "commit", move |this| {
            commit::commit(
                this,
                &owned,
                meta.as_deref(),
                history.as_ref(),
                &this.write_options(),
            )
        })
        .await
    }

    /// Atomic commit (one write batch), listing, and persistence; durable on acknowledge
    /// only with [`sync_writes`](RocksDbBuilder::sync_writes) on.
    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::CONSERVATIVE
            .with_atomic_commit(true)
            .with_durable_on_ack(self.sync_writes)
            .with_persistent(true)
            .with_list_channels(true)
            .with_fencing(true)
    }

    /// The epoch is a key of the namespace, written with fsync whatever `sync_writes` says;
    /// see the `fence` module for how a write checks it.
    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        self.run_blocking("claim_writer", fence::claim)
            .await
            .map(Some)
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        self.run_blocking("list_channels", namespace::list_channels)
            .await
    }

    /// Fsyncs the write-ahead log and flushes the memtables to table files, so every
    /// acknowledged commit survives a machine crash, whatever `sync_writes` says, and the
    /// next open replays no log. The handle stays usable (its siblings share the database);
    /// the database itself closes when the last handle is dropped.
    async fn close(&self) -> Result<(), PersistenceError> {
        self.run_blocking("close", |this| {
            let flushed = this.db().flush_wal(true).and_then(|()| this.db().flush());
            match flushed {
                Ok(()) => Ok(()),
                // A read-only handle has nothing of its own to flush.
                Err(err) if err.kind() == rocksdb::ErrorKind::NotSupported => Ok(()),
                Err(err) => Err(storage_error("flush at close", err)),
            }
        })
        .await
    }
}

/// Maps a failed RocksDB write of `what` on `channel`.
pub(crate) fn write_error(what: &str, channel: &str, err: rocksdb::Error) -> PersistenceError {
    storage_error(&format!("{what} of channel {channel:?}"), err)
}
