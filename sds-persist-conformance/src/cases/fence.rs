//! The writer fence: a writer whose claim on the namespace a newer one superseded has its
//! writes refused as `Fenced`, and nothing of them lands.
//!
//! Every case needs the backend to declare `BackendCapabilities::fencing`; against one that
//! does not, the cases are reported as not run, naming the capability.

use sds_codec::storage::{ChannelData, HistoryUpdate};
use sds_core::persistence::{Persistence, PersistenceError, PersistenceErrorKind, WriterEpoch};
use sds_core::{Event, SdsError};

use super::expect_loaded;
use super::fixtures::{append, data, full_meta, history_ids, logged, meta_with_lamport};
use super::node::{CH, Node, config};
use crate::case::{CaseError, CaseResult, Context as _, Ctx, chain, ensure, ensure_eq};
use crate::harness::Harness;

/// "Not run" unless the backend declares the fence.
fn require_fencing<P: Persistence + ?Sized>(backend: &P) -> CaseResult {
    if backend.capabilities().fencing {
        Ok(())
    } else {
        Err(CaseError::not_run(
            "fencing",
            "the backend does not declare BackendCapabilities::fencing (no claim_writer)",
        ))
    }
}

/// Claims the namespace through `backend`, which must return an epoch.
async fn claim<P: Persistence + ?Sized>(backend: &P, who: &str) -> Result<WriterEpoch, CaseError> {
    require_fencing(backend)?;
    backend
        .claim_writer()
        .await
        .context(format!("claim_writer by {who}"))?
        .ok_or_else(|| {
            CaseError::failed(format!(
                "claim_writer by {who} returned no epoch although the backend declares fencing"
            ))
        })
}

/// Fails unless `later` is above `earlier`.
fn ensure_higher(earlier: WriterEpoch, later: WriterEpoch, what: &str) -> CaseResult {
    ensure(later > earlier, || {
        format!("{what}: epoch {later} is not above the earlier claim's {earlier}")
    })
}

/// Fails unless `outcome` is a `Fenced` refusal.
fn expect_fenced(what: &str, outcome: Result<(), PersistenceError>) -> CaseResult {
    match outcome {
        Err(err) if err.kind() == PersistenceErrorKind::Fenced => Ok(()),
        Err(err) => Err(CaseError::failed(format!(
            "{what}: expected a Fenced error (a kind the manager can tell from an outage), \
             found {:?}: {}",
            err.kind(),
            chain(&err)
        ))),
        Ok(()) => Err(CaseError::failed(format!(
            "{what} succeeded although a newer writer claimed the namespace: the fence is ignored"
        ))),
    }
}

/// A stale writer's commit fails as Fenced and writes nothing; the newer writer's state stays whole.
pub async fn stale_writer_commit_fails_as_fenced_and_writes_nothing<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let stale = cx.open().await?;
    let ch = "fenced";
    let first = claim(&*stale, "the first writer").await?;
    stale
        .commit(
            ch,
            Some(&full_meta(ch)),
            Some(&append([logged(ch, "a", 1), logged(ch, "b", 2)])),
        )
        .await
        .context("the first writer's commit, before any other claim")?;

    let newer = cx.reopen(&stale).await?;
    let second = claim(&*newer, "a newer writer on the same namespace").await?;
    ensure_higher(first, second, "the newer writer's claim")?;
    let newer_update = HistoryUpdate {
        append: vec![logged(ch, "c", 3)],
        evict: vec!["a".to_string()],
    };
    newer
        .commit(ch, Some(&meta_with_lamport(50)), Some(&newer_update))
        .await
        .context("the newer writer's commit")?;
    let newer_state = newer.load_channel(ch).await.context("load")?;

    let stale_update = HistoryUpdate {
        append: vec![logged(ch, "z", 9)],
        evict: vec!["b".to_string(), "c".to_string()],
    };
    let outcome = stale
        .commit(ch, Some(&meta_with_lamport(99)), Some(&stale_update))
        .await;
    expect_fenced("the stale writer's commit", outcome)?;
    expect_loaded(
        &*newer,
        ch,
        &newer_state,
        "after the stale writer's commit was refused",
    )
    .await?;

    // The refusal leaves the newer writer undisturbed.
    newer
        .commit(ch, Some(&meta_with_lamport(51)), None)
        .await
        .context("the newer writer's next commit")?;
    expect_loaded(
        &*newer,
        ch,
        &data(meta_with_lamport(51), newer_state.history),
        "after the newer writer's next commit",
    )
    .await
}

