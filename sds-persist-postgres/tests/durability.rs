//! What the backend declares about durability, and the flushes it makes when sessions run
//! with `synchronous_commit` off: claims, drops and `close` still succeed and are made
//! durable by a synchronous transaction of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_codec::storage::ChannelMeta;
use sds_core::persistence::{Persistence, WriterEpoch};
use sds_persist_postgres::conformance::unique_namespace;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_follow_synchronous_commit() {
    let on = support::backend("durable-on").await;
    let caps = on.capabilities();
    assert!(caps.atomic_commit && caps.persistent && caps.list_channels && caps.fencing);
    assert!(caps.durable_on_ack);
    let off = support::builder()
        .synchronous_commit(false)
        .namespace(unique_namespace("durable-off"))
        .connect()
        .await
        .unwrap();
    assert!(!off.capabilities().durable_on_ack);
    assert!(off.capabilities().atomic_commit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_sessions_still_claim_drop_and_close() {
    let backend = support::builder()
        .synchronous_commit(false)
        .namespace(unique_namespace("async-commit"))
        .connect()
        .await
        .unwrap();
    assert_eq!(
        backend.claim_writer().await.unwrap(),
        Some(WriterEpoch::new(1))
    );
    let meta = ChannelMeta {
        lamport: 9,
        ..ChannelMeta::empty()
    };
    backend.commit("a", Some(&meta), None).await.unwrap();
    backend.commit("b", Some(&meta), None).await.unwrap();
    backend.drop_channel("a").await.unwrap();
    backend.close().await.unwrap();
    assert_eq!(backend.list_channels().await.unwrap(), ["b"]);
    assert_eq!(backend.load_channel("b").await.unwrap().meta, Some(meta));
    backend.delete_namespace().await.unwrap();
}
