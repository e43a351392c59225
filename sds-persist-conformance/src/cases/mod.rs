//! The cases, one module per concept.
//!
//! Every case is `pub async fn <name><H: Harness>(cx: &Ctx<'_, H>) -> CaseResult`, with a
//! one-line doc comment saying what it proves (the same line as in the catalog table).
//! Each opens its own backends through `cx`, so it starts from empty namespaces.
//!
//! The storage-level groups (`roundtrip`, `history`, `isolation`, `hints`, `atomicity`,
//! `fence`, `contract`, `scale`) drive the [`Persistence`] operations directly. The
//! manager-level groups (`r2`, `merge`, `load_failures`, `restart`, the last case of
//! `fence`, and the last two of `lifecycle`) run a
//! `sds_core::ReliabilityManager` over the backend, wrapped in `sds_core`'s fault injector
//! where they need outages.

pub mod atomicity;
pub mod contract;
pub mod envelope;
pub mod fence;
pub mod fixtures;
pub mod hints;
pub mod history;
pub mod isolation;
pub mod lifecycle;
pub mod load_failures;
pub mod merge;
mod node;
pub mod r2;
pub mod restart;
pub mod roundtrip;
pub mod scale;

use sds_codec::storage::ChannelData;
use sds_core::persistence::Persistence;

use crate::case::{CaseResult, Context as _, ensure_eq};
use fixtures::history_keys;

/// Loads `channel` and compares it with `expected`: the snapshot, the history's
/// (lamport, id) order, then every history entry in full.
pub(crate) async fn expect_loaded<P: Persistence + ?Sized>(
    backend: &P,
    channel: &str,
    expected: &ChannelData,
    when: &str,
) -> CaseResult {
    let loaded = backend
        .load_channel(channel)
        .await
        .context(format!("load_channel({channel:?}) {when}"))?;
    expect_data(channel, expected, &loaded, when)
}

/// Compares loaded data with what was expected, naming the first difference.
pub(crate) fn expect_data(
    channel: &str,
    expected: &ChannelData,
    loaded: &ChannelData,
    when: &str,
) -> CaseResult {
    ensure_eq(
        format!("snapshot of {channel:?} {when}"),
        &expected.meta,
        &loaded.meta,
    )?;
    ensure_eq(
        format!("history (lamport, id) of {channel:?} {when}"),
        &history_keys(expected),
        &history_keys(loaded),
    )?;
    for (want, found) in expected.history.iter().zip(&loaded.history) {
        ensure_eq(
            format!(
                "history entry {:?} of {channel:?} {when}",
                want.message_id()
            ),
            want,
            found,
        )?;
    }
    Ok(())
}
