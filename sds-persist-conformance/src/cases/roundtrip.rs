//! Snapshots come back as they were saved.

use sds_codec::storage::{
    ChannelData, ChannelMeta, OutgoingEntry, SCHEMA_VERSION, encode_buffered_message,
};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::Persistence as _;

use super::expect_loaded;
use super::fixtures::{
    FULL_BLOOM_BYTES, append, data, full_meta, logged, message, meta_with_lamport,
    pseudo_random_bytes,
};
use crate::case::{CaseResult, Context as _, Ctx, ensure_eq};
use crate::harness::Harness;

/// A snapshot with every buffer kind and all repair times loads back equal.
pub async fn meta_round_trips_every_buffer_kind<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let meta = full_meta("buffers");
    backend
        .save_channel_meta("buffers", &meta)
        .await
        .context("save_channel_meta")?;
    expect_loaded(&*backend, "buffers", &data(meta, vec![]), "after one save").await
}

/// A snapshot of about 2 MB (a hundred full-size bloom filters) loads back equal.
pub async fn large_snapshot_round_trips<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let outgoing = (0..100u64)
        .map(|i| OutgoingEntry {
            message: encode_buffered_message(&SdsMessage {
                bloom_filter: Some(pseudo_random_bytes(FULL_BLOOM_BYTES, i)),
                ..message("large", &format!("out-{i:03}"), 1_700_000_000_000 + i)
            }),
            sent_at_ms: 1_700_000_000_000 + i64::try_from(i).unwrap_or(0),
            resend_attempts: 1,
            possible_acks: 0,
        })
        .collect();
    let meta = ChannelMeta {
        lamport: 1_700_000_000_100,
        outgoing,
        ..ChannelMeta::empty()
    };
    backend
        .save_channel_meta("large", &meta)
        .await
        .context("save_channel_meta of a large snapshot")?;
    expect_loaded(&*backend, "large", &data(meta, vec![]), "after one save").await
}

/// A channel never saved loads as empty data at the current schema version, not as an error.
pub async fn unknown_channel_loads_as_empty_data<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let empty = backend
        .load_channel("never-saved")
        .await
        .context("load_channel of a channel never saved, in an empty namespace")?;
    ensure_eq(
        "a channel never saved, in an empty namespace",
        &ChannelData::empty(),
        &empty,
    )?;
    ensure_eq(
        "its schema version",
        &Some(SCHEMA_VERSION),
        &empty.meta.as_ref().map(|meta| meta.schema_version),
    )?;

    backend
        .commit(
            "other",
            Some(&full_meta("other")),
            Some(&append([logged("other", "m", 1)])),
        )
        .await
        .context("commit to another channel")?;
    expect_loaded(
        &*backend,
        "never-saved",
        &ChannelData::empty(),
        "while another channel holds data",
    )
    .await
}

/// A later snapshot replaces the earlier one whole; nothing of the earlier one is merged in.
pub async fn save_replaces_never_merges<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let full = full_meta("replace");
    backend
        .save_channel_meta("replace", &full)
        .await
        .context("first save")?;

    // Fewer entries, other values: a merge would keep the first snapshot's extra entries.
    let mut smaller = meta_with_lamport(full.lamport + 1);
    smaller.outgoing = vec![full.outgoing[1].clone()].into();
    smaller.outgoing[0].resend_attempts += 1;
    backend
        .save_channel_meta("replace", &smaller)
        .await
        .context("second save")?;
    expect_loaded(
        &*backend,
        "replace",
        &data(smaller, vec![]),
        "after a smaller snapshot replaced a full one",
    )
    .await?;

    let empty = ChannelMeta::empty();
    backend
        .save_channel_meta("replace", &empty)
        .await
        .context("third save (an empty snapshot)")?;
    expect_loaded(
        &*backend,
        "replace",
        &data(empty, vec![]),
        "after an empty snapshot replaced a non-empty one",
    )
    .await
}

/// Saving a snapshot leaves the history alone and updating the history leaves the snapshot alone.
pub async fn snapshot_and_history_are_written_independently<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let history = vec![logged("split", "a", 1), logged("split", "b", 2)];
    backend
        .update_history("split", &append(history.clone()))
        .await
        .context("update_history before any snapshot")?;
    expect_loaded(
        &*backend,
        "split",
        &data(ChannelMeta::empty(), history.clone()),
        "with history and no snapshot",
    )
    .await?;

    let meta = full_meta("split");
    backend
        .save_channel_meta("split", &meta)
        .await
        .context("save_channel_meta")?;
    expect_loaded(
        &*backend,
        "split",
        &data(meta.clone(), history.clone()),
        "after a snapshot save",
    )
    .await?;

    let more = logged("split", "c", 3);
    backend
        .update_history("split", &append([more.clone()]))
        .await
        .context("update_history after the snapshot")?;
    let mut all = history;
    all.push(more);
    expect_loaded(
        &*backend,
        "split",
        &data(meta, all),
        "after a history update",
    )
    .await
}
