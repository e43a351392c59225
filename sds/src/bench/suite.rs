//! The run: every workload against one backend URL and its raw baseline.

use std::sync::Arc;

use sds_codec::storage::{ChannelMeta, HistoryUpdate};
use sds_core::Persistence;
use sds_core::persistence::{MAX_HISTORY_BATCH, PersistenceError};

use super::baseline::{RawBaseline, rocksdb_sync};
use super::report::{
    AltBaseline, BenchReport, Figure, Flatness, REPORT_SCHEMA, SnapshotSize, ratio, redact_url,
};
use super::run::{PairedSamples, Samples, Stats, timed};
use super::workloads::{
    PAYLOADS, PROFILES, RawCommit, SnapshotProfile, delivery_batch, fill_batch, snapshot,
    snapshot_bytes,
};
use super::{BenchError, BenchOptions, Progress};
use crate::Backend;

/// Entries a full channel holds: the protocol's default history bound.
const FULL_HISTORY: u64 = 1_000;

/// History sizes of the load workload.
const LOAD_SIZES: [u64; 3] = [100, 1_000, 10_000];

/// Sample counts of one run.
struct Plan {
    commit: Samples,
    history: Samples,
    history_sizes: [u64; 2],
    load: [Samples; 3],
    drop: Samples,
}

impl Plan {
    fn of(options: &BenchOptions) -> Plan {
        if options.is_quick() {
            Plan {
                commit: Samples::of(10),
                history: Samples::of(20),
                history_sizes: [FULL_HISTORY, 10_000],
                load: [Samples::of(5), Samples::of(5), Samples::of(3)],
                drop: Samples::of(3),
            }
        } else {
            Plan {
                commit: Samples::of(200),
                history: Samples::of(300),
                history_sizes: [FULL_HISTORY, 100_000],
                load: [Samples::of(100), Samples::of(40), Samples::of(15)],
                drop: Samples::of(15),
            }
        }
    }

    /// Progress steps: one per figure.
    fn steps(&self) -> u64 {
        (PROFILES.len() * PAYLOADS.len() + self.history_sizes.len() + LOAD_SIZES.len() + 1) as u64
    }
}

/// What one run works with.
struct Context<'a> {
    store: Arc<dyn Persistence>,
    raw: RawBaseline,
    /// Channels written so far, removed at the end.
    channels: Vec<String>,
    progress: &'a mut dyn FnMut(Progress),
    done: u64,
    total: u64,
}

fn backend_error(what: impl Into<String>) -> impl FnOnce(PersistenceError) -> BenchError {
    let what = what.into();
    move |source| BenchError::Backend { what, source }
}

/// Runs every workload against the backend `url` names, and its raw baseline, calling
/// `progress` before each step. Everything written goes into a namespace of its own (and a
/// scratch area for the baseline) and is removed at the end, also when a step fails.
pub async fn run(
    url: &str,
    options: &BenchOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BenchReport, BenchError> {
    let backend = Backend::open(url).await?;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos())
    );
    let store = backend.namespace(&format!("sds-bench-{run_id}"));
    let raw = RawBaseline::open(url, &run_id).await?;
    let plan = Plan::of(options);
    let server_version = raw.server_version().await;
    let mut context = Context {
        store,
        raw,
        channels: Vec::new(),
        progress,
        done: 0,
        total: plan.steps(),
    };
    let figures = context.all_figures(&plan).await;
    let cleaned = context.cleanup().await;
    let (figures, flatness) = figures?;
    cleaned?;
    let kind = url.split_once("://").map_or("", |(scheme, _)| scheme);
    Ok(BenchReport {
        schema: REPORT_SCHEMA,
        sds_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: redact_url(url),
        kind: match kind {
            "postgresql" => "postgres",
            "rediss" | "redis+cluster" => "redis",
            other => other,
        }
        .to_string(),
        durability: (kind == "rocksdb").then(|| {
            if rocksdb_sync(url) {
                "sync on".to_string()
            } else {
                "sync off".to_string()
            }
        }),
        server_version,
        quick: options.is_quick(),
        snapshots: snapshot_sizes(),
        figures,
        flatness,
    })
}

fn snapshot_sizes() -> Vec<SnapshotSize> {
    PROFILES
        .iter()
        .flat_map(|profile| {
            PAYLOADS.map(|payload| SnapshotSize {
                profile: profile.name.to_string(),
                payload_bytes: payload,
                outgoing: profile.outgoing,
                incoming: profile.incoming,
                repairs: profile.repairs,
                encoded_bytes: snapshot_bytes(profile, payload),
            })
        })
        .collect()
}

