//! Unit tests of the backend against a real database in a temporary directory.

use sds_codec::storage::{
    ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage, OutgoingEntry, encode_buffered_message,
};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::{Persistence, PersistenceErrorKind};

use crate::keys::{LAYOUT_KEY, LAYOUT_VERSION};
use crate::{RocksDbError, RocksDbPersistence};

fn message(id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            sender_id: "sender".into(),
            message_id: id.into(),
            channel_id: "ch".into(),
            lamport_timestamp: Some(lamport),
            content: Some(format!("content of {id}").into_bytes()),
            ..Default::default()
        }),
        retrieval_hint: None,
    }
}

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        outgoing: vec![OutgoingEntry {
            message: message("out", lamport)
                .message
                .map(|message| encode_buffered_message(&message))
                .unwrap_or_default(),
            sent_at_ms: 1_700_000_000_000,
            resend_attempts: 1,
            possible_acks: 0,
        }]
        .into(),
        ..ChannelMeta::empty()
    }
}

fn append(messages: &[LoggedMessage]) -> HistoryUpdate {
    HistoryUpdate {
        append: messages.to_vec(),
        evict: Vec::new(),
    }
}

fn evict(ids: &[&str]) -> HistoryUpdate {
    HistoryUpdate {
        append: Vec::new(),
        evict: ids.iter().map(|id| (*id).to_owned()).collect(),
    }
}

fn ids(data: &ChannelData) -> Vec<(u64, String)> {
    data.history
        .iter()
        .map(|row| (row.lamport(), row.message_id().to_owned()))
        .collect()
}

fn open(dir: &tempfile::TempDir) -> RocksDbPersistence {
    RocksDbPersistence::builder(dir.path())
        .namespace("test")
        .open()
        .expect("open a fresh database")
}

#[tokio::test]
async fn never_saved_channel_loads_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    assert_eq!(
        db.load_channel("nothing").await.expect("load"),
        ChannelData::empty()
    );
}

#[tokio::test]
async fn commit_round_trips_meta_and_history_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let update = append(&[message("m1", 1), message("m2", 2)]);
    db.commit("ch", Some(&meta(7)), Some(&update))
        .await
        .expect("commit");
    drop(db);

    let db = open(&dir);
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(loaded.meta, Some(meta(7)));
    assert_eq!(loaded.history, update.append);
}

#[tokio::test]
async fn history_loads_in_lamport_then_id_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    // Delivery order differs from log order on purpose; ids tie-break byte-wise.
    let update = append(&[
        message("b", 5),
        message("a", 5),
        message("z", 1),
        message("é", 5),
        message("", 5),
        message("ab", 5),
        message("x", 256),
        message("y", 255),
    ]);
    db.update_history("ch", &update).await.expect("update");
    let loaded = db.load_channel("ch").await.expect("load");
    let expected: Vec<(u64, String)> = [
        (1, "z"),
        (5, ""),
        (5, "a"),
        (5, "ab"),
        (5, "b"),
        (5, "é"),
        (255, "y"),
        (256, "x"),
    ]
    .into_iter()
    .map(|(lamport, id)| (lamport, id.to_owned()))
    .collect();
    assert_eq!(ids(&loaded), expected);
}

#[tokio::test]
async fn evict_removes_rows_and_unknown_ids_are_no_ops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.update_history(
        "ch",
        &append(&[message("a", 1), message("b", 2), message("c", 3)]),
    )
    .await
    .expect("append");
    db.update_history("ch", &evict(&["b", "never-logged"]))
        .await
        .expect("evict");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(ids(&loaded), vec![(1, "a".to_owned()), (3, "c".to_owned())]);
}

#[tokio::test]
async fn append_and_evict_in_one_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.update_history("ch", &append(&[message("a", 1), message("b", 2)]))
        .await
        .expect("append");
    let update = HistoryUpdate {
        append: vec![message("c", 3)],
        evict: vec!["a".into()],
    };
    db.update_history("ch", &update).await.expect("update");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(ids(&loaded), vec![(2, "b".to_owned()), (3, "c".to_owned())]);
}

