//! The protocol's observable behaviour through the manager: delivery, ordering,
//! dependencies, acknowledgements, resends and the buffer bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_core::codec::wire::{SdsMessage, decode_message, encode_message};
use sds_core::{DropReason, Event, Persistence, ReliabilityConfig, SdsError, UnwrapStatus};
use support::{Peer, test_config};

const CH: &str = "room";

fn content_message(sender: &str, id: &str, lamport: u64, deps: &[&str]) -> Vec<u8> {
    support::crafted(sender, CH, id, lamport, deps)
}

// A wrapped message unwraps at a peer into the same content, delivered once.
#[tokio::test]
async fn wrap_unwrap_round_trip() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    let bytes = alice.send(CH, "m1").await;
    let outcome = bob.receive(&bytes).await;
    assert_eq!(outcome.status, UnwrapStatus::Delivered);
    assert_eq!(outcome.channel, CH);
    let events = bob.take_events();
    assert!(events.contains(&Event::MessageReady {
        channel: CH.into(),
        message_id: "m1".into(),
        sender_id: "alice".into(),
        lamport: decode_message(&bytes).unwrap().lamport_timestamp.unwrap(),
        content: b"content of m1".to_vec(),
    }));
    assert_eq!(bob.log(CH).await, vec!["m1"]);
    assert_eq!(alice.log(CH).await, vec!["m1"]);
}

// The log is ordered by (lamport, id), not by arrival, and ties break on the id.
#[tokio::test]
async fn log_orders_by_lamport_then_id() {
    let bob = Peer::new("bob");
    for (id, lamport) in [("c", 5), ("b", 7), ("a", 7), ("z", 1)] {
        bob.receive(&content_message("alice", id, lamport, &[]))
            .await;
    }
    assert_eq!(bob.log(CH).await, vec!["z", "c", "a", "b"]);
}

// Causal history carries the newest max_causal_history log entries, oldest of them first.
#[tokio::test]
async fn causal_history_is_newest_entries() {
    let config = ReliabilityConfig {
        max_causal_history: 2,
        ..test_config()
    };
    let alice = Peer::with_config("alice", config);
    for id in ["m1", "m2", "m3"] {
        alice.send(CH, id).await;
        alice.clock.advance(1);
    }
    let bytes = alice.send(CH, "m4").await;
    let message = decode_message(&bytes).unwrap();
    let ids: Vec<&str> = message
        .causal_history
        .iter()
        .map(|entry| entry.message_id.as_str())
        .collect();
    assert_eq!(ids, vec!["m2", "m3"]);
    assert_eq!(
        message.causal_history[0].sender_id.as_deref(),
        Some("alice")
    );
}

// A message received twice is delivered once; the second copy is reported as duplicate.
#[tokio::test]
async fn duplicate_is_delivered_once() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    let bytes = alice.send(CH, "m1").await;
    assert_eq!(bob.receive(&bytes).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.receive(&bytes).await.status, UnwrapStatus::Duplicate);
    assert_eq!(bob.delivered(), vec!["m1"]);
    assert_eq!(bob.log(CH).await, vec!["m1"]);
}

// Reusing a message id in a channel is refused with a typed error and changes nothing.
#[tokio::test]
async fn reused_message_id_is_refused() {
    let alice = Peer::new("alice");
    alice.send(CH, "m1").await;
    let err = alice
        .manager
        .wrap_outgoing(CH, "m1", b"again".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, SdsError::DuplicateMessageId { .. }), "{err}");
    assert_eq!(alice.log(CH).await, vec!["m1"]);
}

// Empty ids and empty content are refused with a message that says which.
#[tokio::test]
async fn empty_id_and_content_are_refused() {
    let alice = Peer::new("alice");
    let err = alice
        .manager
        .wrap_outgoing(CH, "", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("message id"), "{err}");
    let err = alice
        .manager
        .wrap_outgoing(CH, "m", vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("content"), "{err}");
}

// Our own message coming back from the network is not processed again.
#[tokio::test]
async fn own_message_is_ignored() {
    let mut alice = Peer::new("alice");
    let bytes = alice.send(CH, "m1").await;
    let commits = alice.commits();
    assert_eq!(alice.receive(&bytes).await.status, UnwrapStatus::OwnMessage);
    assert!(alice.delivered().is_empty());
    assert_eq!(alice.commits(), commits);
}

