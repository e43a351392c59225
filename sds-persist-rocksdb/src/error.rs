//! Errors of opening a database, and how RocksDB errors map onto [`PersistenceError`].

use std::path::PathBuf;

use sds_core::persistence::{BoxError, PersistenceError};
use thiserror::Error;

/// Why a RocksDB database could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RocksDbError {
    /// Another process, or another open instance in this process, holds the database's lock.
    /// RocksDB allows one writer per directory; share one [`crate::RocksDbPersistence`]
    /// (and [`crate::RocksDbPersistence::with_namespace`]) instead of opening it twice.
    #[error("database at {path} is locked by another process or another open instance")]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's report.
        #[source]
        source: rocksdb::Error,
    },
    /// The path exists but is not a directory (or one of its parents is a file).
    #[error("{path} is not a directory, so it cannot hold a database")]
    NotADirectory {
        /// The path given to the builder.
        path: PathBuf,
    },
    /// The process may not read or write the directory or the database's files.
    #[error("permission denied opening the database at {path}")]
    PermissionDenied {
        /// The database directory.
        path: PathBuf,
        /// The operating system's or RocksDB's report.
        #[source]
        source: BoxError,
    },
    /// The directory exists but does not hold a RocksDB database: it has other files and no
    /// RocksDB control files, or RocksDB found its control files unreadable.
    #[error("{path} does not hold a RocksDB database: {reason}")]
    NotADatabase {
        /// The database directory.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// There is no database at the path and the builder was told not to create one.
    #[error("no database at {path} (create_if_missing is off)")]
    NotFound {
        /// The database directory.
        path: PathBuf,
    },
    /// The database was written by a build with a different key layout.
    #[error(
        "database at {path} uses key layout version {found}; this build reads version {supported}"
    )]
    UnsupportedLayout {
        /// The database directory.
        path: PathBuf,
        /// The layout version found in the database.
        found: u32,
        /// The layout version this build reads and writes.
        supported: u32,
    },
    /// A file-system operation on the path failed.
    #[error("I/O error at {path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The operating system's report.
        #[source]
        source: std::io::Error,
    },
    /// RocksDB refused to open the database for another reason.
    #[error("RocksDB could not open the database at {path}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's report.
        #[source]
        source: rocksdb::Error,
    },
}

impl From<RocksDbError> for PersistenceError {
    fn from(err: RocksDbError) -> Self {
        match err {
            RocksDbError::NotADatabase { .. } => PersistenceError::corrupt(err.to_string()),
            RocksDbError::UnsupportedLayout { .. } => {
                PersistenceError::other_from("unsupported database layout", err)
            }
            RocksDbError::Locked { .. }
            | RocksDbError::NotADirectory { .. }
            | RocksDbError::PermissionDenied { .. }
            | RocksDbError::NotFound { .. }
            | RocksDbError::Io { .. }
            | RocksDbError::Open { .. } => {
                PersistenceError::unavailable_from("cannot open the RocksDB database", err)
            }
        }
    }
}

/// Maps a RocksDB error met while serving an operation: corruption reported by RocksDB is
/// [`PersistenceError::Corrupt`]; everything else (I/O, busy, shutdown) is
/// [`PersistenceError::Unavailable`].
pub(crate) fn storage_error(context: &str, err: rocksdb::Error) -> PersistenceError {
    match err.kind() {
        rocksdb::ErrorKind::Corruption => PersistenceError::corrupt(format!("{context}: {err}")),
        _ => PersistenceError::unavailable_from(context.to_owned(), err),
    }
}

/// Classifies the error of `DB::open` into a typed [`RocksDbError`].
pub(crate) fn classify_open_error(path: PathBuf, err: rocksdb::Error) -> RocksDbError {
    let message = err.as_ref().to_ascii_lowercase();
    match err.kind() {
        _ if message.contains("permission denied") => RocksDbError::PermissionDenied {
            path,
            source: Box::new(err),
        },
        rocksdb::ErrorKind::IOError if message.contains("lock") => {
            RocksDbError::Locked { path, source: err }
        }
        rocksdb::ErrorKind::InvalidArgument if message.contains("create_if_missing is false") => {
            RocksDbError::NotFound { path }
        }
        rocksdb::ErrorKind::Corruption => RocksDbError::NotADatabase {
            path,
            reason: err.into_string(),
        },
        _ => RocksDbError::Open { path, source: err },
    }
}

/// Classifies an I/O error met while checking or creating the database directory.
pub(crate) fn classify_io_error(path: PathBuf, err: std::io::Error) -> RocksDbError {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => RocksDbError::PermissionDenied {
            path,
            source: Box::new(err),
        },
        std::io::ErrorKind::NotADirectory => RocksDbError::NotADirectory { path },
        std::io::ErrorKind::NotFound => RocksDbError::NotFound { path },
        _ => RocksDbError::Io { path, source: err },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sds_core::persistence::PersistenceErrorKind;

    #[test]
    fn io_errors_are_classified() {
        let path = PathBuf::from("/db");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(
            classify_io_error(path.clone(), denied),
            RocksDbError::PermissionDenied { .. }
        ));
        let not_dir = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        assert!(matches!(
            classify_io_error(path.clone(), not_dir),
            RocksDbError::NotADirectory { .. }
        ));
        let other = std::io::Error::other("disk on fire");
        assert!(matches!(
            classify_io_error(path, other),
            RocksDbError::Io { .. }
        ));
    }

    #[test]
    fn open_errors_map_to_persistence_kinds() {
        let path = PathBuf::from("/db");
        let cases = [
            (
                RocksDbError::NotFound { path: path.clone() },
                PersistenceErrorKind::Unavailable,
            ),
            (
                RocksDbError::NotADirectory { path: path.clone() },
                PersistenceErrorKind::Unavailable,
            ),
            (
                RocksDbError::NotADatabase {
                    path: path.clone(),
                    reason: "junk".into(),
                },
                PersistenceErrorKind::Corrupt,
            ),
            (
                RocksDbError::UnsupportedLayout {
                    path,
                    found: 9,
                    supported: 1,
                },
                PersistenceErrorKind::Other,
            ),
        ];
        for (err, kind) in cases {
            assert_eq!(PersistenceError::from(err).kind(), kind);
        }
    }
}
