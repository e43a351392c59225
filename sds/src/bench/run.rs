//! The timing loop: samples of one operation, summarized as median, p99 and spread.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many times each workload runs: warm-up rounds (not kept), then measured samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Samples {
    /// Rounds run before measuring (caches, connections, the write-ahead log warm up).
    pub warmup: usize,
    /// Rounds measured.
    pub measured: usize,
}

impl Samples {
    /// `measured` samples after a tenth as many warm-up rounds (at least one).
    pub fn of(measured: usize) -> Samples {
        Samples {
            warmup: (measured / 10).max(1),
            measured: measured.max(1),
        }
    }

    /// Warm-up and measured rounds together.
    pub fn total(&self) -> usize {
        self.warmup + self.measured
    }
}

/// A summary of measured durations, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// How many samples were measured.
    pub samples: usize,
    /// Fastest sample.
    pub min_us: f64,
    /// Median (p50).
    pub median_us: f64,
    /// 25th percentile.
    pub p25_us: f64,
    /// 75th percentile.
    pub p75_us: f64,
    /// 99th percentile (the slowest sample when there are fewer than 100).
    pub p99_us: f64,
    /// Interquartile range over the median, in percent: how much the samples spread.
    pub spread_pct: f64,
}

impl Stats {
    /// Summarizes `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut micros: Vec<f64> = samples
            .iter()
            .map(|sample| sample.as_secs_f64() * 1e6)
            .collect();
        micros.sort_by(f64::total_cmp);
        let median = percentile(&micros, 50.0);
        let (p25, p75) = (percentile(&micros, 25.0), percentile(&micros, 75.0));
        Some(Stats {
            samples: micros.len(),
            min_us: micros[0],
            median_us: median,
            p25_us: p25,
            p75_us: p75,
            p99_us: percentile(&micros, 99.0),
            spread_pct: if median > 0.0 {
                (p75 - p25) / median * 100.0
            } else {
                0.0
            },
        })
    }
}

/// The nearest-rank percentile of sorted values (never empty).
fn percentile(sorted: &[f64], pct: f64) -> f64 {
    // Nearest rank: the smallest value with at least pct% of the values at or below it.
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Samples of a backend operation and of its raw baseline, taken in alternation so that
/// whatever else the machine does weighs on both alike.
#[derive(Debug, Default)]
pub struct PairedSamples {
    /// Durations of the backend's operation.
    pub backend: Vec<Duration>,
    /// Durations of the raw baseline.
    pub baseline: Vec<Duration>,
}

impl PairedSamples {
    /// Room for `samples` of each.
    pub fn with_capacity(samples: usize) -> Self {
        PairedSamples {
            backend: Vec::with_capacity(samples),
            baseline: Vec::with_capacity(samples),
        }
    }
}

/// Runs `operation` and returns how long it took, or its error.
pub async fn timed<T, E>(operation: impl Future<Output = Result<T, E>>) -> Result<Duration, E> {
    let start = Instant::now();
    operation.await?;
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_known_samples() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let stats = Stats::of(&samples).unwrap();
        assert_eq!(stats.samples, 100);
        assert_eq!(stats.min_us, 1.0);
        assert_eq!(stats.median_us, 50.0);
        assert_eq!(stats.p25_us, 25.0);
        assert_eq!(stats.p75_us, 75.0);
        assert_eq!(stats.p99_us, 99.0);
        assert_eq!(stats.spread_pct, 100.0);
        assert!(Stats::of(&[]).is_none());
        let one = Stats::of(&[Duration::from_micros(7)]).unwrap();
        assert_eq!((one.median_us, one.p99_us), (7.0, 7.0));
    }

    #[test]
    fn warmup_is_a_tenth_of_the_samples() {
        assert_eq!(Samples::of(200).warmup, 20);
        assert_eq!(Samples::of(5).warmup, 1);
        assert_eq!(Samples::of(0).total(), 2);
    }
}
