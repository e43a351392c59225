//! The whole persistence conformance suite against the RocksDB backend, one test per case,
//! each on its own database in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_persist_rocksdb::RocksDbPersistence;
use sds_persist_rocksdb::conformance::RocksDbHarness;

async fn harness() -> RocksDbHarness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = RocksDbPersistence::builder(dir.path().join("db"))
        .namespace("harness")
        .open_async()
        .await
        .expect("open the test database");
    RocksDbHarness::over(db).with_guard(dir)
}

sds_persist_conformance::conformance_tests!(harness().await);
