//! The rules of the persistence contract that backends most easily get wrong (see the
//! module documentation of `sds_core::persistence`): byte order of ids, an id named in both
//! lists of one update, what a re-append does to a stored hint, and replays after an
//! unknown outcome, including the parts of a split history batch.

use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage};
use sds_core::persistence::batch::split_history_batch;
use sds_core::persistence::{MAX_HISTORY_BATCH, Persistence as _};

use super::expect_loaded;
use super::fixtures::{
    append, data, full_meta, history_ids, lean_logged, logged, logged_with_hint, meta_with_lamport,
};
use crate::case::{CaseResult, Context as _, Ctx, ensure_eq};
use crate::harness::Harness;

/// `entry` with its retrieval hint set to `hint`.
fn with_hint(mut entry: LoggedMessage, hint: Option<&[u8]>) -> LoggedMessage {
    entry.retrieval_hint = hint.map(<[u8]>::to_vec);
    entry
}

/// Message ids at one Lamport timestamp load in UTF-8 byte order (case, punctuation, NUL, accents), never in a collation's order.
pub async fn message_ids_order_by_bytes_never_by_collation<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    // A channel id with NUL and non-ASCII bytes, which a text column would refuse or fold.
    let ch = "bytes\u{0}ü";
    // Byte order. A locale collation puts "a" next to "A" and "ä", ignores punctuation
    // ("a b", "a-b", "a_b", "ab" interleave), and sorts "9" before "10".
    let order = [
        "10", "9", "B", "Z", "a", "a\u{0}", "a b", "a-b", "a_b", "ab", "b", "e", "z", "ä", "é",
    ];
    let mut entries: Vec<LoggedMessage> = order.iter().map(|id| logged(ch, id, 5)).collect();
    // An older entry whose id sorts last: the Lamport timestamp comes first.
    entries.push(logged(ch, "\u{10FFFF}", 4));
    let reversed: Vec<LoggedMessage> = entries.iter().rev().cloned().collect();
    backend
        .update_history(ch, &append(reversed))
        .await
        .context("append in reverse order")?;
    let loaded = backend.load_channel(ch).await.context("load")?;
    let mut expected = vec!["\u{10FFFF}".to_string()];
    expected.extend(order.iter().map(|id| (*id).to_string()));
    ensure_eq(
        "ids in (lamport, bytes) order",
        &expected,
        &history_ids(&loaded),
    )?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), entries.clone()),
        "after appending",
    )
    .await?;

    // "a" prefixes "a\0" and "a b": evicting it must leave them, in place.
    backend
        .update_history(
            ch,
            &HistoryUpdate {
                append: Vec::new(),
                evict: vec!["a".to_string(), "B".to_string()],
            },
        )
        .await
        .context("evict a and B")?;
    let kept: Vec<LoggedMessage> = entries
        .into_iter()
        .filter(|entry| !["a", "B"].contains(&entry.message_id()))
        .collect();
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), kept),
        "after evicting a and B",
    )
    .await
}

/// An id named in both lists of one update ends stored as appended: evictions apply first, and forget the old hint.
pub async fn id_in_both_lists_of_one_update_ends_appended<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "both-lists";
    backend
        .update_history(ch, &append([logged(ch, "a", 1), logged(ch, "b", 2)]))
        .await
        .context("append a and b")?;
    backend
        .set_retrieval_hint(ch, "a", b"old hint of a")
        .await
        .context("hint a")?;

    // "a" is stored (with a hint), "c" is not: both are evicted and appended.
    let c = logged_with_hint(ch, "c", 3, b"hint of c");
    let update = HistoryUpdate {
        append: vec![logged(ch, "a", 5), c.clone()],
        evict: vec!["a".to_string(), "c".to_string()],
    };
    backend
        .update_history(ch, &update)
        .await
        .context("update naming a and c in both lists")?;
    expect_loaded(
        &*backend,
        ch,
        &data(
            ChannelMeta::empty(),
            vec![logged(ch, "b", 2), c.clone(), logged(ch, "a", 5)],
        ),
        "after an update naming a and c in both lists",
    )
    .await?;

    // The same rule through commit, with a snapshot.
    let meta = meta_with_lamport(7);
    let update = HistoryUpdate {
        append: vec![logged(ch, "b", 6)],
        evict: vec!["b".to_string()],
    };
    backend
        .commit(ch, Some(&meta), Some(&update))
        .await
        .context("commit naming b in both lists")?;
    expect_loaded(
        &*backend,
        ch,
        &data(meta, vec![c, logged(ch, "a", 5), logged(ch, "b", 6)]),
        "after a commit naming b in both lists",
    )
    .await
}

/// A re-append keeps the stored hint when it carries none, also when it moves the entry, and replaces it when it carries one.
pub async fn reappend_keeps_the_stored_hint_unless_it_carries_one<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "reappend-hint";
    let b = logged(ch, "b", 2);
    backend
        .update_history(ch, &append([logged(ch, "a", 1), b.clone()]))
        .await
        .context("append a and b")?;
    backend
        .set_retrieval_hint(ch, "a", b"stored hint")
        .await
        .context("hint a")?;
    let hinted = |lamport| with_hint(logged(ch, "a", lamport), Some(b"stored hint"));

    backend
        .update_history(ch, &append([logged(ch, "a", 1)]))
        .await
        .context("re-append a without a hint")?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![hinted(1), b.clone()]),
        "after re-appending a without a hint",
    )
    .await?;

    backend
        .commit(ch, None, Some(&append([logged(ch, "a", 4)])))
        .await
        .context("re-append a at a new lamport, without a hint, by commit")?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![b.clone(), hinted(4)]),
        "after moving a without a hint",
    )
    .await?;

    let replaced = logged_with_hint(ch, "a", 4, b"new hint");
    backend
        .update_history(ch, &append([replaced.clone()]))
        .await
        .context("re-append a with a hint")?;
    backend
        .update_history(ch, &append([logged(ch, "a", 4)]))
        .await
        .context("re-append a without a hint again")?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![b, replaced]),
        "after re-appending a with a new hint, then without one",
    )
    .await
}

