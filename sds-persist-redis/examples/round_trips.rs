//! Measures what the crate docs state: round trips per operation (counted by the server,
//! with `MONITOR`: every command a client sends, the commands a script runs excluded) and
//! the latency of a typical commit (a ~2 KB snapshot and one history row) next to a `SET`
//! of the same bytes, median of a few hundred runs. A throwaway measurement, not a test:
//!
//! ```sh
//! cargo run -p sds-persist-redis --example round_trips [redis://127.0.0.1:6379]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sds_codec::storage::{
    ChannelMeta, HistoryUpdate, LoggedMessage, OutgoingEntry, encode_channel_meta,
    encode_logged_message,
};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::Persistence;
use sds_persist_redis::RedisPersistence;

const RUNS: usize = 300;

fn message(id: &str, lamport: u64, size: usize) -> SdsMessage {
    SdsMessage {
        sender_id: "bench".into(),
        message_id: id.into(),
        channel_id: "room".into(),
        lamport_timestamp: Some(lamport),
        content: Some(vec![b'x'; size]),
        ..Default::default()
    }
}

fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        lamport,
        outgoing: (0..4)
            .map(|k| OutgoingEntry {
                message: sds_codec::storage::encode_buffered_message(&message(
                    &format!("out-{k}"),
                    lamport,
                    440,
                )),
                sent_at_ms: 1_700_000_000_000,
                resend_attempts: 0,
                possible_acks: 0,
            })
            .collect(),
        ..ChannelMeta::empty()
    }
}

fn row(i: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(message(&format!("m{i:06}"), i, 200)),
        retrieval_hint: None,
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Counts the commands clients other than scripts send while `op` runs.
struct Monitor {
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    child: std::process::Child,
    port: String,
    marker: u64,
}

impl Monitor {
    fn start(port: &str) -> Monitor {
        let mut child = Command::new("redis-cli")
            .args(["-p", port, "monitor"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "OK");
        Monitor {
            lines,
            child,
            port: port.to_owned(),
            marker: 0,
        }
    }

    /// Commands sent since the last call (the marker excluded).
    fn count(&mut self) -> usize {
        self.marker += 1;
        let marker = format!("sds-round-trip-marker-{}", self.marker);
        Command::new("redis-cli")
            .args(["-p", &self.port, "echo", &marker])
            .output()
            .unwrap();
        let mut sent = 0;
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            if line.contains(&marker) {
                return sent;
            }
            if !line.contains(" lua]") {
                sent += 1;
            }
        }
        panic!("monitor ended");
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let namespace = format!("round-trips-{}", std::process::id());
    let store = RedisPersistence::builder(&url)
        .unwrap()
        .namespace(&namespace)
        .connect()
        .await
        .unwrap();
    // Warm up: scripts loaded, connection made.
    let first = HistoryUpdate {
        append: vec![row(0)],
        evict: vec![],
    };
    store
        .commit("room", Some(&meta(0)), Some(&first))
        .await
        .unwrap();
    store.load_channel("room").await.unwrap();
    store.drop_channel("warm").await.unwrap();
    store
        .set_retrieval_hint("room", "m000000", b"h")
        .await
        .unwrap();
    store.list_channels().await.unwrap();

    let mut monitor = Monitor::start(&port);
    monitor.count();
    let update = HistoryUpdate {
        append: vec![row(1)],
        evict: vec!["m000000".into()],
    };
    store
        .commit("room", Some(&meta(1)), Some(&update))
        .await
        .unwrap();
    println!(
        "commit (snapshot + history): {} round trip(s)",
        monitor.count()
    );
    store.save_channel_meta("room", &meta(2)).await.unwrap();
    println!("save_channel_meta: {} round trip(s)", monitor.count());
    store.update_history("room", &first).await.unwrap();
    println!("update_history: {} round trip(s)", monitor.count());
    store
        .set_retrieval_hint("room", "m000001", b"hint")
        .await
        .unwrap();
    println!("set_retrieval_hint: {} round trip(s)", monitor.count());
    store.load_channel("room").await.unwrap();
    println!("load_channel: {} round trip(s)", monitor.count());
    store.list_channels().await.unwrap();
    println!("list_channels: {} round trip(s)", monitor.count());
    store.claim_writer().await.unwrap();
    println!("claim_writer: {} round trip(s)", monitor.count());
    store
        .commit("room", Some(&meta(3)), Some(&update))
        .await
        .unwrap();
    println!(
        "commit after claiming (fence checked): {} round trip(s)",
        monitor.count()
    );
    store.drop_channel("room").await.unwrap();
    println!("drop_channel: {} round trip(s)", monitor.count());
    drop(monitor);

    // Latency: a typical commit next to a SET of the same bytes.
    let snapshot_bytes = encode_channel_meta(&meta(1)).len();
    let row_bytes = encode_logged_message(&row(1)).len();
    let mut commits = Vec::with_capacity(RUNS);
    for i in 0..RUNS as u64 {
        let update = HistoryUpdate {
            append: vec![row(i + 10)],
            evict: vec![],
        };
        let snapshot = meta(i + 10);
        let start = Instant::now();
        store
            .commit("room", Some(&snapshot), Some(&update))
            .await
            .unwrap();
        commits.push(start.elapsed());
    }
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let bytes = vec![b'x'; snapshot_bytes + row_bytes];
    let key = format!("sds-round-trips-set-{}", std::process::id());
    let mut sets = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        redis::cmd("SET")
            .arg(&key)
            .arg(&bytes)
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
        sets.push(start.elapsed());
    }
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    store.delete_namespace().await.unwrap();
    println!(
        "commit of a {snapshot_bytes} B snapshot + one {row_bytes} B history row: median {:?} \
         over {RUNS} runs; SET of the same {} B: median {:?}",
        median(commits),
        snapshot_bytes + row_bytes,
        median(sets)
    );
}