/// Summaries of paired samples.
fn stats(samples: &[std::time::Duration]) -> Result<Stats, BenchError> {
    Stats::of(samples).ok_or_else(|| BenchError::WrongData("no samples taken".to_string()))
}

impl Context<'_> {
    fn step(&mut self, step: String) {
        (self.progress)(Progress {
            done: self.done,
            total: self.total,
            step,
        });
        self.done += 1;
    }

    async fn all_figures(
        &mut self,
        plan: &Plan,
    ) -> Result<(Vec<Figure>, Option<Flatness>), BenchError> {
        let mut figures = Vec::new();
        for profile in &PROFILES {
            for payload in PAYLOADS {
                self.step(format!("commit {}/{payload}B", profile.name));
                figures.push(self.commit(profile, payload, plan.commit).await?);
            }
        }
        let mut by_size = Vec::new();
        for size in plan.history_sizes {
            self.step(format!("commit with {size} entries stored"));
            let figure = self.commit_history(size, plan.history).await?;
            by_size.push((figure.backend, figure.baseline));
            figures.push(figure);
        }
        let flatness = match by_size.as_slice() {
            [(small, small_raw), .., (large, large_raw)] => Some(Flatness {
                small: plan.history_sizes[0],
                large: plan.history_sizes[1],
                backend_ratio: ratio(large, small),
                baseline_ratio: ratio(large_raw, small_raw),
            }),
            _ => None,
        };
        for (size, samples) in LOAD_SIZES.into_iter().zip(plan.load) {
            self.step(format!("load_channel of {size} entries"));
            figures.push(self.load(size, samples).await?);
        }
        self.step(format!("drop_channel of {FULL_HISTORY} entries"));
        figures.push(self.drop_full(plan.drop).await?);
        Ok((figures, flatness))
    }

    /// Fills `channel` with messages `0..entries` in both stores, in the largest batches a
    /// backend takes.
    async fn fill(&mut self, channel: &str, entries: u64) -> Result<(), BenchError> {
        if !self.channels.iter().any(|known| known == channel) {
            self.channels.push(channel.to_string());
        }
        let batch = MAX_HISTORY_BATCH as u64;
        for from in (0..entries).step_by(MAX_HISTORY_BATCH) {
            let update = fill_batch(from, (from + batch).min(entries));
            self.store
                .update_history(channel, &update)
                .await
                .map_err(backend_error(format!("fill channel {channel:?}")))?;
            self.raw
                .commit(channel, &RawCommit::of(None, Some(&update)))
                .await?;
        }
        Ok(())
    }

    /// Commits of delivery after delivery into a channel kept at `history` entries.
    async fn commits(
        &mut self,
        channel: &str,
        meta: &ChannelMeta,
        history: u64,
        samples: Samples,
        alt: bool,
    ) -> Result<(PairedSamples, Vec<std::time::Duration>), BenchError> {
        self.fill(channel, history).await?;
        let mut paired = PairedSamples::with_capacity(samples.measured);
        let mut single = Vec::new();
        let encoded_meta = sds_codec::storage::encode_channel_meta(meta);
        for round in 0..samples.total() {
            let update: HistoryUpdate = delivery_batch(history + round as u64, history);
            let raw_commit = RawCommit::of(Some(meta), Some(&update));
            let took = timed(self.store.commit(channel, Some(meta), Some(&update)))
                .await
                .map_err(backend_error(format!("commit to channel {channel:?}")))?;
            let raw_took = timed(self.raw.commit(channel, &raw_commit)).await?;
            let single_took = if alt {
                let start = std::time::Instant::now();
                match self.raw.single_write(channel, &encoded_meta).await {
                    Some(result) => {
                        result?;
                        Some(start.elapsed())
                    }
                    None => None,
                }
            } else {
                None
            };
            if round >= samples.warmup {
                paired.backend.push(took);
                paired.baseline.push(raw_took);
                single.extend(single_took);
            }
        }
        Ok((paired, single))
    }

    async fn commit(
        &mut self,
        profile: &SnapshotProfile,
        payload: usize,
        samples: Samples,
    ) -> Result<Figure, BenchError> {
        let channel = format!("commit-{}-{payload}", profile.name);
        let meta = snapshot(profile, payload, FULL_HISTORY * 2);
        let (paired, single) = self
            .commits(&channel, &meta, FULL_HISTORY, samples, true)
            .await?;
        let mut figure = self.figure(
            "commit",
            format!("{}/{payload}B", profile.name),
            FULL_HISTORY,
            &paired,
            self.raw.commit_name(),
        )?;
        if let Some(stats) = Stats::of(&single) {
            figure.alt_baseline = Some(AltBaseline {
                name: "one SET of the snapshot".to_string(),
                ratio: ratio(&figure.backend, &stats),
                stats,
            });
        }
        self.drop_both(&channel).await?;
        Ok(figure)
    }

    async fn commit_history(&mut self, size: u64, samples: Samples) -> Result<Figure, BenchError> {
        let channel = format!("history-{size}");
        let meta = snapshot(&PROFILES[1], PAYLOADS[0], size * 2);
        let (paired, _) = self.commits(&channel, &meta, size, samples, false).await?;
        let figure = self.figure(
            "commit_history",
            format!("{size} entries"),
            size,
            &paired,
            self.raw.commit_name(),
        )?;
        self.drop_both(&channel).await?;
        Ok(figure)
    }

    async fn load(&mut self, size: u64, samples: Samples) -> Result<Figure, BenchError> {
        let channel = format!("load-{size}");
        self.fill(&channel, size).await?;
        let mut paired = PairedSamples::with_capacity(samples.measured);
        for round in 0..samples.total() {
            let start = std::time::Instant::now();
            let data = self
                .store
                .load_channel(&channel)
                .await
                .map_err(backend_error(format!("load channel {channel:?}")))?;
            let took = start.elapsed();
            if data.history.len() as u64 != size {
                return Err(BenchError::WrongData(format!(
                    "channel {channel:?} loaded {} entries, {size} were written",
                    data.history.len()
                )));
            }
            drop(data);
            let start = std::time::Instant::now();
            let rows = self.raw.load(&channel).await?;
            let raw_took = start.elapsed();
            if rows as u64 != size {
                return Err(BenchError::Baseline(format!(
                    "range read of {channel:?} returned {rows} rows, {size} were written"
                )));
            }
            if round >= samples.warmup {
                paired.backend.push(took);
                paired.baseline.push(raw_took);
            }
        }
        let name = self.raw.load_name().to_string();
        let figure = self.figure(
            "load_channel",
            format!("{size} entries"),
            size,
            &paired,
            name,
        )?;
        self.drop_both(&channel).await?;
        Ok(figure)
    }

    async fn drop_full(&mut self, samples: Samples) -> Result<Figure, BenchError> {
        let channel = "drop".to_string();
        let meta = snapshot(&PROFILES[2], PAYLOADS[0], FULL_HISTORY);
        let mut paired = PairedSamples::with_capacity(samples.measured);
        for round in 0..samples.total() {
            self.fill(&channel, FULL_HISTORY).await?;
            self.store
                .save_channel_meta(&channel, &meta)
                .await
                .map_err(backend_error("save a snapshot"))?;
            self.raw
                .commit(&channel, &RawCommit::of(Some(&meta), None))
                .await?;
            let took = timed(self.store.drop_channel(&channel))
                .await
                .map_err(backend_error("drop a full channel"))?;
            let raw_took = timed(self.raw.drop_channel(&channel)).await?;
            if round >= samples.warmup {
                paired.backend.push(took);
                paired.baseline.push(raw_took);
            }
        }
        let name = self.raw.drop_name().to_string();
        self.figure(
            "drop_channel",
            format!("{FULL_HISTORY} entries"),
            FULL_HISTORY,
            &paired,
            name,
        )
    }

    fn figure(
        &self,
        workload: &str,
        case: String,
        history: u64,
        paired: &PairedSamples,
        baseline_name: String,
    ) -> Result<Figure, BenchError> {
        let backend = stats(&paired.backend)?;
        let baseline = stats(&paired.baseline)?;
        Ok(Figure {
            workload: workload.to_string(),
            case,
            history,
            ratio: ratio(&backend, &baseline),
            backend,
            baseline,
            baseline_name,
            alt_baseline: None,
        })
    }

    async fn drop_both(&mut self, channel: &str) -> Result<(), BenchError> {
        self.store
            .drop_channel(channel)
            .await
            .map_err(backend_error(format!("drop channel {channel:?}")))?;
        self.raw.drop_channel(channel).await
    }

    /// Removes every channel the run wrote, in the backend and in the baseline.
    async fn cleanup(&mut self) -> Result<(), BenchError> {
        for channel in &self.channels {
            self.store
                .drop_channel(channel)
                .await
                .map_err(backend_error(format!("drop channel {channel:?}")))?;
        }
        self.raw.cleanup(&self.channels).await?;
        self.store
            .close()
            .await
            .map_err(backend_error("close the backend"))
    }
}
