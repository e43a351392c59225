//! The writer fence on a real database directory: the epoch outlives closing the database,
//! and no write of a superseded handle lands once the newer claim returned, even while the
//! stale handle is writing at full speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::{Persistence, PersistenceErrorKind, WriterEpoch};
use sds_persist_rocksdb::RocksDbPersistence;
use tokio::task::JoinSet;

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    }
}

async fn open(path: &std::path::Path) -> RocksDbPersistence {
    RocksDbPersistence::builder(path)
        .namespace("node")
        .open_async()
        .await
        .expect("open the database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_survives_closing_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let stale = open(&path).await;
        let newer = stale.with_namespace("node");
        assert_eq!(
            stale.claim_writer().await.unwrap(),
            Some(WriterEpoch::new(1))
        );
        stale.commit("ch", Some(&meta(1)), None).await.unwrap();
        assert_eq!(
            newer.claim_writer().await.unwrap(),
            Some(WriterEpoch::new(2))
        );
        newer.commit("ch", Some(&meta(2)), None).await.unwrap();
        let err = stale.commit("ch", Some(&meta(3)), None).await.unwrap_err();
        assert_eq!(err.kind(), PersistenceErrorKind::Fenced, "{err}");
        newer.close().await.unwrap();
    }
    // A new process: the database is opened again, the claim counts on from the stored
    // epoch, and the namespace holds the newer writer's snapshot.
    let restarted = open(&path).await;
    assert_eq!(
        restarted.load_channel("ch").await.unwrap().meta,
        Some(meta(2))
    );
    assert_eq!(
        restarted.claim_writer().await.unwrap(),
        Some(WriterEpoch::new(3))
    );
    restarted.commit("ch", Some(&meta(4)), None).await.unwrap();
    // The epoch key is no channel: listing the namespace shows only "ch".
    assert_eq!(restarted.list_channels().await.unwrap(), ["ch"]);
}

const WRITERS: u64 = 4;
const CHANNELS: u64 = 8;

/// Stale writers commit on every channel without pause (until each was refused on every
/// channel) while a newer handle claims and then overwrites every channel: each stale
/// commit either failed as Fenced or landed before the claim returned, so the newer
/// snapshot is what every channel ends with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_write_lands_after_the_newer_claim() {
    let dir = tempfile::tempdir().unwrap();
    let stale = Arc::new(open(&dir.path().join("db")).await);
    let newer = stale.with_namespace("node");
    stale.claim_writer().await.unwrap();

    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let stale = Arc::clone(&stale);
        writers.spawn(async move {
            let (mut landed, mut fenced) = (0u64, 0u64);
            // Bounded, so a backend that never fences fails the test instead of hanging it.
            for round in 0..1_000 {
                if fenced >= CHANNELS {
                    break;
                }
                for channel in 0..CHANNELS {
                    let lamport = writer * 1_000 + round;
                    match stale
                        .commit(&format!("ch-{channel}"), Some(&meta(lamport)), None)
                        .await
                    {
                        Ok(()) => landed += 1,
                        Err(err) if err.kind() == PersistenceErrorKind::Fenced => fenced += 1,
                        Err(err) => panic!("unexpected error: {err}"),
                    }
                }
                tokio::task::yield_now().await;
            }
            (landed, fenced)
        });
    }
    // Let the stale writers get going, then take the namespace over.
    while stale.list_channels().await.unwrap().len() < CHANNELS as usize {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        newer.claim_writer().await.unwrap(),
        Some(WriterEpoch::new(2))
    );
    let newest = meta(1_000_000);
    for channel in 0..CHANNELS {
        newer
            .commit(&format!("ch-{channel}"), Some(&newest), None)
            .await
            .unwrap();
    }
    let (mut landed, mut fenced) = (0, 0);
    while let Some(outcome) = writers.join_next().await {
        let (l, f) = outcome.unwrap();
        landed += l;
        fenced += f;
    }
    assert!(landed >= CHANNELS, "landed {landed}");
    assert!(fenced >= WRITERS * CHANNELS, "fenced {fenced}");
    for channel in 0..CHANNELS {
        let stored = newer.load_channel(&format!("ch-{channel}")).await.unwrap();
        assert_eq!(stored.meta.as_ref(), Some(&newest), "ch-{channel}");
    }
}
