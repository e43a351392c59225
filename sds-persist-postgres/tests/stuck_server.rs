//! A server that stops answering: a session holding a lock on the snapshot row makes
//! commits wait. They time out as failed writes (never a hang), and succeed once the lock
//! goes; a server that accepts connections but never answers fails operations as
//! Unavailable within the configured bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use sds_codec::storage::ChannelMeta;
use sds_core::ReliabilityConfig;
use sds_core::persistence::{Persistence, PersistenceErrorKind};
use sds_persist_postgres::PostgresPersistence;
use sqlx::{Connection, PgConnection};
use support::manager::Node;

/// Opens a transaction on `admin` holding the row lock of `channel`'s snapshot.
async fn lock_snapshot_row(admin: &mut PgConnection, namespace: &str, channel: &str) {
    sqlx::query("BEGIN").execute(&mut *admin).await.unwrap();
    let locked: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM {}.channel_meta WHERE namespace = $1 AND channel = $2 FOR UPDATE",
        support::SCHEMA
    ))
    .bind(namespace.as_bytes())
    .bind(channel.as_bytes())
    .fetch_all(&mut *admin)
    .await
    .unwrap();
    assert_eq!(locked, [1], "the snapshot row exists and is locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_behind_a_row_lock_fail_then_land_once_it_goes() {
    // The server-side timeout is far longer than the manager's: the manager gives up first,
    // and the abandoned commits are still waiting on the lock when it is released.
    let backend = support::builder()
        .statement_timeout(Duration::from_secs(60))
        .namespace(sds_persist_postgres::conformance::unique_namespace("stuck"))
        .connect()
        .await
        .unwrap();
    let config = ReliabilityConfig {
        bloom_capacity: 200,
        commit_timeout_ms: Some(1_500),
        ..ReliabilityConfig::default()
    };
    let mut node = Node::start(Arc::new(backend.clone()), config).await;
    let ch = "room";
    node.manager.join_channel(ch).await.unwrap();
    node.send(ch, "m0").await;
    assert_eq!(node.persistence_events(), (0, 0));

    let mut admin = PgConnection::connect(&support::url()).await.unwrap();
    lock_snapshot_row(&mut admin, backend.namespace(), ch).await;
    node.send(ch, "m1").await;
    assert_eq!(
        node.persistence_events(),
        (1, 0),
        "the blocked commit failed"
    );
    // Past the backoff the next operation tries again, and fails again while locked.
    node.flush(ch).await;
    node.send(ch, "m2").await;
    let (degraded, recovered) = node.persistence_events();
    assert_eq!(recovered, 0);
    let _ = degraded;
    let stored = backend.load_channel(ch).await.unwrap();
    assert_eq!(
        stored.history.len(),
        1,
        "only m0 is stored while the lock is held"
    );

    sqlx::query("ROLLBACK").execute(&mut admin).await.unwrap();
    node.flush(ch).await;
    assert_eq!(node.persistence_events().1, 1, "persistence recovered");
    node.assert_stored_equals_memory(&backend, ch).await;
    assert_eq!(
        node.manager.channel_state(ch).await.unwrap().log,
        ["m0", "m1", "m2"]
    );
    backend.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_timeout_ends_a_commit_stuck_on_a_lock() {
    let backend = support::builder()
        .statement_timeout(Duration::from_millis(500))
        .namespace(sds_persist_postgres::conformance::unique_namespace(
            "stuck-direct",
        ))
        .connect()
        .await
        .unwrap();
    let meta = |lamport| ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    };
    backend.commit("ch", Some(&meta(1)), None).await.unwrap();
    let mut admin = PgConnection::connect(&support::url()).await.unwrap();
    lock_snapshot_row(&mut admin, backend.namespace(), "ch").await;
    let err = backend
        .commit("ch", Some(&meta(2)), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PersistenceErrorKind::Unavailable, "{err}");
    // Reads do not wait for row locks.
    assert_eq!(
        backend.load_channel("ch").await.unwrap().meta,
        Some(meta(1))
    );
    sqlx::query("ROLLBACK").execute(&mut admin).await.unwrap();
    backend.commit("ch", Some(&meta(2)), None).await.unwrap();
    assert_eq!(
        backend.load_channel("ch").await.unwrap().meta,
        Some(meta(2))
    );
    backend.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_operations_as_unavailable() {
    // Accepts connections and never says a word: the driver's startup waits for an answer
    // that never comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let backend =
        PostgresPersistence::builder(&format!("postgres://postgres@127.0.0.1:{port}/test"))
            .connect_timeout(Duration::from_millis(300))
            .statement_timeout(Duration::from_millis(300))
            .connect_lazy()
            .unwrap();
    let meta = ChannelMeta::empty();
    for outcome in [
        backend.commit("ch", Some(&meta), None).await.map(|_| ()),
        backend.load_channel("ch").await.map(|_| ()),
        backend.claim_writer().await.map(|_| ()),
        backend.list_channels().await.map(|_| ()),
    ] {
        let err = outcome.unwrap_err();
        assert_eq!(err.kind(), PersistenceErrorKind::Unavailable, "{err}");
    }
    // Connecting with migrations fails with a typed error too.
    let err = PostgresPersistence::builder(&format!("postgres://postgres@127.0.0.1:{port}/test"))
        .connect_timeout(Duration::from_millis(300))
        .statement_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, sds_persist_postgres::PostgresError::Connect { .. }),
        "{err}"
    );
    silent.abort();
}
