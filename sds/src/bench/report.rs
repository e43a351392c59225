//! A run's results: serializable (`sds bench --json`, read back by `cargo xtask
//! bench-report`) and printable as a table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::run::Stats;

/// The version of the JSON layout below; readers refuse other versions.
pub const REPORT_SCHEMA: u32 = 1;

/// Everything one `sds bench` run measured against one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// The version of the `sds` crate that ran it.
    pub sds_version: String,
    /// The backend URL, its password hidden.
    pub backend: String,
    /// The backend kind: `memory`, `rocksdb`, `postgres` or `redis`.
    pub kind: String,
    /// The durability setting where the backend has one (RocksDB: `sync on`/`sync off`).
    pub durability: Option<String>,
    /// The server's (or embedded library's) version, when it tells one.
    pub server_version: Option<String>,
    /// Whether this was the short run.
    pub quick: bool,
    /// Encoded snapshot sizes of every profile and payload.
    pub snapshots: Vec<SnapshotSize>,
    /// Every timed figure, each beside its raw baseline.
    pub figures: Vec<Figure>,
    /// Commit latency at the largest history over the smallest.
    pub flatness: Option<Flatness>,
}

/// The encoded size of one snapshot profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSize {
    /// The profile's name.
    pub profile: String,
    /// Content bytes of each buffered message.
    pub payload_bytes: usize,
    /// Unacknowledged sent messages.
    pub outgoing: usize,
    /// Messages waiting for dependencies.
    pub incoming: usize,
    /// Repair entries of each direction.
    pub repairs: usize,
    /// The encoded snapshot, envelope included.
    pub encoded_bytes: usize,
}

/// One timed workload beside its raw baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `commit`, `commit_history`, `load_channel` or `drop_channel`.
    pub workload: String,
    /// Which variant: `busy/1000B`, `1000 entries`, …
    pub case: String,
    /// History entries stored in the channel while it ran.
    pub history: u64,
    /// Through the backend.
    pub backend: Stats,
    /// The raw baseline.
    pub baseline: Stats,
    /// What the baseline does.
    pub baseline_name: String,
    /// Backend median over baseline median.
    pub ratio: f64,
    /// A second, cheaper baseline where the store has one (Redis: one SET of the snapshot).
    pub alt_baseline: Option<AltBaseline>,
}

/// A second baseline of a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AltBaseline {
    /// What it does.
    pub name: String,
    /// Its timings.
    pub stats: Stats,
    /// Backend median over its median.
    pub ratio: f64,
}

/// How commit latency grows with the history: largest size over smallest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flatness {
    /// Entries stored for the first figure.
    pub small: u64,
    /// Entries stored for the second.
    pub large: u64,
    /// Backend median at `large` over backend median at `small`.
    pub backend_ratio: f64,
    /// The same for the raw baseline.
    pub baseline_ratio: f64,
}

/// Median over median, 0 when the divisor is 0.
pub(crate) fn ratio(numerator: &Stats, denominator: &Stats) -> f64 {
    if denominator.median_us > 0.0 {
        numerator.median_us / denominator.median_us
    } else {
        0.0
    }
}

/// A duration in microseconds, with a unit that keeps it short.
pub fn format_us(micros: f64) -> String {
    if micros >= 10_000.0 {
        format!("{:.1} ms", micros / 1_000.0)
    } else if micros >= 1_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else if micros >= 100.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{micros:.1} µs")
    }
}

impl BenchReport {
    /// The figures as an aligned text table, with the snapshot sizes and the flatness
    /// ratio.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "backend {} ({}{}{}){}",
            self.backend,
            self.kind,
            self.durability
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default(),
            self.server_version
                .as_deref()
                .map(|v| format!(", {v}"))
                .unwrap_or_default(),
            if self.quick {
                " — quick run: few samples, noisy"
            } else {
                ""
            }
        );
        let header = [
            "workload", "case", "median", "p99", "spread", "baseline", "ratio", "raw op",
        ];
        let mut rows: Vec<[String; 8]> = Vec::new();
        for figure in &self.figures {
            rows.push([
                figure.workload.clone(),
                figure.case.clone(),
                format_us(figure.backend.median_us),
                format_us(figure.backend.p99_us),
                format!("±{:.0}%", figure.backend.spread_pct / 2.0),
                format_us(figure.baseline.median_us),
                format!("{:.2}x", figure.ratio),
                figure.baseline_name.clone(),
            ]);
            if let Some(alt) = &figure.alt_baseline {
                rows.push([
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    format_us(alt.stats.median_us),
                    format!("{:.2}x", alt.ratio),
                    alt.name.clone(),
                ]);
            }
        }
        let mut widths = header.map(|title| title.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = width.saturating_sub(cell.chars().count());
                // Numbers right-aligned, words left-aligned.
                if (2..=6).contains(&index) {
                    let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
                }
            }
            text.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
        if let Some(flat) = &self.flatness {
            let _ = writeln!(
                out,
                "commit at {} over {} entries: {:.2}x (raw baseline {:.2}x)",
                flat.large, flat.small, flat.backend_ratio, flat.baseline_ratio
            );
        }
        let _ = writeln!(out, "encoded snapshot sizes:");
        for size in &self.snapshots {
            let _ = writeln!(
                out,
                "  {:<13} {:>5} B payloads ({:>2} out, {:>2} in, {:>2}+{:>2} repair): {:>7} bytes",
                size.profile,
                size.payload_bytes,
                size.outgoing,
                size.incoming,
                size.repairs,
                size.repairs,
                size.encoded_bytes
            );
        }
        out
    }
}

/// `url` with any password replaced by `***`, so reports can be shared.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
        assert_eq!(redact_url("rocksdb:///tmp/a@b"), "rocksdb:///tmp/a@b");
        assert_eq!(redact_url("memory://"), "memory://");
    }

    #[test]
    fn durations_keep_a_short_unit() {
        assert_eq!(format_us(7.25), "7.2 µs");
        assert_eq!(format_us(480.0), "480 µs");
        assert_eq!(format_us(2_500.0), "2.50 ms");
        assert_eq!(format_us(25_000.0), "25.0 ms");
    }
}
