//! Retrieval hints live and die with their history entry.

use sds_codec::storage::{ChannelData, ChannelMeta};
use sds_core::persistence::Persistence as _;

use super::expect_loaded;
use super::fixtures::{append, data, evict, logged, logged_with_hint, pseudo_random_bytes};
use crate::case::{CaseResult, Context as _, Ctx};
use crate::harness::Harness;

/// A retrieval hint, set later or carried by the append, comes back byte-exact on its history entry.
pub async fn hint_comes_back_with_its_entry<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "hinted";
    let carried = logged_with_hint(ch, "carried", 3, b"given-at-append");
    backend
        .update_history(
            ch,
            &append([logged(ch, "a", 1), logged(ch, "b", 2), carried.clone()]),
        )
        .await
        .context("append")?;
    backend
        .update_history("elsewhere", &append([logged("elsewhere", "a", 1)]))
        .await
        .context("append the same id to another channel")?;

    // Every byte value, NUL and 0xFF included.
    let first = pseudo_random_bytes(64, 1);
    backend
        .set_retrieval_hint(ch, "a", &first)
        .await
        .context("set_retrieval_hint")?;
    let mut a = logged(ch, "a", 1);
    a.retrieval_hint = Some(first);
    expect_loaded(
        &*backend,
        ch,
        &data(
            ChannelMeta::empty(),
            vec![a.clone(), logged(ch, "b", 2), carried.clone()],
        ),
        "after setting a hint",
    )
    .await?;

    let second = b"replaced".to_vec();
    backend
        .set_retrieval_hint(ch, "a", &second)
        .await
        .context("set_retrieval_hint again")?;
    a.retrieval_hint = Some(second);
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![a, logged(ch, "b", 2), carried]),
        "after replacing the hint",
    )
    .await?;
    expect_loaded(
        &*backend,
        "elsewhere",
        &data(ChannelMeta::empty(), vec![logged("elsewhere", "a", 1)]),
        "(the same id in another channel has no hint)",
    )
    .await
}

/// Evicting a message removes its hint; the same id appended again has none.
pub async fn hint_of_an_evicted_message_is_gone<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "forget";
    backend
        .update_history(ch, &append([logged(ch, "a", 1), logged(ch, "b", 2)]))
        .await
        .context("append")?;
    backend
        .set_retrieval_hint(ch, "a", b"hint-a")
        .await
        .context("set_retrieval_hint")?;
    backend
        .update_history(ch, &evict(&["a"]))
        .await
        .context("evict the hinted message")?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![logged(ch, "b", 2)]),
        "after evicting the hinted message",
    )
    .await?;

    backend
        .update_history(ch, &append([logged(ch, "a", 1)]))
        .await
        .context("append the evicted id again, without a hint")?;
    expect_loaded(
        &*backend,
        ch,
        &data(
            ChannelMeta::empty(),
            vec![logged(ch, "a", 1), logged(ch, "b", 2)],
        ),
        "after appending the evicted id again",
    )
    .await
}

/// A hint for a message not in the history creates nothing, in a known or an unknown channel.
pub async fn hint_for_an_unknown_message_is_ignored<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    let backend = cx.open().await?;
    let ch = "known";
    backend
        .update_history(ch, &append([logged(ch, "a", 1)]))
        .await
        .context("append")?;
    backend
        .set_retrieval_hint(ch, "ghost", b"hint")
        .await
        .context("set_retrieval_hint for an unknown id")?;
    expect_loaded(
        &*backend,
        ch,
        &data(ChannelMeta::empty(), vec![logged(ch, "a", 1)]),
        "after a hint for an unknown id",
    )
    .await?;

    backend
        .set_retrieval_hint("never-saved", "a", b"hint")
        .await
        .context("set_retrieval_hint in a channel never saved")?;
    expect_loaded(
        &*backend,
        "never-saved",
        &ChannelData::empty(),
        "after a hint was its only write",
    )
    .await?;

    // A hint that arrived before its message must not attach itself later.
    backend
        .update_history(ch, &append([logged(ch, "ghost", 2)]))
        .await
        .context("append the id the hint was for")?;
    expect_loaded(
        &*backend,
        ch,
        &data(
            ChannelMeta::empty(),
            vec![logged(ch, "a", 1), logged(ch, "ghost", 2)],
        ),
        "after appending the id an earlier hint named",
    )
    .await
}
