//! Restart survival: state committed by one manager is what a fresh manager, over a
//! reopened backend instance, starts from.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use sds_codec::storage::{ChannelData, ChannelMeta};
use sds_codec::wire::{HistoryEntry, SdsMessage};
use sds_core::persistence::Persistence as _;
use sds_core::repair_timing::response_at;
use sds_core::{Event, RetrievalHintProvider, UnwrapStatus};

use super::expect_loaded;
use super::fixtures::{append, data, full_meta, logged, logged_with_hint};
use super::node::{
    CH, Node, START_MS, config, crafted, crafted_message, crafted_sync, decoded, encoded,
    lamport_of, small_history,
};
use crate::case::{CaseResult, Context as _, Ctx, ensure, ensure_eq};
use crate::harness::Harness;

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|id| (*id).to_string()).collect()
}

/// Everything committed is there, unchanged, in a new backend instance on the same storage and namespace.
pub async fn committed_state_survives_reopen<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let mut expected = Vec::new();
    for (i, channel) in ["one", "two", "three"].into_iter().enumerate() {
        let mut meta = full_meta(channel);
        meta.lamport += i as u64;
        let history = vec![
            logged(channel, "a", 1),
            logged_with_hint(channel, "b", 2, b"given"),
            logged(channel, "c", 3),
        ];
        backend
            .commit(channel, Some(&meta), Some(&append(history.clone())))
            .await
            .context(format!("commit to {channel}"))?;
        backend
            .set_retrieval_hint(channel, "c", b"set later")
            .await
            .context("set_retrieval_hint")?;
        let mut history = history;
        history[2].retrieval_hint = Some(b"set later".to_vec());
        expected.push((channel, data(meta, history)));
    }
    backend.drop_channel("two").await.context("drop two")?;
    expected[1].1 = ChannelData::empty();

    let reopened = cx.reopen(&backend).await?;
    for (channel, want) in &expected {
        expect_loaded(&*reopened, channel, want, "in a reopened instance").await?;
    }
    Ok(())
}

/// Unacknowledged messages are resent after a restart with the bytes first sent.
pub async fn outgoing_buffer_survives_restart<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend.clone(), config())?;
    let first = alice.send(CH, "m1").await?;
    alice.clock.advance(1);
    let second = alice.send(CH, "m2").await?;

    let mut alice = alice.restart(cx.reopen(&backend).await?)?;
    alice
        .manager
        .ensure_channel(CH)
        .await
        .context("ensure_channel after the restart")?;
    ensure_eq(
        "unacknowledged after a restart",
        &ids(&["m1", "m2"]),
        &alice.state(CH).await?.outgoing,
    )?;

    let interval = i64::try_from(alice.config.resend_interval_ms).unwrap_or(i64::MAX);
    alice.clock.advance(interval);
    alice.manager.sweep_outgoing().await;
    // The resend attaches the current bloom filter; everything else is the first send.
    let strip = |message: SdsMessage| SdsMessage {
        bloom_filter: None,
        ..message
    };
    let mut resent = Vec::new();
    for event in alice.take_events() {
        if let Event::Resend {
            message_id, bytes, ..
        } = event
        {
            resent.push((message_id, strip(decoded(&bytes)?)));
        }
    }
    let want = vec![
        ("m1".to_string(), strip(decoded(&first)?)),
        ("m2".to_string(), strip(decoded(&second)?)),
    ];
    ensure_eq("messages resent after a restart", &want, &resent)
}

