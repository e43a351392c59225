//! The R2 pending-write queue, end to end: a manager over the fault-injecting wrapper
//! around the backend under test.

use super::node::{CH, Node, config, crafted, crafted_sync};
use crate::case::{CaseResult, Ctx, ensure, ensure_eq};
use crate::harness::Harness;

fn outgoing_ids(meta: Option<&sds_codec::storage::ChannelMeta>) -> Vec<String> {
    meta.map(|meta| {
        meta.outgoing
            .iter()
            .filter_map(|entry| entry.decode_message().ok())
            .map(|message| message.message_id)
            .collect()
    })
    .unwrap_or_default()
}

/// Appends during an outage succeed for the caller and reach the backend after recovery, in one commit.
pub async fn outage_appends_reach_the_backend_in_one_commit_after_recovery<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend, config())?;
    alice.send(CH, "m0").await?;
    ensure_eq(
        "stored history before the outage",
        &vec!["m0".to_string()],
        &alice.stored_ids(CH).await?,
    )?;

    alice.outage();
    for id in ["m1", "m2", "m3"] {
        alice.clock.advance(1);
        // `send` fails the case if the caller sees an error.
        alice.send(CH, id).await?;
    }
    let state = alice.state(CH).await?;
    ensure_eq(
        "queued history changes during the outage",
        &3,
        &state.pending_history,
    )?;
    ensure_eq(
        "stored history during the outage",
        &vec!["m0".to_string()],
        &alice.stored_ids(CH).await?,
    )?;

    alice.recover();
    let before = alice.commits();
    alice.clock.advance(1);
    alice.send(CH, "m4").await?;
    ensure_eq(
        "commits issued by the first operation after recovery",
        &1,
        &(alice.commits() - before),
    )?;
    let want: Vec<String> = ["m0", "m1", "m2", "m3", "m4"].map(String::from).to_vec();
    ensure_eq(
        "stored history after recovery",
        &want,
        &alice.stored_ids(CH).await?,
    )?;
    let state = alice.state(CH).await?;
    ensure_eq(
        "queued history changes after recovery",
        &0,
        &state.pending_history,
    )?;
    ensure_eq("the manager's log", &want, &state.log)?;
    let stored = alice.stored(CH).await?;
    ensure_eq(
        "unacknowledged messages in the stored snapshot after recovery",
        &state.outgoing,
        &outgoing_ids(stored.meta.as_ref()),
    )?;
    ensure_eq(
        "stored Lamport clock after recovery",
        &state.lamport,
        &stored.meta.as_ref().map_or(0, |meta| meta.lamport),
    )
}

/// After an outage, an operation that changes no history of its own still writes the queued changes.
pub async fn op_without_history_change_drains_the_queue<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend, config())?;
    let from_bob = crafted("bob", CH, "b1", 1, &[])?;
    alice.receive(&from_bob).await?;

    // Three kinds of operation that add nothing to the log.
    for (round, kind) in ["empty mark_dependencies_met", "duplicate", "sync message"]
        .into_iter()
        .enumerate()
    {
        alice.outage();
        let ids = [format!("a{round}-1"), format!("a{round}-2")];
        for id in &ids {
            alice.clock.advance(1);
            alice.send(CH, id).await?;
        }
        let stored = alice.stored_ids(CH).await?;
        ensure(!stored.contains(&ids[0]), || {
            format!(
                "round {round}: {} reached the backend during the outage",
                ids[0]
            )
        })?;
        alice.recover();
        let log_before = alice.state(CH).await?.log;
        match round {
            0 => alice.flush(CH).await?,
            1 => {
                let status = alice.receive(&from_bob).await?.status;
                ensure_eq(
                    "re-receiving b1",
                    &sds_core::UnwrapStatus::Duplicate,
                    &status,
                )?;
            }
            _ => {
                let sync = crafted_sync("bob", CH, &format!("sync-{round}"), 2)?;
                let status = alice.receive(&sync).await?.status;
                ensure_eq(
                    "receiving a sync",
                    &sds_core::UnwrapStatus::SyncProcessed,
                    &status,
                )?;
            }
        }
        ensure_eq(
            format!("the log after the {kind} (it adds nothing)"),
            &log_before,
            &alice.state(CH).await?.log,
        )?;
        alice
            .expect_stored_equals_log(CH, &format!("after a {kind} following an outage"))
            .await?;
        ensure_eq(
            format!("queued history changes after the {kind}"),
            &0,
            &alice.state(CH).await?.pending_history,
        )?;
    }
    Ok(())
}

/// A snapshot save missed during an outage is repaired by the next successful commit.
pub async fn missed_snapshot_is_repaired_by_the_next_commit<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend, config())?;
    alice.send(CH, "m1").await?;

    alice
        .faults
        .fail_once(sds_core::persistence::fault::Operation::SaveChannelMeta);
    alice.clock.advance(1);
    alice.send(CH, "m2").await?;
    let stored = alice.stored(CH).await?;
    ensure_eq(
        "stored unacknowledged messages after the failed save",
        &vec!["m1".to_string()],
        &outgoing_ids(stored.meta.as_ref()),
    )?;

    alice.flush(CH).await?;
    let state = alice.state(CH).await?;
    let stored = alice.stored(CH).await?;
    ensure_eq(
        "stored unacknowledged messages after the next commit",
        &state.outgoing,
        &outgoing_ids(stored.meta.as_ref()),
    )?;
    ensure_eq(
        "stored Lamport clock after the next commit",
        &state.lamport,
        &stored.meta.as_ref().map_or(0, |meta| meta.lamport),
    )?;
    alice
        .expect_stored_equals_log(CH, "after the next commit")
        .await
}
