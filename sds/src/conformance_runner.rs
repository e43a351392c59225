//! Running the conformance suite against a backend chosen by URL.

use sds_persist_conformance::{MemoryHarness, SuiteReport, run_suite};

use crate::BackendError;

/// Runs every case against the backend `url` names and returns the report; a backend that
/// is not compiled in, not landed yet or cannot be opened is an error, never a pass.
pub async fn run_url(url: &str) -> Result<SuiteReport, BackendError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| BackendError::InvalidUrl(url.to_string()))?;
    match scheme {
        "memory" => Ok(run_suite(&MemoryHarness::new()).await),
        "rocksdb" => run_rocksdb(url, rest).await,
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
