//! The storage envelope end to end: stored snapshots and history rows carry their length and
//! a CRC32C (schema version 2), so a value cut short or with a flipped bit fails load and
//! bootstrap as Corrupt instead of loading as less, or other, than was written; values an
//! earlier build stored (version 1) still load.
//!
//! The damaged bytes are the codec's own encoding, cut or flipped, written where the backend
//! keeps them ([`crate::Capability::RawWrites`]). The cuts include the one protobuf alone
//! cannot see: at a field boundary, where a snapshot of three outgoing messages would load
//! with two and a history row without its retrieval hint; the flips land inside a message's
//! content, where protobuf would load another valid text.

use sds_codec::storage::{
    ChannelMeta, LoggedMessage, OutgoingEntry, SCHEMA_VERSION, encode_buffered_message,
    encode_channel_meta, encode_logged_message, v1,
};
use sds_core::persistence::{Persistence, PersistenceErrorKind};

use super::expect_loaded;
use super::fixtures::{append, data, logged, logged_with_hint, message};
use super::load_failures::{VICTIM, check_damage, expect_load_error};
use crate::case::{CaseError, CaseResult, Context as _, Ctx};
use crate::harness::{Capability, Harness};

const CHANNEL: &str = "sealed";

/// A snapshot of three unacknowledged messages, at `schema_version`.
fn three_outgoing(schema_version: u32, entries: usize) -> ChannelMeta {
    ChannelMeta {
        schema_version,
        lamport: 3,
        outgoing: (1..=3)
            .take(entries)
            .map(|n| OutgoingEntry {
                message: encode_buffered_message(&message(CHANNEL, &format!("out-{n}"), n)),
                sent_at_ms: 1_700_000_000_000 + n as i64,
                resend_attempts: 0,
                possible_acks: 1,
            })
            .collect(),
        ..ChannelMeta::empty()
    }
}

/// `blob` with the lowest bit of the first byte of `marker` flipped, a change protobuf
/// would decode as another valid value.
fn flip_inside(blob: &[u8], marker: &[u8]) -> Result<Vec<u8>, CaseError> {
    let at = blob
        .windows(marker.len())
        .position(|window| window == marker)
        .ok_or_else(|| {
            CaseError::failed(format!(
                "set-up: {:?} not found in the encoded value",
                String::from_utf8_lossy(marker)
            ))
        })?;
    let mut flipped = blob.to_vec();
    flipped[at] ^= 0x01;
    Ok(flipped)
}

/// The ways a stored value is damaged, each with the bytes it leaves: cut at `boundary`
/// (a protobuf field boundary), cut by one byte, cut inside the header, emptied, and one bit
/// flipped inside `content`.
fn damages(
    blob: &[u8],
    boundary: usize,
    content: &[u8],
) -> Result<Vec<(&'static str, Vec<u8>)>, CaseError> {
    let cut = |len: usize| blob.get(..len).unwrap_or_default().to_vec();
    Ok(vec![
        ("cut at a protobuf field boundary", cut(boundary)),
        ("cut by its last byte", cut(blob.len().saturating_sub(1))),
        ("cut inside its header", cut(5)),
        ("emptied", Vec::new()),
        (
            "with one bit flipped in a message's content",
            flip_inside(blob, content)?,
        ),
    ])
}

/// A stored snapshot cut short (even at a field boundary) or with one bit flipped fails load and bootstrap as Corrupt, never loads as less or other than was written.
pub async fn cut_or_flipped_snapshot_fails_bootstrap_as_corrupt<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    cx.require(Capability::RawWrites)?;
    let backend = cx.open().await?;
    let meta = three_outgoing(SCHEMA_VERSION, 3);
    let blob = encode_channel_meta(&meta);
    // The payload is written field by field, so two entries end where the third begins.
    let boundary = encode_channel_meta(&three_outgoing(SCHEMA_VERSION, 2)).len();

    // The intact bytes load: the refusals below are the damage's doing.
    cx.write_raw_meta(&backend, CHANNEL, &blob).await?;
    expect_loaded(
        &*backend,
        CHANNEL,
        &data(meta.clone(), Vec::new()),
        "after writing its intact encoded bytes",
    )
    .await?;
    for (damage, bytes) in damages(&blob, boundary, b"content of out-3")? {
        cx.write_raw_meta(&backend, CHANNEL, &bytes).await?;
        expect_load_error(
            &format!(
                "load_channel of a {}-byte snapshot {damage} ({} bytes left)",
                blob.len(),
                bytes.len()
            ),
            backend.load_channel(CHANNEL).await,
            PersistenceErrorKind::Corrupt,
        )?;
    }

    // Through a manager: bootstrap refuses the channel, the others stay usable.
    check_damage(cx, PersistenceErrorKind::Corrupt, |backend, _| async move {
        cx.write_raw_meta(&backend, VICTIM, &blob[..boundary])
            .await?;
        Ok(None)
    })
    .await
}

