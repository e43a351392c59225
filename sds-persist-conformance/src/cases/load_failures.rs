//! Loads that cannot succeed fail loudly, with the matching typed error, and only for the
//! channel concerned: bootstrap must never mistake "could not read" for "empty".

use std::sync::Arc;

use sds_codec::storage::{ChannelMeta, SCHEMA_VERSION, encode_channel_meta};
use sds_core::persistence::{Persistence, PersistenceError, PersistenceErrorKind};
use sds_core::{ReliabilityManager, SdsError};

use super::expect_loaded;
use super::fixtures::{append, data, logged, meta_with_lamport};
use super::node::{Node, config, expect_persistence_error};
use crate::case::{CaseError, CaseResult, Context as _, Ctx, brief, ensure, ensure_eq};
use crate::harness::Harness;

/// Bytes no protobuf decoder accepts: a varint longer than ten bytes.
const GARBAGE: [u8; 16] = [0xFF; 16];

/// The channel [`check_damage`] damages.
pub(super) const VICTIM: &str = "victim";
const HEALTHY: &str = "healthy";

/// Fails unless `result` is an error of `kind` (never `Ok`, in particular not empty data).
pub(super) fn expect_load_error<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, PersistenceError>,
    kind: PersistenceErrorKind,
) -> Result<PersistenceError, CaseError> {
    match result {
        Err(err) if err.kind() == kind => Ok(err),
        Err(err) => Err(CaseError::failed(format!(
            "{what}: expected a {kind:?} error, found {:?}: {}",
            err.kind(),
            crate::chain(&err)
        ))),
        Ok(value) => Err(CaseError::failed(format!(
            "{what}: expected a {kind:?} error, but it loaded {}",
            brief(&value)
        ))),
    }
}

/// Writes a victim and a healthy channel through a manager, lets `damage` corrupt the
/// victim, then checks the backend's load and a fresh manager's bootstrap of the victim
/// fail with `kind`, while the healthy channel still loads and takes new messages.
pub(super) async fn check_damage<H, F, Fut>(
    cx: &Ctx<'_, H>,
    kind: PersistenceErrorKind,
    damage: F,
) -> CaseResult
where
    H: Harness,
    F: FnOnce(Arc<H::Backend>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<Option<PersistenceError>, CaseError>>,
{
    let backend = cx.open().await?;
    let alice = Node::start("alice", backend.clone(), config())?;
    for id in ["v1", "v2", "v3"] {
        alice.clock.advance(1);
        alice.send(VICTIM, id).await?;
    }
    alice.send(HEALTHY, "h1").await?;
    let stored = alice.stored(VICTIM).await?;
    let middle_lamport = stored
        .history
        .get(1)
        .map(|entry| entry.lamport())
        .ok_or_else(|| CaseError::failed("set-up: the victim's history was not stored"))?;
    drop(alice);

    let expected_error = damage(backend.clone(), middle_lamport).await?;
    let err = expect_load_error(
        "load_channel of the damaged channel",
        backend.load_channel(VICTIM).await,
        kind,
    )?;
    if let (Some(expected), PersistenceError::UnsupportedSchema { .. }) = (&expected_error, &err) {
        ensure_eq(
            "the unsupported-schema error",
            &expected.to_string(),
            &err.to_string(),
        )?;
    }

    let restarted = Node::start("alice", cx.reopen(&backend).await?, config())?;
    expect_persistence_error(
        "bootstrap (ensure_channel) of the damaged channel",
        restarted.manager.ensure_channel(VICTIM).await,
        kind,
    )?;
    expect_persistence_error(
        "a send on the damaged channel",
        restarted
            .manager
            .wrap_outgoing(VICTIM, "v4", b"four".to_vec())
            .await,
        kind,
    )?;

    restarted
        .manager
        .ensure_channel(HEALTHY)
        .await
        .context("bootstrap of the healthy channel next to the damaged one")?;
    ensure_eq(
        "the healthy channel's log",
        &vec!["h1".to_string()],
        &restarted.state(HEALTHY).await?.log,
    )?;
    restarted.send(HEALTHY, "h2").await?;
    restarted
        .expect_stored_equals_log(HEALTHY, "after a send next to the damaged channel")
        .await
}

/// A backend that cannot reach its server fails load and channel bootstrap as Unavailable, never as an empty channel.
pub async fn unreachable_backend_fails_bootstrap_as_unavailable<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    let dead = cx.unreachable().await?;
    expect_load_error(
        "load_channel on an unreachable backend",
        dead.load_channel("room").await,
        PersistenceErrorKind::Unavailable,
    )?;
    let (manager, _events) = ReliabilityManager::builder("alice")
        .config(config())
        .persistence(dead.clone())
        .build()
        .context("building a manager")?;
    expect_persistence_error(
        "bootstrap (ensure_channel) over an unreachable backend",
        manager.ensure_channel("room").await,
        PersistenceErrorKind::Unavailable,
    )?;
    ensure(manager.open_channels().is_empty(), || {
        format!(
            "channels open after a failed bootstrap: {:?}",
            manager.open_channels()
        )
    })?;
    match manager.remove_channel("room").await {
        Err(SdsError::Persistence(_)) | Ok(()) => {}
        Err(other) => {
            return Err(CaseError::failed(format!(
                "remove_channel over an unreachable backend: unexpected error kind: {other}"
            )));
        }
    }

    // The harness's reachable backends are unaffected.
    let alive = cx.open().await?;
    let history = vec![logged("room", "m", 1)];
    alive
        .commit(
            "room",
            Some(&meta_with_lamport(3)),
            Some(&append(history.clone())),
        )
        .await
        .context("commit on a reachable backend")?;
    expect_loaded(
        &*alive,
        "room",
        &data(meta_with_lamport(3), history),
        "on a reachable backend next to an unreachable one",
    )
    .await
}

