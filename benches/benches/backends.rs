//! Every backend on the same workloads: the op-end commit, the bootstrap load and the
//! protocol's wrap/unwrap round trip, next to a raw RocksDB baseline.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sds_benches::{delivery_batch, logged_message, steady_meta};
use sds_codec::storage::{HistoryUpdate, encode_channel_meta, encode_logged_message};
use sds_core::persistence::memory::MemoryStore;
use sds_core::{Persistence, ReliabilityManager};
use sds_persist_rocksdb::RocksDbPersistence;
use tokio::runtime::Runtime;

const HISTORY: u64 = 1_000;

/// Gives each participant its own namespace in one backend.
type NamespaceFn = Box<dyn Fn(&str) -> Arc<dyn Persistence>>;

/// A backend under test.
struct Subject {
    name: &'static str,
    namespace: NamespaceFn,
    _dir: Option<tempfile::TempDir>,
}

impl Subject {
    fn backend(&self) -> Arc<dyn Persistence> {
        (self.namespace)("bench")
    }
}

fn subjects() -> Vec<Subject> {
    let rocks = |name: &'static str, sync: bool| {
        let dir = tempfile::tempdir().unwrap();
        let db = RocksDbPersistence::builder(dir.path())
            .sync_writes(sync)
            .open()
            .unwrap();
        Subject {
            name,
            namespace: Box::new(move |ns: &str| {
                Arc::new(db.with_namespace(ns)) as Arc<dyn Persistence>
            }),
            _dir: Some(dir),
        }
    };
    let store = MemoryStore::new();
    vec![
        Subject {
            name: "memory",
            namespace: Box::new(move |ns: &str| {
                Arc::new(store.namespace(ns)) as Arc<dyn Persistence>
            }),
            _dir: None,
        },
        rocks("rocksdb", false),
        rocks("rocksdb-fsync", true),
    ]
}

fn fill_history(rt: &Runtime, backend: &dyn Persistence, channel: &str) {
    rt.block_on(async {
        for chunk in (0..HISTORY).collect::<Vec<_>>().chunks(100) {
            let update = HistoryUpdate {
                append: chunk
                    .iter()
                    .map(|n| logged_message("peer", *n, 100))
                    .collect(),
                evict: Vec::new(),
            };
            backend.update_history(channel, &update).await.unwrap();
        }
    });
}

fn commit(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("commit_steady");
    group.sample_size(30);
    let meta = steady_meta(2, HISTORY);
    for subject in subjects() {
        let backend = subject.backend();
        fill_history(&rt, backend.as_ref(), "bench");
        let next = AtomicU64::new(HISTORY);
        group.bench_function(BenchmarkId::from_parameter(subject.name), |b| {
            b.to_async(&rt).iter(|| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let update = delivery_batch(n, HISTORY);
                let backend = backend.clone();
                let meta = meta.clone();
                async move {
                    backend
                        .commit("bench", Some(&meta), Some(&update))
                        .await
                        .unwrap();
                }
            });
        });
    }
    // The same bytes written by hand in one WriteBatch: the floor for the rocksdb backend.
    let dir = tempfile::tempdir().unwrap();
    let db = rocksdb::DB::open_default(dir.path()).unwrap();
    let meta_bytes = encode_channel_meta(&meta);
    let next = AtomicU64::new(HISTORY);
    group.bench_function(BenchmarkId::from_parameter("raw-rocksdb-batch"), |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let row = encode_logged_message(&logged_message("peer", n, 100));
            let mut batch = rocksdb::WriteBatch::default();
            batch.put(b"meta", &meta_bytes);
            batch.put(format!("h{n:020}"), &row);
            batch.put(format!("i{n:020}"), n.to_be_bytes());
            batch.delete(format!("h{:020}", n.saturating_sub(HISTORY)));
            batch.delete(format!("i{:020}", n.saturating_sub(HISTORY)));
            db.write(batch).unwrap();
        });
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("load_channel_1000");
    group.sample_size(20);
    for subject in subjects() {
        let backend = subject.backend();
        fill_history(&rt, backend.as_ref(), "bench");
        group.bench_function(BenchmarkId::from_parameter(subject.name), |b| {
            b.to_async(&rt).iter(|| {
                let backend = backend.clone();
                async move {
                    let data = backend.load_channel("bench").await.unwrap();
                    assert_eq!(data.history.len() as u64, HISTORY);
                }
            });
        });
    }
    group.finish();
}

/// One conversational round: alice sends, bob receives and replies, alice receives (which
/// acknowledges her message, keeping both outgoing buffers bounded). Four protocol ops,
/// four commits.
fn conversation_round(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("conversation_round");
    group.sample_size(30);
    for subject in subjects() {
        let (alice, mut alice_events) = ReliabilityManager::builder("alice")
            .persistence((subject.namespace)("alice"))
            .build()
            .unwrap();
        let (bob, mut bob_events) = ReliabilityManager::builder("bob")
            .persistence((subject.namespace)("bob"))
            .build()
            .unwrap();
        // Both take part in the channel from the start (a manager drops messages for
        // channels it has not joined).
        rt.block_on(async {
            alice.join_channel("bench").await.unwrap();
            bob.join_channel("bench").await.unwrap();
        });
        let next = AtomicU64::new(0);
        group.bench_function(BenchmarkId::from_parameter(subject.name), |b| {
            b.to_async(&rt).iter(|| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let (alice, bob) = (alice.clone(), bob.clone());
                async move {
                    let sent = alice
                        .wrap_outgoing("bench", format!("a{n}"), vec![0x5a; 100])
                        .await
                        .unwrap();
                    bob.unwrap_received(&sent).await.unwrap();
                    let reply = bob
                        .wrap_outgoing("bench", format!("b{n}"), vec![0x5a; 100])
                        .await
                        .unwrap();
                    alice.unwrap_received(&reply).await.unwrap();
                }
            });
        });
        alice_events.drain();
        bob_events.drain();
    }
    group.finish();
}

criterion_group!(benches, commit, load, conversation_round);
criterion_main!(benches);
