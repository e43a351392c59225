//! Channels and namespaces are separate worlds; drop wipes exactly one of them.

use sds_codec::storage::{ChannelData, ChannelMeta};
use sds_core::persistence::Persistence;

use super::expect_loaded;
use super::fixtures::{append, data, full_meta, logged, logged_with_hint, meta_with_lamport};
use crate::case::{CaseResult, Context as _, Ctx};
use crate::harness::Harness;

/// Names that collide in naive key schemes (prefixes, separators, NUL, case, non-ASCII).
const CHANNELS: [&str; 10] = [
    "chan",
    "chan2",
    "cha",
    "chan:",
    "chan:meta",
    "chan/history",
    "chan\u{0}x",
    "Chan",
    "ĉhan",
    "chan ",
];

/// What channel `i` holds in a namespace tagged `tag`: its own snapshot, one entry under a
/// shared id (with a channel-specific hint) and one of its own.
fn channel_data(channel: &str, i: u64, tag: u64) -> ChannelData {
    let mut meta = full_meta(channel);
    meta.lamport = tag * 1_000 + i;
    data(
        meta,
        vec![
            logged_with_hint(channel, "shared-id", 5, format!("{tag}/{i}").as_bytes()),
            logged(channel, &format!("own-{tag}-{i}"), 6 + i),
        ],
    )
}

async fn write<P: Persistence + ?Sized>(
    backend: &P,
    channel: &str,
    want: &ChannelData,
) -> CaseResult {
    let meta = want.meta.clone().unwrap_or_else(ChannelMeta::empty);
    backend
        .commit(channel, Some(&meta), Some(&append(want.history.clone())))
        .await
        .context(format!("commit to {channel:?}"))
}

async fn fill<P: Persistence + ?Sized>(
    backend: &P,
    tag: u64,
) -> Result<Vec<ChannelData>, crate::CaseError> {
    let mut written = Vec::new();
    for (i, channel) in CHANNELS.iter().enumerate() {
        let want = channel_data(channel, i as u64, tag);
        write(backend, channel, &want).await?;
        written.push(want);
    }
    Ok(written)
}

async fn check_all<P: Persistence + ?Sized>(
    backend: &P,
    written: &[ChannelData],
    skip: Option<&str>,
    when: &str,
) -> CaseResult {
    for (channel, want) in CHANNELS.iter().zip(written) {
        if Some(*channel) != skip {
            expect_loaded(backend, channel, want, when).await?;
        }
    }
    Ok(())
}

/// Channels whose names are prefixes of each other or hold separators never see each other's data.
pub async fn channels_never_see_each_others_data<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let written = fill(&*backend, 1).await?;
    check_all(&*backend, &written, None, "with all channels written").await?;

    // Evicting the shared id in one channel leaves it in the others.
    backend
        .update_history("chan", &super::fixtures::evict(&["shared-id"]))
        .await
        .context("evict the shared id from \"chan\"")?;
    let mut expected = written.clone();
    expected[0]
        .history
        .retain(|entry| entry.message_id() != "shared-id");
    check_all(
        &*backend,
        &expected,
        None,
        "after evicting a shared id in one channel",
    )
    .await?;
    expect_loaded(
        &*backend,
        "ch",
        &ChannelData::empty(),
        "(a prefix of every name)",
    )
    .await
}

/// Backends in different namespaces of one storage never see each other's channels, history or hints.
pub async fn namespaces_never_see_each_others_data<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let first = cx.open().await?;
    let second = cx.sibling(&first).await?;
    let in_first = fill(&*first, 1).await?;
    let in_second = fill(&*second, 2).await?;
    check_all(&*first, &in_first, None, "in the first namespace").await?;
    check_all(&*second, &in_second, None, "in the second namespace").await?;

    // Hints and evictions by id stay in their namespace too.
    first
        .set_retrieval_hint("chan", "own-1-0", b"first-only")
        .await
        .context("set_retrieval_hint in the first namespace")?;
    second
        .update_history("chan", &super::fixtures::evict(&["shared-id"]))
        .await
        .context("evict in the second namespace")?;
    let mut first_expected = in_first.clone();
    if let Some(entry) = first_expected[0]
        .history
        .iter_mut()
        .find(|entry| entry.message_id() == "own-1-0")
    {
        entry.retrieval_hint = Some(b"first-only".to_vec());
    }
    let mut second_expected = in_second.clone();
    second_expected[0]
        .history
        .retain(|entry| entry.message_id() != "shared-id");
    check_all(
        &*first,
        &first_expected,
        None,
        "after changes in both namespaces",
    )
    .await?;
    check_all(
        &*second,
        &second_expected,
        None,
        "after changes in both namespaces",
    )
    .await?;

    let third = cx.sibling(&first).await?;
    for channel in CHANNELS {
        expect_loaded(
            &*third,
            channel,
            &ChannelData::empty(),
            "in a third, unused namespace",
        )
        .await?;
    }
    Ok(())
}

