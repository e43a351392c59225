//! Protocol throughput (issue 15, item 3): wrap, unwrap and wrap-then-unwrap between two
//! managers on every backend that opens; 1, 2 and 8 channels driven in parallel; and the
//! same conversation on @waku/sds 0.0.8 under Node.js, as a ratio.
//!
//! `cargo bench -p sds-benches --bench protocol` runs the criterion groups, then (unless a
//! filter was given) measures the summary itself and writes it to
//! `target/bench-report/protocol-throughput.json` for the benchmark report. Set
//! `SDS_PROTOCOL_REPORT=0` to skip the summary, `SDS_PROTOCOL_REPORT=only` to run the
//! summary alone. Workloads: `sds_benches::protocol`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use sds_benches::protocol::{
    Conversation, Managers, ProtocolBackend, Timed, WakuSdsResult, backends, drive_parallel,
    waku_sds, write_report_section,
};
use tokio::runtime::Runtime;

/// Steps that fill both logs to their bound (1,000 entries), so measured steps evict.
const WARMUP_STEPS: u64 = 500;
/// Channels driven at once.
const PARALLEL: [usize; 3] = [1, 2, 8];
/// Summary: rounds per figure (the median is reported) and steps per round.
const ROUNDS: usize = 5;
const STEPS_PER_ROUND: u64 = 300;

fn runtime() -> Runtime {
    // Two workers: the target machine has two cores, and the parallel figures are read
    // against that.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn warm(rt: &Runtime, conversations: &[Conversation]) {
    rt.block_on(drive_parallel(conversations, WARMUP_STEPS))
        .unwrap();
}

/// K conversations on K channels of one pair of managers.
fn conversations(rt: &Runtime, managers: &Managers, prefix: &str, k: usize) -> Vec<Conversation> {
    rt.block_on(async {
        let mut conversations = Vec::new();
        for n in 0..k {
            conversations.push(
                managers
                    .conversation(&format!("{prefix}-{n}"))
                    .await
                    .unwrap(),
            );
        }
        conversations
    })
}

fn channel_names(prefix: &str, k: usize) -> Vec<String> {
    (0..k).map(|n| format!("{prefix}-{n}")).collect()
}

fn close(rt: &Runtime, managers: Managers, channels: &[String]) {
    rt.block_on(managers.close(channels)).unwrap();
}

fn per_message(c: &mut Criterion, rt: &Runtime, backend: &ProtocolBackend) {
    let mut group = c.benchmark_group(format!("protocol/{}", backend.name));
    group.sample_size(20);
    // One iteration is one step: two messages.
    group.throughput(Throughput::Elements(2));
    let managers = rt
        .block_on(async { backend.managers("criterion") })
        .unwrap();
    let conversation = conversations(rt, &managers, "criterion", 1).remove(0);
    warm(rt, std::slice::from_ref(&conversation));
    for timed in Timed::ALL {
        group.bench_function(timed.name(), |b| {
            b.iter_custom(|iters| {
                // On a worker, as an application's task runs it (and as the parallel runs do).
                let conversation = conversation.clone();
                rt.block_on(rt.spawn(async move { conversation.steps(iters, timed).await }))
                    .unwrap()
                    .unwrap()
            });
        });
    }
    group.finish();
    close(rt, managers, &channel_names("criterion", 1));
}

fn parallel(c: &mut Criterion, rt: &Runtime, backend: &ProtocolBackend) {
    let mut group = c.benchmark_group(format!("protocol_parallel/{}", backend.name));
    group.sample_size(10);
    for k in PARALLEL {
        let prefix = format!("criterion-par{k}");
        let managers = rt.block_on(async { backend.managers(&prefix) }).unwrap();
        let conversations = conversations(rt, &managers, &prefix, k);
        warm(rt, &conversations);
        group.throughput(Throughput::Elements(2 * k as u64));
        group.bench_function(BenchmarkId::new("channels", k), |b| {
            b.iter_custom(|iters| rt.block_on(drive_parallel(&conversations, iters)).unwrap());
        });
        close(rt, managers, &channel_names(&prefix, k));
    }
    group.finish();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Nanoseconds per message of each part, the median of the rounds.
fn summary_per_message(rt: &Runtime, backend: &ProtocolBackend) -> [f64; 3] {
    let managers = rt.block_on(async { backend.managers("summary") }).unwrap();
    let conversation = conversations(rt, &managers, "summary", 1).remove(0);
    warm(rt, std::slice::from_ref(&conversation));
    let mut wraps = Vec::new();
    let mut unwraps = Vec::new();
    for _ in 0..ROUNDS {
        let round = conversation.clone();
        let (wrap, unwrap) = rt
            .block_on(rt.spawn(async move {
                let (mut wrap, mut unwrap) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..STEPS_PER_ROUND {
                    let (w, u) = round.step_timings().await.unwrap();
                    wrap += w;
                    unwrap += u;
                }
                (wrap, unwrap)
            }))
            .unwrap();
        let messages = (2 * STEPS_PER_ROUND) as f64;
        wraps.push(wrap.as_nanos() as f64 / messages);
        unwraps.push(unwrap.as_nanos() as f64 / messages);
    }
    close(rt, managers, &channel_names("summary", 1));
    let (wrap, unwrap) = (median(wraps), median(unwraps));
    [wrap, unwrap, wrap + unwrap]
}

/// Messages per second (each wrapped once and unwrapped once) with `k` channels at once.
fn summary_parallel(rt: &Runtime, backend: &ProtocolBackend, k: usize) -> f64 {
    let prefix = format!("summary-par{k}");
    let managers = rt.block_on(async { backend.managers(&prefix) }).unwrap();
    let conversations = conversations(rt, &managers, &prefix, k);
    warm(rt, &conversations);
    let rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let took = rt
                .block_on(drive_parallel(&conversations, STEPS_PER_ROUND))
                .unwrap();
            (2 * STEPS_PER_ROUND * k as u64) as f64 / took.as_secs_f64()
        })
        .collect();
    close(rt, managers, &channel_names(&prefix, k));
    median(rates)
}

