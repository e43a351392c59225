//! The conformance suite again, twice (a slot per channel, the default, and a slot per
//! namespace), against a three-primary Redis Cluster this test binary starts on free
//! loopback ports (and stops when it exits), plus a check that every key of a channel
//! hashes to one slot whatever its namespace and id hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::OnceLock;

use sds_codec::storage::{ChannelMeta, HistoryUpdate, LoggedMessage};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::Persistence;
use sds_persist_redis::conformance::RedisHarness;
use sds_persist_redis::{RedisPersistence, SlotScope};
use support::RedisCluster;

/// One Cluster for every test of this binary.
fn cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

async fn harness() -> RedisHarness {
    let url = cluster().url();
    RedisHarness::connect(&url)
        .await
        .expect("connect the conformance harness to the cluster")
}

/// Each channel on a slot of its own (opt-in): no writer fence, so the fence cases are
/// reported not run.
async fn channel_slot_harness() -> RedisHarness {
    let builder = RedisPersistence::builder(&cluster().url())
        .unwrap()
        .slot_scope(SlotScope::Channel);
    RedisHarness::over(builder)
        .await
        .expect("connect the conformance harness to the cluster")
}

/// The default: every key of a namespace on one slot, so the fence and the channel list
/// are atomic with every write, as on one server.
mod conformance {
    sds_persist_conformance::conformance_tests!(super::harness().await);
}

mod conformance_channel_slot {
    sds_persist_conformance::conformance_tests!(super::channel_slot_harness().await);
}

/// Namespaces and channel ids that would move keys to another slot, or make two channels
/// share keys, under a naive `{namespace:channel}` tag.
const TRICKY: [(&str, &str); 10] = [
    ("ns", "plain"),
    ("ns", "{"),
    ("ns", "}"),
    ("ns", "{x}"),
    ("ns", "}{"),
    ("ns:a", "b"),
    ("ns", "a:b"),
    ("ns\0", "c"),
    ("ns", "\0c"),
    ("{ns}", ""),
];

fn logged(id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            message_id: id.to_owned(),
            channel_id: "c".to_owned(),
            lamport_timestamp: Some(lamport),
            content: Some(b"body".to_vec()),
            ..Default::default()
        }),
        retrieval_hint: Some(b"hint".to_vec()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_keys_hash_to_one_slot_and_never_collide() {
    let cluster = cluster();
    for scope in [SlotScope::Namespace, SlotScope::Channel] {
        let mut seen = HashSet::new();
        let mut slots = HashSet::new();
        for (namespace, channel) in TRICKY {
            let keys = sds_persist_redis::channel_keys_for_tests(scope, namespace, channel);
            let slot = cluster.slot_of(&keys[0]);
            for key in &keys {
                assert_eq!(
                    cluster.slot_of(key),
                    slot,
                    "{scope:?}: a key of {namespace:?}/{channel:?} is on another slot"
                );
                assert!(
                    seen.insert(key.clone()),
                    "{scope:?}: {namespace:?}/{channel:?} shares a key"
                );
            }
            slots.insert(slot);
        }
        // Hashing the ids spreads them: every tricky namespace (or channel) on one slot
        // would mean the tag ignores them.
        assert!(
            slots.len() > 1,
            "{scope:?}: every tricky channel on one slot: {slots:?}"
        );

        // And the scripts run: a cross-slot key would fail them with CROSSSLOT.
        let base = RedisPersistence::builder(&cluster.url())
            .unwrap()
            .slot_scope(scope)
            .connect()
            .await
            .unwrap();
        for (namespace, channel) in TRICKY {
            let backend = base.with_namespace(format!("slot-check-{scope:?}-{namespace}"));
            let meta = ChannelMeta {
                lamport: 7,
                ..ChannelMeta::empty()
            };
            let update = HistoryUpdate {
                append: vec![logged("m1", 3), logged("m0", 3)],
                evict: vec![],
            };
            backend
                .commit(channel, Some(&meta), Some(&update))
                .await
                .unwrap();
            let loaded = backend.load_channel(channel).await.unwrap();
            assert_eq!(loaded.meta.unwrap().lamport, 7);
            let ids: Vec<&str> = loaded.history.iter().map(|m| m.message_id()).collect();
            assert_eq!(ids, ["m0", "m1"]);
            let listed = backend.list_channels().await.unwrap();
            assert!(
                listed.contains(&channel.to_owned()),
                "{scope:?}: {listed:?}"
            );
            backend.drop_channel(channel).await.unwrap();
            let listed = backend.list_channels().await.unwrap();
            assert!(
                !listed.contains(&channel.to_owned()),
                "{scope:?}: {listed:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_namespaces_scans_every_primary() {
    let cluster = cluster();
    let base = RedisPersistence::builder(&cluster.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let namespace = format!("inventory-{}", std::process::id());
    let backend = base.with_namespace(namespace.clone());
    let meta = ChannelMeta::empty();
    // Enough channels that all three primaries hold some.
    let channels: Vec<String> = (0..30).map(|i| format!("ch-{i:02}")).collect();
    for channel in &channels {
        backend.save_channel_meta(channel, &meta).await.unwrap();
    }
    let found = base.stored_namespaces().await.unwrap();
    assert_eq!(found.get(&namespace), Some(&channels));
    for channel in &channels {
        backend.drop_channel(channel).await.unwrap();
    }
    assert_eq!(
        base.stored_namespaces().await.unwrap().get(&namespace),
        None
    );
}
