//! Rust participants against `@waku/sds` 0.0.8 participants, on one virtual clock.
//!
//! Needs Node.js and npm: the first test installs the pinned package into
//! `sds-interop/js/node_modules` and fails (never skips) when it cannot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::wire::{HistoryEntry, MessageKind, SdsMessage, decode_message};
use sds_core::repair_timing::{request_at, response_at};
use sds_core::{ChannelState, Event, ManualClock, ReliabilityConfig, UnwrapStatus};
use sds_interop::network::{Kind, Report, SimConfig, simulate};
use sds_interop::{
    BroadcastKind, JsEvent, JsNetwork, JsOptions, JsRepairOptions, RustPeer, delivered_ids,
    message_id,
};
use sha2::{Digest, Sha256};

const CH: &str = "interop";
const START: i64 = 1_700_000_000_000;
/// @waku/sds 0.0.8 repair defaults; the Rust side is configured to match.
const T_MIN: u64 = 30_000;
const T_MAX: u64 = 120_000;

/// The JavaScript side at `START`, with these participants.
async fn js_with(peers: &[&str], options: &JsOptions) -> JsNetwork {
    let mut js = JsNetwork::spawn()
        .await
        .expect("the @waku/sds driver starts");
    assert_eq!(js.sds_version(), "0.0.8");
    js.set_time(START).await.unwrap();
    for peer in peers {
        js.create(peer, CH, options).await.unwrap();
    }
    js
}

/// Moves both sides' clocks forward.
async fn advance(clock: &ManualClock, js: &mut JsNetwork, delta_ms: i64) -> i64 {
    clock.advance(delta_ms);
    let now = sds_core::Clock::now_ms(clock);
    js.set_time(now).await.unwrap();
    now
}

/// The channel's state at a Rust participant.
async fn state(peer: &RustPeer) -> ChannelState {
    peer.manager.channel_state(CH).await.unwrap()
}

fn payload(label: &str) -> Vec<u8> {
    format!("{label}: interop payload").into_bytes()
}

fn decode(bytes: &[u8]) -> SdsMessage {
    decode_message(bytes).expect("wire bytes decode")
}

fn ids_of(entries: &[HistoryEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| entry.message_id.clone())
        .collect()
}

