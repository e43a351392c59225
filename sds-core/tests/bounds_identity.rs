//! Lamport and identity bounds on received messages (issue 11).
//!
//! Before: one message with lamport `u64::MAX` pinned the clock even when it was dropped,
//! so honest messages were then ordered by id and evicted from the log at once; a peer
//! sending a message id we hold (an honest peer's or ours) was treated as a duplicate of it,
//! and one sending an id first shadowed the honest message without a word.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_core::codec::wire::{SdsMessage, encode_message};
use sds_core::{DropReason, Event, ReliabilityConfig, UnwrapStatus};
use support::{Peer, START_MS, crafted, crafted_message, crafted_sync, lamport_of, test_config};

const CH: &str = "room";
const SKEW: u64 = 600_000;

fn dropped(events: &[Event]) -> Vec<(String, DropReason)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageDropped {
                message_id, reason, ..
            } => Some((message_id.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

/// Every delivery as (id, sender, content).
fn deliveries(events: &[Event]) -> Vec<(String, String, Vec<u8>)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageReady {
                message_id,
                sender_id,
                content,
                ..
            } => Some((message_id.clone(), sender_id.clone(), content.clone())),
            _ => None,
        })
        .collect()
}

/// A content message from `sender` under `id` with its own content.
fn claim(sender: &str, id: &str, lamport: u64, content: &str) -> Vec<u8> {
    encode_message(&SdsMessage {
        content: Some(content.as_bytes().to_vec()),
        ..crafted_message(sender, CH, id, lamport, &[])
    })
    .unwrap()
}

/// One content message and one sync with lamport `u64::MAX` are refused and leave the clock
/// where it was (before: pinned at `u64::MAX`); honest messages sent afterwards, received in
/// reverse, are delivered once each in causal order and all stay in the log, and our next
/// message is stamped from the wall clock.
#[tokio::test]
async fn lamport_far_ahead_is_refused_and_leaves_the_clock() {
    let mut bob = Peer::new("bob");
    let alice = Peer::new("alice");
    bob.manager.ensure_channel(CH).await.unwrap();
    let limit = START_MS as u64 + SKEW;
    let reason = DropReason::LamportTooFarAhead {
        lamport: u64::MAX,
        limit,
    };

    let evil = crafted("mallory", CH, "evil", u64::MAX, &[]);
    assert_eq!(
        bob.receive(&evil).await.status,
        UnwrapStatus::Dropped(reason.clone())
    );
    assert_eq!(
        dropped(&bob.take_events()),
        vec![("evil".to_string(), reason.clone())]
    );
    let evil_sync = crafted_sync("mallory", CH, "evil-sync", u64::MAX);
    assert_eq!(
        bob.receive(&evil_sync).await.status,
        UnwrapStatus::Dropped(reason)
    );
    assert!(bob.take_events().is_empty(), "a refused sync is ignored");
    let state = bob.state(CH).await;
    assert_eq!(state.lamport, 0);
    assert!(state.log.is_empty() && state.incoming.is_empty());

    // Honest traffic afterwards.
    let a1 = alice.send(CH, "a1").await;
    let a2 = alice.send(CH, "a2").await;
    let a3 = alice.send(CH, "a3").await;
    for bytes in [&a3, &a2, &a1] {
        bob.receive(bytes).await;
    }
    assert_eq!(bob.delivered(), vec!["a1", "a2", "a3"]);
    bob.clock.advance(1_000);
    let b1 = bob.send(CH, "b1").await;
    assert_eq!(lamport_of(&b1), START_MS as u64 + 1_000);
    assert_eq!(bob.log(CH).await, vec!["a1", "a2", "a3", "b1"]);
    assert_eq!(bob.state(CH).await.lamport, START_MS as u64 + 1_000);
}

