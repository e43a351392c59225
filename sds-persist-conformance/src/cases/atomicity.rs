//! The op-end commit: both parts or neither, and no torn state under concurrency.
//!
//! The all-or-nothing cases need the backend to declare
//! [`BackendCapabilities::atomic_commit`](sds_core::persistence::BackendCapabilities); one
//! that does not (the trait's default commit) is reported as not run, naming it. Every
//! backend must pass the other two.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sds_codec::storage::{ChannelData, HistoryUpdate};
use sds_core::persistence::Persistence;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::expect_loaded;
use super::fixtures::{append, data, evict, full_meta, logged, meta_with_lamport};
use crate::case::{CaseError, CaseResult, Context as _, Ctx, ensure};
use crate::harness::Harness;
use crate::report::format_duration;

/// How long the concurrency cases wait before declaring a deadlock. A guard against a
/// hung run, not a performance assertion: healthy backends finish in a fraction of it.
const DEADLOCK_GUARD: Duration = Duration::from_secs(120);

/// "Not run" unless the backend declares its commit atomic.
fn require_atomic_commit<P: Persistence + ?Sized>(backend: &P) -> CaseResult {
    if backend.capabilities().atomic_commit {
        Ok(())
    } else {
        Err(CaseError::not_run(
            "atomic_commit",
            "the backend does not declare BackendCapabilities::atomic_commit",
        ))
    }
}

/// A commit stores its snapshot and its history batch; meta-only and history-only commits store their part.
pub async fn commit_applies_both_parts<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "commit";
    let (a, b, c) = (logged(ch, "a", 1), logged(ch, "b", 2), logged(ch, "c", 3));
    let first = full_meta(ch);
    backend
        .commit(ch, Some(&first), Some(&append([a, b.clone()])))
        .await
        .context("commit with both parts")?;
    expect_loaded(
        &*backend,
        ch,
        &data(first.clone(), vec![logged(ch, "a", 1), b.clone()]),
        "after a commit with both parts",
    )
    .await?;

    let history_only = HistoryUpdate {
        append: vec![c.clone()],
        evict: vec!["a".to_string()],
    };
    backend
        .commit(ch, None, Some(&history_only))
        .await
        .context("history-only commit")?;
    expect_loaded(
        &*backend,
        ch,
        &data(first, vec![b.clone(), c.clone()]),
        "after a history-only commit",
    )
    .await?;

    let second = meta_with_lamport(77);
    backend
        .commit(ch, Some(&second), None)
        .await
        .context("meta-only commit")?;
    expect_loaded(
        &*backend,
        ch,
        &data(second, vec![b.clone(), c.clone()]),
        "after a meta-only commit",
    )
    .await?;

    let third = meta_with_lamport(78);
    backend
        .commit(ch, Some(&third), Some(&HistoryUpdate::default()))
        .await
        .context("commit with an empty history batch")?;
    backend
        .commit(ch, None, None)
        .await
        .context("commit with nothing in it")?;
    expect_loaded(
        &*backend,
        ch,
        &data(third, vec![b, c]),
        "after commits with an empty batch and with nothing",
    )
    .await
}

/// A commit that fails between its snapshot and its history leaves the previous state whole.
pub async fn failed_commit_leaves_previous_state_whole<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    require_atomic_commit(&*backend)?;
    let ch = "all-or-nothing";
    let before_meta = full_meta(ch);
    backend
        .commit(
            ch,
            Some(&before_meta),
            Some(&append([logged(ch, "a", 1), logged(ch, "b", 2)])),
        )
        .await
        .context("commit the previous state")?;
    backend
        .set_retrieval_hint(ch, "a", b"hint-a")
        .await
        .context("set_retrieval_hint")?;
    let before = backend
        .load_channel(ch)
        .await
        .context("load the previous state")?;

    let after_meta = meta_with_lamport(before_meta.lamport + 1);
    let update = HistoryUpdate {
        append: vec![logged(ch, "c", 3)],
        evict: vec!["a".to_string()],
    };
    cx.abort_next_commit_after_meta(&backend).await?;
    let outcome = backend.commit(ch, Some(&after_meta), Some(&update)).await;
    ensure(outcome.is_err(), || {
        "the commit succeeded although the harness armed a mid-commit abort: \
         the harness's abort capability does not reach the backend's commit"
            .to_string()
    })?;
    expect_loaded(&*backend, ch, &before, "after a commit failed midway").await?;

    // The abort was for one commit: the same commit now lands whole.
    backend
        .commit(ch, Some(&after_meta), Some(&update))
        .await
        .context("the same commit again")?;
    expect_loaded(
        &*backend,
        ch,
        &data(after_meta, vec![logged(ch, "b", 2), logged(ch, "c", 3)]),
        "after the retried commit",
    )
    .await
}

