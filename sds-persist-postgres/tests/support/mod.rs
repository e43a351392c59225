//! What the tests share: the server's URL, the test schema, a harness.

#![allow(dead_code)]

pub mod manager;

use std::time::Duration;

use sds_persist_postgres::conformance::PostgresHarness;
use sds_persist_postgres::{PostgresBuilder, PostgresPersistence};

/// The schema every test of this crate uses (fresh namespaces keep tests apart).
pub const SCHEMA: &str = "sds_test";

/// `SDS_TEST_POSTGRES_URL`; without it, a container with the `testcontainers` feature, the
/// local server otherwise.
pub fn url() -> String {
    if let Ok(url) = std::env::var("SDS_TEST_POSTGRES_URL") {
        return url;
    }
    #[cfg(feature = "testcontainers")]
    return sds_persist_postgres::container::container_url()
        .unwrap_or_else(|err| panic!("no SDS_TEST_POSTGRES_URL and no container: {err}"));
    #[cfg(not(feature = "testcontainers"))]
    "postgres://postgres@127.0.0.1:5432/test".to_owned()
}

/// The builder the tests start from: the test schema, a small pool, short timeouts.
pub fn builder() -> PostgresBuilder {
    PostgresPersistence::builder(&url())
        .schema(SCHEMA)
        .max_connections(6)
        .connect_timeout(Duration::from_secs(5))
        .statement_timeout(Duration::from_secs(10))
}

/// Fails the test (in CI and outside it) when the server cannot be reached: a backend test
/// that did not talk to the server proves nothing.
fn unreachable(err: impl std::fmt::Display) -> ! {
    panic!(
        "PostgreSQL at {} is unreachable ({err}); start it or set SDS_TEST_POSTGRES_URL",
        url()
    )
}

/// A harness on the test schema.
pub async fn harness() -> PostgresHarness {
    PostgresHarness::connect(builder())
        .await
        .unwrap_or_else(|err| unreachable(sds_persist_conformance::chain(&err)))
}

/// A backend on the test schema in a namespace of its own.
pub async fn backend(prefix: &str) -> PostgresPersistence {
    let backend = builder()
        .namespace(sds_persist_postgres::conformance::unique_namespace(prefix))
        .connect()
        .await
        .unwrap_or_else(|err| unreachable(sds_persist_conformance::chain(&err)));
    backend
        .install_test_faults()
        .await
        .unwrap_or_else(|err| unreachable(err));
    backend
}