fn js_delivered(events: &[JsEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            JsEvent::Delivered { message_id, .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}

fn js_acknowledged(events: &[JsEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            JsEvent::Acknowledged { message_id } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}

fn rust_acknowledged(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageAcknowledged { message_id, .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}

fn repair_config() -> ReliabilityConfig {
    ReliabilityConfig::builder()
        .repair_t_min_ms(T_MIN)
        .repair_t_max_ms(T_MAX)
        .repair_response_groups(1)
        .build()
        .unwrap()
}

fn js_repair_options() -> JsOptions {
    JsOptions {
        repair: Some(JsRepairOptions {
            t_min_ms: Some(T_MIN),
            t_max_ms: Some(T_MAX),
            response_groups: Some(1),
            buffer_size: None,
        }),
        ..JsOptions::default()
    }
}

// Our messages decode at @waku/sds and are delivered there in send order, with the causal
// history, Lamport timestamps and content we sent.
#[tokio::test]
async fn rust_sends_js_delivers_in_order() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-b"], &JsOptions::default()).await;
    let alice = RustPeer::new("rust-a", ReliabilityConfig::default(), &clock).unwrap();

    let mut sent = Vec::new();
    for i in 0..5 {
        advance(&clock, &mut js, 1_000).await;
        let body = payload(&format!("rust {i}"));
        let (id, bytes) = alice.send(CH, &body).await.unwrap();
        assert_eq!(id, message_id(&body));
        sent.push((id, body, bytes));
    }
    let mut delivered = Vec::new();
    for (_, _, bytes) in &sent {
        advance(&clock, &mut js, 100).await;
        let reply = js.receive("js-b", bytes).await.unwrap();
        delivered.extend(reply.events);
    }
    let ids: Vec<String> = sent.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(js_delivered(&delivered), ids);
    let mut index = 0;
    for event in &delivered {
        if let JsEvent::Delivered {
            message_id,
            sender_id,
            lamport,
            content,
            deps,
        } = event
        {
            let (id, body, bytes) = &sent[index];
            assert_eq!(message_id, id);
            assert_eq!(sender_id.as_deref(), Some("rust-a"));
            assert_eq!(*lamport, decode(bytes).lamport_timestamp);
            assert_eq!(content, body);
            assert_eq!(deps, &ids[..index], "causal history = earlier messages");
            index += 1;
        }
    }
    let state = js.state("js-b").await.unwrap();
    assert_eq!(state.local_history, ids);
    assert!(state.incoming.is_empty());
    js.shutdown().await.unwrap();
}

// Arrival in reverse order: the Rust side buffers and delivers in causal order.
#[tokio::test]
async fn js_sends_rust_delivers_in_order() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-a"], &JsOptions::default()).await;
    let mut bob = RustPeer::new("rust-b", ReliabilityConfig::default(), &clock).unwrap();

    let mut sent = Vec::new();
    for i in 0..5 {
        advance(&clock, &mut js, 1_000).await;
        let body = payload(&format!("js {i}"));
        let reply = js.send("js-a", &body).await.unwrap();
        assert_eq!(
            reply.message_id.as_deref(),
            Some(message_id(&body).as_str())
        );
        assert_eq!(reply.resend, Some(false));
        let bytes = reply.single_broadcast().unwrap();
        let wire = decode(&bytes);
        assert_eq!(wire.kind(), MessageKind::Content);
        assert_eq!(wire.sender_id, "js-a");
        sent.push((message_id(&body), body, bytes));
    }
    let ids: Vec<String> = sent.iter().map(|(id, _, _)| id.clone()).collect();
    for (i, (id, _, bytes)) in sent.iter().enumerate().rev() {
        advance(&clock, &mut js, 100).await;
        let status = bob.receive(bytes).await.unwrap().status;
        if i == 0 {
            assert_eq!(status, UnwrapStatus::Delivered);
        } else {
            assert!(
                matches!(status, UnwrapStatus::Buffered { .. }),
                "{id}: {status:?}"
            );
        }
    }
    let events = bob.take_events();
    assert_eq!(delivered_ids(&events), ids);
    let contents: Vec<Vec<u8>> = events
        .iter()
        .filter_map(|event| match event {
            Event::MessageReady {
                content, sender_id, ..
            } => {
                assert_eq!(sender_id, "js-a");
                Some(content.clone())
            }
            _ => None,
        })
        .collect();
    let bodies: Vec<Vec<u8>> = sent.iter().map(|(_, body, _)| body.clone()).collect();
    assert_eq!(contents, bodies);
    let state = state(&bob).await;
    assert_eq!(state.log, ids);
    assert!(state.incoming.is_empty());
    js.shutdown().await.unwrap();
}

// Acknowledgement through causal history, in both directions, until both outgoing
// buffers are empty.
#[tokio::test]
async fn acknowledgements_both_ways() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-b"], &JsOptions::default()).await;
    let mut alice = RustPeer::new("rust-a", ReliabilityConfig::default(), &clock).unwrap();

    advance(&clock, &mut js, 1_000).await;
    let (m1, m1_bytes) = alice.send(CH, &payload("m1")).await.unwrap();
    js.receive("js-b", &m1_bytes).await.unwrap();

    advance(&clock, &mut js, 1_000).await;
    let n1_body = payload("n1");
    let reply = js.send("js-b", &n1_body).await.unwrap();
    let n1 = message_id(&n1_body);
    let n1_bytes = reply.single_broadcast().unwrap();
    assert_eq!(ids_of(&decode(&n1_bytes).causal_history), vec![m1.clone()]);
    assert_eq!(js.state("js-b").await.unwrap().outgoing, vec![n1.clone()]);

    alice.receive(&n1_bytes).await.unwrap();
    let events = alice.take_events();
    assert_eq!(rust_acknowledged(&events), vec![m1.clone()]);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::MessagePossiblyAcknowledged { .. })),
        "acknowledged by causal history, not by bloom filter: {events:?}"
    );
    assert_eq!(delivered_ids(&events), vec![n1.clone()]);
    assert!(state(&alice).await.outgoing.is_empty());

    advance(&clock, &mut js, 1_000).await;
    let (m2, m2_bytes) = alice.send(CH, &payload("m2")).await.unwrap();
    assert!(ids_of(&decode(&m2_bytes).causal_history).contains(&n1));
    let reply = js.receive("js-b", &m2_bytes).await.unwrap();
    assert_eq!(js_acknowledged(&reply.events), vec![n1.clone()]);
    assert!(
        !reply
            .events
            .iter()
            .any(|e| matches!(e, JsEvent::PossiblyAcknowledged { .. }))
    );
    assert!(js.state("js-b").await.unwrap().outgoing.is_empty());

    // m2 is acknowledged by the next message of js-b.
    advance(&clock, &mut js, 1_000).await;
    let reply = js.send("js-b", &payload("n2")).await.unwrap();
    alice
        .receive(&reply.single_broadcast().unwrap())
        .await
        .unwrap();
    assert_eq!(rust_acknowledged(&alice.take_events()), vec![m2]);
    assert!(state(&alice).await.outgoing.is_empty());
    js.shutdown().await.unwrap();
}