// Channels never see each other's messages or state.
#[tokio::test]
async fn channels_are_isolated() {
    let alice = Peer::new("alice");
    let bob = Peer::new("bob");
    let a = alice.send("one", "m1").await;
    let b = alice.send("two", "m2").await;
    bob.receive(&a).await;
    bob.receive(&b).await;
    assert_eq!(bob.log("one").await, vec!["m1"]);
    assert_eq!(bob.log("two").await, vec!["m2"]);
    let next = decode_message(&alice.send("two", "m3").await).unwrap();
    let deps: Vec<&str> = next
        .causal_history
        .iter()
        .map(|entry| entry.message_id.as_str())
        .collect();
    assert_eq!(deps, vec!["m2"]);
}

// Unwrap needs no prior setup: the channel comes from the message, for any number of them.
#[tokio::test]
async fn unwrap_opens_channels_from_the_message() {
    let alice = Peer::new("alice");
    let bob = Peer::new("bob");
    for n in 0..5 {
        let bytes = alice.send(&format!("ch-{n}"), &format!("m{n}")).await;
        let outcome = bob.receive(&bytes).await;
        assert_eq!(outcome.channel, format!("ch-{n}"));
        assert_eq!(outcome.status, UnwrapStatus::Delivered);
    }
    assert_eq!(bob.manager.open_channels().len(), 5);
}

// A bloom filter of the wrong size is ignored; the message is still delivered.
#[tokio::test]
async fn invalid_bloom_bytes_are_tolerated() {
    let alice = Peer::new("alice");
    alice.send(CH, "mine").await;
    let mut bob = Peer::new("bob");
    let mut message = decode_message(&bob.send(CH, "b1").await).unwrap();
    message.message_id = "b2".into();
    message.sender_id = "carol".into();
    message.bloom_filter = Some(vec![0xff; 7]);
    let outcome = alice.receive(&encode_message(&message).unwrap()).await;
    assert_eq!(outcome.status, UnwrapStatus::Delivered);
    bob.take_events();
    assert_eq!(
        alice.manager.channel_state(CH).await.unwrap().outgoing,
        vec!["mine"]
    );
}

// Oversize content is refused before any state changes; oversize bytes are refused too.
#[tokio::test]
async fn oversize_is_rejected() {
    let alice = Peer::new("alice");
    let err = alice
        .manager
        .wrap_outgoing(CH, "big", vec![7; 1024 * 1024 + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, SdsError::Codec(_)), "{err}");
    assert!(alice.log(CH).await.is_empty());
    let err = alice
        .manager
        .unwrap_received(&vec![0; 1024 * 1024 + 1])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

// Garbage bytes are a typed decode error, never a panic.
#[tokio::test]
async fn malformed_bytes_are_a_typed_error() {
    let bob = Peer::new("bob");
    let err = bob
        .manager
        .unwrap_received(&[0xff, 0xff, 0xff])
        .await
        .unwrap_err();
    assert!(matches!(err, SdsError::Codec(_)), "{err}");
}

// A message whose dependency is missing is buffered, reported, and delivered once the
// dependency arrives.
#[tokio::test]
async fn missing_dependency_buffers_then_delivers() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    let m1 = alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    let outcome = bob.receive(&m2).await;
    assert_eq!(
        outcome.status,
        UnwrapStatus::Buffered {
            missing: vec!["m1".into()]
        }
    );
    let events = bob.take_events();
    assert!(events.iter().any(|event| matches!(event,
        Event::MissingDependencies { message_id, missing, .. }
            if message_id == "m2" && missing.len() == 1 && missing[0].message_id == "m1")));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::MessageReady { .. }))
    );
    bob.receive(&m1).await;
    assert_eq!(bob.delivered(), vec!["m1", "m2"]);
}

// A chain of three arriving in reverse order is delivered in causal order at the end.
#[tokio::test]
async fn reverse_chain_cascades_in_order() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    let m1 = alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    let m3 = alice.send(CH, "m3").await;
    bob.receive(&m3).await;
    bob.receive(&m2).await;
    assert!(bob.delivered().is_empty());
    assert_eq!(
        bob.manager.channel_state(CH).await.unwrap().incoming,
        vec!["m3", "m2"]
    );
    bob.receive(&m1).await;
    assert_eq!(bob.delivered(), vec!["m1", "m2", "m3"]);
    assert!(
        bob.manager
            .channel_state(CH)
            .await
            .unwrap()
            .incoming
            .is_empty()
    );
}

