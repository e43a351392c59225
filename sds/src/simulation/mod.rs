//! The main job: participants exchanging messages over a simulated lossy broadcast
//! network, crashing and restarting from persistence, until everyone converges.
//!
//! Time is virtual (a [`ManualClock`] jumps from one due event to the next: a send, an
//! arrival, a crash or restart, or one participant's timer), so a run of thousands of
//! messages over minutes of protocol time takes seconds, and a seed reproduces it exactly.
//! Each participant runs its periodic work on its own timers, with phases of its own.
//!
//! The network is one of the [`Scenario`] presets (real-world loss with second-long
//! delays by default), with any figure overridable in [`NetworkConditions`]. Message ids
//! are the hex SHA-256 of their payload, as applications of @waku/sds make them.

mod network;
mod report;
mod rng;
mod scenario;
mod schedule;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use sds_codec::wire::decode_message;
use sds_core::persistence::fault::{FaultInjector, Operation};
use sds_core::{
    Event, Events, ManualClock, Persistence, ReliabilityConfig, ReliabilityManager, SdsError,
    UnwrapStatus,
};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::Backend;
use network::{Network, PacketKind};
use rng::SimRng;
use schedule::{SendDeck, Timers, Work};

pub use network::{LossBursts, NetworkConditions, NetworkStats, Partition};
pub use report::{ParticipantReport, SimulationReport};
pub use scenario::{ProtocolProfile, Scenario};

/// The virtual epoch of every run (2023-11-14), so Lamport times look like real ones.
const START_MS: i64 = 1_700_000_000_000;

/// Size of every content payload, about what a chat message weighs.
const PAYLOAD_BYTES: usize = 100;

/// The message id of a payload as applications of @waku/sds make it: the lowercase hex
/// SHA-256 of the payload.
pub fn payload_message_id(payload: &[u8]) -> String {
    Sha256::digest(payload)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A unique payload of [`PAYLOAD_BYTES`]: who sends which message, then random letters.
fn payload(number: usize, sender: usize, rng: &mut SimRng) -> Vec<u8> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    let mut bytes = format!("message {number:05} from participant-{sender}: ").into_bytes();
    while bytes.len() < PAYLOAD_BYTES {
        let pick = usize::try_from(rng.below(LETTERS.len() as u64)).unwrap_or(0);
        bytes.push(LETTERS.get(pick).copied().unwrap_or(b'.'));
    }
    bytes
}

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
    /// Content messages sent in total (default 1,000). Each participant sends an equal
    /// share (200 each by default), in a shuffled order.
    pub messages: usize,
    /// Crashes, each followed by a restart from persistence (default 2).
    pub restarts: usize,
    /// How long a crashed participant stays down; what it misses meanwhile is lost
    /// (default 3 s).
    pub downtime_ms: u64,
    /// Seed of every random choice (default 1).
    pub seed: u64,
    /// The network preset `network` started from, for the report (default `lossy`).
    pub scenario: Scenario,
    /// Network behaviour (default: the `lossy` preset's).
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
    /// its `repair_enabled` and `max_resend_attempts` (default: the real defaults,
    /// [`ProtocolProfile::Default`]).
    pub protocol: ReliabilityConfig,
    /// The channel every participant uses.
    pub channel: String,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        let scenario = Scenario::default();
        SimulationConfig {
            participants: 5,
            messages: 1_000,
            restarts: 2,
            downtime_ms: 3_000,
            seed: 1,
            scenario,
            network: scenario.network(),
            send_interval_ms: 100,
            settle_limit_ms: 30 * 60 * 1_000,
            repair: true,
            resend: true,
            protocol: ProtocolProfile::default().config(),
            channel: "simulation".to_string(),
        }
    }
}

impl SimulationConfig {
    /// The defaults, on the network of `scenario`.
    pub fn for_scenario(scenario: Scenario) -> Self {
        SimulationConfig {
            scenario,
            network: scenario.network(),
            ..SimulationConfig::default()
        }
    }

