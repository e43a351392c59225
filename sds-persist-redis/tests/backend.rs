//! What the conformance suite cannot see from outside: scripts that refuse a batch write
//! nothing, a large channel drops in one call, a silent server fails in bounded time, and
//! the durability declaration follows the server's settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use sds_codec::storage::{ChannelMeta, HistoryUpdate, LoggedMessage};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::{Persistence, PersistenceErrorKind};
use sds_persist_redis::{RedisPersistence, SlotScope};

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("backend-test-{what}-{}-{nanos:x}", std::process::id())
}

async fn backend(namespace: &str) -> RedisPersistence {
    let url = support::redis_url();
    support::require_shared_server(&url).await;
    RedisPersistence::builder(&url)
        .unwrap()
        .namespace(namespace)
        .connect()
        .await
        .unwrap()
}

async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn logged(id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            message_id: id.to_owned(),
            channel_id: "c".to_owned(),
            lamport_timestamp: Some(lamport),
            content: Some(vec![b'x'; 64]),
            ..Default::default()
        }),
        retrieval_hint: None,
    }
}

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_script_refuses_writes_nothing() {
    let namespace = unique("refused");
    let store = backend(&namespace).await;
    let update = HistoryUpdate {
        append: vec![logged("a", 1), logged("b", 2)],
        evict: vec![],
    };
    store
        .commit("ch", Some(&meta(1)), Some(&update))
        .await
        .unwrap();
    // A stored row too short to hold its Lamport prefix: the script finds it while
    // validating, after having staged nothing.
    let keys = sds_persist_redis::channel_keys_for_tests(SlotScope::default(), &namespace, "ch");
    let mut raw = raw_connection().await;
    raw.hset::<_, _, _, ()>(&keys[1], "z", "bad").await.unwrap();

    let next = HistoryUpdate {
        append: vec![logged("c", 3), logged("z", 4)],
        evict: vec!["a".to_owned()],
    };
    let err = store
        .commit("ch", Some(&meta(9)), Some(&next))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt, "{err}");
    // Nothing of the refused commit landed: old snapshot, old order index, "a" kept.
    let order: Vec<Vec<u8>> = raw.zrange(&keys[2], 0, -1).await.unwrap();
    assert_eq!(order.len(), 2);
    raw.hdel::<_, _, ()>(&keys[1], "z").await.unwrap();
    let loaded = store.load_channel("ch").await.unwrap();
    assert_eq!(loaded.meta.unwrap().lamport, 1);
    let ids: Vec<&str> = loaded.history.iter().map(|m| m.message_id()).collect();
    assert_eq!(ids, ["a", "b"]);
    store.drop_channel("ch").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_channel_drops_in_one_call_and_leaves_no_key() {
    let namespace = unique("large");
    let store = backend(&namespace).await;
    for part in 0..5u64 {
        let update = HistoryUpdate {
            append: (0..1_000)
                .map(|i| logged(&format!("m{part}-{i:04}"), part * 1_000 + i))
                .collect(),
            evict: vec![],
        };
        store
            .commit("big", Some(&meta(part)), Some(&update))
            .await
            .unwrap();
    }
    assert_eq!(
        store.load_channel("big").await.unwrap().history.len(),
        5_000
    );
    store.drop_channel("big").await.unwrap();
    let keys = sds_persist_redis::channel_keys_for_tests(SlotScope::default(), &namespace, "big");
    let mut raw = raw_connection().await;
    let left: usize = raw.exists(&keys).await.unwrap();
    assert_eq!(left, 0);
    assert!(store.list_channels().await.unwrap().is_empty());
    assert!(store.load_channel("big").await.unwrap().history.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_fails_as_unavailable_within_the_deadline() {
    // Accepts connections (the kernel's backlog does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let store = RedisPersistence::builder(&url)
        .unwrap()
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .connect_lazy()
        .unwrap();
    // The outer bound only turns a hang into a failure; the backend's own deadline is
    // what answers.
    let answer = tokio::time::timeout(Duration::from_secs(30), store.load_channel("ch"))
        .await
        .expect("the backend gave up by itself");
    assert_eq!(
        answer.unwrap_err().kind(),
        PersistenceErrorKind::Unavailable
    );
    let write = tokio::time::timeout(
        Duration::from_secs(30),
        store.save_channel_meta("ch", &meta(1)),
    )
    .await
    .expect("the backend gave up by itself");
    assert_eq!(write.unwrap_err().kind(), PersistenceErrorKind::Unavailable);
    // Connecting eagerly reports it too.
    let eager = RedisPersistence::builder(&url)
        .unwrap()
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await;
    assert!(eager.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_follows_the_server_or_the_declaration() {
    let namespace = unique("durability");
    let store = backend(&namespace).await;
    let mut raw = raw_connection().await;
    let config: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .arg("appendfsync")
        .query_async(&mut raw)
        .await
        .unwrap();
    let fsync_always = config.get("appendonly").map(String::as_str) == Some("yes")
        && config.get("appendfsync").map(String::as_str) == Some("always");
    let caps = store.capabilities();
    assert_eq!(caps.durable_on_ack, fsync_always);
    assert!(caps.atomic_commit && caps.persistent && caps.list_channels && caps.fencing);
    let declared = RedisPersistence::builder(&support::redis_url())
        .unwrap()
        .durable_on_ack(true)
        .connect()
        .await
        .unwrap();
    assert!(declared.capabilities().durable_on_ack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_namespaces_lists_this_namespace() {
    let namespace = unique("inventory");
    let store = backend(&namespace).await;
    store.save_channel_meta("b", &meta(1)).await.unwrap();
    let update = HistoryUpdate {
        append: vec![logged("x", 1)],
        evict: vec![],
    };
    store.update_history("a", &update).await.unwrap();
    let found = store.stored_namespaces().await.unwrap();
    assert_eq!(
        found.get(&namespace),
        Some(&vec!["a".to_owned(), "b".to_owned()])
    );
    for channel in ["a", "b"] {
        store.drop_channel(channel).await.unwrap();
    }
    assert_eq!(
        store.stored_namespaces().await.unwrap().get(&namespace),
        None
    );
}
