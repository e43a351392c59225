//! A namespace as a whole and a backend's life: listing the stored channels, closing and
//! reopening, and the manager's shutdown, reopen and split history batches over the backend.
//!
//! The listing cases need the backend to declare
//! [`BackendCapabilities::list_channels`](sds_core::persistence::BackendCapabilities); one
//! that does not is reported as not run, naming it.

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::fault::Operation;
use sds_core::persistence::{MAX_HISTORY_BATCH, Persistence};

use super::expect_loaded;
use super::fixtures::{
    append, data, evict, full_meta, logged, logged_with_hint, meta_with_lamport,
};
use super::node::{Node, config, crafted};
use crate::case::{CaseError, CaseResult, Context as _, Ctx, ensure, ensure_eq};
use crate::harness::Harness;

/// "Not run" unless the backend declares it lists its channels.
fn require_listing(backend: &impl Persistence) -> CaseResult {
    if backend.capabilities().list_channels {
        Ok(())
    } else {
        Err(CaseError::not_run(
            "list_channels",
            "the backend does not declare BackendCapabilities::list_channels",
        ))
    }
}

async fn listed(backend: &impl Persistence, when: &str) -> Result<Vec<String>, CaseError> {
    backend
        .list_channels()
        .await
        .context(format!("list_channels {when}"))
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_string()).collect()
}

/// list_channels lists exactly the channels holding a snapshot or history in its namespace, sorted by bytes, never another namespace's.
pub async fn list_channels_lists_exactly_the_stored_channels<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    require_listing(&*backend)?;
    let sibling = cx.sibling(&backend).await?;
    ensure_eq(
        "channels of a fresh namespace",
        &Vec::<String>::new(),
        &listed(&*backend, "of a fresh namespace").await?,
    )?;

    // Stored: a snapshot only, history only, both; ids empty, with NUL, non-ASCII, and
    // prefixes of each other.
    for ch in ["meta-only", "", "ü"] {
        backend
            .save_channel_meta(ch, &meta_with_lamport(1))
            .await
            .context(format!("save {ch:?}"))?;
    }
    for ch in ["history-only", "ch", "ch\u{0}2"] {
        backend
            .update_history(ch, &append([logged(ch, "m", 1)]))
            .await
            .context(format!("append to {ch:?}"))?;
    }
    backend
        .commit(
            "both",
            Some(&full_meta("both")),
            Some(&append([logged("both", "m", 1)])),
        )
        .await
        .context("commit both parts")?;
    // Not stored: a hint for nothing, an eviction of nothing, a channel emptied again.
    backend
        .set_retrieval_hint("hint-only", "m", b"hint")
        .await
        .context("hint in a channel never saved")?;
    backend
        .update_history("evict-only", &evict(&["m"]))
        .await
        .context("evict in a channel never saved")?;
    backend
        .update_history("emptied", &append([logged("emptied", "m", 1)]))
        .await
        .context("append to emptied")?;
    backend
        .update_history("emptied", &evict(&["m"]))
        .await
        .context("evict the only entry of emptied")?;
    // Another namespace of the same storage, with a channel of the same name.
    for ch in ["both", "sibling-only"] {
        sibling
            .update_history(ch, &append([logged(ch, "s", 1)]))
            .await
            .context(format!("append to {ch:?} in the sibling namespace"))?;
    }

    ensure_eq(
        "channels of the namespace",
        &names(&[
            "",
            "both",
            "ch",
            "ch\u{0}2",
            "history-only",
            "meta-only",
            "ü",
        ]),
        &listed(&*backend, "after the writes").await?,
    )?;
    ensure_eq(
        "channels of the sibling namespace",
        &names(&["both", "sibling-only"]),
        &listed(&*sibling, "of the sibling").await?,
    )?;
    let reopened = cx.reopen(&backend).await?;
    ensure_eq(
        "channels seen by a new instance on the namespace",
        &names(&[
            "",
            "both",
            "ch",
            "ch\u{0}2",
            "history-only",
            "meta-only",
            "ü",
        ]),
        &listed(&*reopened, "from a new instance").await?,
    )
}

/// A dropped channel is no longer listed, the others stay listed, and writing it again lists it again.
pub async fn dropped_channel_is_no_longer_listed<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    require_listing(&*backend)?;
    for ch in ["a", "b", "c"] {
        backend
            .commit(
                ch,
                Some(&meta_with_lamport(1)),
                Some(&append([logged(ch, "m", 1)])),
            )
            .await
            .context(format!("commit {ch:?}"))?;
    }
    backend.drop_channel("b").await.context("drop b")?;
    ensure_eq(
        "channels after dropping b",
        &names(&["a", "c"]),
        &listed(&*backend, "after dropping b").await?,
    )?;
    for ch in ["a", "c", "never-stored"] {
        backend
            .drop_channel(ch)
            .await
            .context(format!("drop {ch:?}"))?;
    }
    ensure_eq(
        "channels after dropping all",
        &Vec::<String>::new(),
        &listed(&*backend, "after dropping all").await?,
    )?;
    backend
        .save_channel_meta("b", &meta_with_lamport(2))
        .await
        .context("save b again")?;
    ensure_eq(
        "channels after writing b again",
        &names(&["b"]),
        &listed(&*backend, "after writing b again").await?,
    )
}