#[tokio::test]
async fn re_append_is_idempotent_and_moves_a_changed_lamport() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.update_history("ch", &append(&[message("a", 1), message("b", 2)]))
        .await
        .expect("append");
    db.update_history("ch", &append(&[message("a", 1)]))
        .await
        .expect("re-append");
    assert_eq!(
        ids(&db.load_channel("ch").await.expect("load")),
        vec![(1, "a".to_owned()), (2, "b".to_owned())]
    );
    // Same id, new lamport (and twice in one batch): one row, at the last lamport.
    db.update_history("ch", &append(&[message("a", 9), message("a", 5)]))
        .await
        .expect("move");
    assert_eq!(
        ids(&db.load_channel("ch").await.expect("load")),
        vec![(2, "b".to_owned()), (5, "a".to_owned())]
    );
    // The index followed the move: evicting by id removes the moved row.
    db.update_history("ch", &evict(&["a"]))
        .await
        .expect("evict");
    assert_eq!(
        ids(&db.load_channel("ch").await.expect("load")),
        vec![(2, "b".to_owned())]
    );
}

#[tokio::test]
async fn retrieval_hints_come_back_and_survive_re_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.update_history("ch", &append(&[message("a", 1), message("b", 2)]))
        .await
        .expect("append");
    db.set_retrieval_hint("ch", "a", b"hash-a")
        .await
        .expect("hint");
    db.set_retrieval_hint("ch", "not-logged", b"ignored")
        .await
        .expect("hint for an unknown message is ignored");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(
        loaded.history[0].retrieval_hint.as_deref(),
        Some(&b"hash-a"[..])
    );
    assert_eq!(loaded.history[1].retrieval_hint, None);
    assert_eq!(loaded.history.len(), 2);

    // A replayed append without a hint keeps the stored one; one with a hint replaces it.
    db.update_history("ch", &append(&[message("a", 1)]))
        .await
        .expect("re-append");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(
        loaded.history[0].retrieval_hint.as_deref(),
        Some(&b"hash-a"[..])
    );
    let mut hinted = message("a", 1);
    hinted.retrieval_hint = Some(b"newer".to_vec());
    db.update_history("ch", &append(&[hinted]))
        .await
        .expect("re-append");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(
        loaded.history[0].retrieval_hint.as_deref(),
        Some(&b"newer"[..])
    );

    // Evict, then append again: the hint went with the evicted row.
    db.update_history("ch", &evict(&["a"]))
        .await
        .expect("evict");
    db.update_history("ch", &append(&[message("a", 1)]))
        .await
        .expect("append");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(loaded.history[0].retrieval_hint, None);
}

#[tokio::test]
async fn drop_channel_wipes_only_that_channel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    // "ch" and "ch\0..." share a textual prefix but not a key prefix.
    for channel in ["ch", "ch\0x", "c"] {
        db.commit(channel, Some(&meta(3)), Some(&append(&[message("a", 1)])))
            .await
            .expect("commit");
    }
    db.set_retrieval_hint("ch", "a", b"h").await.expect("hint");
    db.drop_channel("ch").await.expect("drop");
    db.drop_channel("never-existed")
        .await
        .expect("drop unknown");
    assert_eq!(
        db.load_channel("ch").await.expect("load"),
        ChannelData::empty()
    );
    for channel in ["ch\0x", "c"] {
        let loaded = db.load_channel(channel).await.expect("load");
        assert_eq!(loaded.meta, Some(meta(3)));
        assert_eq!(ids(&loaded), vec![(1, "a".to_owned())]);
    }
    // The index went too: re-appending after the drop does not resurrect a stale hint.
    db.update_history("ch", &append(&[message("a", 1)]))
        .await
        .expect("append");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(loaded.history[0].retrieval_hint, None);
}

#[tokio::test]
async fn namespaces_share_a_database_without_seeing_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node_a = open(&dir).with_namespace("node-a");
    let node_b = node_a.with_namespace("node-b");
    let empty_ns = node_a.with_namespace("");
    node_a
        .commit("ch", Some(&meta(1)), Some(&append(&[message("a", 1)])))
        .await
        .expect("commit a");
    node_b
        .commit("ch", Some(&meta(2)), Some(&append(&[message("b", 2)])))
        .await
        .expect("commit b");
    assert_eq!(
        node_a.load_channel("ch").await.expect("load").meta,
        Some(meta(1))
    );
    assert_eq!(
        ids(&node_b.load_channel("ch").await.expect("load")),
        vec![(2, "b".to_owned())]
    );
    assert_eq!(
        empty_ns.load_channel("ch").await.expect("load"),
        ChannelData::empty()
    );
    node_a.drop_channel("ch").await.expect("drop");
    assert_eq!(
        node_b.load_channel("ch").await.expect("load").meta,
        Some(meta(2))
    );
    assert_eq!(node_b.namespace(), "node-b");
}

