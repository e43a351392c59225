//! Unit tests of listing, closing and write ordering against a real database.

use std::sync::{Arc, Mutex};

use sds_codec::storage::{ChannelMeta, HistoryUpdate, LoggedMessage};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::Persistence;

use crate::RocksDbPersistence;

fn message(id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(SdsMessage {
            message_id: id.into(),
            lamport_timestamp: Some(lamport),
            content: Some(id.as_bytes().to_vec()),
            ..Default::default()
        }),
        retrieval_hint: None,
    }
}

fn append(messages: Vec<LoggedMessage>) -> HistoryUpdate {
    HistoryUpdate {
        append: messages,
        evict: Vec::new(),
    }
}

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        ..ChannelMeta::empty()
    }
}

fn open(dir: &tempfile::TempDir, sync_writes: bool) -> RocksDbPersistence {
    RocksDbPersistence::builder(dir.path())
        .namespace("a")
        .sync_writes(sync_writes)
        .open()
        .expect("open the database")
}

/// Namespaces that prefix each other ("a", "ab", and the empty one) list only their own
/// channels; a channel of 1,000 rows is listed once.
#[tokio::test]
async fn list_channels_keeps_to_its_namespace_whatever_the_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = open(&dir, false);
    let ab = a.with_namespace("ab");
    let empty = a.with_namespace("");
    let rows: Vec<LoggedMessage> = (0..1_000).map(|n| message(&format!("m{n}"), n)).collect();
    a.commit("x", Some(&meta(1)), Some(&append(rows)))
        .await
        .expect("commit x");
    a.save_channel_meta("", &meta(1)).await.expect("save ''");
    a.update_history("y\u{0}", &append(vec![message("m", 1)]))
        .await
        .expect("append y\\0");
    ab.save_channel_meta("z", &meta(1)).await.expect("save z");
    empty
        .update_history("w", &append(vec![message("m", 1)]))
        .await
        .expect("append w");

    assert_eq!(
        a.list_channels().await.expect("list a"),
        ["", "x", "y\u{0}"]
    );
    assert_eq!(ab.list_channels().await.expect("list ab"), ["z"]);
    assert_eq!(empty.list_channels().await.expect("list ''"), ["w"]);
    assert!(
        a.with_namespace("none")
            .list_channels()
            .await
            .expect("list none")
            .is_empty()
    );

    a.drop_channel("x").await.expect("drop x");
    assert_eq!(a.list_channels().await.expect("list a"), ["", "y\u{0}"]);
}

/// Close fsyncs and flushes what commits without fsync left in the log; the handle stays
/// usable, and a new open of the directory finds everything.
#[tokio::test]
async fn close_makes_everything_durable_and_keeps_the_handle_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir, false);
    let caps = db.capabilities();
    assert!(
        caps.atomic_commit && caps.persistent && caps.list_channels,
        "{caps:?}"
    );
    assert!(!caps.durable_on_ack, "sync_writes off: {caps:?}");
    db.commit("ch", Some(&meta(1)), Some(&append(vec![message("m1", 1)])))
        .await
        .expect("commit before close");
    db.close().await.expect("close");
    db.close().await.expect("close twice");
    db.commit("ch", Some(&meta(2)), Some(&append(vec![message("m2", 2)])))
        .await
        .expect("commit after close");
    db.close().await.expect("close again");
    drop(db);

    let db = open(&dir, true);
    assert!(db.capabilities().durable_on_ack, "sync_writes on");
    let data = db.load_channel("ch").await.expect("load");
    assert_eq!(data.meta, Some(meta(2)));
    assert_eq!(data.history, [message("m1", 1), message("m2", 2)]);
}

/// A write whose caller gave up still takes effect before the next write to its channel:
/// the retry waits for it instead of landing first and being overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_write_lands_before_the_next_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir, false);
    let order = Arc::new(Mutex::new(Vec::new()));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();

    let first = {
        let db = db.clone();
        let order = Arc::clone(&order);
        tokio::spawn(async move {
            db.run_write("ch", "first", move |_| {
                started_tx.send(()).expect("signal");
                release_rx.recv().expect("release");
                order.lock().expect("order").push("first");
                Ok(())
            })
            .await
        })
    };
    tokio::task::spawn_blocking(move || started_rx.recv().expect("first started"))
        .await
        .expect("wait");
    // The caller gives up (a timeout): the write keeps running on the blocking pool.
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    assert!(
        db.write_in_progress("ch"),
        "the abandoned write still holds the channel's turn"
    );

    let second = {
        let db = db.clone();
        let order = Arc::clone(&order);
        tokio::spawn(async move {
            db.run_write("ch", "second", move |_| {
                order.lock().expect("order").push("second");
                Ok(())
            })
            .await
        })
    };
    release_tx.send(()).expect("release");
    second.await.expect("join").expect("second write");
    assert_eq!(*order.lock().expect("order"), ["first", "second"]);
}
