//! Concurrent use of one manager: operations are atomic per channel (nothing lost or
//! duplicated under contention) and channels do not wait for each other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sds_core::codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_core::persistence::fault::Operation;
use sds_core::persistence::memory::MemoryPersistence;
use sds_core::{
    Event, ManualClock, Persistence, PersistenceError, ReliabilityConfig, ReliabilityManager,
    UnwrapStatus,
};
use support::{Peer, START_MS, new_store, stored_history, test_config};
use tokio::sync::Notify;
use tokio::time::timeout;

const CHANNELS: [&str; 3] = ["alpha", "beta", "gamma"];
const TASKS: usize = 8;
const PER_TASK: usize = 50;

/// Larger than the test default so ~270 ids per channel stay far below the filter's
/// capacity (a false positive would only reorder delivery, but keep the run clean).
fn config() -> ReliabilityConfig {
    ReliabilityConfig {
        bloom_capacity: 2_000,
        ..test_config()
    }
}

fn channel_of(task: usize, step: usize) -> &'static str {
    CHANNELS[(task + step) % CHANNELS.len()]
}

// Eight tasks on a multi-threaded runtime hammer one manager over three channels: each
// wraps 50 messages of its own and unwraps two remote peers' messages (one peer in order,
// the other in reverse order, so messages are buffered and cascade-delivered while other
// tasks work), while a ninth task runs the sweeps. Every channel ends with exactly the
// expected ids, each remote message delivered exactly once, nothing left buffered, one
// commit per operation that changed state, and the store's history equal to the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_lose_and_duplicate_nothing() {
    let store = new_store();
    let mut hub = Peer::with("hub", config(), store.clone(), ManualClock::new(START_MS));

    // Remote peers' messages, produced up front: peer p's step j goes to channel_of(p, j)
    // and carries p's earlier messages on that channel as causal history.
    let mut remote: Vec<Vec<Vec<u8>>> = Vec::new();
    for peer in 0..TASKS {
        let sender = Peer::with_config(&format!("peer{peer}"), config());
        let mut bytes = Vec::new();
        for step in 0..PER_TASK {
            bytes.push(
                sender
                    .send(channel_of(peer, step), &format!("p{peer}-{step}"))
                    .await,
            );
        }
        remote.push(bytes);
    }
    let remote = Arc::new(remote);
    for channel in CHANNELS {
        hub.manager.join_channel(channel).await.unwrap();
    }

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let manager = hub.manager.clone();
        let remote = remote.clone();
        tasks.push(tokio::spawn(async move {
            let neighbour = (task + 1) % TASKS;
            let mut statuses = Vec::new();
            for step in 0..PER_TASK {
                manager
                    .wrap_outgoing(
                        channel_of(task, step),
                        format!("hub-{task}-{step}"),
                        format!("hub content {task} {step}").into_bytes(),
                    )
                    .await
                    .expect("wrap succeeds");
                for bytes in [&remote[task][step], &remote[neighbour][PER_TASK - 1 - step]] {
                    let outcome = manager.unwrap_received(bytes).await.expect("unwrap");
                    statuses.push(outcome.status);
                }
            }
            statuses
        }));
    }
    let sweeper = {
        let manager = hub.manager.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                manager.sweep_outgoing().await;
                manager.sweep_incoming().await;
                manager.sweep_repairs().await;
                manager.clean_bloom_filters().await;
                for channel in manager.open_channels() {
                    manager.channel_state(&channel).await.expect("state");
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.expect("task completes"));
    }
    sweeper.await.expect("sweeper completes");

    // Each remote message was unwrapped twice: delivered (directly or by a cascade) once.
    assert_eq!(statuses.len(), TASKS * PER_TASK * 2);
    for status in &statuses {
        assert!(
            matches!(
                status,
                UnwrapStatus::Delivered | UnwrapStatus::Buffered { .. } | UnwrapStatus::Duplicate
            ),
            "{status:?}"
        );
    }
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for event in hub.take_events() {
        match event {
            Event::MessageReady { message_id, .. } => {
                *delivered.entry(message_id).or_default() += 1;
            }
            Event::MessageDropped { message_id, .. } => panic!("{message_id} dropped"),
            Event::PersistenceDegraded { error, .. } => panic!("commit failed: {error}"),
            _ => {}
        }
    }
    assert_eq!(delivered.len(), TASKS * PER_TASK);
    assert!(delivered.values().all(|count| *count == 1), "{delivered:?}");

    for channel in CHANNELS {
        let mut expected = BTreeSet::new();
        for task in 0..TASKS {
            for step in 0..PER_TASK {
                if channel_of(task, step) == channel {
                    expected.insert(format!("hub-{task}-{step}"));
                    expected.insert(format!("p{task}-{step}"));
                }
            }
        }
        let state = hub.state(channel).await;
        let logged: BTreeSet<String> = state.log.iter().cloned().collect();
        assert_eq!(
            logged.len(),
            state.log.len(),
            "{channel}: duplicate log entries"
        );
        assert_eq!(logged, expected, "{channel}");
        assert!(state.incoming.is_empty(), "{channel}: {:?}", state.incoming);
        assert_eq!(state.pending_history, 0);
        let outgoing: BTreeSet<String> = state.outgoing.iter().cloned().collect();
        let hub_ids: BTreeSet<String> = expected
            .iter()
            .filter(|id| id.starts_with("hub-"))
            .cloned()
            .collect();
        assert_eq!(outgoing, hub_ids, "{channel}: unacknowledged own messages");
        assert_eq!(
            stored_history(&store, channel).await,
            state.log,
            "{channel}"
        );
    }
    // At least one commit per operation that changed state: every wrap and every remote
    // message's first arrival (its second copy is a duplicate and commits nothing). Not
    // exactly: the incoming sweep may commit while a chain is buffered, because it re-arms
    // repair requests for dependencies that are themselves buffered (see persistence.rs,
    // idle_incoming_sweep_over_buffered_chain_does_not_commit).
    let commits = store.calls(Operation::Commit);
    assert!(
        commits >= u64::try_from(TASKS * PER_TASK * 2).unwrap(),
        "{commits}"
    );
    // Everything settled: another pass of every sweep finds nothing to do or write.
    hub.manager.sweep_outgoing().await;
    hub.manager.sweep_incoming().await;
    hub.manager.sweep_repairs().await;
    hub.manager.clean_bloom_filters().await;
    assert_eq!(store.calls(Operation::Commit), commits);
}