/// Every write of a stale writer (snapshot, history, hint, drop, any channel) fails as Fenced and changes nothing; its reads still work.
pub async fn every_write_of_a_stale_writer_is_fenced<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let stale = cx.open().await?;
    let ch = "kept";
    claim(&*stale, "the first writer").await?;
    stale
        .commit(
            ch,
            Some(&meta_with_lamport(5)),
            Some(&append([logged(ch, "a", 1), logged(ch, "b", 2)])),
        )
        .await
        .context("the first writer's commit")?;
    stale
        .set_retrieval_hint(ch, "a", b"hint-a")
        .await
        .context("the first writer's hint")?;
    let newer = cx.reopen(&stale).await?;
    claim(&*newer, "a newer writer on the same namespace").await?;
    let before = newer.load_channel(ch).await.context("load")?;

    expect_fenced(
        "the stale writer's save_channel_meta",
        stale.save_channel_meta(ch, &meta_with_lamport(7)).await,
    )?;
    expect_fenced(
        "the stale writer's update_history",
        stale
            .update_history(
                ch,
                &HistoryUpdate {
                    append: vec![logged(ch, "c", 3)],
                    evict: vec!["a".to_string()],
                },
            )
            .await,
    )?;
    expect_fenced(
        "the stale writer's set_retrieval_hint",
        stale.set_retrieval_hint(ch, "b", b"stale-hint").await,
    )?;
    expect_fenced(
        "the stale writer's drop_channel",
        stale.drop_channel(ch).await,
    )?;
    expect_fenced(
        "the stale writer's commit to a channel the namespace never held",
        stale
            .commit("untouched", Some(&meta_with_lamport(1)), None)
            .await,
    )?;

    expect_loaded(&*newer, ch, &before, "after the refused writes").await?;
    expect_loaded(
        &*newer,
        "untouched",
        &ChannelData::empty(),
        "after the refused commit",
    )
    .await?;
    expect_loaded(
        &*stale,
        ch,
        &before,
        "read by the stale writer (reads are not fenced)",
    )
    .await
}

/// Stale writers committing without pause while a newer writer claims: every stale commit either landed before the claim returned or failed as Fenced, so each channel ends with the newer writer's snapshot.
pub async fn no_stale_write_lands_after_a_concurrent_claim<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    const WRITERS: u64 = 4;
    const CHANNELS: u64 = 8;
    // Rounds a stale writer goes on with once the claim returned: a backend that never
    // fences then fails the case instead of hanging it. Counted from the claim, not from
    // the start, so a busy machine that runs the writers long before the claim gets in
    // cannot fail a backend that fences.
    const ROUNDS_AFTER_CLAIM: u64 = 100;

    let stale = cx.open().await?;
    claim(&*stale, "the first writer").await?;
    let newer = cx.reopen(&stale).await?;
    let channel = |n: u64| format!("race-{n}");
    let claimed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let stale = std::sync::Arc::clone(&stale);
        let claimed = std::sync::Arc::clone(&claimed);
        writers.spawn(async move {
            let (mut landed, mut fenced) = (0u64, 0u64);
            let mut rounds_after_claim = 0u64;
            for round in 0u64.. {
                if fenced >= CHANNELS {
                    break;
                }
                if claimed.load(std::sync::atomic::Ordering::SeqCst) {
                    rounds_after_claim += 1;
                    if rounds_after_claim > ROUNDS_AFTER_CLAIM {
                        break;
                    }
                }
                for n in 0..CHANNELS {
                    let lamport = (writer << 40) + round + 1;
                    match stale
                        .commit(&channel(n), Some(&meta_with_lamport(lamport)), None)
                        .await
                    {
                        Ok(()) => landed += 1,
                        Err(err) if err.kind() == PersistenceErrorKind::Fenced => fenced += 1,
                        Err(err) => return Err(format!("a stale commit failed: {}", chain(&err))),
                    }
                }
                // Let the claim in on a runtime with few workers.
                tokio::task::yield_now().await;
            }
            Ok((landed, fenced))
        });
    }
    // The claim goes in once the stale writers have written every channel.
    for _ in 0..100_000 {
        let stored = newer.list_channels().await.context("list_channels")?;
        if stored.len() >= CHANNELS as usize {
            break;
        }
        tokio::task::yield_now().await;
    }
    claim(&*newer, "the newer writer, while the stale ones write").await?;
    claimed.store(true, std::sync::atomic::Ordering::SeqCst);
    let newest = meta_with_lamport(u64::MAX - 1);
    for n in 0..CHANNELS {
        newer
            .commit(&channel(n), Some(&newest), None)
            .await
            .context(format!("the newer writer's commit to {}", channel(n)))?;
    }
    let (mut landed, mut fenced) = (0, 0);
    while let Some(outcome) = writers.join_next().await {
        let (l, f) = outcome
            .map_err(|err| CaseError::failed(format!("a stale writer task failed: {err}")))?
            .map_err(CaseError::failed)?;
        landed += l;
        fenced += f;
    }
    ensure(landed >= CHANNELS, || {
        format!("the stale writers landed only {landed} commits before the claim")
    })?;
    ensure(fenced >= WRITERS * CHANNELS, || {
        format!(
            "only {fenced} stale commits were fenced in {ROUNDS_AFTER_CLAIM} rounds after the \
             claim: the fence is not enforced on every write"
        )
    })?;
    for n in 0..CHANNELS {
        let stored = newer.load_channel(&channel(n)).await.context("load")?;
        ensure_eq(
            format!(
                "{}'s snapshot after the race (a stale write landed after the claim?)",
                channel(n)
            ),
            &Some(&newest),
            &stored.meta.as_ref(),
        )?;
    }
    Ok(())
}

