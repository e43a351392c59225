//! The history: order, eviction, idempotence.
//!
//! Order is (lamport, message id) ascending, where ids compare by their UTF-8 bytes (Rust's
//! `str` order), never by a locale collation.

use sds_codec::storage::{ChannelMeta, HistoryUpdate, LoggedMessage};
use sds_core::persistence::Persistence as _;

use super::expect_loaded;
use super::fixtures::{append, data, evict, logged, logged_with_hint};
use crate::case::{CaseResult, Context as _, Ctx};
use crate::harness::Harness;

fn no_meta_data(history: Vec<LoggedMessage>) -> sds_codec::storage::ChannelData {
    data(ChannelMeta::empty(), history)
}

/// Appends that arrive out of order, with Lamport ties, load oldest first by (lamport, id).
pub async fn history_loads_in_lamport_then_id_order<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "order";
    // Neither arrival order, nor id order, nor lamport order alone is the right answer;
    // ties at 30 differ in case and punctuation, where byte order and collations disagree.
    let batches = [
        vec![logged(ch, "m50", 50), logged(ch, "b", 30)],
        vec![
            logged(ch, "a", 30),
            logged(ch, "z", 10),
            logged(ch, "B", 30),
        ],
        vec![
            logged(ch, "a_b", 30),
            logged(ch, "a-b", 30),
            logged(ch, "a b", 30),
        ],
        vec![logged(ch, "zz", 0), logged(ch, "m40", 40)],
    ];
    let mut all = Vec::new();
    for (i, batch) in batches.into_iter().enumerate() {
        backend
            .update_history(ch, &append(batch.clone()))
            .await
            .context(format!("update_history batch {i}"))?;
        all.extend(batch);
    }
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(all),
        "after out-of-order appends",
    )
    .await
}

/// Lamport timestamps from 0 to u64::MAX keep their exact value and their order.
pub async fn history_order_holds_across_the_full_lamport_range<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "range";
    let i64_max = u64::try_from(i64::MAX).unwrap_or(u64::MAX / 2);
    // Past 2^53 an f64 score loses precision; past i64::MAX a signed column wraps negative.
    let lamports = [
        u64::MAX,
        0,
        i64_max + 1,
        1 << 53,
        (1 << 53) + 1,
        1,
        u64::MAX - 1,
        i64_max,
        1 << 31,
        1_700_000_000_000,
    ];
    let entries: Vec<LoggedMessage> = lamports
        .iter()
        .enumerate()
        .map(|(i, lamport)| logged(ch, &format!("m{i}"), *lamport))
        .collect();
    backend
        .update_history(ch, &append(entries.clone()))
        .await
        .context("update_history")?;
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(entries.clone()),
        "after appending",
    )
    .await?;

    // Evicting by id must find the entries at the extreme timestamps too.
    backend
        .update_history(ch, &evict(&["m0", "m2", "m3"]))
        .await
        .context("update_history evicting u64::MAX, i64::MAX + 1 and 2^53")?;
    let kept: Vec<LoggedMessage> = entries
        .into_iter()
        .filter(|entry| !["m0", "m2", "m3"].contains(&entry.message_id()))
        .collect();
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(kept),
        "after evicting extremes",
    )
    .await
}

/// Evicting ids removes exactly those entries and leaves the rest unchanged and in order.
pub async fn evict_removes_exactly_the_named_ids<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "evict";
    let entries: Vec<LoggedMessage> = (0..10u64)
        .map(|i| logged(ch, &format!("m{i}"), 100 + i))
        .collect();
    backend
        .update_history(ch, &append(entries.clone()))
        .await
        .context("append")?;
    // The oldest, the newest and one in the middle; given in no particular order.
    let gone = ["m9", "m0", "m4"];
    backend
        .update_history(ch, &evict(&gone))
        .await
        .context("evict")?;
    let kept: Vec<LoggedMessage> = entries
        .into_iter()
        .filter(|entry| !gone.contains(&entry.message_id()))
        .collect();
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(kept.clone()),
        "after evicting three",
    )
    .await?;

    backend
        .update_history(ch, &evict(&["m1"]))
        .await
        .context("evict one more")?;
    let kept: Vec<LoggedMessage> = kept
        .into_iter()
        .filter(|entry| entry.message_id() != "m1")
        .collect();
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(kept),
        "after evicting a fourth",
    )
    .await
}

