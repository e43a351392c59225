//! A Redis server restart under a live reliability manager: the test starts its own
//! `redis-server` with AOF (`appendfsync always`), a manager writes through it, the server
//! is killed (SIGKILL) and started again while the manager keeps working. Every operation
//! succeeds for the caller, and afterwards the stored state equals the manager's memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use sds_core::persistence::Persistence;
use sds_core::persistence::memory::MemoryStore;
use sds_core::{ManualClock, ReliabilityConfig, ReliabilityManager};
use sds_persist_redis::RedisPersistence;
use support::RedisServer;

const CH: &str = "room";
const START_MS: i64 = 1_700_000_000_000;
const STEPS: usize = 60;
const KILL_AT: usize = 20;
const RESTART_AT: usize = 40;

fn config() -> ReliabilityConfig {
    ReliabilityConfig {
        bloom_capacity: 200,
        max_message_history: 50,
        ..ReliabilityConfig::default()
    }
}

async fn redis_backend(url: &str) -> RedisPersistence {
    RedisPersistence::builder(url)
        .unwrap()
        .namespace("bob")
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_a_live_manager_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(
        dir.path(),
        &["--appendonly", "yes", "--appendfsync", "always"],
    );
    let backend = redis_backend(&server.url()).await;
    assert!(
        backend.capabilities().durable_on_ack,
        "AOF with appendfsync always is declared durable on acknowledge"
    );

    let (alice, _alice_events) = ReliabilityManager::builder("alice")
        .config(config())
        .persistence(Arc::new(MemoryStore::new().namespace("alice")))
        .start()
        .await
        .unwrap();
    let clock = ManualClock::new(START_MS);
    let (bob, _bob_events) = ReliabilityManager::builder("bob")
        .config(config())
        .persistence(Arc::new(backend))
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    alice.join_channel(CH).await.unwrap();
    bob.join_channel(CH).await.unwrap();
    let backoff = i64::try_from(config().commit_retry_max_ms).unwrap();

    let mut failed_while_down = 0;
    for step in 0..STEPS {
        if step == KILL_AT {
            server.kill();
        }
        if step == RESTART_AT {
            server.restart();
        }
        // Let the manager's commit retry backoff pass, so every step tries to write.
        clock.advance(backoff);
        let from_alice = alice
            .wrap_outgoing(CH, format!("a{step:03}"), b"from alice".to_vec())
            .await
            .unwrap();
        bob.unwrap_received(&from_alice)
            .await
            .unwrap_or_else(|err| panic!("step {step}: receive failed for the caller: {err}"));
        bob.wrap_outgoing(CH, format!("b{step:03}"), b"from bob".to_vec())
            .await
            .unwrap_or_else(|err| panic!("step {step}: send failed for the caller: {err}"));
        if (KILL_AT..RESTART_AT).contains(&step)
            && bob.channel_state(CH).await.unwrap().pending_history > 0
        {
            failed_while_down += 1;
        }
    }
    assert!(
        failed_while_down > 0,
        "set-up: the manager never had to queue while the server was down"
    );

    // One more operation after the backoff writes whatever is still queued.
    clock.advance(backoff);
    bob.mark_dependencies_met(CH, &[]).await.unwrap();
    let state = bob.channel_state(CH).await.unwrap();
    assert_eq!(
        state.pending_history, 0,
        "the queue drained after the restart"
    );

    // A new connection, as a restarted process would make, reads what the manager holds.
    let stored = redis_backend(&server.url())
        .await
        .load_channel(CH)
        .await
        .unwrap();
    let stored_log: Vec<String> = stored
        .history
        .iter()
        .map(|m| m.message_id().to_owned())
        .collect();
    assert_eq!(
        stored_log, state.log,
        "stored history equals the manager's log"
    );
    let meta = stored.meta.unwrap();
    assert_eq!(meta.lamport, state.lamport, "stored Lamport clock");
    let stored_outgoing: Vec<String> = meta
        .outgoing
        .iter()
        .map(|entry| entry.decode_message().unwrap().message_id)
        .collect();
    assert_eq!(stored_outgoing, state.outgoing, "stored outgoing buffer");
    assert!(meta.incoming.is_empty() && state.incoming.is_empty());
    assert_eq!(state.log.len(), 50, "the log is full (max_message_history)");
}