/// After close, a new instance on the same storage and namespace loads every snapshot, history entry and hint, and lists every channel.
pub async fn close_then_reopen_keeps_everything<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let mut expected = Vec::new();
    for ch in ["first", "second"] {
        let meta = full_meta(ch);
        backend
            .commit(
                ch,
                Some(&meta),
                Some(&append([logged(ch, "a", 1), logged(ch, "b", 2)])),
            )
            .await
            .context(format!("commit {ch:?}"))?;
        backend
            .set_retrieval_hint(ch, "b", b"hint of b")
            .await
            .context(format!("hint in {ch:?}"))?;
        expected.push((
            ch,
            data(
                meta,
                vec![
                    logged(ch, "a", 1),
                    logged_with_hint(ch, "b", 2, b"hint of b"),
                ],
            ),
        ));
    }
    backend.close().await.context("close")?;
    backend.close().await.context("close again")?;

    let reopened = cx.reopen(&backend).await?;
    for (ch, want) in &expected {
        expect_loaded(&*reopened, ch, want, "in a new instance after close").await?;
    }
    if reopened.capabilities().list_channels {
        ensure_eq(
            "channels listed after close and reopen",
            &names(&["first", "second"]),
            &listed(&*reopened, "after close and reopen").await?,
        )?;
    }
    Ok(())
}

/// Through the manager, a 2,500-entry history batch cut off after its first part leaves the old snapshot, and the retry stores exactly the log.
pub async fn manager_completes_a_split_batch_after_a_failed_part<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    const MESSAGES: u64 = 2_500;
    let backend = cx.open().await?;
    let alice = Node::start(
        "alice",
        backend,
        sds_core::ReliabilityConfig {
            max_message_history: 3_000,
            bloom_capacity: 3_000,
            ..config()
        },
    )?;
    let ch = "big";
    alice
        .manager
        .join_channel(ch)
        .await
        .context("join_channel")?;
    alice.outage();
    for n in 1..=MESSAGES {
        alice
            .receive(&crafted("carol", ch, &format!("c{n:04}"), n, &[])?)
            .await?;
    }
    let queued = alice.state(ch).await?.pending_history;
    ensure_eq("history changes queued by the outage", &2_500, &queued)?;

    // The first part lands, the second fails.
    alice.recover();
    alice.faults.fail_after(Operation::Commit, 1, 1);
    let commits = alice.commits();
    alice.flush(ch).await?;
    ensure_eq(
        "commits of the failed write",
        &2,
        &(alice.commits() - commits),
    )?;
    let partial = alice.stored(ch).await?;
    ensure_eq(
        "entries stored by the first part",
        &MAX_HISTORY_BATCH,
        &partial.history.len(),
    )?;
    ensure_eq(
        "snapshot after the first part (none yet: it goes with the last)",
        &Some(ChannelMeta::empty()),
        &partial.meta,
    )?;

    let commits = alice.commits();
    alice.flush(ch).await?;
    ensure_eq("commits of the retry", &3, &(alice.commits() - commits))?;
    alice
        .expect_stored_equals_log(ch, "after the retry")
        .await?;
    let state = alice.state(ch).await?;
    let stored_lamport = alice.stored(ch).await?.meta.map(|meta| meta.lamport);
    ensure_eq(
        "stored Lamport clock",
        &Some(state.lamport),
        &stored_lamport,
    )?;
    ensure_eq("queue after the retry", &0, &state.pending_history)
}

/// A manager shut down during an outage's backoff writes its queue and closes the backend; after a restart, reopening the stored channels finds every one with its outgoing buffer.
pub async fn shutdown_writes_everything_and_reopen_finds_every_channel<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    require_listing(&*backend)?;
    let alice = Node::start("alice", backend.clone(), config())?;
    alice.send("a", "a1").await?;
    alice.outage();
    for (ch, id) in [("a", "a2"), ("b", "b1"), ("c", "c1")] {
        alice.send(ch, id).await?;
    }
    // The outage ends but the retry backoff has not passed: nothing was written since.
    alice.faults.clear_all();
    ensure_eq(
        "stored history of a before shutdown",
        &names(&["a1"]),
        &alice.stored_ids("a").await?,
    )?;
    alice.manager.shutdown().await.context("shutdown")?;
    ensure_eq("close calls", &1, &alice.faults.calls(Operation::Close))?;
    let refused = alice.manager.wrap_outgoing("a", "a3", b"x".to_vec()).await;
    ensure(matches!(refused, Err(sds_core::SdsError::ShutDown)), || {
        format!("an operation after shutdown should fail as ShutDown, got {refused:?}")
    })?;

    let reopened = cx.reopen(&backend).await?;
    let alice = alice.restart(reopened)?;
    let report = alice
        .manager
        .reopen_stored_channels()
        .await
        .context("reopen_stored_channels")?;
    ensure(report.failed.is_empty(), || {
        format!("channels that failed to reopen: {:?}", report.failed)
    })?;
    ensure_eq(
        "reopened channels",
        &names(&["a", "b", "c"]),
        &report.opened,
    )?;
    for (ch, outgoing) in [
        ("a", vec!["a1", "a2"]),
        ("b", vec!["b1"]),
        ("c", vec!["c1"]),
    ] {
        let state = alice.state(ch).await?;
        ensure_eq(
            format!("outgoing buffer of {ch:?} after the restart"),
            &names(&outgoing),
            &state.outgoing,
        )?;
        alice
            .expect_stored_equals_log(ch, "after the restart")
            .await?;
    }
    Ok(())
}
