//! The main job: participants exchanging messages over a simulated lossy broadcast
//! network, crashing and restarting from persistence, until everyone converges.
//!
//! Time is virtual (a [`ManualClock`] jumps from one due event to the next), so a run of
//! thousands of messages over minutes of protocol time takes seconds, and a seed
//! reproduces it exactly.

mod network;
mod report;
mod rng;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sds_codec::wire::decode_message;
use sds_core::persistence::fault::{FaultInjector, Operation};
use sds_core::{
    Event, Events, ManualClock, Persistence, ReliabilityConfig, ReliabilityManager, SdsError,
    UnwrapStatus,
};
use thiserror::Error;

use crate::Backend;
use network::{Network, PacketKind};
use rng::SimRng;

pub use network::NetworkConditions;
pub use report::{ParticipantReport, SimulationReport};

/// The virtual epoch of every run (2023-11-14), so Lamport times look like real ones.
const START_MS: i64 = 1_700_000_000_000;

/// Why a simulation could not run (a run that did not converge is not an error: see
/// [`SimulationReport::converged`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// The parameters cannot work.
    #[error("invalid simulation parameters: {0}")]
    InvalidConfig(String),
    /// A protocol operation failed (e.g. a participant could not be bootstrapped).
    #[error("participant {participant}: {source}")]
    Protocol {
        /// Which participant.
        participant: String,
        /// What failed.
        #[source]
        source: SdsError,
    },
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// Number of participants (default 5).
    pub participants: usize,
    /// Content messages sent in total, by randomly chosen participants (default 1,000).
    pub messages: usize,
    /// Crashes, each followed by a restart from persistence (default 2).
    pub restarts: usize,
    /// How long a crashed participant stays down; what it misses meanwhile is lost
    /// (default 3 s).
    pub downtime_ms: u64,
    /// Seed of every random choice (default 1).
    pub seed: u64,
    /// Network behaviour.
    pub network: NetworkConditions,
    /// Virtual time between two sends (default 100 ms).
    pub send_interval_ms: u64,
    /// Virtual time allowed after the last send for repairs to finish (default 30 min).
    pub settle_limit_ms: u64,
    /// SDS-R repairs (default on).
    pub repair: bool,
    /// Resending unacknowledged messages (default on).
    pub resend: bool,
    /// Protocol configuration of every participant; `repair` and `resend` override
    /// its `repair_enabled` and `max_resend_attempts`.
    pub protocol: ReliabilityConfig,
    /// The channel every participant uses.
    pub channel: String,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            participants: 5,
            messages: 1_000,
            restarts: 2,
            downtime_ms: 3_000,
            seed: 1,
            network: NetworkConditions::default(),
            send_interval_ms: 100,
            settle_limit_ms: 30 * 60 * 1_000,
            repair: true,
            resend: true,
            protocol: SimulationConfig::protocol_defaults(),
            channel: "simulation".to_string(),
        }
    }
}

impl SimulationConfig {
    /// Protocol timings scaled to the simulation: the defaults' shapes, with seconds where
    /// nim-sds has minutes, so repairs happen within a short virtual run.
    pub fn protocol_defaults() -> ReliabilityConfig {
        ReliabilityConfig {
            resend_interval_ms: 5_000,
            max_resend_attempts: 5,
            sync_interval_ms: 3_000,
            buffer_sweep_interval_ms: 2_000,
            repair_t_min_ms: 500,
            repair_t_max_ms: 5_000,
            repair_sweep_interval_ms: 500,
            ..ReliabilityConfig::default()
        }
    }

    fn validate(&self) -> Result<(), SimulationError> {
        let fail = |what: &str| Err(SimulationError::InvalidConfig(what.to_string()));
        if self.participants < 2 {
            return fail("at least 2 participants are needed");
        }
        if self.send_interval_ms == 0 {
            return fail("send_interval_ms must be at least 1");
        }
        let network = &self.network;
        for (name, p) in [
            ("loss", network.loss),
            ("duplication", network.duplication),
            ("reorder", network.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimulationError::InvalidConfig(format!(
                    "{name} must be a probability between 0 and 1, got {p}"
                )));
            }
        }
        if network.min_delay_ms > network.max_delay_ms {
            return fail("min_delay_ms cannot exceed max_delay_ms");
        }
        self.protocol
            .validate()
            .map_err(|err| SimulationError::InvalidConfig(err.to_string()))
    }

    fn effective_protocol(&self) -> ReliabilityConfig {
        let mut protocol = self.protocol.clone();
        protocol.repair_enabled = self.repair;
        if !self.resend {
            protocol.max_resend_attempts = 0;
        }
        protocol
    }
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Content messages sent so far.
    pub sent: usize,
    /// Content messages to send in total.
    pub total: usize,
    /// Deliveries so far, summed over participants (own messages included).
    pub deliveries: usize,
    /// Deliveries needed for convergence.
    pub deliveries_needed: usize,
}

