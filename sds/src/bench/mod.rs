//! Benchmarks of a backend next to its raw baseline: what `sds bench` runs, and what the
//! criterion benches in `benches/` reuse.
//!
//! Every workload runs twice in alternation: through the backend (a [`Persistence`] from
//! [`Backend::open`](crate::Backend::open)) and as a raw baseline that writes or reads the
//! same bytes with the store's own client ([`baseline`]), so each figure comes with the
//! ratio of the two medians. The workloads:
//!
//! - **snapshot sizes**: the encoded snapshot of each profile, from idle to pathological
//!   ([`workloads::PROFILES`]), at 100 B and 1 KB payloads;
//! - **commit**: one delivery (a snapshot of the profile, one history append and one
//!   eviction) into a channel holding 1,000 entries;
//! - **commit against history size**: the same commit with 1,000 and with 100,000 stored
//!   entries (10,000 with `quick`), whose ratio should stay near 1;
//! - **load_channel** of 100, 1,000 and 10,000 entries, against one range read;
//! - **drop_channel** of a full channel (1,000 entries, the default history bound).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sds::bench::BenchError> {
//! let options = sds::bench::BenchOptions::builder().quick(true).build();
//! let report = sds::bench::run("memory://", &options, &mut |_progress| {}).await?;
//! println!("{}", report.table());
//! # Ok(())
//! # }
//! ```
//!
//! [`Persistence`]: sds_core::Persistence

pub mod baseline;
pub mod report;
pub mod run;
mod suite;
pub mod workloads;

use sds_core::persistence::PersistenceError;
use thiserror::Error;

use crate::BackendError;

pub use report::{BenchReport, Figure, Flatness, SnapshotSize};
pub use run::Stats;
pub use suite::run;

/// Why a benchmark run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The backend URL could not be opened.
    #[error(transparent)]
    Open(#[from] BackendError),
    /// The backend failed an operation of the benchmark.
    #[error("backend failed to {what}: {source}")]
    Backend {
        /// What the benchmark was doing.
        what: String,
        /// The backend's error.
        source: PersistenceError,
    },
    /// The raw baseline failed (could not connect, create its tables, write or read).
    #[error("raw baseline failed: {0}")]
    Baseline(String),
    /// The backend returned something other than what was written.
    #[error("the backend returned wrong data: {0}")]
    WrongData(String),
}

/// How much to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    quick: bool,
}

impl BenchOptions {
    /// Starts from the full run.
    pub fn builder() -> BenchOptionsBuilder {
        BenchOptionsBuilder { quick: false }
    }

    /// Whether this is the short run.
    pub fn is_quick(&self) -> bool {
        self.quick
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions::builder().build()
    }
}

/// Builds [`BenchOptions`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BenchOptionsBuilder {
    quick: bool,
}

impl BenchOptionsBuilder {
    /// A short run (seconds): a tenth of the samples, and 10,000 instead of 100,000 entries
    /// for the history-size comparison. For a first look and for tests; the figures are
    /// noisier.
    pub fn quick(mut self, quick: bool) -> Self {
        self.quick = quick;
        self
    }

    /// The options.
    pub fn build(self) -> BenchOptions {
        BenchOptions { quick: self.quick }
    }
}

/// Where a run is, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Steps finished.
    pub done: u64,
    /// Steps in the whole run.
    pub total: u64,
    /// The step running now.
    pub step: String,
}