/// After a restart the Lamport clock continues above every timestamp before it, including one seen only in a sync message.
pub async fn lamport_stays_monotonic_across_restarts<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend.clone(), config())?;
    alice.send(CH, "m1").await?;
    alice.clock.advance(5_000);
    let before = lamport_of(&alice.send(CH, "m2").await?)?;

    let alice = alice.restart(cx.reopen(&backend).await?)?;
    ensure_eq(
        "Lamport clock after a restart",
        &before,
        &alice.state(CH).await?.lamport,
    )?;
    alice.clock.set(START_MS - 3_600_000);
    let after = lamport_of(&alice.send(CH, "m3").await?)?;
    ensure(after > before, || {
        format!("with the clock set back, a send after the restart got {after}, not above {before}")
    })?;

    // Only the snapshot remembers a timestamp seen in a sync message (it is never logged).
    // The peer's clock runs ahead of ours, but within the skew a receiver accepts
    // (`max_lamport_skew_ms`, 10 minutes by default).
    alice.clock.set(START_MS + 10_000);
    let future = u64::try_from(START_MS).unwrap_or(0) + 510_000;
    let status = alice
        .receive(&crafted_sync("bob", CH, "sync-1", future)?)
        .await?
        .status;
    ensure_eq(
        "receiving a sync message",
        &UnwrapStatus::SyncProcessed,
        &status,
    )?;
    let alice = alice.restart(cx.reopen(&backend).await?)?;
    let after_sync = lamport_of(&alice.send(CH, "m4").await?)?;
    ensure(after_sync > future, || {
        format!("after a restart a send got {after_sync}, not above the synced {future}")
    })
}

/// A buffered message and its missing dependencies survive a restart and are delivered once the dependency arrives.
pub async fn incoming_buffer_survives_restart<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let bob = Node::start("bob", backend.clone(), config())?;
    let status = bob
        .receive(&crafted("alice", CH, "m2", 2, &["m1"])?)
        .await?
        .status;
    ensure_eq(
        "receiving m2 before m1",
        &UnwrapStatus::Buffered {
            missing: ids(&["m1"]),
        },
        &status,
    )?;

    let mut bob = bob.restart(cx.reopen(&backend).await?)?;
    let state = bob.state(CH).await?;
    ensure_eq("buffered after a restart", &ids(&["m2"]), &state.incoming)?;
    ensure_eq("log after a restart", &Vec::<String>::new(), &state.log)?;

    let status = bob
        .receive(&crafted("alice", CH, "m1", 1, &[])?)
        .await?
        .status;
    ensure_eq(
        "receiving the missing m1",
        &UnwrapStatus::Delivered,
        &status,
    )?;
    ensure_eq("delivered", &ids(&["m1", "m2"]), &bob.delivered())?;
    ensure_eq(
        "buffered",
        &Vec::<String>::new(),
        &bob.state(CH).await?.incoming,
    )?;
    bob.expect_stored_equals_log(CH, "after the cascade")
        .await?;
    ensure_eq(
        "stored history",
        &ids(&["m1", "m2"]),
        &bob.stored_ids(CH).await?,
    )
}

