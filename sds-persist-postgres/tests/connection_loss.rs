//! Connection loss under a live manager: the server terminates the backend's sessions
//! (`pg_terminate_backend`) between and during the manager's writes. No operation fails for
//! the caller, the pool reconnects, and the stored state ends equal to the manager's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use sds_core::ReliabilityConfig;
use sds_persist_postgres::conformance::unique_namespace;
use sqlx::{Connection, PgConnection};
use support::manager::Node;

/// Terminates every session of the pool whose `application_name` is `app`; returns how
/// many it terminated.
async fn terminate(admin: &mut PgConnection, app: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
         FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(app)
    .fetch_one(admin)
    .await
    .expect("terminate the backend's sessions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_sessions_under_a_live_manager() {
    let app = unique_namespace("killed");
    let backend = support::builder()
        .application_name(app.clone())
        .namespace(app.clone())
        .connect()
        .await
        .expect("connect");
    let mut admin = PgConnection::connect(&support::url()).await.unwrap();
    let config = ReliabilityConfig {
        bloom_capacity: 200,
        ..ReliabilityConfig::default()
    };
    let node = Node::start(Arc::new(backend.clone()), config).await;
    let ch = "room";
    node.manager.join_channel(ch).await.unwrap();

    let mut terminated = 0;
    for i in 0..60 {
        let id = format!("m{i:03}");
        match i % 6 {
            // Between writes: the pool's idle connections are dead when the next write
            // takes one.
            0 => {
                terminated += terminate(&mut admin, &app).await;
                node.send(ch, &id).await;
            }
            // During a write: the session may die before, during or after the commit.
            3 => {
                let (killed, ()) = tokio::join!(terminate(&mut admin, &app), node.send(ch, &id));
                terminated += killed;
            }
            _ => node.send(ch, &id).await,
        }
    }
    assert!(terminated > 0, "no session was ever terminated");
    // Whatever failed was queued; once the backoff passes the queue is written.
    node.flush(ch).await;
    node.assert_stored_equals_memory(&backend, ch).await;
    assert_eq!(node.manager.channel_state(ch).await.unwrap().log.len(), 60);

    // The pool recovered: it serves new writes and reads on fresh sessions.
    terminate(&mut admin, &app).await;
    node.send(ch, "after").await;
    node.assert_stored_equals_memory(&backend, ch).await;
    backend.delete_namespace().await.unwrap();
}
