//! The writer fence on the real server: the epoch outlives the pool that claimed it. (That
//! no stale write lands after a concurrent claim is the conformance case
//! `no_stale_write_lands_after_a_concurrent_claim`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::{Persistence, PersistenceErrorKind, WriterEpoch};

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