const WRITERS: u64 = 4;
const STEPS: u64 = 30;
const STAMP: u64 = 1_000_000;

/// Writer `k`'s step `s`: its message id and the Lamport value it stamps everywhere.
fn stamp(writer: u64, step: u64) -> (String, u64) {
    (format!("w{writer}-{step:04}"), (writer + 1) * STAMP + step)
}

/// Checks a state of the torn-state case: every commit (k, s) writes the snapshot stamped
/// (k, s) and moves writer k's single history entry to step s, so in every state a whole
/// commit sequence produces, the snapshot's writer holds exactly the entry of the
/// snapshot's step, and no writer holds two entries.
fn check_untorn(loaded: &ChannelData) -> Result<(), String> {
    let lamport = loaded.meta.as_ref().map_or(0, |meta| meta.lamport);
    let mut per_writer: Vec<Vec<(u64, String)>> = vec![Vec::new(); WRITERS as usize];
    for entry in &loaded.history {
        let writer = (entry.lamport() / STAMP).checked_sub(1);
        match writer.and_then(|w| per_writer.get_mut(w as usize)) {
            Some(slot) => slot.push((entry.lamport(), entry.message_id().to_string())),
            None => return Err(format!("an entry no writer made: {:?}", entry.message_id())),
        }
    }
    for (writer, entries) in per_writer.iter().enumerate() {
        if entries.len() > 1 {
            return Err(format!(
                "writer {writer} has {} entries {entries:?}: an eviction was lost or applied apart from its append",
                entries.len()
            ));
        }
    }
    if lamport == 0 {
        return if loaded.history.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "history {:?} without the snapshot of the commit that wrote it",
                loaded
                    .history
                    .iter()
                    .map(|e| e.message_id())
                    .collect::<Vec<_>>()
            ))
        };
    }
    let writer = lamport / STAMP - 1;
    let step = lamport % STAMP;
    let (id, stamp_value) = stamp(writer, step);
    match per_writer
        .get(writer as usize)
        .and_then(|entries| entries.first())
    {
        Some((entry_lamport, entry_id)) if *entry_lamport == stamp_value && *entry_id == id => {
            Ok(())
        }
        other => Err(format!(
            "the snapshot is writer {writer}'s step {step} but that writer's history entry is {other:?}, not {id:?}: \
             a snapshot and a history batch of different commits"
        )),
    }
}

/// Concurrent commits to one channel never expose a torn state: every load equals a state some order of whole commits produces.
pub async fn concurrent_commits_to_one_channel_never_tear<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    require_atomic_commit(&*backend)?;
    let ch = "contended";
    let done = Arc::new(AtomicBool::new(false));
    let loads = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(WRITERS as usize + 2));

    let mut readers = JoinSet::new();
    for _ in 0..2 {
        let (backend, done, loads, barrier) = (
            backend.clone(),
            done.clone(),
            loads.clone(),
            barrier.clone(),
        );
        readers.spawn(async move {
            barrier.wait().await;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let loaded = backend
                    .load_channel(ch)
                    .await
                    .map_err(|err| format!("a concurrent load failed: {}", crate::chain(&err)))?;
                loads.fetch_add(1, Ordering::Relaxed);
                check_untorn(&loaded).map_err(|torn| format!("a concurrent load saw {torn}"))?;
                if finished {
                    return Ok::<(), String>(());
                }
                tokio::task::yield_now().await;
            }
        });
    }

    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let (backend, barrier, retries) = (backend.clone(), barrier.clone(), retries.clone());
        writers.spawn(async move {
            barrier.wait().await;
            let mut last: Option<String> = None;
            for step in 0..STEPS {
                let (id, value) = stamp(writer, step);
                let update = HistoryUpdate {
                    append: vec![logged(ch, &id, value)],
                    evict: last.iter().cloned().collect(),
                };
                let meta = meta_with_lamport(value);
                // A backend may refuse a conflicting commit; it must then apply nothing,
                // and the writer retries it.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match backend.commit(ch, Some(&meta), Some(&update)).await {
                        Ok(()) => break,
                        Err(err) if attempts < 10 => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%err, "concurrent commit refused; retrying");
                            tokio::task::yield_now().await;
                        }
                        Err(err) => {
                            return Err(format!(
                                "writer {writer}'s commit {step} failed {attempts} times: {}",
                                crate::chain(&err)
                            ));
                        }
                    }
                }
                last = Some(id);
            }
            Ok::<(), String>(())
        });
    }

    let started = Instant::now();
    let outcome = tokio::time::timeout(DEADLOCK_GUARD, async {
        let writer_error = first_task_error(&mut writers, "writer").await;
        done.store(true, Ordering::SeqCst);
        let reader_error = first_task_error(&mut readers, "reader").await;
        writer_error.or(reader_error)
    })
    .await;
    match outcome {
        Err(_) => {
            return Err(CaseError::failed(format!(
                "concurrent commits to one channel did not finish within {} s: suspected deadlock",
                DEADLOCK_GUARD.as_secs()
            )));
        }
        Ok(Some(err)) => return Err(CaseError::failed(err)),
        Ok(None) => {}
    }
    tracing::info!(
        loads = loads.load(Ordering::Relaxed),
        retries = retries.load(Ordering::Relaxed),
        elapsed = %format_duration(started.elapsed()),
        "concurrent commits to one channel"
    );

    let last = backend.load_channel(ch).await.context("final load")?;
    check_untorn(&last).map_err(|torn| CaseError::failed(format!("the final state has {torn}")))?;
    let mut ids: Vec<String> = last
        .history
        .iter()
        .map(|entry| entry.message_id().to_string())
        .collect();
    ids.sort();
    let want: Vec<String> = (0..WRITERS).map(|w| stamp(w, STEPS - 1).0).collect();
    crate::ensure_eq("final history: each writer's last entry", &want, &ids)?;
    let lamport = last.meta.as_ref().map_or(0, |meta| meta.lamport);
    ensure(lamport % STAMP == STEPS - 1, || {
        format!("the final snapshot {lamport} is not some writer's last commit")
    })
}