// Messages outside the causal-history window are acknowledged by bloom filters: two hits
// (the threshold of both implementations) make an acknowledgement. The Rust side counts
// distinct senders, so js-b repeating its filter counts once and js-c's makes the second;
// @waku/sds counts every hit, so two Rust messages do.
#[tokio::test]
async fn bloom_filter_acknowledgements_both_ways() {
    let clock = ManualClock::new(START);
    // Rust sends no causal history at all; @waku/sds one entry (0 would mean "all").
    let rust_config = ReliabilityConfig::builder()
        .max_causal_history(0)
        .build()
        .unwrap();
    let js_options = JsOptions {
        causal_history_size: Some(1),
        ..JsOptions::default()
    };
    let mut js = js_with(&["js-b", "js-c"], &js_options).await;
    let mut alice = RustPeer::new("rust-a", rust_config, &clock).unwrap();

    let mut rust_sent = Vec::new();
    for label in ["m1", "m2"] {
        advance(&clock, &mut js, 1_000).await;
        let (id, bytes) = alice.send(CH, &payload(label)).await.unwrap();
        assert!(decode(&bytes).causal_history.is_empty());
        js.receive("js-b", &bytes).await.unwrap();
        js.receive("js-c", &bytes).await.unwrap();
        rust_sent.push(id);
    }
    let (m1, m2) = (rust_sent[0].clone(), rust_sent[1].clone());

    // n1 names m2 in its one-entry history; m1 is only in its bloom filter.
    advance(&clock, &mut js, 1_000).await;
    let n1_bytes = js
        .send("js-b", &payload("n1"))
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    assert_eq!(ids_of(&decode(&n1_bytes).causal_history), vec![m2.clone()]);
    alice.receive(&n1_bytes).await.unwrap();
    let events = alice.take_events();
    assert_eq!(rust_acknowledged(&events), vec![m2]);
    assert!(events.contains(&Event::MessagePossiblyAcknowledged {
        channel: CH.into(),
        message_id: m1.clone(),
        count: 1,
    }));
    assert_eq!(state(&alice).await.outgoing, vec![m1.clone()]);

    advance(&clock, &mut js, 1_000).await;
    let n2_bytes = js
        .send("js-b", &payload("n2"))
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    assert!(!ids_of(&decode(&n2_bytes).causal_history).contains(&m1));
    alice.receive(&n2_bytes).await.unwrap();
    let events = alice.take_events();
    assert!(rust_acknowledged(&events).is_empty(), "{events:?}");
    assert_eq!(state(&alice).await.outgoing, vec![m1.clone()]);

    advance(&clock, &mut js, 1_000).await;
    let c1_bytes = js
        .send("js-c", &payload("c1"))
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    assert!(!ids_of(&decode(&c1_bytes).causal_history).contains(&m1));
    alice.receive(&c1_bytes).await.unwrap();
    assert_eq!(rust_acknowledged(&alice.take_events()), vec![m1]);
    assert!(state(&alice).await.outgoing.is_empty());

    // The other way: Rust messages carry no history, only a bloom filter with n1 and n2.
    let (n1, n2) = (message_id(&payload("n1")), message_id(&payload("n2")));
    advance(&clock, &mut js, 1_000).await;
    let (_, m3_bytes) = alice.send(CH, &payload("m3")).await.unwrap();
    let reply = js.receive("js-b", &m3_bytes).await.unwrap();
    assert!(js_acknowledged(&reply.events).is_empty());
    for id in [&n1, &n2] {
        assert!(reply.events.contains(&JsEvent::PossiblyAcknowledged {
            message_id: id.clone(),
            count: 1
        }));
    }
    advance(&clock, &mut js, 1_000).await;
    let (_, m4_bytes) = alice.send(CH, &payload("m4")).await.unwrap();
    let reply = js.receive("js-b", &m4_bytes).await.unwrap();
    assert_eq!(js_acknowledged(&reply.events), vec![n1, n2]);
    assert!(js.state("js-b").await.unwrap().outgoing.is_empty());
    js.shutdown().await.unwrap();
}

