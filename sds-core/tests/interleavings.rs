//! Property tests: honest traffic interleaved at random with duplicates, hostile floods and
//! backend outages.
//!
//! Whatever the interleaving, every honest message is delivered exactly once and in causal
//! order, and once the backend is back the stored state equals the memory state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use sds_core::codec::wire::{HistoryEntry, SdsMessage, encode_message};
use sds_core::persistence::fault::Operation;
use sds_core::{Clock, Event};
use support::{Peer, START_MS, crafted_message, new_store};

const CHANNEL: &str = "room";
const HONEST_MESSAGES: usize = 24;

/// One honest message as the observer will receive it, with its causal dependencies.
struct Honest {
    id: String,
    bytes: Vec<u8>,
    deps: Vec<String>,
}

/// Alice and Bob talk over a perfect network; the observer receives their messages later,
/// in whatever order and multiplicity a test case picks.
async fn honest_conversation() -> Vec<Honest> {
    let alice = Peer::new("alice");
    let bob = Peer::new("bob");
    alice.manager.join_channel(CHANNEL).await.unwrap();
    bob.manager.join_channel(CHANNEL).await.unwrap();
    let mut conversation = Vec::new();
    for n in 0..HONEST_MESSAGES {
        let (speaker, listener) = if n % 3 == 2 {
            (&bob, &alice)
        } else {
            (&alice, &bob)
        };
        speaker.clock.advance(1_000);
        listener.clock.advance(1_000);
        let id = format!("honest-{n}");
        let bytes = speaker.send(CHANNEL, &id).await;
        listener.receive(&bytes).await;
        let message = sds_core::codec::wire::decode_message(&bytes).unwrap();
        conversation.push(Honest {
            id,
            bytes,
            deps: message
                .causal_history
                .iter()
                .map(|entry| entry.message_id.clone())
                .collect(),
        });
    }
    conversation
}

/// What the network does next to the observer.
#[derive(Debug, Clone)]
enum Action {
    /// A copy of honest message `n` arrives (first copies are all in the schedule; these
    /// are extra duplicates).
    Duplicate(usize),
    /// `count` attacker messages, each naming ids nobody will ever send.
    Flood(usize),
    /// An attacker sync naming many unknown ids, carrying an all-ones bloom filter and
    /// asking for every honest id.
    HostileSync,
    /// An attacker message with the largest Lamport timestamp there is.
    FutureClock,
    /// An attacker message for a channel the observer never joined.
    UnjoinedChannel,
    /// The backend fails every commit from now on.
    OutageStarts,
    /// The backend works again.
    OutageEnds,
    /// Time passes (ms) and the maintenance passes run.
    Tick(i64),
    /// The observer itself sends.
    ObserverSends,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..HONEST_MESSAGES).prop_map(Action::Duplicate),
        2 => (1usize..300).prop_map(Action::Flood),
        1 => Just(Action::HostileSync),
        1 => Just(Action::FutureClock),
        1 => Just(Action::UnjoinedChannel),
        1 => Just(Action::OutageStarts),
        1 => Just(Action::OutageEnds),
        2 => (1i64..90_000).prop_map(Action::Tick),
        1 => Just(Action::ObserverSends),
    ]
}

/// The honest first copies in a random order, with actions spliced in at random places.
fn schedule() -> impl Strategy<Value = Vec<Result<usize, Action>>> {
    let order = Just((0..HONEST_MESSAGES).collect::<Vec<_>>()).prop_shuffle();
    let actions = prop::collection::vec((0..=HONEST_MESSAGES, action()), 0..40);
    (order, actions).prop_map(|(order, actions)| {
        let mut slots: Vec<Vec<Action>> = vec![Vec::new(); HONEST_MESSAGES + 1];
        for (slot, action) in actions {
            slots[slot].push(action);
        }
        let mut schedule = Vec::new();
        for (position, honest) in order.into_iter().enumerate() {
            schedule.extend(slots[position].drain(..).map(Err));
            schedule.push(Ok(honest));
        }
        schedule.extend(slots[HONEST_MESSAGES].drain(..).map(Err));
        schedule
    })
}

fn attacker_message(id: String, channel: &str, lamport: u64, unknown_deps: usize) -> Vec<u8> {
    let deps: Vec<String> = (0..unknown_deps)
        .map(|n| format!("{id}-ghost-{n}"))
        .collect();
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    encode_message(&crafted_message("mallory", channel, &id, lamport, &deps)).unwrap()
}

/// The byte length of a filter with the test configuration's parameters.
fn all_ones_filter_len() -> usize {
    let config = support::test_config();
    sds_core::bloom::BloomFilter::new(config.bloom_capacity, config.bloom_error_rate)
        .unwrap()
        .to_bytes()
        .len()
}

fn hostile_sync(id: String, honest: &[Honest]) -> Vec<u8> {
    let message = SdsMessage {
        sender_id: "mallory".into(),
        message_id: id.clone(),
        channel_id: CHANNEL.into(),
        lamport_timestamp: Some(START_MS as u64),
        causal_history: (0..200)
            .map(|n| HistoryEntry {
                message_id: format!("{id}-ghost-{n}"),
                retrieval_hint: None,
                sender_id: Some("mallory".into()),
            })
            .collect(),
        // All ones: it "contains" every id.
        bloom_filter: Some(vec![0xff; all_ones_filter_len()]),
        repair_request: honest
            .iter()
            .map(|message| HistoryEntry {
                message_id: message.id.clone(),
                retrieval_hint: None,
                sender_id: None,
            })
            .collect(),
        content: None,
    };
    encode_message(&message).unwrap()
}