/// A stored history row cut short (even before its retrieval hint) or with one bit flipped fails load and bootstrap as Corrupt, never loads as less or other than was written.
pub async fn cut_or_flipped_history_row_fails_bootstrap_as_corrupt<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    cx.require(Capability::RawWrites)?;
    let backend = cx.open().await?;
    let history: Vec<LoggedMessage> = (1..=3)
        .map(|n| logged(CHANNEL, &format!("m{n}"), n))
        .collect();
    backend
        .commit(CHANNEL, None, Some(&append(history.clone())))
        .await
        .context("set-up: appending three messages")?;
    let hinted = logged_with_hint(CHANNEL, "m2", 2, b"waku-message-hash");
    let blob = encode_logged_message(&hinted);
    // The hint is the row's last field: without it the row ends there.
    let boundary = encode_logged_message(&logged(CHANNEL, "m2", 2)).len();

    cx.write_raw_history_row(&backend, CHANNEL, 2, "m2", &blob)
        .await?;
    let mut expected = history.clone();
    expected[1] = hinted.clone();
    expect_loaded(
        &*backend,
        CHANNEL,
        &data(ChannelMeta::empty(), expected),
        "after writing a row's intact encoded bytes",
    )
    .await?;
    for (damage, bytes) in damages(&blob, boundary, b"content of m2")? {
        cx.write_raw_history_row(&backend, CHANNEL, 2, "m2", &bytes)
            .await?;
        expect_load_error(
            &format!(
                "load_channel with a {}-byte history row {damage} ({} bytes left)",
                blob.len(),
                bytes.len()
            ),
            backend.load_channel(CHANNEL).await,
            PersistenceErrorKind::Corrupt,
        )?;
    }

    check_damage(
        cx,
        PersistenceErrorKind::Corrupt,
        |backend, lamport| async move {
            let stored = backend
                .load_channel(VICTIM)
                .await
                .context("set-up: loading the victim")?;
            let mut row = stored
                .history
                .iter()
                .find(|row| row.lamport() == lamport)
                .cloned()
                .ok_or_else(|| CaseError::failed("set-up: the victim's middle row is missing"))?;
            let boundary = encode_logged_message(&row).len();
            row.retrieval_hint = Some(b"waku-message-hash".to_vec());
            let id = row.message_id().to_owned();
            let blob = encode_logged_message(&row);
            cx.write_raw_history_row(&backend, VICTIM, lamport, &id, &blob[..boundary])
                .await?;
            Ok(None)
        },
    )
    .await
}

/// A snapshot and history rows stored by an earlier build (schema version 1, no envelope) still load as written, and the channel takes new writes.
pub async fn version_one_values_still_load<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    cx.require(Capability::RawWrites)?;
    let backend = cx.open().await?;
    let history: Vec<LoggedMessage> = vec![
        logged(CHANNEL, "m1", 1),
        logged_with_hint(CHANNEL, "m2", 2, b"hint-2"),
    ];
    backend
        .commit(CHANNEL, None, Some(&append(history.clone())))
        .await
        .context("set-up: appending two messages")?;
    let old_meta = three_outgoing(1, 3);
    cx.write_raw_meta(&backend, CHANNEL, &v1::encode_channel_meta(&old_meta))
        .await?;
    for row in &history {
        cx.write_raw_history_row(
            &backend,
            CHANNEL,
            row.lamport(),
            row.message_id(),
            &v1::encode_logged_message(row),
        )
        .await?;
    }
    // A version-1 snapshot loads as the current version: only the envelope changed.
    let meta = ChannelMeta {
        schema_version: SCHEMA_VERSION,
        ..old_meta
    };
    expect_loaded(
        &*backend,
        CHANNEL,
        &data(meta.clone(), history.clone()),
        "written by an earlier build",
    )
    .await?;

    // Version-1 rows stay readable next to new ones, and take a hint.
    let added = logged(CHANNEL, "m3", 3);
    backend
        .commit(CHANNEL, Some(&meta), Some(&append([added.clone()])))
        .await
        .context("commit over version-1 values")?;
    backend
        .set_retrieval_hint(CHANNEL, "m1", b"hint-1")
        .await
        .context("set_retrieval_hint on a version-1 row")?;
    let mut expected = history;
    expected[0].retrieval_hint = Some(b"hint-1".to_vec());
    expected.push(added);
    expect_loaded(
        &*backend,
        CHANNEL,
        &data(meta, expected),
        "after new writes over version-1 values",
    )
    .await
}