#[tokio::test]
async fn failed_commit_after_meta_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.commit("ch", Some(&meta(1)), Some(&append(&[message("a", 1)])))
        .await
        .expect("first commit");
    db.set_fail_commit_after_meta(true);
    let err = db
        .commit("ch", Some(&meta(2)), Some(&append(&[message("b", 2)])))
        .await
        .expect_err("injected failure");
    assert_eq!(err.kind(), PersistenceErrorKind::Unavailable);
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(loaded.meta, Some(meta(1)));
    assert_eq!(ids(&loaded), vec![(1, "a".to_owned())]);

    db.set_fail_commit_after_meta(false);
    db.commit("ch", Some(&meta(2)), Some(&append(&[message("b", 2)])))
        .await
        .expect("retry");
    let loaded = db.load_channel("ch").await.expect("load");
    assert_eq!(loaded.meta, Some(meta(2)));
    assert_eq!(ids(&loaded).len(), 2);
}

#[tokio::test]
async fn corrupt_bytes_load_as_corrupt_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.write_raw_meta("bad-meta", &[0xff, 0xff, 0xff])
        .expect("raw write");
    let err = db.load_channel("bad-meta").await.expect_err("corrupt meta");
    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt);

    db.commit("bad-row", Some(&meta(1)), Some(&append(&[message("a", 1)])))
        .await
        .expect("commit");
    db.write_raw_history_row("bad-row", 1, "a", &[0xff, 0xff])
        .expect("raw write");
    let err = db.load_channel("bad-row").await.expect_err("corrupt row");
    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt);

    // Decodable bytes that are another message than the key says: corrupt too.
    let other = sds_codec::storage::encode_logged_message(&message("b", 1));
    db.write_raw_history_row("mismatch", 1, "a", &other)
        .expect("raw write");
    let err = db.load_channel("mismatch").await.expect_err("mismatch");
    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt);

    // An overwrite by the protocol repairs a corrupt row.
    db.update_history("bad-row", &append(&[message("a", 1)]))
        .await
        .expect("overwrite");
    assert_eq!(
        ids(&db.load_channel("bad-row").await.expect("load")),
        vec![(1, "a".to_owned())]
    );
}

// The envelope's errors reach the operator with the channel, the row and both sizes or
// checksums, so a damaged value can be found on disk.
#[tokio::test]
async fn damaged_values_are_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let snapshot = sds_codec::storage::encode_channel_meta(&meta(7));
    db.write_raw_meta("cut", &snapshot[..snapshot.len() - 3])
        .expect("raw write");
    let err = db.load_channel("cut").await.expect_err("truncated meta");
    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt);
    assert!(
        err.to_string().contains(&format!(
            "snapshot of channel \"cut\": channel meta is truncated: expected {} bytes, found {}",
            snapshot.len(),
            snapshot.len() - 3
        )),
        "{err}"
    );

    db.commit("flipped", None, Some(&append(&[message("a", 1)])))
        .await
        .expect("commit");
    let mut row = sds_codec::storage::encode_logged_message(&message("a", 1));
    let last = row.len() - 1;
    row[last] ^= 0x04;
    db.write_raw_history_row("flipped", 1, "a", &row)
        .expect("raw write");
    let err = db.load_channel("flipped").await.expect_err("flipped row");
    assert_eq!(err.kind(), PersistenceErrorKind::Corrupt);
    assert!(
        err.to_string().contains(
            "history row \"a\" (lamport 1) of channel \"flipped\": logged message is damaged: \
             checksum mismatch"
        ),
        "{err}"
    );

    // A row written by an earlier build (version 1, no envelope) still loads.
    db.write_raw_history_row(
        "flipped",
        1,
        "a",
        &sds_codec::storage::v1::encode_logged_message(&message("a", 1)),
    )
    .expect("raw write");
    assert_eq!(
        db.load_channel("flipped").await.expect("v1 row").history,
        vec![message("a", 1)]
    );
}

