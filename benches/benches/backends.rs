//! Every backend on the same workloads as `sds bench` (the `sds::bench` library), each next
//! to its raw baseline: the op-end commit, commit against history size, the bootstrap load,
//! and the protocol's wrap/unwrap round trip.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use sds_benches::{
    PAYLOADS, PROFILES, RawCommit, Subject, delivery_batch, fill_batch, snapshot, subjects,
};
use sds_core::ReliabilityManager;
use sds_core::persistence::MAX_HISTORY_BATCH;
use tokio::runtime::Runtime;

/// A full channel: the protocol's default history bound.
const HISTORY: u64 = 1_000;

/// Fills `channel` with `entries` messages in the backend and in its baseline.
fn fill(rt: &Runtime, subject: &Subject, namespace: &str, channel: &str, entries: u64) {
    let store = subject.namespace(namespace);
    rt.block_on(async {
        for from in (0..entries).step_by(MAX_HISTORY_BATCH) {
            let update = fill_batch(from, (from + MAX_HISTORY_BATCH as u64).min(entries));
            store.update_history(channel, &update).await.unwrap();
            subject
                .raw
                .commit(channel, &RawCommit::of(None, Some(&update)))
                .await
                .unwrap();
        }
    });
}

/// Removes a channel from the backend and from its baseline (the servers are shared).
fn drop_channel(rt: &Runtime, subject: &Subject, channel: &str) {
    rt.block_on(async {
        subject
            .namespace("bench")
            .drop_channel(channel)
            .await
            .unwrap();
        subject.raw.drop_channel(channel).await.unwrap();
    });
}

/// One delivery's commit (snapshot of the profile, one append, one eviction) into a channel
/// kept at `history` entries, through the backend and as the raw baseline.
fn bench_commits(
    c: &mut Criterion,
    rt: &Runtime,
    subjects: &[Subject],
    group_name: &str,
    cases: &[(String, usize, usize, u64)],
) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(30);
    for subject in subjects {
        for (case, profile, payload, history) in cases {
            let channel = format!("{group_name}-{case}");
            fill(rt, subject, "bench", &channel, *history);
            let store = subject.namespace("bench");
            let meta = snapshot(&PROFILES[*profile], *payload, history * 2);
            // The inputs are built outside the timing: the backend is timed from the
            // snapshot it is handed, the baseline from the bytes it writes.
            let next = AtomicU64::new(*history);
            group.bench_function(BenchmarkId::new(subject.name, case), |b| {
                b.to_async(rt).iter_batched(
                    || delivery_batch(next.fetch_add(1, Ordering::Relaxed), *history),
                    |update| {
                        let (store, meta, channel) = (store.clone(), &meta, &channel);
                        async move {
                            store
                                .commit(channel, Some(meta), Some(&update))
                                .await
                                .unwrap();
                        }
                    },
                    BatchSize::SmallInput,
                );
            });
            // The baseline's store is its own: the same channel name, filled alike above.
            let next = AtomicU64::new(*history);
            group.bench_function(
                BenchmarkId::new(format!("{}-raw", subject.name), case),
                |b| {
                    b.to_async(rt).iter_batched(
                        || {
                            let update =
                                delivery_batch(next.fetch_add(1, Ordering::Relaxed), *history);
                            RawCommit::of(Some(&meta), Some(&update))
                        },
                        |raw| {
                            let channel = &channel;
                            async move { subject.raw.commit(channel, &raw).await.unwrap() }
                        },
                        BatchSize::SmallInput,
                    );
                },
            );
            drop_channel(rt, subject, &channel);
        }
    }
    group.finish();
}

fn commit(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let subjects = rt.block_on(subjects());
    let cases = [
        (format!("steady/{}B", PAYLOADS[0]), 1, PAYLOADS[0], HISTORY),
        (
            format!("pathological/{}B", PAYLOADS[1]),
            4,
            PAYLOADS[1],
            HISTORY,
        ),
    ];
    bench_commits(c, &rt, &subjects, "commit", &cases);
}

/// Commit latency should not grow with the history: 1,000 against 100,000 stored entries.
fn commit_history(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let subjects = rt.block_on(subjects());
    let cases = [
        ("1000".to_string(), 1, PAYLOADS[0], HISTORY),
        ("100000".to_string(), 1, PAYLOADS[0], 100_000),
    ];
    bench_commits(c, &rt, &subjects, "commit_history", &cases);
}

fn load(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let subjects = rt.block_on(subjects());
    let mut group = c.benchmark_group("load_channel");
    group.sample_size(20);
    for subject in &subjects {
        for size in [HISTORY, 10_000] {
            let channel = format!("load-{size}");
            fill(&rt, subject, "bench", &channel, size);
            let store = subject.namespace("bench");
            group.bench_function(BenchmarkId::new(subject.name, size), |b| {
                b.to_async(&rt).iter(|| {
                    let (store, channel) = (store.clone(), &channel);
                    async move {
                        let data = store.load_channel(channel).await.unwrap();
                        assert_eq!(data.history.len() as u64, size);
                    }
                });
            });
            group.bench_function(
                BenchmarkId::new(format!("{}-raw", subject.name), size),
                |b| {
                    b.to_async(&rt).iter(|| {
                        let channel = &channel;
                        async move {
                            assert_eq!(subject.raw.load(channel).await.unwrap() as u64, size);
                        }
                    });
                },
            );
            drop_channel(&rt, subject, &channel);
        }
    }
    group.finish();
}

/// One conversational round: alice sends, bob receives and replies, alice receives (which
/// acknowledges her message, keeping both outgoing buffers bounded). Four protocol ops,
/// four commits.
fn conversation_round(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let subjects = rt.block_on(subjects());
    let mut group = c.benchmark_group("conversation_round");
    group.sample_size(30);
    for subject in &subjects {
        let (alice, mut alice_events) = ReliabilityManager::builder("alice")
            .persistence(subject.namespace("alice"))
            .build()
            .unwrap();
        let (bob, mut bob_events) = ReliabilityManager::builder("bob")
            .persistence(subject.namespace("bob"))
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
        rt.block_on(async {
            for name in ["alice", "bob"] {
                subject.namespace(name).drop_channel("bench").await.unwrap();
            }
        });
    }
    group.finish();
}

criterion_group!(benches, commit, commit_history, load, conversation_round);
criterion_main!(benches);