/// Each claim, by a restarted instance or again by an old one, takes a higher epoch and supersedes every claim before it.
pub async fn new_claim_after_restart_supersedes<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let first = cx.open().await?;
    let ch = "claimed";
    let e1 = claim(&*first, "the first instance").await?;
    first
        .commit(ch, Some(&meta_with_lamport(1)), None)
        .await
        .context("the first instance's commit")?;
    let second = cx.reopen(&first).await?;
    let e2 = claim(&*second, "the instance after a restart").await?;
    ensure_higher(e1, e2, "the claim after a restart")?;
    let third = cx.reopen(&second).await?;
    let e3 = claim(&*third, "the instance after a second restart").await?;
    ensure_higher(e2, e3, "the claim after a second restart")?;

    for (who, stale) in [
        ("the first instance", &first),
        ("the second instance", &second),
    ] {
        expect_fenced(
            &format!("a commit of {who} after the third claimed"),
            stale.commit(ch, Some(&meta_with_lamport(9)), None).await,
        )?;
    }
    third
        .commit(ch, Some(&meta_with_lamport(3)), None)
        .await
        .context("the newest instance's commit")?;
    expect_loaded(
        &*third,
        ch,
        &data(meta_with_lamport(3), Vec::new()),
        "after the newest instance's commit",
    )
    .await?;

    // Claiming again takes the namespace back: a new, higher epoch.
    let e4 = claim(&*first, "the first instance, claiming again").await?;
    ensure_higher(e3, e4, "the first instance's second claim")?;
    expect_fenced(
        "a commit of the third instance after the first claimed again",
        third.commit(ch, Some(&meta_with_lamport(8)), None).await,
    )?;
    first
        .commit(ch, Some(&meta_with_lamport(4)), None)
        .await
        .context("the first instance's commit after claiming again")?;
    expect_loaded(
        &*third,
        ch,
        &data(meta_with_lamport(4), Vec::new()),
        "after the first instance claimed again and committed",
    )
    .await
}

/// A claim fences only writers of its own namespace, never those of another namespace of the same storage.
pub async fn claims_are_per_namespace<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let a = cx.open().await?;
    let b = cx.sibling(&a).await?;
    let ch = "shared-name";
    claim(&*a, "the writer of namespace A").await?;
    claim(&*b, "the writer of namespace B").await?;
    let b_newer = cx.reopen(&b).await?;
    claim(&*b_newer, "a newer writer of namespace B").await?;

    a.commit(ch, Some(&meta_with_lamport(1)), None)
        .await
        .context("namespace A's commit after claims in namespace B")?;
    expect_fenced(
        "the stale writer of namespace B",
        b.commit(ch, Some(&meta_with_lamport(2)), None).await,
    )?;
    b_newer
        .commit(ch, Some(&meta_with_lamport(3)), None)
        .await
        .context("the newer writer of namespace B")?;
    expect_loaded(
        &*a,
        ch,
        &data(meta_with_lamport(1), Vec::new()),
        "in namespace A",
    )
    .await?;
    expect_loaded(
        &*b_newer,
        ch,
        &data(meta_with_lamport(3), Vec::new()),
        "in namespace B",
    )
    .await
}