// A buffered message that depends only on another buffered message is not delivered
// before it (being in the bloom filter is not being delivered).
#[tokio::test]
async fn buffered_dependency_is_not_met() {
    let config = ReliabilityConfig {
        max_causal_history: 1,
        ..test_config()
    };
    let alice = Peer::with_config("alice", config);
    let mut bob = Peer::new("bob");
    let m1 = alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    let m3 = alice.send(CH, "m3").await;
    bob.receive(&m2).await;
    assert!(matches!(
        bob.receive(&m3).await.status,
        UnwrapStatus::Buffered { .. }
    ));
    bob.receive(&m1).await;
    assert_eq!(bob.delivered(), vec!["m1", "m2", "m3"]);
}

// Marking dependencies met (fetched out of band) releases the buffered messages.
#[tokio::test]
async fn mark_dependencies_met_cascades() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    let m3 = alice.send(CH, "m3").await;
    bob.receive(&m3).await;
    bob.receive(&m2).await;
    bob.manager
        .mark_dependencies_met(CH, &["m1".to_string()])
        .await
        .unwrap();
    assert_eq!(bob.delivered(), vec!["m2", "m3"]);
    // m1 itself was fetched by the application, not delivered through SDS.
    assert_eq!(bob.log(CH).await, vec!["m2", "m3"]);
}

// A late copy of a message the application marked met is still delivered while the log
// has room for it: marking met says the application has it, not that SDS delivered it.
#[tokio::test]
async fn late_copy_of_a_met_message_is_delivered_while_the_log_has_room() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&alice.send(CH, "m2").await).await;
    bob.manager
        .mark_dependencies_met(CH, &["m1".to_string()])
        .await
        .unwrap();
    assert_eq!(bob.delivered(), vec!["m2"]);
    assert_eq!(bob.receive(&m1).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.log(CH).await, vec!["m1", "m2"]);
}

// In a full log, a late copy of a message marked met that is older than every logged
// entry is a duplicate (it would be evicted on arrival); one newer than the oldest entry
// still has its place and is delivered.
#[tokio::test]
async fn late_copy_of_a_met_message_older_than_a_full_log_is_a_duplicate() {
    let config = ReliabilityConfig {
        max_message_history: 3,
        max_causal_history: 2,
        ..test_config()
    };
    let alice = Peer::with_config("alice", config.clone());
    let mut bob = Peer::with_config("bob", config);
    let met = |id: &str| vec![id.to_string()];
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&alice.send(CH, "m2").await).await;
    bob.manager
        .mark_dependencies_met(CH, &met("m1"))
        .await
        .unwrap();
    bob.receive(&alice.send(CH, "m3").await).await;
    bob.receive(&alice.send(CH, "m4").await).await;
    assert_eq!(bob.log(CH).await, vec!["m2", "m3", "m4"]);
    assert_eq!(bob.receive(&m1).await.status, UnwrapStatus::Duplicate);

    let m5 = alice.send(CH, "m5").await;
    bob.receive(&alice.send(CH, "m6").await).await;
    bob.manager
        .mark_dependencies_met(CH, &met("m5"))
        .await
        .unwrap();
    assert_eq!(bob.log(CH).await, vec!["m3", "m4", "m6"]);
    assert_eq!(bob.receive(&m5).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.log(CH).await, vec!["m4", "m5", "m6"]);
    assert_eq!(bob.delivered(), vec!["m2", "m3", "m4", "m6", "m5"]);
}

// With a lost-dependency timeout, a message waiting too long is delivered anyway and its
// missing dependencies are reported lost; before the timeout nothing happens.
#[tokio::test]
async fn lost_dependency_timeout_delivers() {
    let config = ReliabilityConfig {
        lost_dependency_timeout_ms: Some(10_000),
        ..test_config()
    };
    let alice = Peer::new("alice");
    let mut bob = Peer::with_config("bob", config);
    alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    bob.receive(&m2).await;
    bob.take_events();
    bob.clock.advance(9_999);
    bob.manager.sweep_incoming().await;
    assert!(bob.take_events().is_empty());
    bob.clock.advance(1);
    bob.manager.sweep_incoming().await;
    let events = bob.take_events();
    assert!(events.contains(&Event::DependenciesLost {
        channel: CH.into(),
        message_id: "m2".into(),
        lost: vec!["m1".into()],
    }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MessageReady { message_id, .. } if message_id == "m2"))
    );
}