// js-a's n1 never reaches rust-r; n2 names it. rust-r asks for it at T_req, js-a (the
// sender, answering at once) and js-c (later, at T_resp) queue answers, js-a rebroadcasts.
#[tokio::test]
async fn dropped_message_repaired_via_sdsr_rust_requests_js_responds() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-a", "js-c"], &js_repair_options()).await;
    let mut rust = RustPeer::new("rust-r", repair_config(), &clock).unwrap();

    advance(&clock, &mut js, 1_000).await;
    let n1_body = payload("n1");
    let n1 = message_id(&n1_body);
    let n1_bytes = js
        .send("js-a", &n1_body)
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    js.receive("js-c", &n1_bytes).await.unwrap(); // ...and lost on the way to rust-r.

    advance(&clock, &mut js, 1_000).await;
    let n2_bytes = js
        .send("js-a", &payload("n2"))
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    js.receive("js-c", &n2_bytes).await.unwrap();
    let seen_at = advance(&clock, &mut js, 100).await;
    let status = rust.receive(&n2_bytes).await.unwrap().status;
    assert_eq!(
        status,
        UnwrapStatus::Buffered {
            missing: vec![n1.clone()]
        }
    );
    let missing = rust
        .take_events()
        .into_iter()
        .find_map(|event| match event {
            Event::MissingDependencies { missing, .. } => Some(missing),
            _ => None,
        })
        .expect("missing dependencies reported");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].sender_id.as_deref(), Some("js-a"));
    // @waku/sds history entries carry the retrieval hint its application gave (here the
    // driver's stand-in for a Waku message hash: SHA-256 of the bytes).
    assert_eq!(
        missing[0].retrieval_hint.as_deref(),
        Some(Sha256::digest(&n1_bytes).as_slice())
    );

    let t_req = request_at(seen_at, "rust-r", &n1, T_MIN, T_MAX);
    assert!(t_req >= seen_at + 30_000 && t_req < seen_at + 120_000);
    advance(&clock, &mut js, t_req - seen_at - 1).await;
    let early = rust.manager.build_sync_message(CH).await.unwrap();
    assert!(
        decode(&early).repair_request.is_empty(),
        "not due before T_req"
    );
    let now = advance(&clock, &mut js, 1).await;
    let (_, m1_bytes) = rust.send(CH, &payload("m1")).await.unwrap();
    let requests = decode(&m1_bytes).repair_request;
    assert_eq!(ids_of(&requests), vec![n1.clone()]);
    assert_eq!(requests[0].sender_id.as_deref(), Some("js-a"));

    let reply = js.receive("js-c", &m1_bytes).await.unwrap();
    let t_resp_c = reply
        .events
        .iter()
        .find_map(|event| match event {
            JsEvent::RepairResponseQueued { message_id, t_resp } if *message_id == n1 => {
                Some(*t_resp)
            }
            _ => None,
        })
        .expect("js-c queues an answer");
    assert_eq!(
        t_resp_c,
        response_at(now, "js-c", "js-a", &n1, T_MAX),
        "same T_resp formula"
    );
    let reply = js.receive("js-a", &m1_bytes).await.unwrap();
    assert!(reply.events.contains(&JsEvent::RepairRequestReceived {
        message_ids: vec![n1.clone()],
        from: "rust-r".into()
    }));
    assert!(reply.events.contains(&JsEvent::RepairResponseQueued {
        message_id: n1.clone(),
        t_resp: response_at(now, "js-a", "js-a", &n1, T_MAX),
    }));
    assert_eq!(
        response_at(now, "js-a", "js-a", &n1, T_MAX),
        now,
        "the sender answers first"
    );

    let reply = js.sweep_repairs("js-a").await.unwrap();
    assert_eq!(reply.repaired, vec![n1.clone()]);
    let repair = reply.single_broadcast().unwrap();
    assert!(matches!(
        reply.events.first(),
        Some(JsEvent::Broadcast {
            kind: BroadcastKind::Repair,
            ..
        })
    ));
    assert_eq!(decode(&repair).message_id, n1);
    assert_eq!(decode(&repair).content.as_deref(), Some(n1_body.as_slice()));

    advance(&clock, &mut js, 100).await;
    assert_eq!(
        rust.receive(&repair).await.unwrap().status,
        UnwrapStatus::Delivered
    );
    let n2 = message_id(&payload("n2"));
    assert_eq!(delivered_ids(&rust.take_events()), vec![n1, n2]);
    assert!(
        rust.manager
            .channel_state(CH)
            .await
            .unwrap()
            .incoming
            .is_empty()
    );
    js.shutdown().await.unwrap();
}