/// An instance that never claimed is not fenced, and its writes supersede no writer's claim.
pub async fn unclaimed_instance_is_not_fenced<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let writer = cx.open().await?;
    let ch = "tooling";
    claim(&*writer, "the writer").await?;
    let tool = cx.reopen(&writer).await?;
    tool.commit(ch, Some(&meta_with_lamport(1)), None)
        .await
        .context("a commit of an instance that never claimed")?;
    writer
        .commit(ch, Some(&meta_with_lamport(2)), None)
        .await
        .context("the writer's commit after an unclaimed instance wrote")?;

    let newer = cx.reopen(&writer).await?;
    claim(&*newer, "a newer writer").await?;
    expect_fenced(
        "the superseded writer's commit",
        writer.commit(ch, Some(&meta_with_lamport(3)), None).await,
    )?;
    tool.commit(ch, Some(&meta_with_lamport(4)), None)
        .await
        .context("a commit of the unclaimed instance after a newer claim")?;
    expect_loaded(
        &*newer,
        ch,
        &data(meta_with_lamport(4), Vec::new()),
        "after the unclaimed instance's commit",
    )
    .await
}

/// A manager whose namespace a manager started later claimed emits WriterFenced once, stops writing, and the stored state stays the newer manager's.
pub async fn fenced_manager_stops_writing_and_says_so<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let old_backend = cx.open().await?;
    require_fencing(&*old_backend)?;
    let new_backend = cx.reopen(&old_backend).await?;
    let mut old = Node::start("alice", old_backend, config())?;
    old.send(CH, "m1").await?;
    let new = Node::start("alice", new_backend, config())?;
    new.send(CH, "m2").await?;
    let newer_state = new.stored(CH).await?;
    ensure_eq(
        "history the newer manager stored",
        &vec!["m1".to_string(), "m2".to_string()],
        &history_ids(&newer_state),
    )?;
    old.take_events();

    let commits = old.commits();
    old.send(CH, "m3").await?;
    let fenced: Vec<Event> = old
        .take_events()
        .into_iter()
        .filter(|event| {
            matches!(
                event,
                Event::WriterFenced { .. } | Event::PersistenceDegraded { .. }
            )
        })
        .collect();
    ensure(
        matches!(fenced.as_slice(), [Event::WriterFenced { channel, .. }] if channel == CH),
        || {
            format!(
                "the stale manager's refused commit: expected one WriterFenced event for {CH:?}, found {fenced:?}"
            )
        },
    )?;
    ensure(old.manager.is_fenced(), || {
        "the stale manager does not report itself fenced".to_string()
    })?;
    let stored = new.stored(CH).await?;
    super::expect_data(
        CH,
        &newer_state,
        &stored,
        "after the stale manager's operation",
    )?;

    old.send(CH, "m4").await?;
    ensure_eq(
        "backend commits by the fenced manager for one more operation (none: no retry)",
        &(commits + 1),
        &old.commits(),
    )?;
    let after: Vec<Event> = old
        .take_events()
        .into_iter()
        .filter(|event| matches!(event, Event::WriterFenced { .. }))
        .collect();
    ensure(after.is_empty(), || {
        format!("WriterFenced again after the first: {after:?}")
    })?;
    match old.manager.remove_channel(CH).await {
        Err(SdsError::Persistence(err)) if err.kind() == PersistenceErrorKind::Fenced => {}
        other => {
            return Err(CaseError::failed(format!(
                "the fenced manager's remove_channel: expected a Fenced persistence error, found {other:?}"
            )));
        }
    }
    new.send(CH, "m5").await?;
    ensure_eq(
        "history after the newer manager's next message",
        &vec!["m1".to_string(), "m2".to_string(), "m5".to_string()],
        &new.stored_ids(CH).await?,
    )
}
