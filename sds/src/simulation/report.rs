//! What a simulation run reports.

use std::fmt;

use serde::Serialize;

/// Counters of one participant over a run (restarts included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParticipantReport {
    /// Participant id (also its namespace in the backend).
    pub id: String,
    /// Content messages it sent.
    pub sent: u64,
    /// Deliveries (`MessageReady` events) it saw.
    pub delivered: u64,
    /// Deliveries of a message it had already delivered (must stay 0).
    pub duplicate_deliveries: u64,
    /// Its messages acknowledged by peers.
    pub acknowledged: u64,
    /// Repairs it rebroadcast for others.
    pub repairs_sent: u64,
    /// Messages it got through someone's repair.
    pub repairs_received: u64,
    /// Resends of its own unacknowledged messages.
    pub resends: u64,
    /// Times it crashed and restarted from persistence.
    pub restarts: u64,
    /// Commits issued to its backend.
    pub commits: u64,
    /// Commits that failed.
    pub persistence_failures: u64,
    /// Received messages dropped by a buffer bound.
    pub dropped: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulationReport {
    /// Every participant delivered every content message, each after its dependencies.
    pub converged: bool,
    /// Content messages sent.
    pub messages: usize,
    /// Virtual time the run took, in milliseconds.
    pub virtual_ms: u64,
    /// Copies the network lost (including those sent to a crashed participant).
    pub packets_lost: u64,
    /// Per-participant counters.
    pub participants: Vec<ParticipantReport>,
    /// For each participant that lacks some, the ids of the messages it never delivered.
    pub missing: Vec<(String, Vec<String>)>,
    /// Deliveries that came before one of their dependencies.
    pub causality_violations: Vec<String>,
}

impl fmt::Display for SimulationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:>6} {:>9} {:>6} {:>8} {:>8} {:>7} {:>8} {:>7} {:>8}",
            "participant",
            "sent",
            "delivered",
            "acked",
            "rep.sent",
            "rep.recv",
            "resends",
            "restarts",
            "commits",
            "failures"
        )?;
        for p in &self.participants {
            writeln!(
                f,
                "{:<16} {:>6} {:>9} {:>6} {:>8} {:>8} {:>7} {:>8} {:>7} {:>8}",
                p.id,
                p.sent,
                p.delivered,
                p.acknowledged,
                p.repairs_sent,
                p.repairs_received,
                p.resends,
                p.restarts,
                p.commits,
                p.persistence_failures
            )?;
        }
        writeln!(
            f,
            "{} messages, {} copies lost, {:.1} s of virtual time",
            self.messages,
            self.packets_lost,
            self.virtual_ms as f64 / 1000.0
        )?;
        for (participant, ids) in &self.missing {
            let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
            let more = ids.len().saturating_sub(shown.len());
            write!(
                f,
                "MISSING at {participant}: {} ({} messages",
                shown.join(", "),
                ids.len()
            )?;
            if more > 0 {
                write!(f, ", {more} not shown")?;
            }
            writeln!(f, ")")?;
        }
        for violation in self.causality_violations.iter().take(10) {
            writeln!(f, "CAUSALITY: {violation}")?;
        }
        if self.converged {
            write!(
                f,
                "verdict: CONVERGED: every participant delivered all {} messages in causal order",
                self.messages
            )
        } else {
            write!(f, "verdict: NOT CONVERGED")
        }
    }
}
