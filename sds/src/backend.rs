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
    /// A PostgreSQL database (a schema of it; `?sds_schema=name`, default `sds`).
    #[cfg(feature = "postgres")]
    Postgres(sds_persist_postgres::PostgresPersistence),
    /// A Redis server (`redis://…`) or Cluster (`redis+cluster://host:port,…`).
    #[cfg(feature = "redis")]
    Redis(sds_persist_redis::RedisPersistence),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Backend {
    /// Opens the backend a URL names: `memory://`, `rocksdb:///path` (the directory is
    /// created if missing; `rocksdb:///path?sync=true` fsyncs every commit), `postgres://…`,
    /// `redis://…`.
    pub async fn open(url: &str) -> Result<Backend, BackendError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BackendError::InvalidUrl(url.to_string()))?;
        match scheme {
            "memory" => Ok(Backend::Memory(MemoryStore::new())),
            "rocksdb" => open_rocksdb(url, rest).await,
            "postgres" | "postgresql" => open_postgres(url).await,
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "redis+unix" => {
                open_redis(url).await
            }
            other => Err(BackendError::UnknownScheme(other.to_string())),
        }
    }

    /// Opens the backend a URL names for reading only, as `sds inspect` does: nothing is
    /// created or written. A `rocksdb://` path that holds no database is refused (never
    /// created), and the database is opened without taking its lock, so a process writing
    /// it may keep running. A `postgres://` schema is neither created nor migrated (a missing
    /// one fails the first read). `memory://` opens an empty store (an in-memory store lives only
    /// inside the process that writes it).
    pub async fn open_read_only(url: &str) -> Result<Backend, BackendError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BackendError::InvalidUrl(url.to_string()))?;
        match scheme {
            "rocksdb" => open_rocksdb_read_only(url, rest).await,
            "postgres" | "postgresql" => open_postgres_read_only(url),
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
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => true,
            #[cfg(feature = "redis")]
            Backend::Redis(_) => true,
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
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.stored_namespaces().await,
            #[cfg(feature = "redis")]
            Backend::Redis(db) => db.stored_namespaces().await,
        }
    }

    /// The persistence of one namespace (one node) in this backend.
    pub fn namespace(&self, namespace: &str) -> Arc<dyn Persistence> {
        match self {
            Backend::Memory(store) => Arc::new(store.namespace(namespace)),
            #[cfg(feature = "rocksdb")]
            Backend::RocksDb(db) => Arc::new(db.with_namespace(namespace)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => Arc::new(db.with_namespace(namespace)),
            #[cfg(feature = "redis")]
            Backend::Redis(db) => Arc::new(db.with_namespace(namespace)),
        }
    }

    /// A short human description, e.g. `rocksdb:///tmp/x`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Memory(_) => "memory://".to_string(),
            #[cfg(feature = "rocksdb")]
            Backend::RocksDb(db) => format!("rocksdb://{}", db.path().display()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.describe().to_string(),
            #[cfg(feature = "redis")]
            Backend::Redis(db) => db.describe(),
        }
    }
}

/// Splits `path?sync=true|false` (the RocksDB durability setting, default off) off a
/// `rocksdb://` URL's path; any other query is refused.
#[cfg(feature = "rocksdb")]
fn rocksdb_path_and_sync<'a>(url: &str, path: &'a str) -> Result<(&'a str, bool), BackendError> {
    let Some((path, query)) = path.split_once('?') else {
        return Ok((path, false));
    };
    match query {
        "sync=true" | "sync=on" | "sync=1" => Ok((path, true)),
        "sync=false" | "sync=off" | "sync=0" => Ok((path, false)),
        _ => Err(BackendError::Open {
            url: url.to_string(),
            message: format!(
                "unknown query {query:?}: a rocksdb URL takes only ?sync=true or ?sync=false"
            ),
        }),
    }
}

#[cfg(feature = "rocksdb")]
async fn open_rocksdb(url: &str, path: &str) -> Result<Backend, BackendError> {
    let (path, sync_writes) = rocksdb_path_and_sync(url, path)?;
    if path.is_empty() {
        return Err(BackendError::InvalidUrl(url.to_string()));
    }
    let db = sds_persist_rocksdb::RocksDbPersistence::builder(path)
        .sync_writes(sync_writes)
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

    let (path, _) = rocksdb_path_and_sync(url, path)?;
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

/// Connects to the PostgreSQL server a `postgres://` URL names and migrates its schema
/// (`?sds_schema=name`, default `sds`); the URL's other query parameters go to the driver.
#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Backend, BackendError> {
    let db = sds_persist_postgres::PostgresPersistence::builder(url)
        .connect()
        .await
        .map_err(|err| BackendError::Open {
            // The URL may hold a password: show the server without credentials.
            url: redact_password(url),
            message: error_chain(&err),
        })?;
    Ok(Backend::Postgres(db))
}

/// Connects to the Redis server or Cluster a `redis://…` / `redis+cluster://host:port,…` URL
/// names (within the backend's default connect timeout).
#[cfg(feature = "redis")]
async fn open_redis(url: &str) -> Result<Backend, BackendError> {
    let builder =
        sds_persist_redis::RedisPersistence::builder(url).map_err(|err| BackendError::Open {
            url: "the Redis URL".to_string(),
            message: err.to_string(),
        })?;
    // The URL may hold a password: show the server without it.
    let shown = builder.describe();
    let db = builder.connect().await.map_err(|err| BackendError::Open {
        url: shown,
        message: error_chain(&err),
    })?;
    Ok(Backend::Redis(db))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(url: &str) -> Result<Backend, BackendError> {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    Err(BackendError::NotCompiled {
        scheme: scheme.to_string(),
        feature: "redis",
    })
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str) -> Result<Backend, BackendError> {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    Err(BackendError::NotCompiled {
        scheme: scheme.to_string(),
        feature: "postgres",
    })
}

/// A `postgres://` backend that neither connects nor migrates until it is used, so
/// reading through it creates nothing: a schema that does not exist fails the first read.
#[cfg(feature = "postgres")]
fn open_postgres_read_only(url: &str) -> Result<Backend, BackendError> {
    let db = sds_persist_postgres::PostgresPersistence::builder(url)
        .connect_lazy()
        .map_err(|err| BackendError::Open {
            url: redact_password(url),
            message: error_chain(&err),
        })?;
    Ok(Backend::Postgres(db))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres_read_only(url: &str) -> Result<Backend, BackendError> {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    Err(BackendError::NotCompiled {
        scheme: scheme.to_string(),
        feature: "postgres",
    })
}

/// `scheme://user:password@host…` without the password (PostgreSQL and Redis URLs may carry
/// one), for messages and logs.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

/// An error and its sources, on one line. A source whose text the line already ends with
/// (an error that prints its source itself) is not repeated.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let next_text = next.to_string();
        if !text.ends_with(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        source = next.source();
    }
    text
}
