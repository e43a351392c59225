//! Opening a persistence backend from a URL.

use std::collections::BTreeMap;
use std::sync::Arc;

use sds_core::Persistence;
use sds_core::persistence::PersistenceError;
use sds_core::persistence::memory::MemoryStore;
use thiserror::Error;

/// Why a backend URL could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The URL has no `scheme://` prefix.
    #[error("invalid backend URL {0:?}: expected scheme://…, e.g. rocksdb:///path or memory://")]
    InvalidUrl(String),
    /// The scheme is not one this crate knows.
    #[error("unknown backend scheme {0:?}: expected memory, rocksdb, postgres or redis")]
    UnknownScheme(String),
    /// The scheme is known but its cargo feature was not compiled in.
    #[error("the {scheme} backend is not compiled in: rebuild with `--features {feature}`")]
    NotCompiled {
        /// The URL scheme.
        scheme: String,
        /// The cargo feature that enables it.
        feature: &'static str,
    },
    /// The backend's crate exists but has no implementation yet.
    #[error("the {0} backend has not landed yet in this release")]
    NotImplemented(&'static str),
    /// The backend refused to open (unreachable, locked, not a database, …).
    #[error("could not open {url}: {message}")]
    Open {
        /// The URL as given.
        url: String,
        /// The backend's explanation.
        message: String,
    },
}

/// An opened backend, from which each participant (node) gets its own namespace.
#[derive(Clone)]
pub enum Backend {
    /// Process memory; lost on exit.
    Memory(MemoryStore),
    /// An embedded RocksDB database directory.
    #[cfg(feature = "rocksdb")]
    RocksDb(sds_persist_rocksdb::RocksDbPersistence),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Backend {
    /// Opens the backend a URL names: `memory://`, `rocksdb:///path` (the directory is
    /// created if missing), `postgres://…`, `redis://…`.
    pub async fn open(url: &str) -> Result<Backend, BackendError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BackendError::InvalidUrl(url.to_string()))?;
        match scheme {
            "memory" => Ok(Backend::Memory(MemoryStore::new())),
            "rocksdb" => open_rocksdb(url, rest).await,
            "postgres" | "postgresql" => {
                if cfg!(feature = "postgres") {
                    Err(BackendError::NotImplemented("postgres"))
                } else {
                    Err(BackendError::NotCompiled {
                        scheme: scheme.to_string(),
                        feature: "postgres",
                    })
                }
            }
            "redis" | "rediss" => {
                if cfg!(feature = "redis") {
                    Err(BackendError::NotImplemented("redis"))
                } else {
                    Err(BackendError::NotCompiled {
                        scheme: scheme.to_string(),
                        feature: "redis",
                    })
                }
            }
            other => Err(BackendError::UnknownScheme(other.to_string())),
        }
    }

    /// Opens the backend a URL names for reading only, as `sds inspect` does: nothing is
    /// created or written. A `rocksdb://` path that holds no database is refused (never
    /// created), and the database is opened without taking its lock, so a process writing
    /// it may keep running. `memory://` opens an empty store (an in-memory store lives only
    /// inside the process that writes it).
    pub async fn open_read_only(url: &str) -> Result<Backend, BackendError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BackendError::InvalidUrl(url.to_string()))?;
        match scheme {
            "rocksdb" => open_rocksdb_read_only(url, rest).await,
            // The other schemes open nothing on disk: the same rules as `open`.
            _ => Backend::open(url).await,
        }
    }

    /// Whether what is stored outlives the process (false for `memory://`).
    pub fn is_persistent(&self) -> bool {
        match self {
            Backend::Memory(_) => false,
            #[cfg(feature = "rocksdb")]
            Backend::RocksDb(_) => true,
        }
    }

    /// Every namespace that holds a stored channel, with its channels, each sorted by bytes.
    pub async fn stored_namespaces(
        &self,
    ) -> Result<BTreeMap<String, Vec<String>>, PersistenceError> {
        match self {
            Backend::Memory(store) => {
                let mut found = BTreeMap::new();
                for namespace in store.namespaces()? {
                    let mut channels = store.namespace(namespace.as_str()).channels()?;
                    if !channels.is_empty() {
                        channels.sort();
                        found.insert(namespace, channels);
                    }
                }
                Ok(found)
            }
            #[cfg(feature = "rocksdb")]
            Backend::RocksDb(db) => db.stored_namespaces().await,
        }
    }

    /// The persistence of one namespace (one node) in this backend.
    pub fn namespace(&self, namespace: &str) -> Arc<dyn Persistence> {
        match self {
            Backend::Memory(store) => Arc::new(store.namespace(namespace)),
            #[cfg(feature = "rocksdb")]
            Backend::RocksDb(db) => Arc::new(db.with_namespace(namespace)),
        }
    }

    /// A short human description, e.g. `rocksdb:///tmp/x`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Memory(_) => "memory://".to_string(),
            #[cfg(feature = "rocksdb")]
            Backend::RocksDb(db) => format!("rocksdb://{}", db.path().display()),
        }
    }
}

#[cfg(feature = "rocksdb")]
async fn open_rocksdb(url: &str, path: &str) -> Result<Backend, BackendError> {
    if path.is_empty() {
        return Err(BackendError::InvalidUrl(url.to_string()));
    }
    let db = sds_persist_rocksdb::RocksDbPersistence::builder(path)
        .open_async()
        .await
        .map_err(|err| BackendError::Open {
            url: url.to_string(),
            message: err.to_string(),
        })?;
    Ok(Backend::RocksDb(db))
}

#[cfg(feature = "rocksdb")]
async fn open_rocksdb_read_only(url: &str, path: &str) -> Result<Backend, BackendError> {
    use sds_persist_rocksdb::RocksDbError;

    if path.is_empty() {
        return Err(BackendError::InvalidUrl(url.to_string()));
    }
    let db = sds_persist_rocksdb::RocksDbPersistence::builder(path)
        .open_read_only_async()
        .await
        .map_err(|err| BackendError::Open {
            url: url.to_string(),
            message: match err {
                RocksDbError::NotFound { path } => format!(
                    "no database at {}: nothing was created (opened read-only); check the path",
                    path.display()
                ),
                other => other.to_string(),
            },
        })?;
    Ok(Backend::RocksDb(db))
}

#[cfg(not(feature = "rocksdb"))]
async fn open_rocksdb_read_only(url: &str, path: &str) -> Result<Backend, BackendError> {
    open_rocksdb(url, path).await
}

#[cfg(not(feature = "rocksdb"))]
async fn open_rocksdb(_url: &str, _path: &str) -> Result<Backend, BackendError> {
    Err(BackendError::NotCompiled {
        scheme: "rocksdb".to_string(),
        feature: "rocksdb",
    })
}