// rust-a's m1 never reaches js-b; m2 names it. js-b asks at its T_req (same formula as
// ours), rust-a (the sender) answers at once through its repair sweep.
#[tokio::test]
async fn dropped_message_repaired_via_sdsr_js_requests_rust_responds() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-b"], &js_repair_options()).await;
    let mut rust = RustPeer::new("rust-a", repair_config(), &clock).unwrap();

    advance(&clock, &mut js, 1_000).await;
    let (m1, _lost) = rust.send(CH, &payload("m1")).await.unwrap();
    advance(&clock, &mut js, 1_000).await;
    let (m2, m2_bytes) = rust.send(CH, &payload("m2")).await.unwrap();
    let seen_at = advance(&clock, &mut js, 100).await;
    let reply = js.receive("js-b", &m2_bytes).await.unwrap();
    assert!(js_delivered(&reply.events).is_empty());
    let t_req = reply
        .events
        .iter()
        .find_map(|event| match event {
            JsEvent::RepairRequestQueued { message_id, t_req } if *message_id == m1 => Some(*t_req),
            _ => None,
        })
        .expect("js-b queues a repair request");
    assert_eq!(
        t_req,
        request_at(seen_at, "js-b", &m1, T_MIN, T_MAX),
        "same T_req formula"
    );
    let state = js.state("js-b").await.unwrap();
    assert_eq!(state.incoming, vec![m2.clone()]);
    assert_eq!(state.outgoing_repairs.len(), 1);

    advance(&clock, &mut js, t_req - seen_at).await;
    let reply = js.send("js-b", &payload("n1")).await.unwrap();
    let n1_bytes = reply.single_broadcast().unwrap();
    let requests = decode(&n1_bytes).repair_request;
    assert_eq!(ids_of(&requests), vec![m1.clone()]);
    assert_eq!(requests[0].sender_id.as_deref(), Some("rust-a"));
    // (0.0.8 emits "sds:repair:request-sent" only for requests carried by sync messages.)

    advance(&clock, &mut js, 100).await;
    rust.receive(&n1_bytes).await.unwrap();
    rust.take_events();
    rust.manager.sweep_repairs().await;
    let repair = rust
        .take_events()
        .into_iter()
        .find_map(|event| match event {
            Event::RepairReady {
                message_id, bytes, ..
            } if message_id == m1 => Some(bytes),
            _ => None,
        })
        .expect("the sender answers at once");

    advance(&clock, &mut js, 100).await;
    let reply = js.receive("js-b", &repair).await.unwrap();
    assert_eq!(js_delivered(&reply.events), vec![m1.clone()]);
    let reply = js.sweep_incoming("js-b").await.unwrap();
    assert_eq!(js_delivered(&reply.events), vec![m2.clone()]);
    let state = js.state("js-b").await.unwrap();
    assert!(state.incoming.is_empty());
    assert!(state.outgoing_repairs.is_empty());
    assert!(state.local_history.starts_with(&[m1, m2]));
    js.shutdown().await.unwrap();
}

