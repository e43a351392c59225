//! The embedded migrations on the real server: concurrent first runs and later reruns are
//! harmless, schema names are validated before any SQL is sent, and schemas are independent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::Persistence;
use sds_persist_postgres::{PostgresError, PostgresPersistence};
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_repeated_migrations_are_harmless() {
    let schema = format!(
        "sds_migrate_{}",
        sds_persist_postgres::conformance::unique_namespace("x").replace('-', "_")
    );
    let mut connects = JoinSet::new();
    for node in 0..4 {
        let builder = support::builder()
            .schema(schema.clone())
            .namespace(format!("node-{node}"));
        connects.spawn(async move { builder.connect().await });
    }
    let mut backends = Vec::new();
    while let Some(connected) = connects.join_next().await {
        backends.push(
            connected
                .unwrap()
                .expect("every concurrent first run succeeds"),
        );
    }
    // And once more, on the migrated schema.
    let again = support::builder()
        .schema(schema.clone())
        .namespace("node-0")
        .connect()
        .await
        .expect("a rerun finds everything applied");
    let meta = ChannelMeta {
        lamport: 7,
        ..ChannelMeta::empty()
    };
    again.commit("ch", Some(&meta), None).await.unwrap();
    for backend in &backends {
        let expected = if backend.namespace() == "node-0" {
            Some(meta.clone())
        } else {
            Some(ChannelMeta::empty())
        };
        assert_eq!(backend.load_channel("ch").await.unwrap().meta, expected);
    }
    // The same namespace in the shared test schema is another namespace altogether.
    let other_schema = support::builder()
        .namespace("node-0")
        .connect()
        .await
        .unwrap();
    assert!(other_schema.list_channels().await.is_ok());
    again.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schema_names_are_refused_before_connecting() {
    for bad in ["Public", "x; DROP TABLE y", "\"q\"", "", "pg_catalog"] {
        let err = PostgresPersistence::builder(&support::url())
            .schema(bad)
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(err, PostgresError::InvalidSchema { .. }),
            "{bad}: {err}"
        );
    }
    let err =
        PostgresPersistence::builder("postgres://postgres@127.0.0.1:5432/test?sds_schema=Bad")
            .connect_lazy()
            .unwrap_err();
    assert!(matches!(err, PostgresError::InvalidSchema { .. }), "{err}");
}