#[tokio::test]
async fn unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let future = ChannelMeta {
        schema_version: sds_codec::storage::SCHEMA_VERSION + 1,
        ..ChannelMeta::empty()
    };
    db.write_raw_meta("ch", &sds_codec::storage::encode_channel_meta(&future))
        .expect("raw write");
    let err = db.load_channel("ch").await.expect_err("unsupported schema");
    assert_eq!(err.kind(), PersistenceErrorKind::UnsupportedSchema);
}

#[tokio::test]
async fn channels_are_independent_under_concurrency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let channel = format!("ch-{task}");
            for i in 0..20u64 {
                db.commit(
                    &channel,
                    Some(&meta(i)),
                    Some(&append(&[message(&format!("m{i}"), i)])),
                )
                .await?;
            }
            Ok::<_, sds_core::persistence::PersistenceError>(())
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("commits");
    }
    for task in 0..8u64 {
        let loaded = db.load_channel(&format!("ch-{task}")).await.expect("load");
        assert_eq!(loaded.meta, Some(meta(19)));
        assert_eq!(loaded.history.len(), 20);
    }
}

#[test]
fn second_open_of_the_same_directory_is_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(&dir);
    let err = RocksDbPersistence::builder(dir.path())
        .open()
        .expect_err("second open");
    assert!(matches!(err, RocksDbError::Locked { .. }), "{err:?}");
    assert_eq!(
        sds_core::persistence::PersistenceError::from(err).kind(),
        PersistenceErrorKind::Unavailable
    );
}

#[test]
fn a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"hello").expect("write file");
    let err = RocksDbPersistence::builder(&file)
        .open()
        .expect_err("open a file");
    assert!(matches!(err, RocksDbError::NotADirectory { .. }), "{err:?}");
    // A path below a file cannot be created either.
    let err = RocksDbPersistence::builder(file.join("db"))
        .open()
        .expect_err("open below a file");
    assert!(matches!(err, RocksDbError::NotADirectory { .. }), "{err:?}");
}

#[test]
fn a_directory_of_other_files_is_not_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), b"not a database").expect("write");
    let err = RocksDbPersistence::builder(dir.path())
        .open()
        .expect_err("open");
    assert!(matches!(err, RocksDbError::NotADatabase { .. }), "{err:?}");
    // Nothing was created in it.
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 1);
}

#[test]
fn garbage_control_files_are_not_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("CURRENT"), b"MANIFEST-999999\n").expect("write");
    let err = RocksDbPersistence::builder(dir.path())
        .open()
        .expect_err("open");
    assert!(
        matches!(
            err,
            RocksDbError::NotADatabase { .. } | RocksDbError::Open { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_database_without_create_is_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    for path in [dir.path().join("absent"), dir.path().to_path_buf()] {
        let err = RocksDbPersistence::builder(&path)
            .create_if_missing(false)
            .open()
            .expect_err("open");
        assert!(matches!(err, RocksDbError::NotFound { .. }), "{err:?}");
    }
}

#[test]
fn missing_parents_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a").join("b").join("db");
    let db = RocksDbPersistence::builder(&path).open().expect("open");
    assert_eq!(db.path(), path.as_path());
    assert!(path.join("CURRENT").is_file());
}

#[test]
fn another_layout_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.db()
        .put(LAYOUT_KEY, (LAYOUT_VERSION + 1).to_be_bytes())
        .expect("overwrite layout marker");
    drop(db);
    let err = RocksDbPersistence::builder(dir.path())
        .open()
        .expect_err("open");
    assert!(
        matches!(err, RocksDbError::UnsupportedLayout { found, .. } if found == LAYOUT_VERSION + 1),
        "{err:?}"
    );
}

#[test]
fn operations_outside_tokio_run_inline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let update = append(&[message("a", 1)]);
    block_on_without_runtime(db.commit("ch", Some(&meta(1)), Some(&update))).expect("commit");
    let loaded = block_on_without_runtime(db.load_channel("ch")).expect("load");
    assert_eq!(loaded.history, update.append);
}

/// Polls a future to completion on this thread with no runtime at all (the backend's futures
/// complete without being woken when no Tokio runtime is present).
fn block_on_without_runtime<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the operation did not complete inline"),
    }
}