    /// Protocol timings scaled to the simulation ([`ProtocolProfile::Scaled`]): the
    /// defaults' shapes, with seconds where nim-sds has minutes, so repairs happen within
    /// a short virtual run.
    pub fn protocol_defaults() -> ReliabilityConfig {
        ReliabilityConfig {
            resend_interval_ms: 5_000,
            max_resend_attempts: 5,
            sync_interval_ms: 3_000,
            buffer_sweep_interval_ms: 2_000,
            repair_t_min_ms: 500,
            repair_t_max_ms: 5_000,
            repair_sweep_interval_ms: 500,
            repair_from_filters_after_ms: Some(5_000),
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
        self.network
            .validate()
            .map_err(SimulationError::InvalidConfig)?;
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

fn millis(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Simulation {
    /// Prepares a run over `backend`, each participant in its own namespace
    /// (`participant-<n>`).
    pub fn new(config: SimulationConfig, backend: &Backend) -> Result<Self, SimulationError> {
        config.validate()?;
        let protocol = config.effective_protocol();
        let mut rng = SimRng::new(config.seed);
        let participants = (0..config.participants)
            .map(|n| {
                let id = format!("participant-{n}");
                let inner: Arc<dyn Persistence> = backend.namespace(&id);
                Participant::new(id, inner, Timers::new(&protocol, &mut rng))
            })
            .collect();
        Ok(Simulation {
            protocol,
            rng,
            clock: ManualClock::new(START_MS),
            network: Network::new(
                config.network.clone(),
                config.seed ^ 0x6e65_7477_6f72_6b21,
                config.participants,
                START_MS,
            ),
            participants,
            dependencies: HashMap::new(),
            sent_ids: Vec::new(),
            config,
        })
    }

    async fn start(&mut self, index: usize, now: i64) -> Result<(), SimulationError> {
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
        participant.timers.start(now);
        Ok(())
    }

    fn crash(&mut self, index: usize, now: i64) {
        if let Some(participant) = self.participants.get_mut(index)
            && participant.running.take().is_some()
        {
            participant.report.restarts += 1;
            participant.timers.stop();
            participant.down_until = Some(now.saturating_add(millis(self.config.downtime_ms)));
        }
    }

    /// Handles what one participant's manager reported since the last call, putting what
    /// it asks to rebroadcast on the network.
    fn drain_events(&mut self, index: usize) {
        let Some(participant) = self.participants.get_mut(index) else {
            return;
        };
        let outgoing = participant.drain_events();
        let now = sds_core::Clock::now_ms(&self.clock);
        for (kind, bytes) in outgoing {
            self.network.broadcast(now, index, kind, &bytes);
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
        let content = payload(number, sender, &mut self.rng);
        let message_id = payload_message_id(&content);
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
            participant.record_delivery(message_id.clone());
        }
        self.sent_ids.push(message_id);
        self.drain_events(sender);
        let now = sds_core::Clock::now_ms(&self.clock);
        self.network
            .broadcast(now, sender, PacketKind::Original, &bytes);
        Ok(())
    }

    async fn receive(&mut self, to: usize, kind: PacketKind, bytes: Vec<u8>) {
        let Some(manager) = self.manager(to) else {
            self.network.stats.to_crashed += 1;
            return;
        };
        match manager.unwrap_received(&bytes).await {
            Ok(outcome) => {
                // A repair brought a message we lacked, whether it could be delivered at
                // once or waits in the buffer for its own dependencies.
                let new_message = matches!(
                    outcome.status,
                    UnwrapStatus::Delivered | UnwrapStatus::Buffered { .. }
                );
                if kind == PacketKind::Repair
                    && new_message
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

    /// Runs one participant's due periodic work.
    async fn work(&mut self, index: usize, work: Work) -> Result<(), SimulationError> {
        let Some(manager) = self.manager(index) else {
            return Ok(());
        };
        match work {
            Work::Repairs => manager.sweep_repairs().await,
            Work::Buffers => {
                manager.sweep_outgoing().await;
                manager.sweep_incoming().await;
                manager.clean_bloom_filters().await;
            }
            Work::Sync => self.sync(index, &manager).await?,
        }
        self.drain_events(index);
        // The manager asked for a sync out of turn (repair requests wait for a carrier).
        let asked = self
            .participants
            .get_mut(index)
            .is_some_and(|participant| std::mem::take(&mut participant.sync_asked));
        if asked {
            self.sync(index, &manager).await?;
            self.drain_events(index);
        }
        Ok(())
    }

    /// Builds a sync message and broadcasts it.
    async fn sync(
        &mut self,
        index: usize,
        manager: &ReliabilityManager,
    ) -> Result<(), SimulationError> {
        let bytes = manager
            .build_sync_message(&self.config.channel)
            .await
            .map_err(|source| self.protocol_error(index, source))?;
        let now = sds_core::Clock::now_ms(&self.clock);
        self.network.broadcast(now, index, PacketKind::Sync, &bytes);
        if let Some(participant) = self.participants.get_mut(index) {
            participant.report.syncs += 1;
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
            self.start(index, START_MS).await?;
        }
        let n = self.participants.len();
        let total = self.config.messages;
        let interval = millis(self.config.send_interval_ms);
        let send_window = interval.saturating_mul(i64::try_from(total).unwrap_or(i64::MAX));

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
        let mut deck = SendDeck::new(total, n, &mut self.rng);

        let mut next_send = START_MS;
        let mut last_send = START_MS;
        let mut sent = 0usize;
        let needed = total * n;
        let mut now = START_MS;

        while !self.converged() {
            // The settle limit counts from the last send.
            let deadline = deck
                .is_empty()
                .then(|| last_send.saturating_add(millis(self.config.settle_limit_ms)));
            let next_up = self
                .participants
                .iter()
                .filter_map(|participant| participant.down_until)
                .min();
            let next_timer = self
                .participants
                .iter()
                .filter_map(|participant| participant.timers.next_due())
                .min();
            let candidates = [
                (!deck.is_empty()).then_some(next_send),
                self.network.next_arrival(),
                crashes.peek().map(|(at, _)| *at),
                next_up,
                next_timer,
            ];
            let Some(next) = candidates.into_iter().flatten().min() else {
                break;
            };
            if deadline.is_some_and(|deadline| next > deadline) {
                now = deadline.unwrap_or(now).max(now);
                self.clock.set(now);
                break;
            }
            now = next;
            self.clock.set(now);

            for index in 0..n {
                let due = self.participants[index]
                    .down_until
                    .is_some_and(|until| until <= now);
                if due {
                    self.start(index, now).await?;
                }
            }
            while let Some((_, index)) = crashes.next_if(|(at, _)| *at <= now) {
                self.crash(index, now);
            }
            while let Some(packet) = self.network.pop_arrived(now) {
                self.receive(packet.to, packet.kind, packet.bytes).await;
            }
            if !deck.is_empty() && next_send <= now {
                let participants = &self.participants;
                if let Some(sender) = deck.deal(|index| {
                    participants
                        .get(index)
                        .is_some_and(|participant| participant.running.is_some())
                }) {
                    self.send(sender, sent).await?;
                    sent += 1;
                    last_send = now;
                }
                next_send = now + interval;
            }
            for index in 0..n {
                for work in self.participants[index].timers.take_due(now) {
                    self.work(index, work).await?;
                }
            }
            on_progress(Progress {
                sent,
                total,
                deliveries: self.deliveries(),
                deliveries_needed: needed,
            });
        }
        // End as an application would: every queue written and the backend closed, so what
        // the run stored is complete for `sds inspect`.
        for participant in &self.participants {
            if let Some((manager, _)) = &participant.running {
                manager
                    .shutdown()
                    .await
                    .map_err(|source| SimulationError::Protocol {
                        participant: participant.id.clone(),
                        source,
                    })?;
            }
        }
        Ok(self.report(now, last_send))
    }

    fn report(self, now: i64, last_send: i64) -> SimulationReport {
        let converged = self.converged();
        let since_start = |at: i64| u64::try_from(at - START_MS).unwrap_or(0);
        let outcome = report::Outcome {
            converged,
            virtual_ms: since_start(now),
            last_send_ms: since_start(last_send),
            settle_ms: converged.then(|| u64::try_from(now - last_send).unwrap_or(0)),
        };
        let participants: Vec<(ParticipantReport, &[String])> = self
            .participants
            .iter()
            .map(|participant| {
                let mut report = participant.report.clone();
                report.id = participant.id.clone();
                report.commits = participant.persistence.calls(Operation::Commit);
                (report, participant.delivered.as_slice())
            })
            .collect();
        report::build(
            &self.config,
            &self.sent_ids,
            &self.dependencies,
            participants,
            self.network.stats.clone(),
            outcome,
        )
    }
}

/// One participant: its manager while it runs, and what the simulation saw of it.
struct Participant {
    id: String,
    persistence: Arc<FaultInjector<Arc<dyn Persistence>>>,
    running: Option<(ReliabilityManager, Events)>,
    down_until: Option<i64>,
    timers: Timers,
    delivered: Vec<String>,
    delivered_set: HashSet<String>,
    report: ParticipantReport,
    /// The manager emitted [`Event::SyncDue`]: a sync goes out after the current work.
    sync_asked: bool,
}

impl Participant {
    fn new(id: String, persistence: Arc<dyn Persistence>, timers: Timers) -> Self {
        Participant {
            persistence: Arc::new(FaultInjector::new(persistence)),
            id,
            running: None,
            down_until: None,
            timers,
            delivered: Vec::new(),
            delivered_set: HashSet::new(),
            report: ParticipantReport::default(),
            sync_asked: false,
        }
    }

    fn record_delivery(&mut self, message_id: String) {
        if self.delivered_set.insert(message_id.clone()) {
            self.delivered.push(message_id);
        } else {
            self.report.duplicate_deliveries += 1;
        }
    }

    /// Counts what the manager reported and returns what it asks to broadcast.
    fn drain_events(&mut self) -> Vec<(PacketKind, Vec<u8>)> {
        let mut outgoing = Vec::new();
        let Some((_, events)) = self.running.as_mut() else {
            return outgoing;
        };
        for event in events.drain() {
            match event {
                Event::MessageReady { message_id, .. } => {
                    self.report.delivered += 1;
                    self.record_delivery(message_id);
                }
                Event::MessageAcknowledged { .. } => self.report.acknowledged += 1,
                Event::RepairReady { bytes, .. } => {
                    self.report.repairs_sent += 1;
                    outgoing.push((PacketKind::Repair, bytes));
                }
                Event::Resend { bytes, .. } => {
                    self.report.resends += 1;
                    outgoing.push((PacketKind::Resend, bytes));
                }
                Event::MessageSendFailed { .. } => self.report.send_failures += 1,
                Event::PersistenceDegraded { .. } => self.report.persistence_failures += 1,
                Event::MessageDropped { .. } => self.report.dropped += 1,
                Event::SyncDue { .. } => self.sync_asked = true,
                _ => {}
            }
        }
        outgoing
    }
}
