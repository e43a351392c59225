//! Shared setup for the criterion benchmarks in `benches/`: the workloads themselves live in
//! the `sds` crate ([`sds::bench`]), so `cargo bench -p sds-benches` and `sds bench` measure
//! the same thing. This adds the list of backends to run, by URL.
//!
//! Run with `cargo bench -p sds-benches`. PostgreSQL and Redis join the run when
//! `SDS_BENCH_POSTGRES_URL` / `SDS_BENCH_REDIS_URL` (or the test variables
//! `SDS_TEST_POSTGRES_URL` / `SDS_TEST_REDIS_URL`) name a server their backend opens;
//! otherwise they are left out, with a line on stderr saying why.

pub mod protocol;

use std::sync::Arc;

use sds::Backend;
use sds::bench::baseline::RawBaseline;
use sds_core::Persistence;

pub use sds::bench::workloads::{
    PAYLOADS, PROFILES, RawCommit, SnapshotProfile, delivery_batch, fill_batch, logged_message,
    message_id, snapshot,
};

/// A backend under test, with its raw baseline.
pub struct Subject {
    /// Short name for the benchmark ids (`memory`, `rocksdb`, `rocksdb-fsync`, …).
    pub name: &'static str,
    /// The opened backend; each participant gets a namespace of it.
    pub backend: Backend,
    /// The same bytes through the store's own client.
    pub raw: RawBaseline,
    // A RocksDB database lives in a temporary directory that goes with the subject.
    _dir: Option<tempfile::TempDir>,
}

impl Subject {
    /// The persistence of namespace `namespace`.
    pub fn namespace(&self, namespace: &str) -> Arc<dyn Persistence> {
        self.backend.namespace(namespace)
    }
}

/// The URL of a server from the first of `variables` that is set, else `default`.
fn server_url(variables: &[&str], default: &str) -> String {
    variables
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .unwrap_or_else(|| default.to_string())
}

/// Every backend that opens here: memory, RocksDB without and with fsync, and PostgreSQL and
/// Redis when their backend has landed and their server answers.
pub async fn subjects() -> Vec<Subject> {
    let mut subjects = Vec::new();
    let mut candidates: Vec<(&'static str, String, Option<tempfile::TempDir>)> =
        vec![("memory", "memory://".to_string(), None)];
    for (name, sync) in [("rocksdb", false), ("rocksdb-fsync", true)] {
        match tempfile::tempdir() {
            Ok(dir) => {
                let url = format!("rocksdb://{}/db?sync={sync}", dir.path().display());
                candidates.push((name, url, Some(dir)));
            }
            Err(err) => eprintln!("{name}: left out, no temporary directory: {err}"),
        }
    }
    candidates.push((
        "postgres",
        server_url(
            &["SDS_BENCH_POSTGRES_URL", "SDS_TEST_POSTGRES_URL"],
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        None,
    ));
    candidates.push((
        "redis",
        server_url(
            &["SDS_BENCH_REDIS_URL", "SDS_TEST_REDIS_URL"],
            "redis://127.0.0.1:6379",
        ),
        None,
    ));
    for (index, (name, url, dir)) in candidates.into_iter().enumerate() {
        let backend = match Backend::open(&url).await {
            Ok(backend) => backend,
            Err(err) => {
                eprintln!("{name}: left out (not landed or unreachable): {err}");
                continue;
            }
        };
        match RawBaseline::open(&url, &format!("criterion-{}-{index}", std::process::id())).await {
            Ok(raw) => subjects.push(Subject {
                name,
                backend,
                raw,
                _dir: dir,
            }),
            Err(err) => eprintln!("{name}: left out, its raw baseline failed: {err}"),
        }
    }
    subjects
}
