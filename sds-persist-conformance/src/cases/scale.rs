//! Volume: many channels with full histories.

use std::sync::Arc;
use std::time::Instant;

use sds_codec::storage::{ChannelData, LoggedMessage};
use sds_core::persistence::Persistence;
use tokio::task::JoinSet;

use super::expect_data;
use super::fixtures::{append, data, lean_logged, meta_with_lamport};
use crate::case::{CaseError, CaseResult, Context as _, Ctx};
use crate::harness::Harness;
use crate::report::format_duration;

const CHANNELS: usize = 1_000;
const ENTRIES: usize = 1_000;
const BATCH: usize = 250;
/// Channels written or read at once (enough to keep a networked backend busy).
const PARALLEL: usize = 8;

fn channel_name(c: usize) -> String {
    format!("scale-{c:04}")
}

/// Channel `c`'s history in append order: Lamport timestamps cycle so that appends arrive
/// out of order and collide, which the load must sort.
fn entries(c: usize) -> Vec<LoggedMessage> {
    let channel = channel_name(c);
    (0..ENTRIES)
        .map(|j| {
            let lamport = 1_000 + ((j * 7) % 400) as u64;
            lean_logged(&channel, format!("e{j:04}-{c}"), lamport)
        })
        .collect()
}

fn expected(c: usize) -> ChannelData {
    data(meta_with_lamport(c as u64 + 1), entries(c))
}

async fn write_channel<P: Persistence + ?Sized>(backend: &P, c: usize) -> Result<(), String> {
    let channel = channel_name(c);
    let all = entries(c);
    for (i, batch) in all.chunks(BATCH).enumerate() {
        let meta = (i == 0).then(|| meta_with_lamport(c as u64 + 1));
        backend
            .commit(&channel, meta.as_ref(), Some(&append(batch.to_vec())))
            .await
            .map_err(|err| format!("commit {i} to {channel}: {}", crate::chain(&err)))?;
    }
    Ok(())
}

/// 1,000 channels of 1,000 history entries each load back exactly.
pub async fn thousand_channels_of_thousand_entries_load_back_exactly<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let backend = cx.open().await?;
    let started = Instant::now();
    let mut writers = JoinSet::new();
    for lane in 0..PARALLEL {
        let backend = Arc::clone(&backend);
        writers.spawn(async move {
            for c in (lane..CHANNELS).step_by(PARALLEL) {
                write_channel(&*backend, c).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined
            .map_err(|err| CaseError::failed(format!("a writer task died: {err}")))?
            .map_err(CaseError::failed)?;
    }
    let written = started.elapsed();

    let started = Instant::now();
    let mut readers = JoinSet::new();
    for lane in 0..PARALLEL {
        let backend = Arc::clone(&backend);
        readers.spawn(async move {
            for c in (lane..CHANNELS).step_by(PARALLEL) {
                let channel = channel_name(c);
                let loaded = backend
                    .load_channel(&channel)
                    .await
                    .context(format!("load_channel({channel})"))?;
                let want = expected(c);
                if loaded != want {
                    expect_data(&channel, &want, &loaded, "after the bulk write")?;
                    return Err(CaseError::failed(format!(
                        "{channel} loaded differently from what was written"
                    )));
                }
            }
            Ok::<(), CaseError>(())
        });
    }
    while let Some(joined) = readers.join_next().await {
        joined.map_err(|err| CaseError::failed(format!("a reader task died: {err}")))??;
    }
    tracing::info!(
        channels = CHANNELS,
        entries_per_channel = ENTRIES,
        write = %format_duration(written),
        read = %format_duration(started.elapsed()),
        "scale case"
    );
    Ok(())
}
