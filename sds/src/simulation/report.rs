//! What a simulation run reports.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use super::SimulationConfig;
use super::network::{NetworkConditions, NetworkStats};
use super::scenario::{ProtocolProfile, Scenario};

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
    /// Messages it lacked that arrived in someone's repair (delivered at once, or
    /// buffered until their own dependencies arrived).
    pub repairs_received: u64,
    /// Resends of its own unacknowledged messages.
    pub resends: u64,
    /// Sync messages it sent: on its sync timer, and when its manager asked for one
    /// (`Event::SyncDue`: repair requests waiting for a message to carry them).
    pub syncs: u64,
    /// Its messages given up on after the last resend.
    pub send_failures: u64,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationReport {
    /// The network preset the run started from.
    pub scenario: Scenario,
    /// Whether explicit figures overrode some of the preset's.
    pub scenario_overridden: bool,
    /// The network conditions the run had.
    pub network: NetworkConditions,
    /// The protocol timings: `default` (the real defaults), `scaled`, or `custom`.
    pub protocol: String,
    /// Every participant delivered every content message exactly once, each after its
    /// dependencies.
    pub converged: bool,
    /// Content messages sent.
    pub messages: usize,
    /// Virtual time the run took, in milliseconds.
    pub virtual_ms: u64,
    /// Virtual time of the last send, from the start of the run, in milliseconds.
    pub last_send_ms: u64,
    /// Virtual time from the last send to convergence, in milliseconds (`None`: the run
    /// did not converge).
    pub settle_ms: Option<u64>,
    /// Copies the network lost (loss, bursts, partition, and those sent to a crashed
    /// participant).
    pub packets_lost: u64,
    /// What the network did, counted by kind.
    pub network_stats: NetworkStats,
    /// Repairs rebroadcast, summed over participants.
    pub repair_rebroadcasts: u64,
    /// Messages a participant lacked that arrived in a repair, summed over participants.
    pub repaired_deliveries: u64,
    /// Repair rebroadcasts per delivery through repair (`None` when nothing was
    /// delivered through repair): how much repair traffic a heal costs.
    pub rebroadcasts_per_repaired_delivery: Option<f64>,
    /// Received messages dropped by a buffer bound, summed over participants.
    pub dropped: u64,
    /// Per-participant counters.
    pub participants: Vec<ParticipantReport>,
    /// For each participant that lacks some, the ids of the messages it never delivered.
    pub missing: Vec<(String, Vec<String>)>,
    /// Deliveries that came before one of their dependencies.
    pub causality_violations: Vec<String>,
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The first characters of a message id (hex SHA-256), enough to tell ids apart.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

impl SimulationReport {
    fn write_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:>6} {:>9} {:>6} {:>8} {:>8} {:>7} {:>6} {:>8} {:>7} {:>8} {:>7}",
            "participant",
            "sent",
            "delivered",
            "acked",
            "rep.sent",
            "rep.recv",
            "resends",
            "failed",
            "restarts",
            "commits",
            "failures",
            "dropped"
        )?;
        for p in &self.participants {
            writeln!(
                f,
                "{:<16} {:>6} {:>9} {:>6} {:>8} {:>8} {:>7} {:>6} {:>8} {:>7} {:>8} {:>7}",
                p.id,
                p.sent,
                p.delivered,
                p.acknowledged,
                p.repairs_sent,
                p.repairs_received,
                p.resends,
                p.send_failures,
                p.restarts,
                p.commits,
                p.persistence_failures,
                p.dropped
            )?;
        }
        Ok(())
    }

    fn write_network(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = &self.network_stats;
        writeln!(
            f,
            "network: {} copies, {} lost ({:.1}%: {} steady, {} in bursts, {} cut by the \
             partition, {} to crashed participants), {} of {} on the wire delayed by seconds \
             ({:.1}%), {} duplicated",
            stats.copies,
            self.packets_lost,
            percent(self.packets_lost, stats.copies),
            stats.lost,
            stats.lost_in_burst,
            stats.cut_by_partition,
            stats.to_crashed,
            stats.delayed_long,
            stats.in_flight,
            percent(stats.delayed_long, stats.in_flight),
            stats.duplicated
        )
    }
}

