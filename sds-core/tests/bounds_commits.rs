//! Commit bounds of issue 11: what an operation writes, the R2 queue under a failing
//! backend, retry backoff, the commit deadline and concurrent sweeps.
//!
//! Before: 100,000 duplicates cost 100,000 snapshot commits; a backend failing 100,000
//! operations grew the R2 queue past 27,000 ids against a 1,000-entry log, every operation
//! retrying the commit (0.34 ms per op became 3.3 ms); one hung backend call stopped the
//! sweeps of every channel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use sds_core::persistence::fault::Operation;
use sds_core::{Clock, Event, Limit, ManualClock, ReliabilityConfig, UnwrapStatus};
use support::{Peer, START_MS, crafted, new_store, persistence_events, test_config};
use tokio::time::timeout;

const CH: &str = "room";

/// A deadlock guard, not a timing assertion: with tokio's clock paused it elapses only once
/// every task is blocked.
const STUCK: Duration = Duration::from_secs(3_600);

/// Sends three chained honest messages (each naming the ones before it) to `peer` out of
/// order and twice over, and checks they are delivered exactly once, in causal order.
async fn honest_traffic_is_delivered_once_in_order(
    peer: &mut Peer,
    channel: &str,
    tag: &str,
    after: Option<&str>,
) {
    let now = u64::try_from(peer.clock.now_ms()).unwrap();
    let ids: Vec<String> = (1..=3).map(|n| format!("{tag}-{n}")).collect();
    let first_deps: Vec<&str> = after.into_iter().collect();
    let m1 = crafted("honest", channel, &ids[0], now, &first_deps);
    let m2 = crafted("honest", channel, &ids[1], now + 1, &[&ids[0]]);
    let m3 = crafted("honest", channel, &ids[2], now + 2, &[&ids[0], &ids[1]]);
    peer.take_events();
    for bytes in [&m3, &m2, &m1, &m2, &m3, &m1] {
        peer.receive(bytes).await;
    }
    assert_eq!(peer.delivered(), ids, "honest traffic after the scenario");
}

/// 100,000 duplicates of a delivered message make 0 commits (before: 100,000), and change
/// nothing in memory.
#[tokio::test]
async fn duplicates_commit_nothing() {
    let mut bob = Peer::new("bob");
    let now = u64::try_from(bob.clock.now_ms()).unwrap();
    let m1 = crafted("alice", CH, "m1", now, &[]);
    assert_eq!(bob.receive(&m1).await.status, UnwrapStatus::Delivered);
    let state = bob.state(CH).await;
    let commits = bob.commits();
    for _ in 0..100_000 {
        assert_eq!(bob.receive(&m1).await.status, UnwrapStatus::Duplicate);
    }
    assert_eq!(bob.commits() - commits, 0);
    assert_eq!(bob.state(CH).await, state);
    assert_eq!(bob.delivered(), vec!["m1"]);
    honest_traffic_is_delivered_once_in_order(&mut bob, CH, "after", Some("m1")).await;
}

/// A backend failing every commit through 100,000 received messages (one per 100 ms on a
/// 1,000-entry log): the R2 queue never exceeds `max_pending_history` (1,500 here; before:
/// past 27,000), commits are retried with backoff (at most 200 attempts; before: 100,000),
/// the overflow is reported once with `LimitReached`, and on recovery one commit rewrites
/// the stored history to equal the log. Every message is delivered once, in order.
#[tokio::test]
async fn r2_queue_stays_bounded_while_the_backend_fails() {
    let config = ReliabilityConfig {
        max_pending_history: 1_500,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();
    bob.store.fail_always(Operation::Commit);

    let mut delivered = Vec::new();
    let mut limits = Vec::new();
    let mut largest_queue = 0;
    let mut previous: Option<String> = None;
    for n in 0..100_000u64 {
        bob.clock.advance(100);
        let id = format!("m{n:06}");
        let deps: Vec<&str> = previous.iter().map(String::as_str).collect();
        let lamport = u64::try_from(bob.clock.now_ms()).unwrap();
        let bytes = crafted("alice", CH, &id, lamport, &deps);
        bob.manager.unwrap_received(&bytes).await.unwrap();
        previous = Some(id);
        if n % 100 == 99 {
            let queue = bob.state(CH).await.pending_history;
            assert!(queue <= 1_500, "R2 queue at {queue} after {n} messages");
            largest_queue = largest_queue.max(queue);
            for event in bob.take_events() {
                match event {
                    Event::MessageReady { message_id, .. } => delivered.push(message_id),
                    Event::LimitReached { limit, dropped, .. } => limits.push((limit, dropped)),
                    _ => {}
                }
            }
        }
    }
    let attempts = bob.commits();
    assert!(attempts <= 200, "{attempts} commit attempts");
    assert!(
        largest_queue > 1_000,
        "the queue grew past the log: {largest_queue}"
    );
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0].0, Limit::PendingHistory);
    assert!(limits[0].1 > 1_500);
    let expected: Vec<String> = (0..100_000).map(|n| format!("m{n:06}")).collect();
    assert_eq!(delivered, expected);

    // The backend is back: the first write after the backoff rewrites the history.
    bob.store.clear_all();
    bob.clock.advance(60_000);
    bob.manager.sweep_outgoing().await;
    assert_eq!(bob.commits(), attempts + 1);
    let memory = bob.state(CH).await;
    assert_eq!(memory.log.len(), 1_000);
    assert_eq!(memory.pending_history, 0);
    assert_eq!(bob.stored_history(CH).await, memory.log);
    assert_eq!(
        persistence_events(&bob.take_events()),
        vec![("recovered", CH.to_string())]
    );
    let mut bob = bob.restart();
    bob.manager.join_channel(CH).await.unwrap();
    assert_eq!(bob.state(CH).await.log, memory.log);
    honest_traffic_is_delivered_once_in_order(&mut bob, CH, "after", Some("m099999")).await;
}

