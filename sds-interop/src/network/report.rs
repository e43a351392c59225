//! What a simulated run measured, per participant and overall.

use std::fmt;

use super::Kind;

/// The figures of one participant at the end of a run.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Participant id.
    pub name: String,
    /// Which implementation it runs.
    pub kind: Kind,
    /// Content messages it sent.
    pub sent: usize,
    /// Messages the others sent, which it should deliver.
    pub expected: usize,
    /// Distinct messages of the others it delivered.
    pub delivered: usize,
    /// Delivery events beyond the first for a message.
    pub duplicates: usize,
    /// Deliveries of a message before one of its causal dependencies.
    pub causal_violations: usize,
    /// The first few causal violations, as "message <- missing dependency".
    pub violation_examples: Vec<String>,
    /// Deliveries of ids nobody sent (or its own).
    pub unexpected: usize,
    /// Ids of the others' messages it never delivered.
    pub not_delivered: Vec<String>,
    /// Its unacknowledged messages at the end (read from its state).
    pub outgoing_left: usize,
    /// Messages waiting in its incoming buffer at the end (read from its state).
    pub incoming_left: usize,
    /// Resends it broadcast.
    pub resends: usize,
    /// SDS-R rebroadcasts it answered with.
    pub repairs_sent: usize,
    /// Sync messages it broadcast.
    pub syncs_sent: usize,
    /// SDS-R request entries carried by its messages.
    pub repair_requests_sent: usize,
    /// Received messages it dropped (Rust `MessageDropped`).
    pub drops: usize,
    /// Messages it gave up resending (Rust `MessageSendFailed`).
    pub send_failures: usize,
    /// "Missing dependencies" reports it emitted.
    pub missing_reports: usize,
    /// Errors: failed unwraps, task errors, undecodable bytes, lost dependencies.
    pub errors: Vec<String>,
    /// Virtual time at which it had delivered everything expected with nothing left
    /// unacknowledged.
    pub converged_at: Option<i64>,
}

impl Figures {
    pub(crate) fn new(name: &str, kind: Kind) -> Self {
        Figures {
            name: name.to_string(),
            kind,
            sent: 0,
            expected: 0,
            delivered: 0,
            duplicates: 0,
            causal_violations: 0,
            violation_examples: Vec::new(),
            unexpected: 0,
            not_delivered: Vec::new(),
            outgoing_left: 0,
            incoming_left: 0,
            resends: 0,
            repairs_sent: 0,
            syncs_sent: 0,
            repair_requests_sent: 0,
            drops: 0,
            send_failures: 0,
            missing_reports: 0,
            errors: Vec::new(),
            converged_at: None,
        }
    }

    /// Why this participant misses the target (every message of the others exactly once,
    /// in causal order, its own outgoing buffer drained by acknowledgements); empty when
    /// it meets it.
    pub fn shortfalls(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.delivered != self.expected {
            out.push(format!(
                "{} delivered {}/{} messages",
                self.name, self.delivered, self.expected
            ));
        }
        let counts = [
            (self.duplicates, "duplicate deliveries"),
            (self.causal_violations, "causal-order violations"),
            (self.unexpected, "unexpected deliveries"),
            (self.outgoing_left, "unacknowledged messages left"),
            (self.send_failures, "messages given up (send failed)"),
        ];
        for (count, what) in counts {
            if count > 0 {
                out.push(format!("{}: {count} {what}", self.name));
            }
        }
        if !self.errors.is_empty() {
            out.push(format!("{}: errors {:?}", self.name, self.errors));
        }
        out
    }
}

/// Why a simulated run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every participant delivered everything and has nothing unacknowledged.
    AllConverged,
    /// The Rust participants converged and nothing new was delivered for `idle_stop_ms`.
    IdleAfterRustConverged,
    /// `settle_ms` passed after the last send.
    TimeBound,
    /// Nothing was left to do (no timers: cannot happen with periodic work).
    QueueEmpty,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::AllConverged => "all converged",
            StopReason::IdleAfterRustConverged => {
                "Rust converged, then no delivery for the idle bound"
            }
            StopReason::TimeBound => "time bound after the last send",
            StopReason::QueueEmpty => "nothing left to do",
        })
    }
}

/// The outcome of a simulated run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per-participant figures, in the order given.
    pub participants: Vec<Figures>,
    /// Loss probability per copy.
    pub loss: f64,
    /// The seed.
    pub seed: u64,
    /// Virtual start time.
    pub start_ms: i64,
    /// Virtual time of the last content send.
    pub last_send_ms: i64,
    /// Virtual time the run stopped.
    pub end_ms: i64,
    /// Why it stopped.
    pub stop: StopReason,
    /// Copies put on the network (one per receiver and broadcast).
    pub copies: usize,
    /// Copies lost.
    pub copies_lost: usize,
    /// Copies delayed by the extra delay.
    pub copies_delayed: usize,
}