// Without a timeout configured (`None`; the default is 30 minutes), buffered messages wait
// forever.
#[tokio::test]
async fn no_timeout_means_waiting() {
    let config = ReliabilityConfig {
        lost_dependency_timeout_ms: None,
        ..test_config()
    };
    let alice = Peer::new("alice");
    let mut bob = Peer::with_config("bob", config);
    alice.send(CH, "m1").await;
    bob.receive(&alice.send(CH, "m2").await).await;
    bob.take_events();
    bob.clock.advance(10 * 24 * 3600 * 1000);
    bob.manager.sweep_incoming().await;
    assert!(bob.take_events().is_empty());
}

// A peer's causal history naming our message acknowledges it.
#[tokio::test]
async fn ack_via_causal_history() {
    let mut alice = Peer::new("alice");
    let bob = Peer::new("bob");
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&m1).await;
    let reply = bob.send(CH, "r1").await;
    alice.receive(&reply).await;
    let events = alice.take_events();
    assert!(events.contains(&Event::MessageAcknowledged {
        channel: CH.into(),
        message_id: "m1".into()
    }));
    assert!(
        alice
            .manager
            .channel_state(CH)
            .await
            .unwrap()
            .outgoing
            .is_empty()
    );
}

// Bloom filter hits only "possibly acknowledge" until the threshold (2) is reached.
#[tokio::test]
async fn ack_via_bloom_threshold() {
    let config = ReliabilityConfig {
        max_causal_history: 1,
        ..test_config()
    };
    let mut alice = Peer::with_config("alice", config.clone());
    let bob = Peer::with_config("bob", config.clone());
    let carol = Peer::with_config("carol", config);
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&m1).await;
    carol.receive(&m1).await;
    // Push m1 out of bob's and carol's causal history so only their bloom filters know it.
    bob.receive(&carol.send(CH, "c0").await).await;
    carol.receive(&bob.send(CH, "b0").await).await;
    let from_bob = bob.send(CH, "b1").await;
    let from_carol = carol.send(CH, "c1").await;
    for bytes in [&from_bob, &from_carol] {
        let deps = decode_message(bytes).unwrap().causal_history;
        assert!(deps.iter().all(|entry| entry.message_id != "m1"));
    }
    alice.take_events();
    alice.receive(&from_bob).await;
    let events = alice.take_events();
    assert!(events.contains(&Event::MessagePossiblyAcknowledged {
        channel: CH.into(),
        message_id: "m1".into(),
        count: 1
    }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::MessageAcknowledged { .. }))
    );
    alice.receive(&from_carol).await;
    assert!(alice.take_events().contains(&Event::MessageAcknowledged {
        channel: CH.into(),
        message_id: "m1".into()
    }));
}

// An unacknowledged message is resent after the interval (same id, clock, history and
// content; the current bloom filter), up to max_resend_attempts, then given up.
#[tokio::test]
async fn resend_then_give_up() {
    let config = ReliabilityConfig {
        max_resend_attempts: 2,
        resend_interval_ms: 1_000,
        ..test_config()
    };
    let mut alice = Peer::with_config("alice", config);
    let original = decode_message(&alice.send(CH, "m1").await).unwrap();
    alice.clock.advance(999);
    alice.manager.sweep_outgoing().await;
    assert!(alice.take_events().is_empty());
    for expected_attempt in 1..=2 {
        alice.clock.advance(1_000);
        alice.manager.sweep_outgoing().await;
        let events = alice.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        let Event::Resend {
            message_id,
            bytes,
            attempt,
            ..
        } = &events[0]
        else {
            panic!("expected a resend, got {events:?}");
        };
        assert_eq!((message_id.as_str(), *attempt), ("m1", expected_attempt));
        let mut resent = decode_message(bytes).unwrap();
        // The current filter knows m1 itself; everything else is the original message.
        let bloom = resent.bloom_filter.take().unwrap();
        let filter = sds_core::bloom::BloomFilter::from_bytes(200, 0.001, &bloom).unwrap();
        assert!(filter.contains("m1"));
        assert_eq!(
            resent,
            SdsMessage {
                bloom_filter: None,
                ..original.clone()
            }
        );
    }
    alice.clock.advance(1_000);
    alice.manager.sweep_outgoing().await;
    assert_eq!(
        alice.take_events(),
        vec![Event::MessageSendFailed {
            channel: CH.into(),
            message_id: "m1".into()
        }]
    );
    assert!(
        alice
            .manager
            .channel_state(CH)
            .await
            .unwrap()
            .outgoing
            .is_empty()
    );
}