/// SDS-R repair entries survive a restart with their absolute times to the millisecond.
pub async fn repair_buffers_survive_restart_with_absolute_times<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let bob = Node::start("bob", backend.clone(), config())?;
    let received_at = START_MS + 123;
    bob.clock.set(received_at);
    // m0 is logged; m2 misses m1 (an outgoing repair); carol asks for m0 (an incoming one).
    bob.receive(&crafted("alice", CH, "m0", 10, &[])?).await?;
    bob.receive(&crafted("alice", CH, "m2", 12, &["m1"])?)
        .await?;
    let asks = SdsMessage {
        repair_request: vec![HistoryEntry {
            message_id: "m0".to_string(),
            retrieval_hint: None,
            sender_id: Some("alice".to_string()),
        }],
        ..crafted_message("carol", CH, "c1", 13, &[])
    };
    bob.receive(&encoded(&asks)?).await?;

    let before = bob
        .stored(CH)
        .await?
        .meta
        .unwrap_or_else(ChannelMeta::empty);
    ensure(
        !before.outgoing_repairs.is_empty() && !before.incoming_repairs.is_empty(),
        || {
            format!(
                "set-up: expected both repair buffers in the stored snapshot, found {} outgoing and {} incoming",
                before.outgoing_repairs.len(),
                before.incoming_repairs.len()
            )
        },
    )?;

    bob.clock.advance(7);
    let mut bob = bob.restart(cx.reopen(&backend).await?)?;
    bob.send(CH, "b1").await?; // saves the restored snapshot again
    let after = bob
        .stored(CH)
        .await?
        .meta
        .unwrap_or_else(ChannelMeta::empty);
    ensure_eq(
        "stored outgoing repairs after a restart",
        &before.outgoing_repairs,
        &after.outgoing_repairs,
    )?;
    ensure_eq(
        "stored incoming repairs after a restart",
        &before.incoming_repairs,
        &after.incoming_repairs,
    )?;

    // And they still drive behaviour: the response is due at the time computed before.
    let t_resp = response_at(
        received_at,
        "bob",
        "alice",
        "m0",
        bob.config.repair_t_max_ms,
    );
    if t_resp > bob.clock_now() {
        bob.take_events();
        bob.clock.set(t_resp - 1);
        bob.manager.sweep_repairs().await;
        let early = repairs_ready(bob.take_events());
        ensure_eq("repairs ready before T_resp", &Vec::<String>::new(), &early)?;
    }
    bob.clock.set(t_resp.max(bob.clock_now()));
    bob.manager.sweep_repairs().await;
    ensure_eq(
        "repairs ready at T_resp",
        &ids(&["m0"]),
        &repairs_ready(bob.take_events()),
    )
}

fn repairs_ready(events: Vec<Event>) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|event| match event {
            Event::RepairReady { message_id, .. } => Some(message_id),
            _ => None,
        })
        .collect()
}

impl<B: sds_core::Persistence + 'static> Node<B> {
    fn clock_now(&self) -> i64 {
        sds_core::Clock::now_ms(&self.clock)
    }
}

/// FIFO eviction reaches the backend, and a restarted log holds exactly the newest entries.
pub async fn fifo_eviction_survives_restart<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend.clone(), small_history(3))?;
    for id in ["m1", "m2", "m3", "m4", "m5"] {
        alice.send(CH, id).await?;
        alice.clock.advance(10);
    }
    let newest = ids(&["m3", "m4", "m5"]);
    ensure_eq("log", &newest, &alice.state(CH).await?.log)?;
    ensure_eq("stored history", &newest, &alice.stored_ids(CH).await?)?;
    let alice = alice.restart(cx.reopen(&backend).await?)?;
    ensure_eq("log after a restart", &newest, &alice.state(CH).await?.log)
}

/// A delivery cascade is durable: after a restart the whole chain is logged and nothing is buffered.
pub async fn cascade_result_survives_restart<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let mut bob = Node::start("bob", backend.clone(), config())?;
    bob.receive(&crafted("alice", CH, "m3", 3, &["m2"])?)
        .await?;
    bob.receive(&crafted("alice", CH, "m2", 2, &["m1"])?)
        .await?;
    bob.receive(&crafted("alice", CH, "m1", 1, &[])?).await?;
    let chain = ids(&["m1", "m2", "m3"]);
    ensure_eq("delivered", &chain, &bob.delivered())?;

    let bob = bob.restart(cx.reopen(&backend).await?)?;
    let state = bob.state(CH).await?;
    ensure_eq("log after a restart", &chain, &state.log)?;
    ensure_eq(
        "buffered after a restart",
        &Vec::<String>::new(),
        &state.incoming,
    )?;
    let stored = bob.stored(CH).await?;
    let meta = stored.meta.clone().unwrap_or_else(ChannelMeta::empty);
    ensure(
        meta.incoming.is_empty() && meta.outgoing_repairs.is_empty(),
        || {
            format!(
                "the stored snapshot still holds {} buffered messages and {} repair requests",
                meta.incoming.len(),
                meta.outgoing_repairs.len()
            )
        },
    )?;
    ensure_eq(
        "stored history",
        &chain,
        &super::fixtures::history_ids(&stored),
    )
}

type Asked = Arc<Mutex<BTreeMap<String, usize>>>;