/// Replaying a commit, a history batch, a snapshot, a hint or a drop (a retry after an unknown outcome) leaves the state of doing it once.
pub async fn replaying_a_commit_changes_nothing<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "replay";
    backend
        .commit(
            ch,
            Some(&full_meta(ch)),
            Some(&append([
                logged(ch, "a", 1),
                logged(ch, "b", 2),
                logged(ch, "c", 3),
            ])),
        )
        .await
        .context("commit the first state")?;
    backend
        .set_retrieval_hint(ch, "b", b"hint of b")
        .await
        .context("hint b")?;

    let meta = meta_with_lamport(9);
    let update = HistoryUpdate {
        append: vec![logged(ch, "d", 4), logged(ch, "e", 0)],
        evict: vec!["a".to_string()],
    };
    let after = data(
        meta.clone(),
        vec![
            logged(ch, "e", 0),
            logged_with_hint(ch, "b", 2, b"hint of b"),
            logged(ch, "c", 3),
            logged(ch, "d", 4),
        ],
    );
    for attempt in 1..=2 {
        backend
            .commit(ch, Some(&meta), Some(&update))
            .await
            .context(format!("commit, attempt {attempt}"))?;
        expect_loaded(
            &*backend,
            ch,
            &after,
            &format!("after commit attempt {attempt}"),
        )
        .await?;
    }
    backend
        .update_history(ch, &update)
        .await
        .context("the history batch alone, again")?;
    backend
        .save_channel_meta(ch, &meta)
        .await
        .context("the snapshot alone, again")?;
    expect_loaded(&*backend, ch, &after, "after replaying each part alone").await?;

    let mut hinted = after.clone();
    for entry in &mut hinted.history {
        if entry.message_id() == "d" {
            entry.retrieval_hint = Some(b"hint of d".to_vec());
        }
    }
    for attempt in 1..=2 {
        backend
            .set_retrieval_hint(ch, "d", b"hint of d")
            .await
            .context(format!("hint d, attempt {attempt}"))?;
        expect_loaded(
            &*backend,
            ch,
            &hinted,
            &format!("after hint attempt {attempt}"),
        )
        .await?;
    }
    for attempt in 1..=2 {
        backend
            .drop_channel(ch)
            .await
            .context(format!("drop, attempt {attempt}"))?;
        expect_loaded(
            &*backend,
            ch,
            &ChannelData::empty(),
            &format!("after drop attempt {attempt}"),
        )
        .await?;
    }
    Ok(())
}

/// A history batch split at MAX_HISTORY_BATCH, cut off after two parts and then replayed whole (twice), ends exactly as one whole batch.
pub async fn replaying_a_split_batch_is_idempotent<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "split";
    let old: Vec<LoggedMessage> = (1..=600u64)
        .map(|n| lean_logged(ch, format!("old-{n:04}"), n))
        .collect();
    let old_meta = meta_with_lamport(600);
    backend
        .commit(ch, Some(&old_meta), Some(&append(old.clone())))
        .await
        .context("commit 600 entries")?;

    // Everything old leaves and 2,500 new entries come: what a long outage queues.
    let new: Vec<LoggedMessage> = (1..=2_500u64)
        .map(|n| lean_logged(ch, format!("new-{n:04}"), 1_000 + n))
        .collect();
    let batch = HistoryUpdate {
        append: new.clone(),
        evict: old
            .iter()
            .map(|entry| entry.message_id().to_string())
            .collect(),
    };
    let parts = split_history_batch(batch);
    let largest = parts
        .iter()
        .map(|part| part.append.len() + part.evict.len())
        .max()
        .unwrap_or(0);
    ensure_eq("parts of the batch", &4, &parts.len())?;
    ensure_eq("largest part", &MAX_HISTORY_BATCH, &largest)?;
    let new_meta = meta_with_lamport(3_500);
    let write = |count: usize| {
        let backend = backend.clone();
        let parts = parts.clone();
        let new_meta = new_meta.clone();
        async move {
            for (index, part) in parts.iter().enumerate().take(count) {
                let meta = (index + 1 == parts.len()).then_some(&new_meta);
                backend.commit(ch, meta, Some(part)).await.context(format!(
                    "commit part {} of {}",
                    index + 1,
                    parts.len()
                ))?;
            }
            Ok::<(), crate::case::CaseError>(())
        }
    };

    // The write fails after two parts: the previous snapshot and part of the batch.
    write(2).await?;
    let mut partial = old.clone();
    partial.extend(new.iter().take(2 * MAX_HISTORY_BATCH).cloned());
    expect_loaded(
        &*backend,
        ch,
        &data(old_meta, partial),
        "after the first two parts only",
    )
    .await?;

    // The retry sends every part again; a second retry (its outcome unknown) changes nothing.
    let whole = data(new_meta.clone(), new);
    for attempt in 1..=2 {
        write(parts.len()).await?;
        expect_loaded(
            &*backend,
            ch,
            &whole,
            &format!("after replaying every part, attempt {attempt}"),
        )
        .await?;
    }
    Ok(())
}