/// Re-appending stored ids, alone, in a batch or twice in one batch, keeps one entry per id.
pub async fn reappending_an_id_is_idempotent<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "again";
    let (a, b, c, d) = (
        logged(ch, "a", 1),
        logged(ch, "b", 2),
        logged(ch, "c", 3),
        logged(ch, "d", 4),
    );
    let steps = [
        append([a.clone(), b.clone(), c.clone()]),
        append([b.clone()]),
        append([a.clone(), d.clone()]),
        append([c.clone(), c.clone(), d.clone()]),
    ];
    for (i, step) in steps.iter().enumerate() {
        backend
            .update_history(ch, step)
            .await
            .context(format!("update_history step {i}"))?;
    }
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(vec![a, b, c, d]),
        "after re-appends",
    )
    .await
}

/// A message re-appended under a new Lamport timestamp is stored once, at its new place.
pub async fn reappending_an_id_at_a_new_lamport_moves_it<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    // The manager does this when a message id leaves the log and comes back with a newer
    // timestamp while the eviction is still queued (see the `merge` cases).
    let backend = cx.open().await?;
    let ch = "moved";
    let old = logged(ch, "x", 10);
    let other = logged(ch, "y", 20);
    backend
        .update_history(ch, &append([old, other.clone()]))
        .await
        .context("first append")?;
    let new = logged(ch, "x", 30);
    backend
        .update_history(ch, &append([new.clone()]))
        .await
        .context("re-append at a newer lamport")?;
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(vec![other.clone(), new]),
        "after re-appending x at a newer lamport",
    )
    .await?;

    // Eviction by id must remove the moved entry, not leave a stale row behind.
    backend
        .update_history(ch, &evict(&["x"]))
        .await
        .context("evict the moved id")?;
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(vec![other]),
        "after evicting the moved id",
    )
    .await
}

/// Evicting an id that is not stored succeeds and changes nothing, in a known or an unknown channel.
pub async fn evicting_an_unknown_id_is_a_no_op<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "noop";
    let entries = vec![logged(ch, "a", 1), logged_with_hint(ch, "b", 2, b"hint-b")];
    backend
        .update_history(ch, &append(entries.clone()))
        .await
        .context("append")?;
    backend
        .update_history(ch, &evict(&["ghost", "a-", "A"]))
        .await
        .context("evicting unknown ids")?;
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(entries),
        "after evicting unknown ids",
    )
    .await?;

    backend
        .update_history("never-saved", &evict(&["ghost"]))
        .await
        .context("evicting from a channel never saved")?;
    expect_loaded(
        &*backend,
        "never-saved",
        &sds_codec::storage::ChannelData::empty(),
        "after an eviction was its only write",
    )
    .await
}

/// One update that appends and evicts applies both lists.
pub async fn update_with_both_lists_applies_both<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "both";
    let (a, b, c) = (logged(ch, "a", 1), logged(ch, "b", 2), logged(ch, "c", 3));
    backend
        .update_history(ch, &append([a, b.clone(), c]))
        .await
        .context("append")?;
    let (d, e) = (logged(ch, "d", 4), logged(ch, "e", 0));
    let update = HistoryUpdate {
        append: vec![d.clone(), e.clone()],
        evict: vec!["a".to_string(), "c".to_string()],
    };
    backend
        .update_history(ch, &update)
        .await
        .context("update with both lists")?;
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(vec![b, d, e]),
        "after the combined update",
    )
    .await
}

/// Ids that are prefixes of each other or hold separators, NUL, quotes or non-ASCII stay distinct and sort by bytes.
pub async fn awkward_message_ids_stay_distinct<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "awkward";
    let long = "x".repeat(1_000);
    let ids = [
        "a",
        "a:",
        "a:b",
        "a\u{0}",
        "a\u{0}b",
        "a/b",
        "a|b",
        "a\u{1F980}",
        "ä",
        " a",
        "a ",
        "A",
        "%",
        "_",
        "'; DROP TABLE history; --",
        "{a}",
        "\\",
        long.as_str(),
    ];
    // All at one Lamport timestamp, so the id alone orders them.
    let entries: Vec<LoggedMessage> = ids.iter().map(|id| logged(ch, id, 7)).collect();
    backend
        .update_history(ch, &append(entries.clone()))
        .await
        .context("append")?;
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(entries.clone()),
        "after appending",
    )
    .await?;

    let gone = ["a", "a\u{0}", "a:"];
    backend
        .update_history(ch, &evict(&gone))
        .await
        .context("evict ids that prefix others")?;
    let kept: Vec<LoggedMessage> = entries
        .into_iter()
        .filter(|entry| !gone.contains(&entry.message_id()))
        .collect();
    expect_loaded(
        &*backend,
        ch,
        &no_meta_data(kept),
        "after evicting prefixes",
    )
    .await
}