// Sync messages of each side are understood by the other: they acknowledge, move the
// clock, and reveal a lost tail as missing dependencies.
#[tokio::test]
async fn sync_messages_both_ways() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-b"], &JsOptions::default()).await;
    let mut alice = RustPeer::new("rust-a", ReliabilityConfig::default(), &clock).unwrap();

    // 0.0.8 sends no sync message while it has neither history nor repair requests.
    let reply = js.send_sync("js-b").await.unwrap();
    assert_eq!(reply.sent, Some(false));
    assert!(reply.broadcasts().is_empty());

    advance(&clock, &mut js, 1_000).await;
    let (m1, m1_bytes) = alice.send(CH, &payload("m1")).await.unwrap();
    js.receive("js-b", &m1_bytes).await.unwrap();

    // JS -> Rust: the sync acknowledges m1 and moves the clock; it is not delivered.
    advance(&clock, &mut js, 1_000).await;
    let lamport_before = js.state("js-b").await.unwrap().lamport;
    let reply = js.send_sync("js-b").await.unwrap();
    assert_eq!(reply.sent, Some(true));
    let sync = reply.single_broadcast().unwrap();
    let wire = decode(&sync);
    assert_eq!(wire.kind(), MessageKind::Sync);
    assert_eq!(ids_of(&wire.causal_history), vec![m1.clone()]);
    let lamport = wire.lamport_timestamp.unwrap();
    assert!(lamport > lamport_before, "its sync messages tick the clock");
    assert_eq!(js.state("js-b").await.unwrap().lamport, lamport);
    assert_eq!(
        alice.receive(&sync).await.unwrap().status,
        UnwrapStatus::SyncProcessed
    );
    let events = alice.take_events();
    assert_eq!(rust_acknowledged(&events), vec![m1]);
    assert!(delivered_ids(&events).is_empty());
    let state = state(&alice).await;
    assert!(state.outgoing.is_empty());
    assert!(state.lamport >= lamport);

    // Rust -> JS: the sync acknowledges n1.
    advance(&clock, &mut js, 1_000).await;
    let n1_bytes = js
        .send("js-b", &payload("n1"))
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    alice.receive(&n1_bytes).await.unwrap();
    advance(&clock, &mut js, 1_000).await;
    let sync = alice.manager.build_sync_message(CH).await.unwrap();
    assert_eq!(decode(&sync).kind(), MessageKind::Sync);
    let reply = js.receive("js-b", &sync).await.unwrap();
    assert!(reply.events.iter().any(|event| matches!(
        event,
        JsEvent::SyncReceived { sender_id, .. } if sender_id == "rust-a"
    )));
    assert_eq!(
        js_acknowledged(&reply.events),
        vec![message_id(&payload("n1"))]
    );
    assert!(js_delivered(&reply.events).is_empty());
    assert!(js.state("js-b").await.unwrap().outgoing.is_empty());

    // A sync message reveals a lost tail, on both sides.
    advance(&clock, &mut js, 1_000).await;
    let (m2, _lost) = alice.send(CH, &payload("m2")).await.unwrap();
    let sync = alice.manager.build_sync_message(CH).await.unwrap();
    let reply = js.receive("js-b", &sync).await.unwrap();
    assert!(reply.events.iter().any(|event| matches!(
        event,
        JsEvent::Missing { entries } if entries.iter().any(|e| e.message_id == m2)
    )));
    advance(&clock, &mut js, 1_000).await;
    let n2 = message_id(&payload("n2"));
    js.send("js-b", &payload("n2")).await.unwrap(); // lost on the way to rust-a
    let sync = js
        .send_sync("js-b")
        .await
        .unwrap()
        .single_broadcast()
        .unwrap();
    assert_eq!(
        alice.receive(&sync).await.unwrap().status,
        UnwrapStatus::SyncProcessed
    );
    assert!(alice.take_events().iter().any(|event| matches!(
        event,
        Event::MissingDependencies { missing, .. } if ids_of(missing).contains(&n2)
    )));
    js.shutdown().await.unwrap();
}