struct Participant {
    id: String,
    persistence: Arc<FaultInjector<Arc<dyn Persistence>>>,
    running: Option<(ReliabilityManager, Events)>,
    down_until: Option<i64>,
    delivered: Vec<String>,
    delivered_set: HashSet<String>,
    report: ParticipantReport,
}

/// A simulation run.
pub struct Simulation {
    config: SimulationConfig,
    protocol: ReliabilityConfig,
    clock: ManualClock,
    rng: SimRng,
    network: Network,
    participants: Vec<Participant>,
    dependencies: HashMap<String, Vec<String>>,
    sent_ids: Vec<String>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Prepares a run over `backend`, each participant in its own namespace
    /// (`participant-<n>`).
    pub fn new(config: SimulationConfig, backend: &Backend) -> Result<Self, SimulationError> {
        config.validate()?;
        let participants = (0..config.participants)
            .map(|n| {
                let id = format!("participant-{n}");
                let inner: Arc<dyn Persistence> = backend.namespace(&id);
                Participant {
                    persistence: Arc::new(FaultInjector::new(inner)),
                    id,
                    running: None,
                    down_until: None,
                    delivered: Vec::new(),
                    delivered_set: HashSet::new(),
                    report: ParticipantReport::default(),
                }
            })
            .collect();
        Ok(Simulation {
            protocol: config.effective_protocol(),
            rng: SimRng::new(config.seed),
            clock: ManualClock::new(START_MS),
            network: Network::new(config.network.clone(), config.seed ^ 0x6e65_7477_6f72_6b21),
            participants,
            dependencies: HashMap::new(),
            sent_ids: Vec::new(),
            config,
        })
    }

    async fn start(&mut self, index: usize) -> Result<(), SimulationError> {
        let Some(participant) = self.participants.get_mut(index) else {
            return Ok(());
        };
        let protocol_error = |source| SimulationError::Protocol {
            participant: participant.id.clone(),
            source,
        };
        let (manager, events) = ReliabilityManager::builder(participant.id.clone())
            .config(self.protocol.clone())
            .persistence(participant.persistence.clone())
            .clock(Arc::new(self.clock.clone()))
            .build()
            .map_err(protocol_error)?;
        manager
            .ensure_channel(&self.config.channel)
            .await
            .map_err(|source| SimulationError::Protocol {
                participant: participant.id.clone(),
                source,
            })?;
        participant.running = Some((manager, events));
        participant.down_until = None;
        Ok(())
    }

    fn crash(&mut self, index: usize, now: i64) {
        if let Some(participant) = self.participants.get_mut(index)
            && participant.running.take().is_some()
        {
            participant.report.restarts += 1;
            let downtime = i64::try_from(self.config.downtime_ms).unwrap_or(i64::MAX);
            participant.down_until = Some(now.saturating_add(downtime));
        }
    }

    fn broadcast(&mut self, from: usize, kind: PacketKind, bytes: &[u8]) {
        let now = sds_core::Clock::now_ms(&self.clock);
        self.network
            .broadcast(now, from, self.participants.len(), kind, bytes);
    }

    /// Handles what one participant's manager reported since the last call.
    fn drain_events(&mut self, index: usize) {
        let mut outgoing = Vec::new();
        let Some(participant) = self.participants.get_mut(index) else {
            return;
        };
        let Some((_, events)) = participant.running.as_mut() else {
            return;
        };
        for event in events.drain() {
            match event {
                Event::MessageReady { message_id, .. } => {
                    if participant.delivered_set.insert(message_id.clone()) {
                        participant.delivered.push(message_id);
                    } else {
                        participant.report.duplicate_deliveries += 1;
                    }
                    participant.report.delivered += 1;
                }
                Event::MessageAcknowledged { .. } => participant.report.acknowledged += 1,
                Event::RepairReady { bytes, .. } => {
                    participant.report.repairs_sent += 1;
                    outgoing.push((PacketKind::Repair, bytes));
                }
                Event::Resend { bytes, .. } => {
                    participant.report.resends += 1;
                    outgoing.push((PacketKind::Resend, bytes));
                }
                Event::PersistenceDegraded { .. } => {
                    participant.report.persistence_failures += 1;
                }
                Event::MessageDropped { .. } => participant.report.dropped += 1,
                _ => {}
            }
        }
        for (kind, bytes) in outgoing {
            self.broadcast(index, kind, &bytes);
        }
    }