impl Report {
    /// Why the Rust participants miss the target; empty when they all meet it.
    pub fn rust_shortfalls(&self) -> Vec<String> {
        self.participants
            .iter()
            .filter(|figures| figures.kind == Kind::Rust)
            .flat_map(Figures::shortfalls)
            .collect()
    }

    /// When the last Rust participant converged (`None` if one never did).
    pub fn rust_converged_at(&self) -> Option<i64> {
        converged_at(self.participants.iter().filter(|f| f.kind == Kind::Rust))
    }

    /// When the last participant of either kind converged (`None` if one never did).
    pub fn all_converged_at(&self) -> Option<i64> {
        converged_at(self.participants.iter())
    }

    fn seconds(&self, at: Option<i64>) -> String {
        match at {
            Some(at) => format!(
                "+{:.1} s ({:.1} s after the last send)",
                secs(at - self.start_ms),
                secs(at - self.last_send_ms)
            ),
            None => "never".into(),
        }
    }
}

fn converged_at<'a>(mut figures: impl Iterator<Item = &'a Figures>) -> Option<i64> {
    figures.try_fold(i64::MIN, |latest, f| {
        f.converged_at.map(|at| latest.max(at))
    })
}

// Display only: virtual milliseconds as seconds.
#[allow(clippy::cast_precision_loss)]
fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SDS interop run: {} participants, loss {:.0}%, seed {}; copies {} (lost {}, delayed {})",
            self.participants.len(),
            self.loss * 100.0,
            self.seed,
            self.copies,
            self.copies_lost,
            self.copies_delayed
        )?;
        writeln!(
            f,
            "virtual time: last send +{:.1} s, stopped +{:.1} s ({}); Rust converged {}; all converged {}",
            secs(self.last_send_ms - self.start_ms),
            secs(self.end_ms - self.start_ms),
            self.stop,
            self.seconds(self.rust_converged_at()),
            self.seconds(self.all_converged_at())
        )?;
        writeln!(
            f,
            "{:<8} {:<4} {:>4} {:>9} {:>4} {:>6} {:>5} {:>4} {:>4} {:>7} {:>7} {:>5} {:>5} {:>5} {:>6} {:>6} {:>9}",
            "name",
            "kind",
            "sent",
            "delivered",
            "dup",
            "causal",
            "unexp",
            "out",
            "in",
            "resends",
            "repairs",
            "syncs",
            "reqs",
            "drops",
            "failed",
            "errors",
            "converged"
        )?;
        for p in &self.participants {
            let converged = p.converged_at.map_or_else(
                || "never".into(),
                |at| format!("+{:.1}s", secs(at - self.start_ms)),
            );
            writeln!(
                f,
                "{:<8} {:<4} {:>4} {:>9} {:>4} {:>6} {:>5} {:>4} {:>4} {:>7} {:>7} {:>5} {:>5} {:>5} {:>6} {:>6} {:>9}",
                p.name,
                match p.kind {
                    Kind::Rust => "rust",
                    Kind::Js => "js",
                },
                p.sent,
                format!("{}/{}", p.delivered, p.expected),
                p.duplicates,
                p.causal_violations,
                p.unexpected,
                p.outgoing_left,
                p.incoming_left,
                p.resends,
                p.repairs_sent,
                p.syncs_sent,
                p.repair_requests_sent,
                p.drops,
                p.send_failures,
                p.errors.len(),
                converged
            )?;
        }
        for p in &self.participants {
            if !p.violation_examples.is_empty() {
                writeln!(
                    f,
                    "{} causal violations, e.g. {:?}",
                    p.name, p.violation_examples
                )?;
            }
            if !p.not_delivered.is_empty() {
                let shown: Vec<&str> = p
                    .not_delivered
                    .iter()
                    .take(5)
                    .map(|id| &id[..12.min(id.len())])
                    .collect();
                writeln!(
                    f,
                    "{} never delivered {} messages, e.g. {shown:?}",
                    p.name,
                    p.not_delivered.len()
                )?;
            }
            if !p.errors.is_empty() {
                writeln!(
                    f,
                    "{} errors: {:?}",
                    p.name,
                    p.errors.iter().take(5).collect::<Vec<_>>()
                )?;
            }
        }
        Ok(())
    }
}