// Ephemeral messages reach the other side's application at once and leave no trace in
// its history or buffers, both ways.
#[tokio::test]
async fn ephemeral_message_both_ways() {
    let clock = ManualClock::new(START);
    let mut js = js_with(&["js-b"], &JsOptions::default()).await;
    let mut alice = RustPeer::new("rust-a", ReliabilityConfig::default(), &clock).unwrap();

    advance(&clock, &mut js, 1_000).await;
    let before = js.state("js-b").await.unwrap();
    let body = payload("typing...");
    let bytes = alice
        .manager
        .wrap_ephemeral(CH, message_id(&body), body.clone())
        .unwrap();
    assert_eq!(decode(&bytes).kind(), MessageKind::Ephemeral);
    let reply = js.receive("js-b", &bytes).await.unwrap();
    assert_eq!(
        reply.events,
        vec![JsEvent::Ephemeral {
            message_id: message_id(&body),
            sender_id: "rust-a".into(),
            content: body,
        }]
    );
    assert_eq!(js.state("js-b").await.unwrap(), before, "no state touched");

    let body = payload("online");
    let reply = js.send_ephemeral("js-b", &body).await.unwrap();
    assert_eq!(
        reply.message_id.as_deref(),
        Some(message_id(&body).as_str())
    );
    assert!(matches!(
        reply.events.first(),
        Some(JsEvent::Broadcast {
            kind: BroadcastKind::Ephemeral,
            ..
        })
    ));
    let bytes = reply.single_broadcast().unwrap();
    let wire = decode(&bytes);
    assert_eq!(wire.kind(), MessageKind::Ephemeral);
    assert!(wire.causal_history.is_empty() && wire.bloom_filter.is_none());
    let unwrapped = alice.receive(&bytes).await.unwrap();
    assert_eq!(unwrapped.status, UnwrapStatus::Ephemeral { content: body });
    assert!(alice.take_events().is_empty());
    let state = state(&alice).await;
    assert!(state.log.is_empty() && state.outgoing.is_empty() && state.incoming.is_empty());
    js.shutdown().await.unwrap();
}

const MIXED: [(&str, Kind); 4] = [
    ("rust-1", Kind::Rust),
    ("js-1", Kind::Js),
    ("rust-2", Kind::Rust),
    ("js-2", Kind::Js),
];

/// The seed of a mixed run: `default`, or `SDS_INTEROP_SEED` to explore others.
fn seed(default: u64) -> u64 {
    std::env::var("SDS_INTEROP_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn check_mixed(report: &Report) {
    eprintln!("{report}");
    let shortfalls = report.rust_shortfalls();
    assert!(
        shortfalls.is_empty(),
        "the Rust participants missed the target:\n{}\n{report}",
        shortfalls.join("\n")
    );
}

// 2 Rust + 2 @waku/sds participants, 200 messages each, no loss: our side delivers all
// 600 of the others' messages once, in causal order, and drains its outgoing buffers.
#[tokio::test]
async fn two_rust_two_js_no_loss() {
    let report = simulate(&SimConfig::new(seed(11), 0.0), &MIXED)
        .await
        .unwrap();
    check_mixed(&report);
}

// The same at 15% loss with 10% of copies delayed 1-8 s: our side still delivers all 600
// exactly once in causal order and drains its outgoing buffers, whatever the JS side does.
#[tokio::test]
async fn two_rust_two_js_15_percent_loss() {
    let report = simulate(&SimConfig::new(seed(15), 0.15), &MIXED)
        .await
        .unwrap();
    check_mixed(&report);
}