async fn run_case(conversation: &[Honest], schedule: Vec<Result<usize, Action>>) {
    let mut observer = Peer::with(
        "observer",
        support::test_config(),
        new_store(),
        sds_core::ManualClock::new(START_MS + 100_000),
    );
    observer.manager.join_channel(CHANNEL).await.unwrap();
    // Receive as an application in CHANNEL only, so traffic for "other" is refused.
    observer.joins_on_receive = false;
    let mut hostile = 0usize;
    let mut sent_by_observer = 0usize;
    let mut delivered = Vec::new();
    let drain = |observer: &mut Peer, delivered: &mut Vec<String>| {
        for event in observer.take_events() {
            if let Event::MessageReady { message_id, .. } = event {
                delivered.push(message_id);
            }
        }
    };
    for step in schedule {
        match step {
            Ok(n) | Err(Action::Duplicate(n)) => {
                observer.receive(&conversation[n].bytes).await;
            }
            Err(Action::Flood(count)) => {
                for _ in 0..count {
                    hostile += 1;
                    let now = observer.clock.now_ms() as u64;
                    let bytes = attacker_message(format!("flood-{hostile}"), CHANNEL, now, 3);
                    observer.receive(&bytes).await;
                }
            }
            Err(Action::HostileSync) => {
                hostile += 1;
                observer
                    .receive(&hostile_sync(format!("sync-{hostile}"), conversation))
                    .await;
            }
            Err(Action::FutureClock) => {
                hostile += 1;
                let bytes = attacker_message(format!("future-{hostile}"), CHANNEL, u64::MAX, 0);
                observer.receive(&bytes).await;
            }
            Err(Action::UnjoinedChannel) => {
                hostile += 1;
                let bytes = attacker_message(format!("elsewhere-{hostile}"), "other", 1, 0);
                observer.receive(&bytes).await;
            }
            Err(Action::OutageStarts) => observer.store.fail_always(Operation::Commit),
            Err(Action::OutageEnds) => observer.store.clear_all(),
            Err(Action::Tick(ms)) => {
                observer.clock.advance(ms);
                observer.manager.sweep_outgoing().await;
                observer.manager.sweep_incoming().await;
                observer.manager.sweep_repairs().await;
            }
            Err(Action::ObserverSends) => {
                sent_by_observer += 1;
                observer
                    .send(CHANNEL, &format!("observer-{sent_by_observer}"))
                    .await;
            }
        }
        drain(&mut observer, &mut delivered);
    }

    // Every honest message exactly once, and each after its honest dependencies.
    let honest_ids: HashSet<&str> = conversation.iter().map(|m| m.id.as_str()).collect();
    let honest_delivered: Vec<&String> = delivered
        .iter()
        .filter(|id| honest_ids.contains(id.as_str()))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &honest_delivered {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for message in conversation {
        assert_eq!(
            counts.get(message.id.as_str()).copied().unwrap_or(0),
            1,
            "{} must be delivered exactly once (delivered: {delivered:?})",
            message.id
        );
    }
    let position: HashMap<&str, usize> = honest_delivered
        .iter()
        .enumerate()
        .map(|(at, id)| (id.as_str(), at))
        .collect();
    for message in conversation {
        for dep in message
            .deps
            .iter()
            .filter(|dep| honest_ids.contains(dep.as_str()))
        {
            assert!(
                position[dep.as_str()] < position[message.id.as_str()],
                "{} was delivered before its dependency {dep}",
                message.id
            );
        }
    }
    // Nothing for the unjoined channel was opened.
    assert_eq!(observer.manager.open_channels(), vec![CHANNEL.to_string()]);

    // The backend comes back; once the retry backoff has passed, a sweep writes everything.
    observer.store.clear_all();
    observer.clock.advance(120_000);
    observer.manager.sweep_outgoing().await;
    let memory = observer.state(CHANNEL).await;
    assert_eq!(memory.pending_history, 0, "the R2 queue drained");
    let restarted = observer.restart();
    restarted.manager.join_channel(CHANNEL).await.unwrap();
    let stored = restarted.state(CHANNEL).await;
    assert_eq!(stored.log, memory.log, "stored history equals memory");
    assert_eq!(
        stored.outgoing, memory.outgoing,
        "stored outgoing equals memory"
    );
    assert_eq!(
        stored.incoming, memory.incoming,
        "stored incoming equals memory"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Honest messages in any order, with duplicates, floods, hostile syncs, a pinned
    /// clock attempt, traffic for other channels and backend outages in between: each is
    /// delivered once, in causal order, and the stored state matches memory afterwards.
    #[test]
    fn honest_traffic_survives_any_interleaving(schedule in schedule()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let conversation = honest_conversation().await;
            run_case(&conversation, schedule).await;
        });
    }
}
