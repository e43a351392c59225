//! `wrap_outgoing` over the in-memory backend with 0, 1,000 and 10,000 unacknowledged
//! messages: the op-end snapshot must cost what it writes, not a deep copy of every
//! buffered message (issue 11: 24 wraps per second at 10,000 unacknowledged before).
//!
//! Each wrap is timed alone; between wraps, untimed, a peer's sync message acknowledges
//! the message just sent, so every timed wrap finds exactly N messages unacknowledged.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sds_codec::wire::{HistoryEntry, SdsMessage, encode_message};
use sds_core::persistence::memory::MemoryPersistence;
use sds_core::{Events, ManualClock, ReliabilityConfig, ReliabilityManager};
use tokio::runtime::Runtime;

const CHANNEL: &str = "bench";
const START_MS: i64 = 1_700_000_000_000;
const CONTENT: usize = 100;

struct Sender {
    manager: ReliabilityManager,
    events: Events,
    clock: ManualClock,
    next: u64,
}

impl Sender {
    /// A participant that has wrapped `unacked` messages nobody acknowledged.
    fn with_unacked(rt: &Runtime, unacked: usize) -> Self {
        let clock = ManualClock::new(START_MS);
        // Room for the buffer under test plus the one message in flight.
        let config = ReliabilityConfig {
            max_outgoing_buffer: unacked + 1,
            ..ReliabilityConfig::default()
        };
        let (manager, events) = ReliabilityManager::builder("me")
            .config(config)
            .persistence(Arc::new(MemoryPersistence::new()))
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let mut sender = Sender {
            manager,
            events,
            clock,
            next: 0,
        };
        rt.block_on(async {
            for _ in 0..unacked {
                sender.wrap().await;
            }
        });
        sender.events.drain();
        sender
    }

    async fn wrap(&mut self) -> (String, Duration) {
        let id = format!("m{:08}", self.next);
        self.next += 1;
        self.clock.advance(1);
        let started = Instant::now();
        self.manager
            .wrap_outgoing(CHANNEL, id.clone(), vec![0x5a; CONTENT])
            .await
            .unwrap();
        (id, started.elapsed())
    }

    /// A peer's sync message naming `id` in its causal history: acknowledges it.
    async fn acknowledge(&mut self, id: String) {
        let sync = SdsMessage {
            sender_id: "peer".into(),
            message_id: format!("sync-{id}"),
            channel_id: CHANNEL.into(),
            lamport_timestamp: Some(u64::try_from(START_MS).unwrap() + self.next),
            causal_history: vec![HistoryEntry {
                message_id: id,
                retrieval_hint: None,
                sender_id: Some("me".into()),
            }],
            ..Default::default()
        };
        self.manager
            .unwrap_received(&encode_message(&sync).unwrap())
            .await
            .unwrap();
        self.events.drain();
    }
}

fn wrap_outgoing(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("wrap_outgoing_memory");
    group.sample_size(20);
    for unacked in [0usize, 1_000, 10_000] {
        // Built on first use, so a filtered-out size costs nothing.
        let mut sender = None;
        group.bench_function(BenchmarkId::new("unacked", unacked), |b| {
            let sender = sender.get_or_insert_with(|| Sender::with_unacked(&rt, unacked));
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (id, took) = sender.wrap().await;
                        total += took;
                        sender.acknowledge(id).await;
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, wrap_outgoing);
criterion_main!(benches);
