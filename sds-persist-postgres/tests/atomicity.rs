//! A real database-level failure inside the commit's transaction: a trigger raising on a
//! chosen message id rolls the whole statement back, the snapshot written earlier in it
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::{Persistence, PersistenceErrorKind};

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    }
}

fn logged(id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            message_id: id.into(),
            channel_id: "room".into(),
            lamport_timestamp: Some(lamport),
            content: Some(format!("content of {id}").into_bytes()),
            ..Default::default()
        }),
        retrieval_hint: None,
    }
}

fn ids(data: &ChannelData) -> Vec<&str> {
    data.history.iter().map(LoggedMessage::message_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_failure_rolls_back_the_snapshot_of_the_same_commit() {
    let backend = support::backend("atomicity").await;
    let ch = "room";
    backend
        .commit(
            ch,
            Some(&meta(1)),
            Some(&HistoryUpdate {
                append: vec![logged("a", 1), logged("b", 2)],
                evict: vec![],
            }),
        )
        .await
        .unwrap();
    backend
        .set_retrieval_hint(ch, "a", b"hint-a")
        .await
        .unwrap();
    let before = backend.load_channel(ch).await.unwrap();

    backend.fail_writes_of_message("poison").await.unwrap();
    // The snapshot comes first in the statement, the eviction of "a" and the append of "c"
    // before the poisoned row: all of it must be rolled back.
    let update = HistoryUpdate {
        append: vec![logged("c", 3), logged("poison", 4)],
        evict: vec!["a".into()],
    };
    let err = backend
        .commit(ch, Some(&meta(2)), Some(&update))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PersistenceErrorKind::Other, "{err}");
    assert!(err.to_string().contains("injected test fault"), "{err}");
    assert_eq!(backend.load_channel(ch).await.unwrap(), before);

    // A history-only commit poisoned the same way changes nothing either.
    let err = backend.commit(ch, None, Some(&update)).await.unwrap_err();
    assert_eq!(err.kind(), PersistenceErrorKind::Other, "{err}");
    assert_eq!(backend.load_channel(ch).await.unwrap(), before);
    // Commits that do not touch the poisoned row go through meanwhile.
    backend.commit(ch, Some(&meta(2)), None).await.unwrap();
    assert_eq!(backend.load_channel(ch).await.unwrap().meta, Some(meta(2)));

    // Once the fault is gone the same commit lands whole.
    backend.clear_test_faults().await.unwrap();
    backend
        .commit(ch, Some(&meta(3)), Some(&update))
        .await
        .unwrap();
    let after = backend.load_channel(ch).await.unwrap();
    assert_eq!(after.meta, Some(meta(3)));
    assert_eq!(ids(&after), ["b", "c", "poison"]);
    backend.delete_namespace().await.unwrap();
}
