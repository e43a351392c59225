//! Manager bounds of issue 11: channels, the event queue and `mark_dependencies_met`.
//!
//! Before: messages for 100,000 made-up channel ids opened and persisted 100,000 channels
//! (+2.5 GiB) and each sync tick emitted 100,000 `SyncDue` events; an application that
//! never read its event stream grew memory by ~1.2 KB per message; `mark_dependencies_met`
//! took any number of ids. Commits, the R2 queue and backend deadlines are in
//! `bounds_commits.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_core::{Clock, DropReason, Event, Limit, ReliabilityConfig, SdsError, UnwrapStatus};
use support::{Peer, crafted, test_config};

const CH: &str = "room";

/// Sends three chained honest messages (each naming the ones before it) to `peer` out of
/// order and twice over, and checks they are delivered exactly once, in causal order.
/// `after` names an earlier honest message the first one depends on, if any.
async fn honest_traffic_is_delivered_once_in_order(
    peer: &mut Peer,
    tag: &str,
    after: Option<&str>,
) {
    let now = u64::try_from(peer.clock.now_ms()).unwrap();
    let ids: Vec<String> = (1..=3).map(|n| format!("{tag}-{n}")).collect();
    let first_deps: Vec<&str> = after.into_iter().collect();
    let m1 = crafted("honest", CH, &ids[0], now, &first_deps);
    let m2 = crafted("honest", CH, &ids[1], now + 1, &[&ids[0]]);
    let m3 = crafted("honest", CH, &ids[2], now + 2, &[&ids[0], &ids[1]]);
    peer.take_events();
    for bytes in [&m3, &m2, &m1, &m2, &m3, &m1] {
        peer.manager.unwrap_received(bytes).await.unwrap();
    }
    assert_eq!(peer.delivered(), ids, "honest traffic after the scenario");
}

fn drops(events: &[Event]) -> Vec<DropReason> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageDropped { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn sync_due(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, Event::SyncDue { .. }))
        .count()
}

/// Messages for 100,000 channels the application never joined are dropped with
/// `ChannelNotJoined`: 0 channels opened, 0 loaded, 0 persisted, and one `SyncDue` per tick
/// (the joined channel's) instead of 100,001 (before: 100,000 channels opened and stored).
#[tokio::test]
async fn messages_for_unjoined_channels_open_and_store_nothing() {
    let mut bob = Peer::new("bob");
    bob.manager.join_channel(CH).await.unwrap();
    honest_traffic_is_delivered_once_in_order(&mut bob, "before", None).await;
    let loads = bob
        .store
        .calls(sds_core::persistence::fault::Operation::LoadChannel);
    let commits = bob.commits();

    let now = u64::try_from(bob.clock.now_ms()).unwrap();
    let mut refused = 0;
    for n in 0..100_000 {
        let bytes = crafted("mallory", &format!("made-up-{n}"), "x", now, &[]);
        let outcome = bob.manager.unwrap_received(&bytes).await.unwrap();
        if outcome.status == UnwrapStatus::Dropped(DropReason::ChannelNotJoined) {
            refused += 1;
        }
    }
    assert_eq!(refused, 100_000);
    assert_eq!(bob.manager.open_channels(), vec![CH]);
    assert_eq!(bob.manager.joined_channels(), vec![CH]);
    assert_eq!(
        bob.store
            .calls(sds_core::persistence::fault::Operation::LoadChannel),
        loads,
        "no channel was loaded for them"
    );
    assert_eq!(bob.commits(), commits, "nothing was written for them");
    assert_eq!(bob.store.inner().channels().unwrap(), vec![CH]);

    // Each refusal was reported; the event queue kept the newest 10,000 (its default).
    let events = bob.take_events();
    assert!(matches!(events[0], Event::Lagged { missed: 90_000 }));
    assert_eq!(drops(&events).len(), 10_000);
    assert!(
        drops(&events)
            .iter()
            .all(|reason| *reason == DropReason::ChannelNotJoined)
    );

    bob.manager.announce_sync_due();
    assert_eq!(sync_due(&bob.take_events()), 1);

    honest_traffic_is_delivered_once_in_order(&mut bob, "after", Some("before-3")).await;
}

