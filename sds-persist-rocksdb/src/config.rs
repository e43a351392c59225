//! Configuration of a RocksDB backend: path, namespace, durability, creation.

use std::path::{Path, PathBuf};

use crate::{RocksDbError, RocksDbPersistence};

/// The namespace used when the builder is not given one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Builds a [`RocksDbPersistence`]; start from [`RocksDbPersistence::builder`].
///
/// # Durability
///
/// The write-ahead log is always on: every commit is appended to it before the commit
/// returns, and recovery replays it up to the last complete write batch
/// ("point in time" recovery), so a crash never leaves part of a protocol operation behind.
/// [`sync_writes`](Self::sync_writes) decides what else a returned commit promises:
///
/// - `false` (the default): the log record is handed to the operating system but not
///   fsynced. A crash of the **process** (panic, `kill -9`, OOM kill) loses nothing that was
///   acknowledged, because the record already sits in the kernel's page cache. A crash of
///   the **machine** (power loss, kernel panic) may lose the last operations acknowledged
///   before it, up to what the kernel had not written back yet; what survives is still
///   exactly the state after some earlier operation, never a torn one.
/// - `true`: every commit waits for an fsync of the log, so an acknowledged operation
///   survives a machine crash too. The price is one fsync per protocol operation: typically
///   from a fraction of a millisecond (NVMe with power-loss protection) to several
///   milliseconds (consumer SSD, network or virtual disks) to tens of milliseconds (spinning
///   disks, mobile flash), which caps a node's operation rate and costs battery on phones.
///
/// Why `false` is the default: in-memory state is the source of truth and persistence is
/// durability across restarts, and the protocol tolerates restarting from a slightly older
/// consistent state: snapshots are idempotent, the Lamport clock advances past wall-clock
/// time on the next send, and messages missing from the restored log are repaired by SDS-R
/// and by peers' causal histories. Ordinary restarts and process crashes, by far the common
/// case, lose nothing either way. Turn `sync_writes` on when a lost acknowledgement after a
/// power cut is not acceptable to the application, and measure the cost on the target disk.
///
/// [`Persistence::drop_channel`](sds_core::persistence::Persistence::drop_channel) always
/// fsyncs whatever this setting says: it is rare, and the caller is told a wipe happened
/// only when it is durable.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct RocksDbBuilder {
    pub(crate) path: PathBuf,
    pub(crate) namespace: String,
    pub(crate) sync_writes: bool,
    pub(crate) create_if_missing: bool,
}

impl RocksDbBuilder {
    pub(crate) fn new(path: impl AsRef<Path>) -> Self {
        RocksDbBuilder {
            path: path.as_ref().to_path_buf(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            sync_writes: false,
            create_if_missing: true,
        }
    }

    /// The namespace the opened instance serves (default [`DEFAULT_NAMESPACE`]). Any string
    /// is allowed, the empty one included; instances with different namespaces share the
    /// database without seeing each other's channels.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Whether every commit waits for an fsync of the write-ahead log (default `false`).
    /// See the [durability trade-off](Self#durability).
    pub fn sync_writes(mut self, sync_writes: bool) -> Self {
        self.sync_writes = sync_writes;
        self
    }

    /// Whether a missing database (and missing parent directories) is created (default
    /// `true`). When `false`, opening a path without a database fails with
    /// [`RocksDbError::NotFound`].
    pub fn create_if_missing(mut self, create_if_missing: bool) -> Self {
        self.create_if_missing = create_if_missing;
        self
    }

    /// Opens the database. This blocks (it may replay the write-ahead log); from async code
    /// use [`open_async`](Self::open_async).
    pub fn open(self) -> Result<RocksDbPersistence, RocksDbError> {
        crate::db::open(self)
    }

    /// Opens the database on Tokio's blocking thread pool (inline on the calling thread
    /// when not inside a Tokio runtime).
    pub async fn open_async(self) -> Result<RocksDbPersistence, RocksDbError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.open();
        };
        let path = self.path.clone();
        match runtime.spawn_blocking(move || self.open()).await {
            Ok(result) => result,
            Err(join) => Err(RocksDbError::Io {
                path,
                source: std::io::Error::other(join),
            }),
        }
    }
}
