//! The writer fence on a real database directory: the epoch outlives closing the database.
//! (That no stale write lands after a concurrent claim is the conformance case
//! `no_stale_write_lands_after_a_concurrent_claim`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::{Persistence, PersistenceErrorKind, WriterEpoch};
use sds_persist_rocksdb::RocksDbPersistence;

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