// A sync message updates acknowledgements and the clock but is never logged or buffered.
#[tokio::test]
async fn sync_message_acks_but_is_not_logged() {
    let mut alice = Peer::new("alice");
    let bob = Peer::new("bob");
    bob.receive(&alice.send(CH, "m1").await).await;
    bob.clock.advance(60_000);
    bob.send(CH, "b1").await;
    let sync = bob.manager.build_sync_message(CH).await.unwrap();
    let decoded = decode_message(&sync).unwrap();
    assert_eq!(decoded.kind(), sds_core::codec::wire::MessageKind::Sync);
    alice.take_events();
    let outcome = alice.receive(&sync).await;
    assert_eq!(outcome.status, UnwrapStatus::SyncProcessed);
    assert!(alice.take_events().contains(&Event::MessageAcknowledged {
        channel: CH.into(),
        message_id: "m1".into()
    }));
    let state = alice.manager.channel_state(CH).await.unwrap();
    assert_eq!(state.log, vec!["m1"]);
    assert!(state.incoming.is_empty());
    assert_eq!(state.lamport, decoded.lamport_timestamp.unwrap());
}

// A manager says who it is, in its accessor and in its debug output.
#[tokio::test]
async fn a_manager_knows_its_participant_id() {
    let alice = Peer::new("alice");
    assert_eq!(alice.manager.participant_id(), "alice");
    let debug = format!("{:?}", alice.manager);
    assert!(
        debug.starts_with("ReliabilityManager") && debug.contains("\"alice\""),
        "{debug}"
    );
}

// Ephemeral messages are delivered to the caller at once and leave no trace.
#[tokio::test]
async fn ephemeral_message_leaves_no_state() {
    let alice = Peer::new("alice");
    let bob = Peer::new("bob");
    let bytes = alice
        .manager
        .wrap_ephemeral(CH, "e1", b"typing".to_vec())
        .unwrap();
    let decoded = decode_message(&bytes).unwrap();
    assert_eq!(
        (decoded.sender_id.as_str(), decoded.channel_id.as_str()),
        ("alice", CH)
    );
    assert_eq!(decoded.message_id, "e1");
    let outcome = bob.receive(&bytes).await;
    assert_eq!(outcome.channel, CH);
    assert_eq!(
        outcome.status,
        UnwrapStatus::Ephemeral {
            content: b"typing".to_vec()
        }
    );
    assert_eq!(bob.commits(), 0);
    assert_eq!(
        bob.stored_meta(CH).await,
        None,
        "nothing stored for the channel"
    );
}