/// The rewrite that replaces an overflowed R2 queue also removes what the log evicted
/// during the outage: 20 messages stored, then 30 received while commits fail (the
/// 10-entry log keeps the newest 10, the 5-entry queue overflows), and on recovery the
/// stored history is exactly those 10.
#[tokio::test]
async fn the_history_rewrite_evicts_what_the_log_dropped_meanwhile() {
    let config = ReliabilityConfig {
        max_message_history: 10,
        max_causal_history: 5,
        max_pending_history: 5,
        ..test_config()
    };
    let bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();
    let receive = |n: u64| {
        let lamport = u64::try_from(bob.clock.now_ms()).unwrap() + n;
        crafted("alice", CH, &format!("m{n:02}"), lamport, &[])
    };
    for n in 0..20 {
        bob.manager.unwrap_received(&receive(n)).await.unwrap();
    }
    assert_eq!(bob.stored_history(CH).await.len(), 10);
    bob.store.fail_always(Operation::Commit);
    for n in 20..50 {
        bob.manager.unwrap_received(&receive(n)).await.unwrap();
    }
    bob.store.clear_all();
    bob.clock.advance(60_000);
    bob.manager.sweep_outgoing().await;
    let expected: Vec<String> = (40..50).map(|n| format!("m{n:02}")).collect();
    assert_eq!(bob.state(CH).await.log, expected);
    assert_eq!(bob.stored_history(CH).await, expected);
}

/// A failed commit is retried after `commit_retry_min_ms` (1 s), doubling up to
/// `commit_retry_max_ms` (4 s): with an operation every 100 ms for 20 s, the backend sees 7
/// attempts, at 0, 1, 3, 7, 11, 15 and 19 s (before: 200); the operations in between only
/// queue, and the first attempt after the outage writes them all.
#[tokio::test]
async fn failed_commits_are_retried_with_backoff() {
    let config = ReliabilityConfig {
        commit_retry_min_ms: 1_000,
        commit_retry_max_ms: 4_000,
        ..test_config()
    };
    let mut alice = Peer::with_config("alice", config);
    alice.manager.join_channel(CH).await.unwrap();
    alice.store.fail_always(Operation::Commit);
    let mut attempts_at = Vec::new();
    for n in 0..200 {
        let commits = alice.commits();
        alice.send(CH, &format!("m{n}")).await;
        if alice.commits() > commits {
            attempts_at.push(alice.clock.now_ms() - START_MS);
        }
        alice.clock.advance(100);
    }
    assert_eq!(
        attempts_at,
        vec![0, 1_000, 3_000, 7_000, 11_000, 15_000, 19_000]
    );
    assert_eq!(alice.state(CH).await.pending_history, 200);
    assert!(alice.stored_history(CH).await.is_empty());

    alice.store.clear_all();
    alice.clock.advance(4_000);
    alice.send(CH, "m200").await;
    assert_eq!(alice.commits(), 8);
    assert_eq!(alice.stored_history(CH).await.len(), 201);
    assert_eq!(alice.state(CH).await.pending_history, 0);
    // Recovered: the backoff is reset, the next operation commits at once.
    alice.send(CH, "m201").await;
    assert_eq!(alice.commits(), 9);
    honest_traffic_is_delivered_once_in_order(&mut alice, CH, "after", None).await;
}

