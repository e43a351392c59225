//! The writer fence on the real server: the epoch outlives the pool that claimed it, and
//! no write of a superseded handle lands once the newer claim returned, even while the
//! stale handle writes at full speed on several connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::{Persistence, PersistenceErrorKind, WriterEpoch};
use tokio::task::JoinSet;

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_outlives_the_pool_that_claimed_it() {
    let stale = support::backend("fence-restart").await;
    let namespace = stale.namespace().to_owned();
    {
        let newer = stale.with_namespace(namespace.clone());
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
        for refused in [
            stale.drop_channel("ch").await,
            stale.set_retrieval_hint("ch", "x", b"h").await,
        ] {
            assert_eq!(refused.unwrap_err().kind(), PersistenceErrorKind::Fenced);
        }
        // Reads are never fenced.
        assert_eq!(stale.load_channel("ch").await.unwrap().meta, Some(meta(2)));
        newer.close().await.unwrap();
    }
    stale.close_pool().await;
    // A new process: a new pool, the claim counts on from the stored epoch.
    let restarted = support::builder()
        .namespace(namespace)
        .connect()
        .await
        .unwrap();
    assert_eq!(
        restarted.load_channel("ch").await.unwrap().meta,
        Some(meta(2))
    );
    assert_eq!(
        restarted.claim_writer().await.unwrap(),
        Some(WriterEpoch::new(3))
    );
    restarted.commit("ch", Some(&meta(4)), None).await.unwrap();
    // The fence row is no channel.
    assert_eq!(restarted.list_channels().await.unwrap(), ["ch"]);
    restarted.delete_namespace().await.unwrap();
}

const WRITERS: u64 = 4;
const CHANNELS: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_write_lands_after_the_newer_claim() {
    let stale = Arc::new(support::backend("fence-race").await);
    let newer = stale.with_namespace(stale.namespace().to_owned());
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
    newer.delete_namespace().await.unwrap();
}