/// Corrupt snapshot bytes fail load and channel bootstrap as Corrupt, and other channels stay usable.
pub async fn corrupt_snapshot_fails_bootstrap_as_corrupt<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    cx.require(crate::Capability::RawWrites)?;
    check_damage(cx, PersistenceErrorKind::Corrupt, |backend, _| async move {
        cx.write_raw_meta(&backend, VICTIM, &GARBAGE).await?;
        Ok(None)
    })
    .await
}

/// A snapshot with an unknown schema version fails load and channel bootstrap as UnsupportedSchema, and other channels stay usable.
pub async fn unknown_schema_version_fails_bootstrap<H: Harness>(cx: &Ctx<'_, H>) -> CaseResult {
    cx.require(crate::Capability::RawWrites)?;
    check_damage(
        cx,
        PersistenceErrorKind::UnsupportedSchema,
        |backend, _| async move {
            let future = ChannelMeta {
                schema_version: SCHEMA_VERSION + 1,
                lamport: 42,
                ..ChannelMeta::empty()
            };
            cx.write_raw_meta(&backend, VICTIM, &encode_channel_meta(&future))
                .await?;
            Ok(Some(PersistenceError::UnsupportedSchema {
                found: SCHEMA_VERSION + 1,
                supported: SCHEMA_VERSION,
            }))
        },
    )
    .await
}

/// A corrupt history row fails load and channel bootstrap as Corrupt (never a shorter history), and other channels stay usable.
pub async fn corrupt_history_row_fails_bootstrap_as_corrupt<H: Harness>(
    cx: &Ctx<'_, H>,
) -> CaseResult {
    cx.require(crate::Capability::RawWrites)?;
    check_damage(
        cx,
        PersistenceErrorKind::Corrupt,
        |backend, lamport| async move {
            cx.write_raw_history_row(&backend, VICTIM, lamport, "v2", &GARBAGE)
                .await?;
            Ok(None)
        },
    )
    .await
}
