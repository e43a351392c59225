//! Opening a database read-only (`RocksDbBuilder::open_read_only`) and listing what the whole
//! database holds (`RocksDbPersistence::stored_namespaces`): what `sds inspect` relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use sds_core::persistence::{Persistence, PersistenceErrorKind};
use sds_persist_conformance::cases::fixtures::{append, evict, logged, meta_with_lamport};
use sds_persist_rocksdb::{RocksDbError, RocksDbPersistence};

fn listing(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(namespace, channels)| {
            (
                (*namespace).to_string(),
                channels
                    .iter()
                    .map(|channel| (*channel).to_string())
                    .collect(),
            )
        })
        .collect()
}

/// A path with no database is refused and nothing is created: a missing path, an empty
/// directory, and a directory of other files.
#[tokio::test]
async fn read_only_refuses_a_path_without_a_database_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let err = RocksDbPersistence::builder(&missing)
        .open_read_only_async()
        .await
        .unwrap_err();
    assert!(matches!(err, RocksDbError::NotFound { .. }), "{err}");
    assert!(!missing.exists(), "the read-only open created {missing:?}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = RocksDbPersistence::builder(&empty)
        .open_read_only()
        .unwrap_err();
    assert!(matches!(err, RocksDbError::NotFound { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"not a database").unwrap();
    let err = RocksDbPersistence::builder(&other)
        .open_read_only()
        .unwrap_err();
    assert!(matches!(err, RocksDbError::NotADatabase { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

/// A read-only handle opened while the writer still holds the database sees every
/// acknowledged write (the log included), refuses writes, and leaves the data unchanged.
#[tokio::test]
async fn read_only_sees_the_writers_data_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let writer = RocksDbPersistence::builder(&path)
        .namespace("node-a")
        .open_async()
        .await
        .unwrap();
    let history = vec![logged("room", "m1", 1), logged("room", "m2", 2)];
    writer
        .commit(
            "room",
            Some(&meta_with_lamport(7)),
            Some(&append(history.clone())),
        )
        .await
        .unwrap();

    let reader = RocksDbPersistence::builder(&path)
        .namespace("node-a")
        .open_read_only_async()
        .await
        .unwrap();
    let loaded = reader.load_channel("room").await.unwrap();
    assert_eq!(loaded.meta.as_ref().map(|meta| meta.lamport), Some(7));
    assert_eq!(loaded.history, history);

    let refused = reader
        .commit("room", Some(&meta_with_lamport(99)), Some(&evict(&["m1"])))
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        PersistenceErrorKind::Unavailable,
        "{refused}"
    );
    assert!(reader.drop_channel("room").await.is_err());
    let after = writer.load_channel("room").await.unwrap();
    assert_eq!(after.meta.as_ref().map(|meta| meta.lamport), Some(7));
    assert_eq!(after.history, history);
}

/// The listing names every namespace and its stored channels (snapshot only, history only,
/// or both; awkward names included), sorted, each once; a dropped channel is gone.
#[tokio::test]
async fn stored_namespaces_lists_every_namespace_and_channel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let a = RocksDbPersistence::builder(&path)
        .namespace("node-a")
        .open_async()
        .await
        .unwrap();
    assert_eq!(a.stored_namespaces().await.unwrap(), listing(&[]));

    let b = a.with_namespace("node-b");
    let empty = a.with_namespace("");
    a.save_channel_meta("meta-only", &meta_with_lamport(1))
        .await
        .unwrap();
    let many: Vec<_> = (0..50u64)
        .map(|i| logged("history-only", &format!("m{i}"), i))
        .collect();
    a.update_history("history-only", &append(many))
        .await
        .unwrap();
    a.commit(
        "both",
        Some(&meta_with_lamport(2)),
        Some(&append(vec![logged("both", "x", 1)])),
    )
    .await
    .unwrap();
    a.save_channel_meta("gone", &meta_with_lamport(3))
        .await
        .unwrap();
    a.drop_channel("gone").await.unwrap();
    b.save_channel_meta("a/b\u{0}ä", &meta_with_lamport(4))
        .await
        .unwrap();
    b.save_channel_meta("", &meta_with_lamport(5))
        .await
        .unwrap();
    empty
        .save_channel_meta("x", &meta_with_lamport(6))
        .await
        .unwrap();

    let expected = listing(&[
        ("", &["x"]),
        ("node-a", &["both", "history-only", "meta-only"]),
        ("node-b", &["", "a/b\u{0}ä"]),
    ]);
    assert_eq!(a.stored_namespaces().await.unwrap(), expected);
    drop((a, b, empty));

    // The same from a read-only handle.
    let reader = RocksDbPersistence::builder(&path).open_read_only().unwrap();
    assert_eq!(reader.stored_namespaces().await.unwrap(), expected);
}