const CHANNELS: u64 = 8;
const COMMITS: u64 = 20;

/// Concurrent commits to different channels all succeed, none lost or blocked forever, and each channel ends with its own last state.
pub async fn commits_to_different_channels_do_not_block_each_other<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let barrier = Arc::new(Barrier::new(CHANNELS as usize));
    let mut tasks = JoinSet::new();
    for c in 0..CHANNELS {
        let (backend, barrier) = (backend.clone(), barrier.clone());
        tasks.spawn(async move {
            let ch = format!("parallel-{c}");
            barrier.wait().await;
            for s in 0..COMMITS {
                let id = format!("m{s:03}");
                let mut update = append([logged(&ch, &id, s + 1)]);
                if s >= 2 {
                    update.evict = evict(&[&format!("m{:03}", s - 2)]).evict;
                }
                backend
                    .commit(&ch, Some(&meta_with_lamport(c * STAMP + s)), Some(&update))
                    .await
                    .map_err(|err| {
                        format!("commit {s} to {ch:?} failed: {}", crate::chain(&err))
                    })?;
            }
            Ok::<(), String>(())
        });
    }
    let started = Instant::now();
    let outcome = tokio::time::timeout(DEADLOCK_GUARD, async {
        first_task_error(&mut tasks, "committer").await
    })
    .await;
    match outcome {
        Err(_) => {
            return Err(CaseError::failed(format!(
                "commits to {CHANNELS} channels did not finish within {} s: suspected deadlock between channels",
                DEADLOCK_GUARD.as_secs()
            )));
        }
        Ok(Some(err)) => return Err(CaseError::failed(err)),
        Ok(None) => {}
    }
    tracing::info!(
        channels = CHANNELS,
        commits = CHANNELS * COMMITS,
        elapsed = %format_duration(started.elapsed()),
        "concurrent commits to different channels"
    );

    for c in 0..CHANNELS {
        let ch = format!("parallel-{c}");
        let want = data(
            meta_with_lamport(c * STAMP + COMMITS - 1),
            vec![
                logged(&ch, &format!("m{:03}", COMMITS - 2), COMMITS - 1),
                logged(&ch, &format!("m{:03}", COMMITS - 1), COMMITS),
            ],
        );
        expect_loaded(&*backend, &ch, &want, "after the concurrent commits").await?;
    }
    Ok(())
}

/// Waits for every task of `tasks` and returns the first failure, a panicked or cancelled
/// task included (named by `role`).
async fn first_task_error(tasks: &mut JoinSet<Result<(), String>>, role: &str) -> Option<String> {
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(|err| format!("a {role} task died: {err}"))
            .and_then(|r| r);
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    }
    first_error
}