/// The in-memory backend, except that a commit for channel "slow" announces itself on
/// `entered` and then waits for `gate` before committing.
#[derive(Default)]
struct GatedBackend {
    inner: MemoryPersistence,
    entered: Notify,
    gate: Notify,
}

#[async_trait]
impl Persistence for GatedBackend {
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.inner.save_channel_meta(channel, meta).await
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.inner.update_history(channel, update).await
    }

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        self.inner.load_channel(channel).await
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        self.inner.drop_channel(channel).await
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        self.inner
            .set_retrieval_hint(channel, message_id, hint)
            .await
    }

    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        if channel == "slow" {
            self.entered.notify_one();
            self.gate.notified().await;
        }
        self.inner.commit(channel, meta, history).await
    }
}

async fn stored_ids(backend: &GatedBackend, channel: &str) -> Vec<String> {
    backend
        .inner
        .load_channel(channel)
        .await
        .unwrap()
        .history
        .iter()
        .map(|logged| logged.message_id().to_string())
        .collect()
}

/// A deadlock guard, not a timing assertion: with tokio's clock paused, it only elapses
/// once every task is blocked, so it turns "waits forever" into a failure without sleeping.
const STUCK: Duration = Duration::from_secs(3_600);

// While an operation on channel "slow" is parked inside its commit (holding that channel),
// operations on channel "fast" complete, and a second operation on "slow" waits its turn;
// releasing the gate lets both "slow" operations finish in order.
#[tokio::test(start_paused = true)]
async fn channels_do_not_block_each_other() {
    let backend = Arc::new(GatedBackend::default());
    // No commit deadline: the parked commit must stay parked until the gate opens.
    let config = ReliabilityConfig {
        commit_timeout_ms: None,
        ..test_config()
    };
    let (manager, _events) = ReliabilityManager::builder("alice")
        .config(config)
        .persistence(backend.clone())
        .clock(Arc::new(ManualClock::new(START_MS)))
        .build()
        .unwrap();

    let slow1 = tokio::spawn({
        let manager = manager.clone();
        async move { manager.wrap_outgoing("slow", "s1", b"one".to_vec()).await }
    });
    backend.entered.notified().await; // s1 is parked in its commit

    timeout(STUCK, manager.wrap_outgoing("fast", "f1", b"f1".to_vec()))
        .await
        .expect("an op on another channel must not wait for the parked one")
        .unwrap();
    timeout(STUCK, manager.wrap_outgoing("fast", "f2", b"f2".to_vec()))
        .await
        .expect("an op on another channel must not wait for the parked one")
        .unwrap();
    let fast_log = timeout(STUCK, manager.log_ids("fast"))
        .await
        .expect("reading another channel must not wait")
        .unwrap();
    assert_eq!(fast_log, vec!["f1", "f2"]);
    assert_eq!(stored_ids(&backend, "fast").await, vec!["f1", "f2"]);
    assert!(!slow1.is_finished());
    assert!(stored_ids(&backend, "slow").await.is_empty());

    // Same channel: the second op cannot even reach its commit while s1 holds the channel.
    let slow2 = tokio::spawn({
        let manager = manager.clone();
        async move { manager.wrap_outgoing("slow", "s2", b"two".to_vec()).await }
    });
    assert!(
        timeout(STUCK, backend.entered.notified()).await.is_err(),
        "a second op on the same channel must wait for the first"
    );
    assert!(!slow2.is_finished());

    backend.gate.notify_one();
    slow1.await.unwrap().unwrap();
    backend.entered.notified().await; // s2 reached its commit
    backend.gate.notify_one();
    slow2.await.unwrap().unwrap();

    assert_eq!(manager.log_ids("slow").await.unwrap(), vec!["s1", "s2"]);
    assert_eq!(stored_ids(&backend, "slow").await, vec!["s1", "s2"]);
}
