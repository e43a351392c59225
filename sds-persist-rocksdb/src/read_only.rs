//! Opening a database read-only, for tools that must never change what they look at.

use std::path::Path;

use rocksdb::{DB, Options};

use crate::config::RocksDbBuilder;
use crate::db::{check_layout_marker, check_path};
use crate::error::classify_open_error;
use crate::keys::LAYOUT_KEY;
use crate::{RocksDbError, RocksDbPersistence};

impl RocksDbBuilder {
    /// Opens an existing database read-only, for inspection: nothing is created or written
    /// (no directory, no database, no layout marker), [`create_if_missing`](Self::create_if_missing)
    /// and [`sync_writes`](Self::sync_writes) are ignored, and RocksDB's lock is not taken,
    /// so a process writing the database may keep running. The handle sees the database as
    /// it was when opened, write-ahead log included.
    ///
    /// A path with no database fails with [`RocksDbError::NotFound`] (missing, or an empty
    /// directory), a directory holding something else with [`RocksDbError::NotADatabase`],
    /// as does a RocksDB database this backend did not write (no layout marker). Every write
    /// through the handle fails with
    /// [`PersistenceError::Unavailable`](sds_core::persistence::PersistenceError::Unavailable)
    /// and changes nothing.
    pub fn open_read_only(self) -> Result<RocksDbPersistence, RocksDbError> {
        let RocksDbBuilder {
            path, namespace, ..
        } = self;
        check_path(&path, false)?;
        let options = Options::default();
        // `false`: a log left by a writer (running, or crashed) is replayed into memory, so
        // the handle sees every acknowledged write; nothing is written back.
        let db = DB::open_for_read_only(&options, &path, false)
            .map_err(|err| classify_open_error(path.clone(), err))?;
        check_layout_read_only(&db, &path)?;
        tracing::debug!(path = %path.display(), namespace, "opened RocksDB persistence read-only");
        Ok(RocksDbPersistence::from_open_db(db, path, namespace, false))
    }

    /// [`open_read_only`](Self::open_read_only) on Tokio's blocking thread pool (inline on
    /// the calling thread when not inside a Tokio runtime).
    pub async fn open_read_only_async(self) -> Result<RocksDbPersistence, RocksDbError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.open_read_only();
        };
        let path = self.path.clone();
        match runtime.spawn_blocking(move || self.open_read_only()).await {
            Ok(result) => result,
            Err(join) => Err(RocksDbError::Io {
                path,
                source: std::io::Error::other(join),
            }),
        }
    }
}

/// Checks the layout marker without writing one: a database without it was not written by
/// this backend.
fn check_layout_read_only(db: &DB, path: &Path) -> Result<(), RocksDbError> {
    let bytes = db
        .get(LAYOUT_KEY)
        .map_err(|source| RocksDbError::Open {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| RocksDbError::NotADatabase {
            path: path.to_path_buf(),
            reason: "a RocksDB database without the SDS layout marker".to_string(),
        })?;
    check_layout_marker(&bytes, path)
}
