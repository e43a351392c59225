//! The R2 queue's "latest wins" merge, end to end: what the backend holds after an outage
//! in which messages were evicted and added again, or added and evicted.

use sds_core::UnwrapStatus;

use super::node::{CH, Node, crafted, lamport_of, small_history};
use crate::case::{CaseError, CaseResult, Ctx, ensure, ensure_eq};
use crate::harness::Harness;

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|id| (*id).to_string()).collect()
}

/// A message evicted and then added again during an outage is stored, at its new place, after recovery.
pub async fn evict_then_re_add_during_an_outage_ends_stored<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let bob_backend = cx.open().await?;
    let alice = Node::start("alice", backend.clone(), small_history(2))?;
    let bob = Node::start("bob", bob_backend, small_history(2))?;

    // x is sent, acknowledged by bob's reply, and so leaves alice's outgoing buffer; only
    // then may the id be used again once it has left the log too.
    let x = alice.send(CH, "x").await?;
    bob.receive(&x).await?;
    let reply = bob.send(CH, "b1").await?;
    alice.receive(&reply).await?;
    let state = alice.state(CH).await?;
    ensure(state.outgoing.is_empty(), || {
        format!(
            "set-up: x should be acknowledged, outgoing is {:?}",
            state.outgoing
        )
    })?;
    ensure_eq(
        "stored history before the outage",
        &ids(&["x", "b1"]),
        &alice.stored_ids(CH).await?,
    )?;

    alice.outage();
    alice.clock.advance(10);
    alice.send(CH, "y").await?; // evicts x
    ensure_eq(
        "log after y",
        &ids(&["b1", "y"]),
        &alice.state(CH).await?.log,
    )?;
    alice.clock.advance(10);
    let again = alice
        .manager
        .wrap_outgoing(CH, "x", b"x again".to_vec())
        .await
        .map_err(|err| {
            CaseError::failed(format!(
                "set-up: x left the log and the outgoing buffer, so its id should be free: {}",
                crate::chain(&err)
            ))
        })?; // evicts b1
    ensure_eq(
        "log after x again",
        &ids(&["y", "x"]),
        &alice.state(CH).await?.log,
    )?;

    alice.recover();
    alice.flush(CH).await?;
    ensure_eq(
        "stored history after recovery",
        &ids(&["y", "x"]),
        &alice.stored_ids(CH).await?,
    )?;
    let stored = alice.stored(CH).await?;
    let stored_x = stored
        .history
        .iter()
        .find(|entry| entry.message_id() == "x")
        .and_then(|entry| entry.message.as_ref());
    ensure_eq(
        "stored x (the second message of that id)",
        &(Some(lamport_of(&again)?), Some(b"x again".to_vec())),
        &(
            stored_x.and_then(|m| m.lamport_timestamp),
            stored_x.and_then(|m| m.content.clone()),
        ),
    )?;

    let alice = alice.restart(cx.reopen(&backend).await?)?;
    ensure_eq(
        "log after a restart",
        &ids(&["y", "x"]),
        &alice.state(CH).await?.log,
    )
}

/// Messages added and then evicted during an outage are absent from the backend after recovery.
pub async fn add_then_evict_during_an_outage_ends_absent<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let mut bob = Node::start("bob", backend.clone(), small_history(2))?;
    bob.receive(&crafted("alice", CH, "a", 20, &[])?).await?;
    bob.receive(&crafted("alice", CH, "b", 30, &[])?).await?;
    ensure_eq(
        "stored history before the outage",
        &ids(&["a", "b"]),
        &bob.stored_ids(CH).await?,
    )?;
    bob.take_events();

    bob.outage();
    bob.receive(&crafted("alice", CH, "o", 25, &[])?).await?; // added, evicts a
    bob.receive(&crafted("alice", CH, "p", 40, &[])?).await?; // evicts o
    bob.receive(&crafted("alice", CH, "q", 5, &[])?).await?; // older than the log: in and out at once
    ensure_eq(
        "log during the outage",
        &ids(&["b", "p"]),
        &bob.state(CH).await?.log,
    )?;
    ensure_eq(
        "delivered during the outage",
        &ids(&["o", "p", "q"]),
        &bob.delivered(),
    )?;

    bob.recover();
    bob.flush(CH).await?;
    ensure_eq(
        "stored history after recovery",
        &ids(&["b", "p"]),
        &bob.stored_ids(CH).await?,
    )?;
    ensure_eq(
        "queued history changes after recovery",
        &0,
        &bob.state(CH).await?.pending_history,
    )?;

    let bob = bob.restart(cx.reopen(&backend).await?)?;
    ensure_eq(
        "log after a restart",
        &ids(&["b", "p"]),
        &bob.state(CH).await?.log,
    )
}

/// A tiny deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SEED: u64 = 0x5D5_C0DE;
const STEPS: usize = 300;

/// Through a seeded random run of receives and outages, the stored history equals the manager's log after each recovery.
pub async fn stored_history_equals_the_log_after_random_outages<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let bob = Node::start("bob", backend.clone(), small_history(5))?;
    let mut rng = Rng(SEED);
    let mut down = false;
    let mut recoveries = 0;
    for step in 0..STEPS {
        match rng.below(10) {
            // Toggle the outage now and then.
            0 => {
                down = !down;
                if down {
                    bob.outage();
                } else {
                    bob.recover();
                    recoveries += 1;
                }
            }
            // Otherwise receive a message from a small id pool: ids come back after their
            // eviction, with a new timestamp that may be older than the whole log.
            _ => {
                let id = format!("p{}", rng.below(25));
                let lamport = 1 + rng.below(1_000);
                let status = bob
                    .receive(&crafted("alice", CH, &id, lamport, &[])?)
                    .await
                    .map_err(|err| {
                        CaseError::failed(format!("step {step} (seed {SEED:#x}): {err}"))
                    })?
                    .status;
                ensure(
                    matches!(status, UnwrapStatus::Delivered | UnwrapStatus::Duplicate),
                    || format!("step {step}: receiving {id} gave {status:?}"),
                )?;
                // Every operation ends with a commit that drains the queue when it can.
                if !down {
                    bob.expect_stored_equals_log(CH, &format!("at step {step} of seed {SEED:#x}"))
                        .await?;
                }
            }
        }
    }
    bob.recover();
    bob.flush(CH).await?;
    bob.expect_stored_equals_log(CH, "at the end").await?;
    ensure(recoveries > 3, || {
        format!("set-up: seed {SEED:#x} produced only {recoveries} recoveries")
    })?;
    let log = bob.state(CH).await?.log;
    let bob = bob.restart(cx.reopen(&backend).await?)?;
    ensure_eq("log after a restart", &log, &bob.state(CH).await?.log)
}