/// A hint provider answering `hint-<id>`, counting the questions.
fn counting_provider() -> (Arc<dyn RetrievalHintProvider>, Asked) {
    let asked: Asked = Arc::default();
    let counter = asked.clone();
    let provider = move |_channel: &str, id: &str| -> Option<Vec<u8>> {
        *counter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_string())
            .or_default() += 1;
        Some(format!("hint-{id}").into_bytes())
    };
    (Arc::new(provider), asked)
}

fn asked(counter: &Asked) -> BTreeMap<String, usize> {
    counter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn hint(id: &str) -> Option<Vec<u8>> {
    Some(format!("hint-{id}").into_bytes())
}

/// Retrieval hints are stored with their messages and reused after a restart without asking the provider again.
pub async fn retrieval_hints_survive_restart<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let (provider, first_asked) = counting_provider();
    let alice = Node::build(
        "alice",
        backend.clone(),
        config(),
        sds_core::ManualClock::new(START_MS),
        Some(provider),
    )?;
    for id in ["m1", "m2", "m3", "m4"] {
        alice.send(CH, id).await?;
        alice.clock.advance(1);
    }
    let once: BTreeMap<String, usize> = ["m1", "m2", "m3"]
        .into_iter()
        .map(|id| (id.to_string(), 1))
        .collect();
    ensure_eq(
        "hints asked before the restart",
        &once,
        &asked(&first_asked),
    )?;
    let stored = alice.stored(CH).await?;
    let stored_hints: Vec<(String, Option<Vec<u8>>)> = stored
        .history
        .iter()
        .map(|entry| (entry.message_id().to_string(), entry.retrieval_hint.clone()))
        .collect();
    let want = vec![
        ("m1".to_string(), hint("m1")),
        ("m2".to_string(), hint("m2")),
        ("m3".to_string(), hint("m3")),
        ("m4".to_string(), None),
    ];
    ensure_eq("stored hints", &want, &stored_hints)?;

    let (provider, second_asked) = counting_provider();
    let alice = alice.restart_with(cx.reopen(&backend).await?, Some(provider))?;
    let m5 = alice.send(CH, "m5").await?;
    let only_m4: BTreeMap<String, usize> = [("m4".to_string(), 1)].into_iter().collect();
    ensure_eq(
        "hints asked after the restart (stored ones are reused)",
        &only_m4,
        &asked(&second_asked),
    )?;
    let carried: Vec<(String, Option<Vec<u8>>)> = decoded(&m5)?
        .causal_history
        .into_iter()
        .map(|entry| (entry.message_id, entry.retrieval_hint))
        .collect();
    let want: Vec<(String, Option<Vec<u8>>)> = ["m1", "m2", "m3", "m4"]
        .into_iter()
        .map(|id| (id.to_string(), hint(id)))
        .collect();
    ensure_eq(
        "hints carried in the causal history after the restart",
        &want,
        &carried,
    )
}

/// A removed channel is empty after a restart, and the other channels are intact.
pub async fn removed_channel_stays_removed_after_restart<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend.clone(), config())?;
    alice.send("gone", "g1").await?;
    alice.send("kept", "k1").await?;
    alice
        .manager
        .remove_channel("gone")
        .await
        .context("remove_channel")?;
    let alice = alice.restart(cx.reopen(&backend).await?)?;
    let gone = alice.state("gone").await?;
    ensure(
        gone.log.is_empty() && gone.outgoing.is_empty() && gone.lamport == 0,
        || format!("the removed channel came back after a restart: {gone:?}"),
    )?;
    expect_loaded(
        &**alice.backend(),
        "gone",
        &ChannelData::empty(),
        "after removal and a restart",
    )
    .await?;
    let kept = alice.state("kept").await?;
    ensure_eq("the other channel's log", &ids(&["k1"]), &kept.log)?;
    ensure_eq(
        "the other channel's unacknowledged messages",
        &ids(&["k1"]),
        &kept.outgoing,
    )
}