    fn manager(&self, index: usize) -> Option<ReliabilityManager> {
        self.participants
            .get(index)
            .and_then(|participant| participant.running.as_ref())
            .map(|(manager, _)| manager.clone())
    }

    fn protocol_error(&self, index: usize, source: SdsError) -> SimulationError {
        SimulationError::Protocol {
            participant: self
                .participants
                .get(index)
                .map_or_else(String::new, |participant| participant.id.clone()),
            source,
        }
    }

    async fn send(&mut self, sender: usize, number: usize) -> Result<(), SimulationError> {
        let Some(manager) = self.manager(sender) else {
            return Ok(());
        };
        let message_id = format!("m{number:05}-p{sender}");
        let content = format!("message {number} from participant {sender}").into_bytes();
        let bytes = manager
            .wrap_outgoing(&self.config.channel, message_id.clone(), content)
            .await
            .map_err(|source| self.protocol_error(sender, source))?;
        if let Ok(message) = decode_message(&bytes) {
            self.dependencies.insert(
                message_id.clone(),
                message
                    .causal_history
                    .into_iter()
                    .map(|entry| entry.message_id)
                    .collect(),
            );
        }
        if let Some(participant) = self.participants.get_mut(sender) {
            participant.report.sent += 1;
            participant.delivered_set.insert(message_id.clone());
            participant.delivered.push(message_id.clone());
        }
        self.sent_ids.push(message_id);
        self.drain_events(sender);
        self.broadcast(sender, PacketKind::Original, &bytes);
        Ok(())
    }

    async fn receive(&mut self, to: usize, kind: PacketKind, bytes: Vec<u8>) {
        let Some(manager) = self.manager(to) else {
            self.network.lost += 1;
            return;
        };
        match manager.unwrap_received(&bytes).await {
            Ok(outcome) => {
                if kind == PacketKind::Repair
                    && outcome.status == UnwrapStatus::Delivered
                    && let Some(participant) = self.participants.get_mut(to)
                {
                    participant.report.repairs_received += 1;
                }
            }
            Err(err) => {
                // Bytes on this network are always ours; a refusal is a bug worth seeing.
                tracing::warn!(participant = to, %err, "packet refused");
            }
        }
        self.drain_events(to);
    }

    async fn for_each_running(&mut self, work: Work) -> Result<(), SimulationError> {
        for index in 0..self.participants.len() {
            let Some(manager) = self.manager(index) else {
                continue;
            };
            match work {
                Work::Repairs => manager.sweep_repairs().await,
                Work::Buffers => {
                    manager.sweep_outgoing().await;
                    manager.sweep_incoming().await;
                    manager.clean_bloom_filters().await;
                }
                Work::Sync => {
                    let bytes = manager
                        .build_sync_message(&self.config.channel)
                        .await
                        .map_err(|source| self.protocol_error(index, source))?;
                    self.broadcast(index, PacketKind::Sync, &bytes);
                }
            }
            self.drain_events(index);
        }
        Ok(())
    }

    fn deliveries(&self) -> usize {
        self.participants
            .iter()
            .map(|participant| participant.delivered_set.len())
            .sum()
    }

    fn converged(&self) -> bool {
        self.sent_ids.len() == self.config.messages
            && self
                .participants
                .iter()
                .all(|participant| participant.delivered_set.len() == self.sent_ids.len())
    }

