//! Running the conformance suite against a backend chosen by URL.

use sds_persist_conformance::{MemoryHarness, SuiteReport, run_suite};

use crate::BackendError;

/// Runs every case against the backend `url` names and returns the report; a backend that
/// is not compiled in or cannot be opened is an error, never a pass.
pub async fn run_url(url: &str) -> Result<SuiteReport, BackendError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| BackendError::InvalidUrl(url.to_string()))?;
    match scheme {
        "memory" => Ok(run_suite(&MemoryHarness::new()).await),
        "rocksdb" => run_rocksdb(url, rest).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => run_postgres(url).await,
        #[cfg(feature = "redis")]
        "redis" | "rediss" | "redis+cluster" => run_redis(url).await,
        // Anything else: let the opener say why it cannot be used.
        _ => match crate::Backend::open(url).await {
            Err(err) => Err(err),
            Ok(backend) => Err(BackendError::Open {
                url: url.to_string(),
                message: format!("no conformance harness for {}", backend.describe()),
            }),
        },
    }
}

#[cfg(feature = "rocksdb")]
async fn run_rocksdb(url: &str, path: &str) -> Result<SuiteReport, BackendError> {
    if path.is_empty() {
        return Err(BackendError::InvalidUrl(url.to_string()));
    }
    let harness = sds_persist_rocksdb::conformance::RocksDbHarness::open(path).map_err(|err| {
        BackendError::Open {
            url: url.to_string(),
            message: err.to_string(),
        }
    })?;
    Ok(run_suite(&harness).await)
}

#[cfg(not(feature = "rocksdb"))]
async fn run_rocksdb(_url: &str, _path: &str) -> Result<SuiteReport, BackendError> {
    Err(BackendError::NotCompiled {
        scheme: "rocksdb".to_string(),
        feature: "rocksdb",
    })
}

/// Runs the suite on the server the URL names, each case in a fresh namespace of its schema
/// (the harness installs its fault trigger there; cases clean up their rows).
#[cfg(feature = "postgres")]
async fn run_postgres(url: &str) -> Result<SuiteReport, BackendError> {
    let open_error = |message: String| BackendError::Open {
        url: crate::backend::redact_password(url),
        message,
    };
    let builder = sds_persist_postgres::PostgresPersistence::builder(url);
    let harness = sds_persist_postgres::conformance::PostgresHarness::connect(builder)
        .await
        .map_err(|err| open_error(crate::backend::error_chain(&err)))?;
    Ok(run_suite(&harness).await)
}

/// Runs the suite on the Redis server or Cluster the URL names, each case in a fresh
/// namespace.
#[cfg(feature = "redis")]
async fn run_redis(url: &str) -> Result<SuiteReport, BackendError> {
    let harness = sds_persist_redis::conformance::RedisHarness::connect(url)
        .await
        .map_err(|err| BackendError::Open {
            url: crate::backend::redact_password(url),
            message: crate::backend::error_chain(&err),
        })?;
    Ok(run_suite(&harness).await)
}