/// With `accept_any_channel`, made-up channels open up to `max_channels` (10 here, the
/// joined one included) and no further: of 1,000, 9 open and are stored, 991 are dropped with
/// `TooManyChannels`, and a sync tick emits 10 `SyncDue` (answering them joins nothing).
#[tokio::test]
async fn accept_any_channel_opens_at_most_max_channels() {
    let config = ReliabilityConfig {
        accept_any_channel: true,
        max_channels: 10,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();

    let now = u64::try_from(bob.clock.now_ms()).unwrap();
    for n in 0..1_000 {
        let bytes = crafted("mallory", &format!("made-up-{n:04}"), "x", now, &[]);
        bob.manager.unwrap_received(&bytes).await.unwrap();
    }
    let events = bob.take_events();
    let reasons = drops(&events);
    assert_eq!(reasons.len(), 991);
    assert!(reasons.iter().all(|r| *r == DropReason::TooManyChannels));
    assert_eq!(bob.manager.open_channels().len(), 10);
    assert_eq!(bob.store.inner().channels().unwrap().len(), 9);
    bob.manager.announce_sync_due();
    let due: Vec<String> = bob
        .take_events()
        .into_iter()
        .filter_map(|event| match event {
            Event::SyncDue { channel } => Some(channel),
            _ => None,
        })
        .collect();
    assert_eq!(due.len(), 10);
    // Answering every SyncDue joins none of the peers' channels (joined ones are never
    // refused, so that would lift the bound).
    for channel in &due {
        bob.manager.build_sync_message(channel).await.unwrap();
    }
    assert_eq!(bob.manager.joined_channels(), vec![CH]);

    // Joined channels are never refused, even at the bound.
    honest_traffic_is_delivered_once_in_order(&mut bob, "after", None).await;
}

/// A channel idle for `channel_idle_unload_ms` with nothing buffered, pending or dirty is
/// unloaded by the maintenance pass (11 open before, 0 after), a busy one stays; a joined
/// channel stays joined and comes back from persistence on use with its history.
#[tokio::test]
async fn idle_channels_are_unloaded_and_come_back_on_use() {
    let config = ReliabilityConfig {
        accept_any_channel: true,
        channel_idle_unload_ms: Some(60_000),
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();
    honest_traffic_is_delivered_once_in_order(&mut bob, "before", None).await;
    let now = u64::try_from(bob.clock.now_ms()).unwrap();
    for n in 0..10 {
        let bytes = crafted("mallory", &format!("made-up-{n}"), "x", now, &[]);
        bob.manager.unwrap_received(&bytes).await.unwrap();
    }
    // One more channel holds a message waiting for a dependency: not idle, whatever the
    // time.
    let waiting = crafted("mallory", "busy", "w", now, &["never-sent"]);
    bob.manager.unwrap_received(&waiting).await.unwrap();
    assert_eq!(bob.manager.open_channels().len(), 12);

    bob.clock.advance(59_999);
    assert_eq!(
        bob.manager.unload_idle_channels().await,
        0,
        "not idle long enough"
    );
    bob.clock.advance(1);
    assert_eq!(bob.manager.unload_idle_channels().await, 11);
    assert_eq!(bob.manager.open_channels(), vec!["busy"]);
    assert_eq!(bob.manager.joined_channels(), vec![CH]);

    // Back on use, from persistence: the log is intact and causal order holds across it.
    assert_eq!(bob.log(CH).await, vec!["before-1", "before-2", "before-3"]);
    honest_traffic_is_delivered_once_in_order(&mut bob, "after", Some("before-3")).await;
}

/// Without `accept_any_channel`, a joined channel unloaded when idle is still the
/// application's: the first network message after the unload loads it again and is
/// delivered (nothing read it back first).
#[tokio::test]
async fn a_joined_channel_unloaded_when_idle_still_receives() {
    let config = ReliabilityConfig {
        channel_idle_unload_ms: Some(60_000),
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();
    honest_traffic_is_delivered_once_in_order(&mut bob, "before", None).await;
    bob.clock.advance(60_000);
    assert_eq!(bob.manager.unload_idle_channels().await, 1);
    assert!(bob.manager.open_channels().is_empty());

    honest_traffic_is_delivered_once_in_order(&mut bob, "after", Some("before-3")).await;
    assert_eq!(bob.manager.open_channels(), vec![CH]);
}

/// What counts as use for idle unloading: a received message and an application send do
/// (the channel stays loaded 60 s past them), reads and sync builds do not (a channel only
/// read and synced is unloaded 60 s after its last real use).
#[tokio::test]
async fn only_sends_and_received_messages_keep_a_channel_loaded() {
    let config = ReliabilityConfig {
        channel_idle_unload_ms: Some(60_000),
        ..test_config()
    };
    let bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();

    bob.clock.advance(40_000);
    let now = u64::try_from(bob.clock.now_ms()).unwrap();
    bob.manager
        .unwrap_received(&crafted("alice", CH, "a1", now, &[]))
        .await
        .unwrap();
    bob.clock.advance(40_000);
    assert_eq!(
        bob.manager.unload_idle_channels().await,
        0,
        "received 40 s ago"
    );
    bob.send(CH, "b1").await;
    bob.clock.advance(40_000);
    assert_eq!(bob.manager.unload_idle_channels().await, 0, "sent 40 s ago");
    // Unacknowledged messages keep a channel loaded; bob's is acknowledged by alice.
    let ack = support::crafted_message("alice", CH, "a2", now + 80_001, &["b1"]);
    bob.manager
        .unwrap_received(&sds_codec::wire::encode_message(&ack).unwrap())
        .await
        .unwrap();
    assert!(
        bob.manager
            .channel_state(CH)
            .await
            .unwrap()
            .outgoing
            .is_empty()
    );

    for _ in 0..6 {
        bob.clock.advance(10_000);
        bob.manager.channel_state(CH).await.unwrap();
        bob.manager.build_sync_message(CH).await.unwrap();
    }
    assert_eq!(
        bob.manager.unload_idle_channels().await,
        1,
        "60 s of reads and syncs"
    );
    assert!(bob.manager.open_channels().is_empty());
}

/// A channel that is not joined refuses everything, even what would touch no state: our
/// own message echoed back and an ephemeral message are dropped as `ChannelNotJoined`.
#[tokio::test]
async fn stateless_messages_for_an_unjoined_channel_are_refused_too() {
    let mut bob = Peer::new("bob");
    let own = crafted("bob", "elsewhere", "b1", 1, &[]);
    let ephemeral = sds_codec::wire::encode_message(&sds_codec::wire::SdsMessage {
        lamport_timestamp: None,
        ..support::crafted_message("alice", "elsewhere", "e1", 0, &[])
    })
    .unwrap();
    for bytes in [own, ephemeral] {
        let outcome = bob.manager.unwrap_received(&bytes).await.unwrap();
        assert_eq!(
            outcome.status,
            UnwrapStatus::Dropped(DropReason::ChannelNotJoined)
        );
    }
    assert_eq!(drops(&bob.take_events()).len(), 2);
    assert!(bob.manager.open_channels().is_empty());
}

/// Repair work is state the maintenance pass must keep running: a channel whose only
/// business is a request for a lost message (nothing buffered, nothing unacknowledged)
/// stays loaded however long it is idle, so the repair sweep keeps asking.
#[tokio::test]
async fn a_channel_with_repair_work_is_not_unloaded() {
    let config = ReliabilityConfig {
        channel_idle_unload_ms: Some(60_000),
        ..test_config()
    };
    let alice = Peer::with_config("alice", config.clone());
    let bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();
    alice.send(CH, "lost").await;
    let sync = alice.manager.build_sync_message(CH).await.unwrap();
    bob.receive(&sync).await;
    let state = bob.manager.channel_state(CH).await.unwrap();
    assert!(state.incoming.is_empty() && state.outgoing.is_empty());
    assert_eq!(bob.stored_meta(CH).await.unwrap().outgoing_repairs.len(), 1);

    bob.clock.advance(10 * 60_000);
    assert_eq!(bob.manager.unload_idle_channels().await, 0);
    assert_eq!(bob.manager.open_channels(), vec![CH]);
}

/// Reads never create a channel: `channel_state` and `log_ids` of a channel neither joined
/// nor open fail with `UnknownChannel`, and open, load and store nothing (0, 0, 0).
#[tokio::test]
async fn read_only_calls_never_create_a_channel() {
    let mut bob = Peer::new("bob");
    for n in 0..100 {
        let channel = format!("unknown-{n}");
        let err = bob.manager.channel_state(&channel).await.unwrap_err();
        assert!(matches!(err, SdsError::UnknownChannel(ref name) if *name == channel));
        let err = bob.manager.log_ids(&channel).await.unwrap_err();
        assert!(matches!(err, SdsError::UnknownChannel(_)));
    }
    assert!(bob.manager.open_channels().is_empty());
    assert_eq!(
        bob.store
            .calls(sds_core::persistence::fault::Operation::LoadChannel),
        0
    );
    assert!(bob.store.inner().channels().unwrap().is_empty());

    bob.manager.join_channel(CH).await.unwrap();
    assert!(bob.manager.channel_state(CH).await.unwrap().log.is_empty());
    honest_traffic_is_delivered_once_in_order(&mut bob, "after", None).await;
}

/// An application that never reads: 10,000 deliveries into a queue of 100 hold 100 events
/// (before: all 10,000, ~1.2 KB each); the next read yields `Lagged { missed: 9,900 }` and
/// then the 100 newest, in order.
#[tokio::test]
async fn event_queue_is_bounded_for_an_app_that_never_reads() {
    let config = ReliabilityConfig {
        event_queue_capacity: 100,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.manager.join_channel(CH).await.unwrap();
    let start = u64::try_from(bob.clock.now_ms()).unwrap();
    let mut previous: Option<String> = None;
    for n in 0..10_000u64 {
        let id = format!("m{n:05}");
        let deps: Vec<&str> = previous.iter().map(String::as_str).collect();
        let bytes = crafted("alice", CH, &id, start + n, &deps);
        let status = bob.manager.unwrap_received(&bytes).await.unwrap().status;
        assert_eq!(status, UnwrapStatus::Delivered);
        assert!(bob.events.len() <= 100);
        previous = Some(id);
    }
    assert_eq!(bob.events.len(), 100);

    let events = bob.events.drain();
    assert_eq!(events.len(), 101);
    assert_eq!(events[0], Event::Lagged { missed: 9_900 });
    let kept: Vec<String> = events[1..]
        .iter()
        .map(|event| match event {
            Event::MessageReady { message_id, .. } => message_id.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let newest: Vec<String> = (9_900..10_000).map(|n| format!("m{n:05}")).collect();
    assert_eq!(kept, newest);
    assert!(bob.events.is_empty());

    // The stream carries on, with no further lag.
    honest_traffic_is_delivered_once_in_order(&mut bob, "after", None).await;
    assert!(bob.events.is_empty());
}

/// `mark_dependencies_met` with 1,001 ids (default bound 1,000) is refused with
/// `InvalidInput` and a `LimitReached`, and changes nothing: the waiting message stays
/// buffered and nothing is written; 1,000 ids go through.
#[tokio::test]
async fn mark_dependencies_met_refuses_more_than_max_ids() {
    let mut bob = Peer::new("bob");
    let now = u64::try_from(bob.clock.now_ms()).unwrap();
    let waiting = crafted("alice", CH, "w", now, &["fetched"]);
    bob.receive(&waiting).await;
    bob.take_events();
    let commits = bob.commits();

    let mut ids: Vec<String> = (0..1_000).map(|n| format!("other-{n}")).collect();
    ids.push("fetched".to_string());
    let err = bob
        .manager
        .mark_dependencies_met(CH, &ids)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdsError::InvalidInput(text) if text.contains("max_mark_met_ids")),
        "{err}"
    );
    assert_eq!(
        bob.take_events(),
        vec![Event::LimitReached {
            channel: CH.to_string(),
            limit: Limit::MarkMetIds,
            dropped: 1_001,
        }]
    );
    assert_eq!(bob.state(CH).await.incoming, vec!["w"]);
    assert_eq!(bob.commits(), commits);

    ids.remove(0);
    assert_eq!(ids.len(), 1_000);
    bob.manager.mark_dependencies_met(CH, &ids).await.unwrap();
    assert_eq!(bob.delivered(), vec!["w"]);
    honest_traffic_is_delivered_once_in_order(&mut bob, "after", Some("w")).await;
}