fn micros(ns: f64) -> String {
    format!("{:.1} µs", ns / 1000.0)
}

fn summary(rt: &Runtime, backends: &[ProtocolBackend]) {
    eprintln!("protocol summary: measuring ({ROUNDS} rounds of {STEPS_PER_ROUND} steps)");
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    // The parallel figures only mean something on an otherwise idle machine: say how busy
    // it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    let mut markdown = format!(
        "`cargo bench -p sds-benches --bench protocol`: alice and bob, two managers with the \
         default configuration, one conversation per channel (each step: alice wraps, bob \
         unwraps, bob wraps, alice unwraps), 100-byte payloads with their SHA-256 as id, \
         logs full (1,000 entries). Median of {ROUNDS} rounds of {} messages; tokio with 2 \
         workers on {cores} cores, load average {load} at the start.\n\n\
         | backend | wrap | unwrap | wrap + unwrap | msg/s, 1 channel | 2 channels | 8 channels | 2 ch / 1 ch |\n\
         |---|---|---|---|---|---|---|---|\n",
        2 * STEPS_PER_ROUND
    );
    let mut memory_round_trip = None;
    let mut memory_parts = None;
    for backend in backends {
        eprintln!("protocol summary: {}", backend.name);
        let parts = summary_per_message(rt, backend);
        let rates: Vec<f64> = PARALLEL
            .iter()
            .map(|k| summary_parallel(rt, backend, *k))
            .collect();
        if backend.name == "memory" {
            memory_round_trip = Some(parts[2]);
            memory_parts = Some(parts);
        }
        let _ = writeln!(
            markdown,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | **{:.2}x** |",
            backend.name,
            micros(parts[0]),
            micros(parts[1]),
            micros(parts[2]),
            rates[0],
            rates[1],
            rates[2],
            rates[1] / rates[0]
        );
    }
    markdown.push('\n');
    let runs: Vec<(u64, Result<WakuSdsResult, String>)> = [10u64, 200]
        .into_iter()
        .map(|history| {
            eprintln!("protocol summary: @waku/sds, causal history {history}");
            (history, waku_sds(100, 200, 3, history))
        })
        .collect();
    markdown.push_str(
        "Against @waku/sds under Node.js, same conversation, no persistence (ours on the \
         memory backend, which still commits every operation):\n\n\
         | implementation | causal history | wrap | unwrap | wrap + unwrap | ours faster by |\n\
         |---|---|---|---|---|---|\n",
    );
    if let Some(parts) = memory_parts {
        let _ = writeln!(
            markdown,
            "| sds (Rust, memory backend) | 10 | {} | {} | {} | |",
            micros(parts[0]),
            micros(parts[1]),
            micros(parts[2])
        );
    }
    for (history, run) in runs {
        match run {
            Ok(result) => {
                let ratio = memory_round_trip.map_or("–".to_string(), |ours| {
                    format!("**{:.0}x**", result.round_trip_ns / ours)
                });
                let _ = writeln!(
                    markdown,
                    "| @waku/sds {} (Node {}) | {} | {} | {} | {} | {ratio} |",
                    result.version,
                    result.node,
                    result.causal_history,
                    micros(result.ns(Timed::Wrap)),
                    micros(result.ns(Timed::Unwrap)),
                    micros(result.ns(Timed::RoundTrip)),
                );
            }
            Err(err) => {
                eprintln!("protocol summary: @waku/sds run failed: {err}");
                let _ = writeln!(
                    markdown,
                    "| @waku/sds | {history} | not run: {} | | | |",
                    err.lines().next().unwrap_or("")
                );
            }
        }
    }
    println!("{markdown}");
    match write_report_section("protocol-throughput", "Protocol throughput", &markdown) {
        Ok(path) => eprintln!("protocol summary: wrote {}", path.display()),
        Err(err) => eprintln!("protocol summary: cannot write the report section: {err}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --benches` does not (criterion's test mode).
    let benching = args.iter().any(|arg| arg == "--bench");
    let filtered = args.iter().any(|arg| !arg.starts_with('-'));
    let report = std::env::var("SDS_PROTOCOL_REPORT").unwrap_or_default();
    let rt = runtime();
    let backends = rt.block_on(backends());
    if report != "only" {
        let mut criterion = Criterion::default().configure_from_args();
        for backend in &backends {
            per_message(&mut criterion, &rt, backend);
            parallel(&mut criterion, &rt, backend);
        }
        criterion.final_summary();
    }
    if report == "only" || (benching && !filtered && report != "0") {
        summary(&rt, &backends);
    }
}