/// The bound is `now + max_lamport_skew_ms`: a timestamp at it is accepted and moves the
/// clock, one past it is refused; the bound follows the wall clock.
#[tokio::test]
async fn lamport_skew_bound_follows_the_wall_clock() {
    let config = ReliabilityConfig {
        max_lamport_skew_ms: 5_000,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    let limit = START_MS as u64 + 5_000;
    let at_limit = crafted("alice", CH, "at-limit", limit, &[]);
    assert_eq!(bob.receive(&at_limit).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.state(CH).await.lamport, limit);
    let past = crafted("alice", CH, "past", limit + 1, &[]);
    assert_eq!(
        bob.receive(&past).await.status,
        UnwrapStatus::Dropped(DropReason::LamportTooFarAhead {
            lamport: limit + 1,
            limit
        })
    );
    assert_eq!(bob.state(CH).await.lamport, limit);
    bob.clock.advance(1);
    assert_eq!(bob.receive(&past).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.delivered(), vec!["at-limit", "past"]);
    assert_eq!(bob.state(CH).await.lamport, limit + 1);
}

/// A message dropped for another reason (too many missing dependencies) does not move the
/// clock either: only accepted messages do.
#[tokio::test]
async fn dropped_message_does_not_move_the_clock() {
    let config = ReliabilityConfig {
        max_missing_dependencies: 1,
        ..test_config()
    };
    let bob = Peer::with_config("bob", config);
    let ahead = START_MS as u64 + 60_000;
    let bytes = crafted("mallory", CH, "m", ahead, &["x", "y"]);
    assert_eq!(
        bob.receive(&bytes).await.status,
        UnwrapStatus::Dropped(DropReason::TooManyMissingDependencies(2))
    );
    assert_eq!(bob.state(CH).await.lamport, 0);
}

/// Ids are first-come: a message under an id we hold for another sender or other content
/// (delivered, buffered, or our own) is dropped with `ConflictingId` and changes nothing we
/// hold (before: taken for a duplicate, silently); an identical copy is a duplicate. The
/// honest conversation around it is delivered exactly once each, in causal order, with the
/// honest content, and our own message is still acknowledged.
#[tokio::test]
async fn conflicting_ids_never_replace_what_we_hold() {
    let mut bob = Peer::new("bob");
    let mut alice = Peer::new("alice");
    let lamport = START_MS as u64;

    // Delivered: another sender, or the same sender with other content, conflicts.
    let a1 = alice.send(CH, "a1").await;
    assert_eq!(bob.receive(&a1).await.status, UnwrapStatus::Delivered);
    for bytes in [
        claim("mallory", "a1", lamport, "content of a1"),
        claim("alice", "a1", lamport, "forged"),
    ] {
        assert_eq!(
            bob.receive(&bytes).await.status,
            UnwrapStatus::Dropped(DropReason::ConflictingId)
        );
    }
    // A resend or repair of the same message is a duplicate.
    assert_eq!(bob.receive(&a1).await.status, UnwrapStatus::Duplicate);

    // Buffered: the claim neither replaces the waiting message nor satisfies anything.
    let a2 = alice.send(CH, "a2").await;
    let a3 = alice.send(CH, "a3").await;
    assert!(matches!(
        bob.receive(&a3).await.status,
        UnwrapStatus::Buffered { .. }
    ));
    let claim_a3 = claim("mallory", "a3", lamport, "evil");
    assert_eq!(
        bob.receive(&claim_a3).await.status,
        UnwrapStatus::Dropped(DropReason::ConflictingId)
    );
    assert_eq!(bob.state(CH).await.incoming, vec!["a3"]);

    // Ours: a peer claiming an id we sent changes nothing.
    let b1 = bob.send(CH, "b1").await;
    let claim_b1 = claim("mallory", "b1", lamport, "evil");
    assert_eq!(
        bob.receive(&claim_b1).await.status,
        UnwrapStatus::Dropped(DropReason::ConflictingId)
    );
    let events = bob.take_events();
    assert_eq!(
        dropped(&events),
        ["a1", "a1", "a3", "b1"]
            .map(|id| (id.to_string(), DropReason::ConflictingId))
            .to_vec()
    );
    assert_eq!(
        deliveries(&events),
        vec![(
            "a1".to_string(),
            "alice".to_string(),
            b"content of a1".to_vec()
        )]
    );
    let state = bob.state(CH).await;
    assert_eq!(state.outgoing, vec!["b1"]);

    // Honest traffic: a2 unblocks a3, alice hears b1 and acknowledges it.
    assert_eq!(bob.receive(&a2).await.status, UnwrapStatus::Delivered);
    assert_eq!(alice.receive(&b1).await.status, UnwrapStatus::Delivered);
    alice.take_events();
    alice.clock.advance(1_000);
    bob.clock.advance(1_000);
    let a4 = alice.send(CH, "a4").await;
    assert_eq!(bob.receive(&a4).await.status, UnwrapStatus::Delivered);
    let events = bob.take_events();
    assert_eq!(
        deliveries(&events),
        ["a2", "a3", "a4"]
            .map(|id| (
                id.to_string(),
                "alice".to_string(),
                format!("content of {id}").into_bytes()
            ))
            .to_vec()
    );
    assert!(events.contains(&Event::MessageAcknowledged {
        channel: CH.into(),
        message_id: "b1".into()
    }));
    assert_eq!(bob.log(CH).await, vec!["a1", "a2", "a3", "b1", "a4"]);
    assert!(bob.state(CH).await.outgoing.is_empty());
}

/// First come is first kept, whoever comes first: a claim that arrives before the honest
/// message takes the id, and the honest message is then reported as conflicting rather
/// than silently swallowed as a duplicate. (Unpredictable ids, such as @waku/sds's content
/// hashes, leave nothing to claim first.)
#[tokio::test]
async fn an_id_claimed_first_is_reported_when_the_honest_message_comes() {
    let mut bob = Peer::new("bob");
    let alice = Peer::new("alice");
    let lamport = START_MS as u64;
    let claim_a1 = claim("mallory", "a1", lamport, "first");
    assert_eq!(bob.receive(&claim_a1).await.status, UnwrapStatus::Delivered);
    let a1 = alice.send(CH, "a1").await;
    assert_eq!(
        bob.receive(&a1).await.status,
        UnwrapStatus::Dropped(DropReason::ConflictingId)
    );
    let events = bob.take_events();
    assert_eq!(
        dropped(&events),
        vec![("a1".to_string(), DropReason::ConflictingId)]
    );
    assert_eq!(deliveries(&events).len(), 1);
}