/// A commit that hangs is abandoned after `commit_timeout_ms` (30 s of tokio time): the
/// operation returns normally, the channel reports `PersistenceDegraded`, its change stays
/// queued (1 entry) and is written once the backend answers again.
#[tokio::test(start_paused = true)]
async fn hung_commit_times_out_and_keeps_the_queue() {
    let mut alice = Peer::new("alice");
    alice.manager.join_channel(CH).await.unwrap();
    alice.store.hang_channel(Operation::Commit, CH);

    let started = tokio::time::Instant::now();
    let bytes = timeout(
        STUCK,
        alice.manager.wrap_outgoing(CH, "m1", b"one".to_vec()),
    )
    .await
    .expect("the commit deadline ends the hung call")
    .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(30_000));
    assert!(!bytes.is_empty());
    let events = alice.take_events();
    assert!(events.iter().any(|event| matches!(
        event,
        Event::PersistenceDegraded { error, .. } if error.contains("commit_timeout_ms")
    )));
    assert_eq!(alice.state(CH).await.pending_history, 1);
    assert!(alice.stored_history(CH).await.is_empty());

    alice.store.clear_all();
    alice.clock.advance(1_000);
    alice.manager.sweep_outgoing().await;
    assert_eq!(alice.stored_history(CH).await, vec!["m1"]);
    assert_eq!(alice.state(CH).await.pending_history, 0);
    assert_eq!(
        persistence_events(&alice.take_events()),
        vec![("recovered", CH.to_string())]
    );
    honest_traffic_is_delivered_once_in_order(&mut alice, CH, "after", None).await;
}

/// Sweeps visit channels concurrently: while every commit of channel "a-stuck" hangs (no
/// deadline), a sweep still resends and commits on the 2 other channels (before: 0, the
/// sweep waited on "a-stuck" first); with `max_concurrent_sweeps` = 1 the bound holds and
/// the others wait.
#[tokio::test(start_paused = true)]
async fn one_hung_channel_does_not_stop_the_sweeps_of_others() {
    for (limit, swept) in [(2, vec!["b", "c"]), (1, vec![])] {
        let config = ReliabilityConfig {
            commit_timeout_ms: None,
            max_concurrent_sweeps: limit,
            ..test_config()
        };
        let mut alice = Peer::with(
            "alice",
            config.clone(),
            new_store(),
            ManualClock::new(START_MS),
        );
        for channel in ["a-stuck", "b", "c"] {
            alice.send(channel, &format!("{channel}-1")).await;
        }
        alice.take_events();
        alice.store.hang_channel(Operation::Commit, "a-stuck");
        alice
            .clock
            .advance(i64::try_from(config.resend_interval_ms).unwrap());

        let sweep = timeout(STUCK, alice.manager.sweep_outgoing()).await;
        assert!(sweep.is_err(), "the hung channel never finishes its sweep");
        let resent: Vec<String> = alice
            .take_events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Resend { channel, .. } => Some(channel),
                _ => None,
            })
            .collect();
        assert_eq!(resent, swept, "max_concurrent_sweeps = {limit}");
        for channel in swept {
            let stored = alice.stored_meta(channel).await.unwrap();
            assert_eq!(stored.outgoing[0].resend_attempts, 1, "{channel}");
        }

        alice.store.clear_all();
        honest_traffic_is_delivered_once_in_order(&mut alice, "b", "after", None).await;
    }
}

/// With the default deadline, a sweep over a hung channel completes after 30 s of tokio
/// time: the 2 healthy channels are swept and written, the hung one is degraded with its
/// change queued, and recovers with the next sweep once the backend answers.
#[tokio::test(start_paused = true)]
async fn sweep_over_a_hung_channel_completes_at_the_deadline() {
    let mut alice = Peer::new("alice");
    for channel in ["a-stuck", "b", "c"] {
        alice.send(channel, &format!("{channel}-1")).await;
    }
    alice.take_events();
    alice.store.hang_channel(Operation::Commit, "a-stuck");
    alice.clock.advance(30_000);

    let started = tokio::time::Instant::now();
    timeout(STUCK, alice.manager.sweep_outgoing())
        .await
        .expect("the deadline ends the sweep");
    assert_eq!(started.elapsed(), Duration::from_millis(30_000));
    let events = alice.take_events();
    assert_eq!(
        persistence_events(&events),
        vec![("degraded", "a-stuck".to_string())]
    );
    for channel in ["b", "c"] {
        let stored = alice.stored_meta(channel).await.unwrap();
        assert_eq!(stored.outgoing[0].resend_attempts, 1, "{channel}");
    }
    assert_eq!(
        alice.stored_meta("a-stuck").await.unwrap().outgoing[0].resend_attempts,
        0
    );

    alice.store.clear_all();
    alice.clock.advance(1_000);
    alice.manager.sweep_outgoing().await;
    assert_eq!(
        alice.stored_meta("a-stuck").await.unwrap().outgoing[0].resend_attempts,
        1
    );
    assert_eq!(
        persistence_events(&alice.take_events()),
        vec![("recovered", "a-stuck".to_string())]
    );
    honest_traffic_is_delivered_once_in_order(&mut alice, "b", "after", None).await;
}