impl fmt::Display for SimulationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overridden = if self.scenario_overridden {
            " (figures overridden)"
        } else {
            ""
        };
        writeln!(
            f,
            "scenario {}{overridden}: {}",
            self.scenario, self.network
        )?;
        writeln!(f, "protocol {}", self.protocol)?;
        self.write_table(f)?;
        self.write_network(f)?;
        write!(
            f,
            "{} messages, last sent at {:.1} s; ",
            self.messages,
            seconds(self.last_send_ms)
        )?;
        match self.settle_ms {
            Some(settle) => write!(f, "converged {:.1} s after the last send", seconds(settle))?,
            None => write!(f, "not converged")?,
        }
        writeln!(f, "; {:.1} s of virtual time", seconds(self.virtual_ms))?;
        write!(
            f,
            "repairs: {} rebroadcasts for {} repaired deliveries",
            self.repair_rebroadcasts, self.repaired_deliveries
        )?;
        if let Some(ratio) = self.rebroadcasts_per_repaired_delivery {
            write!(f, " ({ratio:.2} per repaired delivery)")?;
        }
        writeln!(f, "; {} messages dropped by buffer bounds", self.dropped)?;
        for (participant, ids) in &self.missing {
            let shown: Vec<&str> = ids.iter().take(10).map(|id| short(id)).collect();
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

/// How a run ended, as the main loop saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) converged: bool,
    pub(crate) virtual_ms: u64,
    pub(crate) last_send_ms: u64,
    pub(crate) settle_ms: Option<u64>,
}

/// Deliveries that came before one of their dependencies, in `delivered` (one
/// participant's deliveries, in order).
fn causality_violations(
    participant: &str,
    delivered: &[String],
    dependencies: &HashMap<String, Vec<String>>,
) -> Vec<String> {
    let position: HashMap<&str, usize> = delivered
        .iter()
        .enumerate()
        .map(|(at, id)| (id.as_str(), at))
        .collect();
    let mut violations = Vec::new();
    for (at, id) in delivered.iter().enumerate() {
        for dependency in dependencies.get(id).into_iter().flatten() {
            if position
                .get(dependency.as_str())
                .is_none_or(|dep| *dep > at)
            {
                violations.push(format!(
                    "{participant}: {} delivered before its dependency {}",
                    short(id),
                    short(dependency)
                ));
            }
        }
    }
    violations
}

/// Assembles the report: per-participant counters with their deliveries in order, and
/// the run's totals.
pub(crate) fn build(
    config: &SimulationConfig,
    sent_ids: &[String],
    dependencies: &HashMap<String, Vec<String>>,
    participants: Vec<(ParticipantReport, &[String])>,
    network_stats: NetworkStats,
    outcome: Outcome,
) -> SimulationReport {
    let mut reports = Vec::new();
    let mut missing = Vec::new();
    let mut violations = Vec::new();
    for (report, delivered) in participants {
        let delivered_set: HashSet<&String> = delivered.iter().collect();
        let absent: Vec<String> = sent_ids
            .iter()
            .filter(|id| !delivered_set.contains(id))
            .cloned()
            .collect();
        if !absent.is_empty() {
            missing.push((report.id.clone(), absent));
        }
        violations.extend(causality_violations(&report.id, delivered, dependencies));
        reports.push(report);
    }
    let sum = |field: fn(&ParticipantReport) -> u64| reports.iter().map(field).sum::<u64>();
    let repair_rebroadcasts = sum(|p| p.repairs_sent);
    let repaired_deliveries = sum(|p| p.repairs_received);
    let dropped = sum(|p| p.dropped);
    let exactly_once = reports.iter().all(|p| p.duplicate_deliveries == 0);
    let converged = outcome.converged && violations.is_empty() && exactly_once;
    SimulationReport {
        scenario: config.scenario,
        scenario_overridden: config.network != config.scenario.network(),
        network: config.network.clone(),
        protocol: ProtocolProfile::of(&config.protocol)
            .map_or("custom", ProtocolProfile::name)
            .to_string(),
        converged,
        messages: sent_ids.len(),
        virtual_ms: outcome.virtual_ms,
        last_send_ms: outcome.last_send_ms,
        settle_ms: outcome.settle_ms.filter(|_| converged),
        packets_lost: network_stats.total_lost(),
        network_stats,
        repair_rebroadcasts,
        repaired_deliveries,
        rebroadcasts_per_repaired_delivery: (repaired_deliveries > 0)
            .then(|| repair_rebroadcasts as f64 / repaired_deliveries as f64),
        dropped,
        participants: reports,
        missing,
        causality_violations: violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    // A delivery before one of its dependencies, or without it, is a violation; the
    // causal order is not.
    #[test]
    fn deliveries_before_their_dependencies_are_violations() {
        let dependencies: HashMap<String, Vec<String>> = [
            ("b".to_string(), ids(&["a"])),
            ("c".to_string(), ids(&["a", "b"])),
        ]
        .into_iter()
        .collect();
        assert!(causality_violations("p", &ids(&["a", "b", "c"]), &dependencies).is_empty());
        let violations = causality_violations("p", &ids(&["b", "a", "c"]), &dependencies);
        assert_eq!(violations, vec!["p: b delivered before its dependency a"]);
        assert_eq!(
            causality_violations("p", &ids(&["c"]), &dependencies).len(),
            2
        );
    }
}