    /// Runs to convergence or to the settle limit, reporting progress along the way.
    pub async fn run(
        mut self,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<SimulationReport, SimulationError> {
        for index in 0..self.participants.len() {
            self.start(index).await?;
        }
        let n = self.participants.len();
        let total = self.config.messages;
        let interval = i64::try_from(self.config.send_interval_ms).unwrap_or(i64::MAX);
        let send_window = interval.saturating_mul(i64::try_from(total).unwrap_or(i64::MAX));
        let deadline = START_MS
            .saturating_add(send_window)
            .saturating_add(i64::try_from(self.config.settle_limit_ms).unwrap_or(i64::MAX));

        let mut crashes: Vec<(i64, usize)> = (0..self.config.restarts)
            .map(|_| {
                let at = START_MS
                    + i64::try_from(self.rng.below(u64::try_from(send_window).unwrap_or(1)))
                        .unwrap_or(0);
                (at, self.rng.below(n as u64) as usize)
            })
            .collect();
        crashes.sort();
        let mut crashes = crashes.into_iter().peekable();

        let period = |ms: u64| i64::try_from(ms.max(1)).unwrap_or(i64::MAX);
        let repair_every = period(self.protocol.repair_sweep_interval_ms);
        let buffers_every = period(self.protocol.buffer_sweep_interval_ms);
        let sync_every = period(self.protocol.sync_interval_ms);
        let mut next_send = START_MS;
        let mut next_repair = START_MS + repair_every;
        let mut next_buffers = START_MS + buffers_every;
        let mut next_sync = START_MS + sync_every;
        let mut sent = 0usize;
        let needed = total * n;
        let mut now = START_MS;

        while !self.converged() {
            let next_up = self
                .participants
                .iter()
                .filter_map(|participant| participant.down_until)
                .min();
            let candidates = [
                (sent < total).then_some(next_send),
                self.network.next_arrival(),
                crashes.peek().map(|(at, _)| *at),
                next_up,
                Some(next_repair),
                Some(next_buffers),
                Some(next_sync),
            ];
            let Some(next) = candidates.into_iter().flatten().min() else {
                break;
            };
            if next > deadline {
                break;
            }
            now = next;
            self.clock.set(now);

            for index in 0..n {
                let due = self.participants[index]
                    .down_until
                    .is_some_and(|until| until <= now);
                if due {
                    self.start(index).await?;
                }
            }
            while let Some((_, index)) = crashes.next_if(|(at, _)| *at <= now) {
                self.crash(index, now);
            }
            while let Some(packet) = self.network.pop_arrived(now) {
                self.receive(packet.to, packet.kind, packet.bytes).await;
            }
            if sent < total && next_send <= now {
                let running: Vec<usize> = (0..n)
                    .filter(|index| self.participants[*index].running.is_some())
                    .collect();
                if !running.is_empty() {
                    let pick = self.rng.below(running.len() as u64) as usize;
                    let sender = running[pick];
                    self.send(sender, sent).await?;
                    sent += 1;
                }
                next_send = now + interval;
            }
            if next_repair <= now {
                self.for_each_running(Work::Repairs).await?;
                next_repair = now + repair_every;
            }
            if next_buffers <= now {
                self.for_each_running(Work::Buffers).await?;
                next_buffers = now + buffers_every;
            }
            if next_sync <= now {
                self.for_each_running(Work::Sync).await?;
                next_sync = now + sync_every;
            }
            on_progress(Progress {
                sent,
                total,
                deliveries: self.deliveries(),
                deliveries_needed: needed,
            });
        }
        Ok(self.report(now))
    }

    fn report(self, now: i64) -> SimulationReport {
        let converged = self.converged();
        let mut participants = Vec::new();
        let mut missing = Vec::new();
        let mut causality_violations = Vec::new();
        for participant in &self.participants {
            let mut report = participant.report.clone();
            report.id = participant.id.clone();
            report.commits = participant.persistence.calls(Operation::Commit);
            participants.push(report);
            let absent: Vec<String> = self
                .sent_ids
                .iter()
                .filter(|id| !participant.delivered_set.contains(*id))
                .cloned()
                .collect();
            if !absent.is_empty() {
                missing.push((participant.id.clone(), absent));
            }
            let position: HashMap<&str, usize> = participant
                .delivered
                .iter()
                .enumerate()
                .map(|(at, id)| (id.as_str(), at))
                .collect();
            for (at, id) in participant.delivered.iter().enumerate() {
                for dependency in self.dependencies.get(id).into_iter().flatten() {
                    if position
                        .get(dependency.as_str())
                        .is_none_or(|dep| *dep > at)
                    {
                        causality_violations.push(format!(
                            "{}: {id} delivered before its dependency {dependency}",
                            participant.id
                        ));
                    }
                }
            }
        }
        SimulationReport {
            converged: converged && causality_violations.is_empty(),
            messages: self.sent_ids.len(),
            virtual_ms: u64::try_from(now - START_MS).unwrap_or(0),
            packets_lost: self.network.lost,
            participants,
            missing,
            causality_violations,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Work {
    Repairs,
    Buffers,
    Sync,
}