// The incoming buffer is bounded: past the cap, the oldest message of the sender holding the
// most goes (here the only sender, so its own oldest), with an event.
#[tokio::test]
async fn incoming_buffer_is_bounded() {
    let config = ReliabilityConfig {
        max_incoming_buffer: 2,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    for n in 0..3 {
        bob.receive(&content_message(
            "mallory",
            &format!("m{n}"),
            10,
            &["never"],
        ))
        .await;
    }
    let events = bob.take_events();
    assert!(events.contains(&Event::MessageDropped {
        channel: CH.into(),
        message_id: "m0".into(),
        reason: DropReason::EvictedForSpace
    }));
    assert_eq!(
        bob.manager.channel_state(CH).await.unwrap().incoming,
        vec!["m1", "m2"]
    );
}

// A message missing more dependencies than allowed is dropped with an event.
#[tokio::test]
async fn missing_dependencies_are_bounded() {
    let config = ReliabilityConfig {
        max_missing_dependencies: 2,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    let outcome = bob
        .receive(&content_message("mallory", "m", 10, &["a", "b", "c"]))
        .await;
    assert_eq!(
        outcome.status,
        UnwrapStatus::Dropped(DropReason::TooManyMissingDependencies(3))
    );
    assert!(
        bob.take_events()
            .iter()
            .any(|e| matches!(e, Event::MessageDropped { .. }))
    );
    assert!(
        bob.manager
            .channel_state(CH)
            .await
            .unwrap()
            .incoming
            .is_empty()
    );
}

// Dependencies that wait in our own buffer do not count against the bound: with a
// 200-entry causal history (as @waku/sds sends), one unrepaired loss must not turn every
// later message that names the buffered ones into a drop.
#[tokio::test]
async fn buffered_dependencies_do_not_count_against_the_bound() {
    let config = ReliabilityConfig {
        max_missing_dependencies: 2,
        ..test_config()
    };
    let bob = Peer::with_config("bob", config);
    // "lost" never arrives; w0..w4 each wait for it (and for each other).
    let mut names: Vec<String> = vec!["lost".into()];
    for n in 0..5u64 {
        let id = format!("w{n}");
        let deps: Vec<&str> = names.iter().map(String::as_str).collect();
        let status = bob
            .receive(&content_message("alice", &id, 10 + n, &deps))
            .await;
        assert!(
            matches!(status.status, UnwrapStatus::Buffered { .. }),
            "{id}: {:?}",
            status.status
        );
        names.push(id);
    }
    assert_eq!(
        bob.manager.channel_state(CH).await.unwrap().incoming.len(),
        5
    );
}

// A message dropped at the bound does not cancel our own request for it: it is still
// missing, and later messages still need it.
#[tokio::test]
async fn dropped_message_keeps_our_request_for_it() {
    let config = ReliabilityConfig {
        max_missing_dependencies: 1,
        ..test_config()
    };
    let bob = Peer::with_config("bob", config);
    bob.receive(&content_message("alice", "m2", 20, &["m1"]))
        .await;
    let outcome = bob
        .receive(&content_message("alice", "m1", 10, &["x", "y"]))
        .await;
    assert!(matches!(outcome.status, UnwrapStatus::Dropped(_)));
    let stored = bob
        .store
        .inner()
        .load_channel(CH)
        .await
        .unwrap()
        .meta
        .unwrap();
    let requested: Vec<String> = stored
        .outgoing_repairs
        .into_iter()
        .map(|repair| repair.entry.unwrap().message_id)
        .collect();
    assert_eq!(requested, vec!["m1"]);
}

// Lamport follows the clock in milliseconds and always increases.
#[tokio::test]
async fn lamport_follows_clock_and_increases() {
    let alice = Peer::new("alice");
    let first = decode_message(&alice.send(CH, "m1").await).unwrap();
    assert_eq!(first.lamport_timestamp, Some(support::START_MS as u64));
    let second = decode_message(&alice.send(CH, "m2").await).unwrap();
    assert_eq!(second.lamport_timestamp, Some(support::START_MS as u64 + 1));
    let bob = Peer::new("bob");
    bob.receive(&content_message(
        "carol",
        "far",
        support::START_MS as u64 + 500_000,
        &[],
    ))
    .await;
    let reply = decode_message(&bob.send(CH, "b").await).unwrap();
    assert_eq!(
        reply.lamport_timestamp,
        Some(support::START_MS as u64 + 500_001)
    );
}

// An invalid configuration is refused when the manager is built, saying what is wrong.
#[tokio::test]
async fn invalid_config_is_refused() {
    let err = ReliabilityConfig::builder()
        .bloom_error_rate(1.5)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("bloom_error_rate"), "{err}");
    let bad = ReliabilityConfig {
        max_message_history: 0,
        ..ReliabilityConfig::default()
    };
    let err = sds_core::ReliabilityManager::builder("x")
        .config(bad)
        .build()
        .unwrap_err();
    assert!(matches!(err, SdsError::Config(_)), "{err}");
}

// A message evicted from a full log that arrives again (a late resend) is a duplicate, not
// a second delivery; a new message that is merely old is still delivered.
#[tokio::test]
async fn evicted_message_arriving_again_is_duplicate() {
    let config = ReliabilityConfig {
        max_message_history: 2,
        max_causal_history: 2,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    let first = content_message("alice", "m1", 10, &[]);
    bob.receive(&first).await;
    bob.receive(&content_message("alice", "m2", 20, &[])).await;
    bob.receive(&content_message("alice", "m3", 30, &[])).await;
    assert_eq!(bob.log(CH).await, vec!["m2", "m3"]);
    bob.take_events();
    assert_eq!(bob.receive(&first).await.status, UnwrapStatus::Duplicate);
    assert!(bob.delivered().is_empty());
    let unseen = content_message("alice", "m0", 5, &[]);
    assert_eq!(bob.receive(&unseen).await.status, UnwrapStatus::Delivered);
}
