//! Measurements, not tests (ignored by default; timing is never asserted): the latency of a
//! typical commit next to a single-statement upsert of the same bytes, and of a load.
//!
//! `cargo test -p sds-persist-postgres --test measure -- --ignored --nocapture`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use sds_codec::storage::{
    ChannelMeta, HistoryUpdate, LoggedMessage, OutgoingEntry, encode_buffered_message,
    encode_channel_meta, encode_logged_message,
};
use sds_codec::wire::SdsMessage;
use sds_core::persistence::Persistence;
use sds_persist_postgres::PostgresPersistence;

const RUNS: usize = 400;
const WARM_UP: usize = 50;
/// History rows kept: each commit appends one and evicts the one this many before.
const WINDOW: usize = 50;

fn message(i: usize) -> SdsMessage {
    SdsMessage {
        sender_id: "measure".into(),
        message_id: format!("{i:064x}"),
        channel_id: "room".into(),
        lamport_timestamp: Some(1_700_000_000_000 + i as u64),
        content: Some(vec![b'x'; 160]),
        ..Default::default()
    }
}

fn logged(i: usize) -> LoggedMessage {
    LoggedMessage {
        message: Some(message(i)),
        retrieval_hint: None,
    }
}

/// A snapshot of about 2 KB: the last few messages waiting in the outgoing buffer.
fn meta(i: usize) -> ChannelMeta {
    ChannelMeta {
        lamport: 1_700_000_000_000 + i as u64,
        outgoing: (i.saturating_sub(7)..=i)
            .map(|k| OutgoingEntry {
                message: encode_buffered_message(&message(k)),
                sent_at_ms: 1_700_000_000_000,
                resend_attempts: 0,
                possible_acks: 0,
            })
            .collect(),
        ..ChannelMeta::empty()
    }
}

fn update(i: usize) -> HistoryUpdate {
    HistoryUpdate {
        append: vec![logged(i)],
        evict: i
            .checked_sub(WINDOW)
            .map(|old| vec![format!("{old:064x}")])
            .unwrap_or_default(),
    }
}

struct Stats(Vec<Duration>);

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sorted = self.0.clone();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
        write!(
            f,
            "median {:>8.3} ms  p90 {:>8.3} ms  (n = {})",
            at(0.5).as_secs_f64() * 1e3,
            at(0.9).as_secs_f64() * 1e3,
            sorted.len()
        )
    }
}

async fn measure_on(backend: &PostgresPersistence, label: &str) {
    let s = backend.schema().to_owned();
    let upsert = format!(
        "INSERT INTO {s}.measure_blob (k, v) VALUES ($1, $2)
         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!(
            "{}?options=-c%20synchronous_commit%3D{}",
            support::url(),
            if backend.synchronous_commit() {
                "on"
            } else {
                "off"
            }
        ))
        .await
        .unwrap();
    let snapshot_bytes = encode_channel_meta(&meta(WINDOW)).len();
    let row_bytes = encode_logged_message(&logged(WINDOW)).len();

    let (mut commits, mut upserts, mut loads, mut pings) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..WARM_UP + RUNS {
        let (m, u) = (meta(i), update(i));
        let started = Instant::now();
        backend.commit("room", Some(&m), Some(&u)).await.unwrap();
        let commit = started.elapsed();

        let mut same_bytes = encode_channel_meta(&m);
        same_bytes.extend(encode_logged_message(&logged(i)));
        let started = Instant::now();
        sqlx::query(&upsert)
            .bind(b"room".as_slice())
            .bind(&same_bytes)
            .execute(&pool)
            .await
            .unwrap();
        let upsert_time = started.elapsed();

        let started = Instant::now();
        let loaded = backend.load_channel("room").await.unwrap();
        let load = started.elapsed();
        assert_eq!(loaded.history.len(), (i + 1).min(WINDOW));

        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        let ping = started.elapsed();
        if i >= WARM_UP {
            commits.push(commit);
            upserts.push(upsert_time);
            loads.push(load);
            pings.push(ping);
        }
    }
    println!("--- {label} (snapshot {snapshot_bytes} B, history row {row_bytes} B)");
    println!("commit (snapshot + 1 row + 1 eviction)  {}", Stats(commits));
    println!("single-statement upsert, same bytes     {}", Stats(upserts));
    println!(
        "load_channel ({WINDOW} rows)                {}",
        Stats(loads)
    );
    println!("SELECT 1 (one round trip)                 {}", Stats(pings));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn commit_latency_next_to_a_single_upsert() {
    let schema = format!(
        "sds_measure_{}",
        sds_persist_postgres::conformance::unique_namespace("m").replace('-', "_")
    );
    for synchronous_commit in [true, false] {
        let backend = support::builder()
            .schema(schema.clone())
            .namespace(format!("measure-{synchronous_commit}"))
            .synchronous_commit(synchronous_commit)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS {schema}.measure_blob (k bytea PRIMARY KEY, v bytea NOT NULL)"
        ))
        .execute(&sqlx::PgPool::connect(&support::url()).await.unwrap())
        .await
        .unwrap();
        measure_on(
            &backend,
            &format!(
                "synchronous_commit = {}",
                if synchronous_commit { "on" } else { "off" }
            ),
        )
        .await;
        if !synchronous_commit {
            backend.drop_schema().await.unwrap();
        }
    }
}