/// Dropping a channel leaves the other channels of its namespace and the same channel of other namespaces intact.
pub async fn dropping_a_channel_leaves_the_others_intact<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let first = cx.open().await?;
    let second = cx.sibling(&first).await?;
    let in_first = fill(&*first, 1).await?;
    let in_second = fill(&*second, 2).await?;

    // "chan" prefixes most other names: a prefix-range delete would take them too.
    first.drop_channel("chan").await.context("drop \"chan\"")?;
    expect_loaded(&*first, "chan", &ChannelData::empty(), "after dropping it").await?;
    check_all(
        &*first,
        &in_first,
        Some("chan"),
        "after dropping \"chan\" next to them",
    )
    .await?;
    check_all(
        &*second,
        &in_second,
        None,
        "after dropping \"chan\" in another namespace",
    )
    .await?;

    first
        .drop_channel("chan:")
        .await
        .context("drop \"chan:\"")?;
    expect_loaded(&*first, "chan:", &ChannelData::empty(), "after dropping it").await?;
    expect_loaded(
        &*first,
        "chan:meta",
        &in_first[4],
        "after dropping \"chan:\"",
    )
    .await?;
    expect_loaded(&*first, "chan2", &in_first[1], "after dropping \"chan:\"").await
}

/// Dropping a channel twice, or one never saved, succeeds and leaves it empty.
pub async fn drop_is_idempotent<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    backend
        .drop_channel("never-saved")
        .await
        .context("drop a channel never saved")?;
    expect_loaded(
        &*backend,
        "never-saved",
        &ChannelData::empty(),
        "after dropping it",
    )
    .await?;

    let want = channel_data("twice", 0, 1);
    write(&*backend, "twice", &want).await?;
    backend.drop_channel("twice").await.context("first drop")?;
    backend.drop_channel("twice").await.context("second drop")?;
    expect_loaded(
        &*backend,
        "twice",
        &ChannelData::empty(),
        "after dropping it twice",
    )
    .await
}

/// A dropped channel written again starts empty: no snapshot, history or hint comes back.
pub async fn dropped_channel_recreated_starts_empty<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "phoenix";
    let old = [logged(ch, "a", 1), logged(ch, "b", 2)];
    backend
        .commit(ch, Some(&full_meta(ch)), Some(&append(old.clone())))
        .await
        .context("first life: commit")?;
    backend
        .set_retrieval_hint(ch, "a", b"old-hint")
        .await
        .context("first life: hint")?;
    backend.drop_channel(ch).await.context("drop")?;
    expect_loaded(&*backend, ch, &ChannelData::empty(), "right after the drop").await?;

    // Second life: a history-only write, a hint for an old id (must be ignored), then the
    // old id appended again without a hint.
    let fresh = logged(ch, "c", 3);
    backend
        .update_history(ch, &append([fresh.clone()]))
        .await
        .context("second life: append")?;
    backend
        .set_retrieval_hint(ch, "b", b"stale")
        .await
        .context("second life: hint for an id of the first life")?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![fresh.clone()]),
        "after the first write of its second life",
    )
    .await?;
    backend
        .update_history(ch, &append([old[0].clone()]))
        .await
        .context("second life: append an id of the first life")?;
    let meta = meta_with_lamport(9);
    backend
        .save_channel_meta(ch, &meta)
        .await
        .context("second life: snapshot")?;
    expect_loaded(
        &*backend,
        ch,
        &data(meta, vec![old[0].clone(), fresh]),
        "in its second life",
    )
    .await
}
