//! A simulated lossy broadcast network of Rust and `@waku/sds` participants on one virtual
//! clock.
//!
//! Every participant sends its share of content messages (100-byte payloads, id = hex
//! SHA-256 of the payload) at jittered intervals. Each copy of each broadcast, to each
//! other participant, is lost with probability `loss`; the copies that arrive take a short
//! latency, and a fraction of them an extra delay of seconds so they overtake later ones.
//! Participants do their own periodic work:
//! - Rust ([`sds_core::ReliabilityManager`]): `sweep_outgoing`, `sweep_incoming` and
//!   `clean_bloom_filters` every `buffer_sweep_interval_ms`, `sweep_repairs` every
//!   `repair_sweep_interval_ms`, `build_sync_message` every `sync_interval_ms`, broadcasting
//!   the bytes of [`sds_core::Event::Resend`] and [`sds_core::Event::RepairReady`];
//! - JavaScript, following js-waku's reliable channel ([`JsAppConfig`]): incoming sweep,
//!   resend of unacknowledged messages, sync messages, and the SDS-R answer sweep.
//!
//! The clock jumps from one due thing to the next (a BTree of `(time, sequence)` keys, so
//! equal times run in scheduling order); nothing sleeps. Randomness comes from a seeded
//! [`SplitMix64`], and the JavaScript side's `Date.now()`/`Math.random()` are pinned, so a
//! run is reproducible.

mod report;
mod rng;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use sds_codec::wire::{MessageKind, decode_message};
use sds_core::{Event, ManualClock, ReliabilityConfig};

use crate::driver::BroadcastKind;
use crate::{InteropError, JsEvent, JsNetwork, JsOptions, RustPeer, message_id};

pub use report::{Figures, Report, StopReason};
pub use rng::SplitMix64;

/// Which implementation a participant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sds-core`.
    Rust,
    /// `@waku/sds` 0.0.8 in the Node.js driver.
    Js,
}

/// The periodic work of a `@waku/sds` application (js-waku's reliable channel
/// conventions).
#[derive(Debug, Clone)]
pub struct JsAppConfig {
    /// How often `sweepIncomingBuffer()` runs (5 s).
    pub incoming_sweep_interval_ms: i64,
    /// How long after a send an unacknowledged message is pushed again (30 s).
    pub retry_interval_ms: i64,
    /// How many times it is pushed again at most (10).
    pub max_retry_attempts: u32,
    /// How often a sync message is sent (30 s).
    pub sync_interval_ms: i64,
    /// How often `sweepRepairIncomingBuffer()` runs (5 s; js-waku's reliable channel does
    /// not call it, so this is the harness's choice, matching the Rust repair sweep).
    pub repair_sweep_interval_ms: i64,
}

impl Default for JsAppConfig {
    fn default() -> Self {
        JsAppConfig {
            incoming_sweep_interval_ms: 5_000,
            retry_interval_ms: 30_000,
            max_retry_attempts: 10,
            sync_interval_ms: 30_000,
            repair_sweep_interval_ms: 5_000,
        }
    }
}

/// Parameters of a simulated run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random choice (and of the driver's `Math.random`).
    pub seed: u64,
    /// The channel all participants use.
    pub channel: String,
    /// Probability that a copy (one broadcast to one receiver) is lost.
    pub loss: f64,
    /// Fraction of the arriving copies that take the extra delay.
    pub delayed_fraction: f64,
    /// Range of the extra delay, in milliseconds (inclusive).
    pub extra_delay_ms: (i64, i64),
    /// Range of the normal latency, in milliseconds (inclusive).
    pub latency_ms: (i64, i64),
    /// Content messages each participant sends.
    pub messages_per_participant: usize,
    /// Payload size in bytes.
    pub payload_size: usize,
    /// Range of the gap between two sends of one participant, in milliseconds.
    pub send_gap_ms: (i64, i64),
    /// How long the run may go on after the last send before it stops unconverged.
    pub settle_ms: i64,
    /// Once the Rust participants have converged, how long without any new delivery
    /// anywhere before the run stops (the `@waku/sds` side may never converge).
    pub idle_stop_ms: i64,
    /// Virtual start time (unix milliseconds).
    pub start_ms: i64,
    /// Configuration of the Rust participants.
    pub rust_config: ReliabilityConfig,
    /// Options of the `@waku/sds` participants.
    pub js_options: JsOptions,
    /// Periodic work of the `@waku/sds` participants.
    pub js_app: JsAppConfig,
}

impl SimConfig {
    /// 200 interleaved 100-byte messages per participant, 10% of the copies delayed by
    /// 1-8 s, a 30-minute bound after the last send, default configurations on both sides.
    pub fn new(seed: u64, loss: f64) -> Self {
        SimConfig {
            seed,
            channel: "interop".into(),
            loss,
            delayed_fraction: 0.10,
            extra_delay_ms: (1_000, 8_000),
            latency_ms: (20, 200),
            messages_per_participant: 200,
            payload_size: 100,
            send_gap_ms: (500, 1_500),
            settle_ms: 30 * 60 * 1_000,
            idle_stop_ms: 10 * 60 * 1_000,
            start_ms: 1_700_000_000_000,
            rust_config: ReliabilityConfig::default(),
            js_options: JsOptions::default(),
            js_app: JsAppConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Job {
    RustBufferSweep,
    RustRepairSweep,
    RustSync,
    JsIncomingSweep,
    JsRepairSweep,
    JsSync,
}

#[derive(Debug)]
enum Action {
    Deliver { to: usize, bytes: Arc<Vec<u8>> },
    Send { node: usize },
    Retry { node: usize, message_id: String },
    Timer { node: usize, job: Job, period: i64 },
}

struct Node {
    rust: Option<RustPeer>,
    figures: Figures,
    delivered: HashMap<String, u32>,
    own: HashSet<String>,
    outgoing: BTreeSet<String>,
    /// JS application retries: id -> (payload, pushes so far).
    retries: HashMap<String, (Vec<u8>, u32)>,
}

struct Sim<'a> {
    config: &'a SimConfig,
    clock: ManualClock,
    js: Option<JsNetwork>,
    nodes: Vec<Node>,
    queue: BTreeMap<(i64, u64), Action>,
    seq: u64,
    rng: SplitMix64,
    now: i64,
    deps: HashMap<String, Vec<String>>,
    sends_left: usize,
    last_send: Option<i64>,
    last_progress: i64,
    stop: StopReason,
    copies: usize,
    copies_lost: usize,
    copies_delayed: usize,
}

/// Runs the participants (`(id, kind)`, ids non-empty and distinct) through a simulated
/// run and reports what each achieved. Fails only when the harness itself fails (the
/// driver dies, a Rust send is refused); protocol shortcomings are in the report.
pub async fn simulate(
    config: &SimConfig,
    participants: &[(&str, Kind)],
) -> Result<Report, InteropError> {
    let mut sim = Sim::new(config, participants).await?;
    sim.run().await?;
    sim.finish().await
}

impl<'a> Sim<'a> {
    async fn new(
        config: &'a SimConfig,
        participants: &[(&str, Kind)],
    ) -> Result<Sim<'a>, InteropError> {
        let clock = ManualClock::new(config.start_ms);
        let mut js = None;
        let mut nodes = Vec::new();
        for (name, kind) in participants {
            let rust = match kind {
                Kind::Rust => Some(RustPeer::new(name, config.rust_config.clone(), &clock)?),
                Kind::Js => {
                    if js.is_none() {
                        let mut network = JsNetwork::spawn().await?;
                        // The driver's generator takes a 32-bit seed.
                        network.seed((config.seed & 0xffff_ffff) as u32).await?;
                        network.set_time(config.start_ms).await?;
                        js = Some(network);
                    }
                    if let Some(network) = js.as_mut() {
                        network
                            .create(name, &config.channel, &config.js_options)
                            .await?;
                    }
                    None
                }
            };
            nodes.push(Node {
                rust,
                figures: Figures::new(name, *kind),
                delivered: HashMap::new(),
                own: HashSet::new(),
                outgoing: BTreeSet::new(),
                retries: HashMap::new(),
            });
        }
        let mut sim = Sim {
            config,
            clock,
            js,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            rng: SplitMix64::new(config.seed),
            now: config.start_ms,
            deps: HashMap::new(),
            sends_left: config.messages_per_participant * participants.len(),
            last_send: None,
            last_progress: config.start_ms,
            stop: StopReason::QueueEmpty,
            copies: 0,
            copies_lost: 0,
            copies_delayed: 0,
        };
        sim.schedule_start();
        Ok(sim)
    }

    fn schedule(&mut self, at: i64, action: Action) {
        self.seq += 1;
        self.queue.insert((at, self.seq), action);
    }

    fn periods(&self, kind: Kind) -> Vec<(Job, i64)> {
        let rust = &self.config.rust_config;
        let js = &self.config.js_app;
        let ms = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        match kind {
            Kind::Rust => vec![
                (Job::RustBufferSweep, ms(rust.buffer_sweep_interval_ms)),
                (Job::RustRepairSweep, ms(rust.repair_sweep_interval_ms)),
                (Job::RustSync, ms(rust.sync_interval_ms)),
            ],
            Kind::Js => vec![
                (Job::JsIncomingSweep, js.incoming_sweep_interval_ms),
                (Job::JsRepairSweep, js.repair_sweep_interval_ms),
                (Job::JsSync, js.sync_interval_ms),
            ],
        }
    }

    /// First sends and the first tick of every timer, each at a random phase.
    fn schedule_start(&mut self) {
        for node in 0..self.nodes.len() {
            if self.config.messages_per_participant > 0 {
                let at = self.now + self.rng.range(1_000, 2_000);
                self.schedule(at, Action::Send { node });
            }
            for (job, period) in self.periods(self.nodes[node].figures.kind) {
                let period = period.max(1);
                let at = self.now + self.rng.range(1, period);
                self.schedule(at, Action::Timer { node, job, period });
            }
        }
    }

    async fn run(&mut self) -> Result<(), InteropError> {
        while let Some(((at, _), action)) = self.queue.pop_first() {
            if self
                .last_send
                .is_some_and(|last| at > last + self.config.settle_ms)
            {
                self.stop = StopReason::TimeBound;
                break;
            }
            if self.rust_converged() && at - self.last_progress > self.config.idle_stop_ms {
                self.stop = StopReason::IdleAfterRustConverged;
                break;
            }
            self.now = at;
            self.clock.set(at);
            self.execute(action).await?;
            if self.check_convergence() {
                self.stop = StopReason::AllConverged;
                break;
            }
        }
        Ok(())
    }

    async fn execute(&mut self, action: Action) -> Result<(), InteropError> {
        match action {
            Action::Deliver { to, bytes } => self.deliver(to, &bytes).await,
            Action::Send { node } => self.send(node).await,
            Action::Retry { node, message_id } => self.retry(node, message_id).await,
            Action::Timer { node, job, period } => {
                self.schedule(self.now + period, Action::Timer { node, job, period });
                self.tick(node, job).await
            }
        }
    }

    /// The driver, with its clock set to now.
    async fn js(&mut self) -> Result<&mut JsNetwork, InteropError> {
        let js = self
            .js
            .as_mut()
            .ok_or_else(|| InteropError::Protocol("no JavaScript participant".into()))?;
        js.set_time(self.now).await?;
        Ok(js)
    }

    fn payload(&mut self, node: usize, index: usize) -> Vec<u8> {
        let mut payload = format!("{}#{index:04}|", self.nodes[node].figures.name).into_bytes();
        while payload.len() < self.config.payload_size {
            payload.extend_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        payload.truncate(self.config.payload_size.max(1));
        payload
    }

    async fn send(&mut self, node: usize) -> Result<(), InteropError> {
        let index = self.nodes[node].figures.sent;
        let payload = self.payload(node, index);
        let id = message_id(&payload);
        let name = self.nodes[node].figures.name.clone();
        {
            let state = &mut self.nodes[node];
            state.figures.sent += 1;
            state.own.insert(id.clone());
            state.outgoing.insert(id.clone());
        }
        if let Some(peer) = self.nodes[node].rust.as_ref() {
            let (_, bytes) = peer.send(&self.config.channel, &payload).await?;
            self.broadcast(node, bytes, BroadcastKind::Content);
            self.drain_rust(node);
        } else {
            let reply = self.js().await?.send(&name, &payload).await?;
            if reply.message_id.as_deref() != Some(id.as_str()) {
                return Err(InteropError::Protocol(format!(
                    "@waku/sds named the message {:?}, expected the hex SHA-256 {id}",
                    reply.message_id
                )));
            }
            self.nodes[node].retries.insert(id.clone(), (payload, 0));
            self.schedule_retry(node, id);
            self.handle_js(node, reply.events);
        }
        self.sends_left -= 1;
        if self.nodes[node].figures.sent < self.config.messages_per_participant {
            let (low, high) = self.config.send_gap_ms;
            let at = self.now + self.rng.range(low, high);
            self.schedule(at, Action::Send { node });
        } else if self.sends_left == 0 {
            self.last_send = Some(self.now);
        }
        Ok(())
    }

    /// js-waku's retry manager: push the payload again every interval until it is
    /// acknowledged, at most `max_retry_attempts` times.
    async fn retry(&mut self, node: usize, id: String) -> Result<(), InteropError> {
        let max = self.config.js_app.max_retry_attempts;
        let Some((payload, attempts)) = self.nodes[node].retries.get_mut(&id) else {
            return Ok(());
        };
        if *attempts >= max {
            self.nodes[node].retries.remove(&id);
            return Ok(());
        }
        *attempts += 1;
        let payload = payload.clone();
        let name = self.nodes[node].figures.name.clone();
        let reply = self.js().await?.send(&name, &payload).await?;
        self.schedule_retry(node, id);
        self.handle_js(node, reply.events);
        Ok(())
    }

    /// The next push of an unacknowledged message, one retry interval from now.
    fn schedule_retry(&mut self, node: usize, message_id: String) {
        let at = self.now + self.config.js_app.retry_interval_ms;
        self.schedule(at, Action::Retry { node, message_id });
    }

    async fn tick(&mut self, node: usize, job: Job) -> Result<(), InteropError> {
        let name = self.nodes[node].figures.name.clone();
        let channel = self.config.channel.clone();
        match job {
            Job::RustBufferSweep | Job::RustRepairSweep | Job::RustSync => {
                let Some(peer) = self.nodes[node].rust.as_ref() else {
                    return Ok(());
                };
                let manager = peer.manager.clone();
                match job {
                    Job::RustBufferSweep => {
                        manager.sweep_outgoing().await;
                        manager.sweep_incoming().await;
                        manager.clean_bloom_filters().await;
                    }
                    Job::RustRepairSweep => manager.sweep_repairs().await,
                    _ => {
                        let bytes = manager.build_sync_message(&channel).await?;
                        self.broadcast(node, bytes, BroadcastKind::Sync);
                    }
                }
                self.drain_rust(node);
            }
            Job::JsIncomingSweep => {
                let reply = self.js().await?.sweep_incoming(&name).await?;
                self.handle_js(node, reply.events);
            }
            Job::JsRepairSweep => {
                let reply = self.js().await?.sweep_repairs(&name).await?;
                self.handle_js(node, reply.events);
            }
            Job::JsSync => {
                let reply = self.js().await?.send_sync(&name).await?;
                self.handle_js(node, reply.events);
            }
        }
        Ok(())
    }

    async fn deliver(&mut self, to: usize, bytes: &[u8]) -> Result<(), InteropError> {
        if let Some(peer) = self.nodes[to].rust.as_ref() {
            if let Err(err) = peer.receive(bytes).await {
                self.nodes[to].figures.errors.push(format!("unwrap: {err}"));
            }
            self.drain_rust(to);
        } else {
            let name = self.nodes[to].figures.name.clone();
            let reply = self.js().await?.receive(&name, bytes).await?;
            self.handle_js(to, reply.events);
        }
        Ok(())
    }

    /// Puts one copy per other participant on the network, each lost or delayed at random.
    fn broadcast(&mut self, from: usize, bytes: Vec<u8>, kind: BroadcastKind) {
        let figures = &mut self.nodes[from].figures;
        match kind {
            BroadcastKind::Resend => figures.resends += 1,
            BroadcastKind::Repair => figures.repairs_sent += 1,
            BroadcastKind::Sync => figures.syncs_sent += 1,
            BroadcastKind::Content | BroadcastKind::Ephemeral => {}
        }
        match decode_message(&bytes) {
            Ok(message) => {
                figures.repair_requests_sent += message.repair_request.len();
                if message.kind() == MessageKind::Content {
                    self.deps
                        .entry(message.message_id.clone())
                        .or_insert_with(|| {
                            message
                                .causal_history
                                .iter()
                                .map(|entry| entry.message_id.clone())
                                .collect()
                        });
                }
            }
            Err(err) => figures
                .errors
                .push(format!("broadcast does not decode: {err}")),
        }
        let bytes = Arc::new(bytes);
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            self.copies += 1;
            if self.rng.chance(self.config.loss) {
                self.copies_lost += 1;
                continue;
            }
            let (low, high) = self.config.latency_ms;
            let mut delay = self.rng.range(low, high);
            if self.rng.chance(self.config.delayed_fraction) {
                self.copies_delayed += 1;
                let (low, high) = self.config.extra_delay_ms;
                delay += self.rng.range(low, high);
            }
            let bytes = bytes.clone();
            self.schedule(self.now + delay, Action::Deliver { to, bytes });
        }
    }

    fn drain_rust(&mut self, node: usize) {
        let events = match self.nodes[node].rust.as_mut() {
            Some(peer) => peer.take_events(),
            None => return,
        };
        for event in events {
            match event {
                Event::MessageReady { message_id, .. } => self.record_delivery(node, &message_id),
                Event::Resend { bytes, .. } => self.broadcast(node, bytes, BroadcastKind::Resend),
                Event::RepairReady { bytes, .. } => {
                    self.broadcast(node, bytes, BroadcastKind::Repair);
                }
                Event::MessageAcknowledged { message_id, .. } => {
                    self.nodes[node].outgoing.remove(&message_id);
                }
                Event::MessageSendFailed { message_id, .. } => {
                    let state = &mut self.nodes[node];
                    state.figures.send_failures += 1;
                    state.outgoing.remove(&message_id);
                }
                Event::MessageDropped { .. } => self.nodes[node].figures.drops += 1,
                Event::MissingDependencies { .. } => self.nodes[node].figures.missing_reports += 1,
                Event::DependenciesLost {
                    message_id, lost, ..
                } => {
                    let error = format!("{message_id} delivered without {lost:?}");
                    self.nodes[node].figures.errors.push(error);
                }
                _ => {}
            }
        }
    }

    fn handle_js(&mut self, node: usize, events: Vec<JsEvent>) {
        for event in events {
            match event {
                JsEvent::Broadcast { kind, bytes, .. } => self.broadcast(node, bytes, kind),
                JsEvent::Delivered { message_id, .. } => self.record_delivery(node, &message_id),
                JsEvent::Acknowledged { message_id } => {
                    let state = &mut self.nodes[node];
                    state.outgoing.remove(&message_id);
                    state.retries.remove(&message_id);
                }
                JsEvent::Missing { .. } => self.nodes[node].figures.missing_reports += 1,
                JsEvent::TaskError { command, error } => {
                    self.nodes[node]
                        .figures
                        .errors
                        .push(format!("{command}: {error}"));
                }
                JsEvent::DriverError { error } => self.nodes[node].figures.errors.push(error),
                JsEvent::Undecodable => {
                    self.nodes[node]
                        .figures
                        .errors
                        .push("undecodable bytes".into());
                }
                JsEvent::Lost { message_ids } => {
                    let error = format!("dependencies lost: {message_ids:?}");
                    self.nodes[node].figures.errors.push(error);
                }
                _ => {}
            }
        }
    }

    fn record_delivery(&mut self, node: usize, id: &str) {
        let state = &mut self.nodes[node];
        let count = state.delivered.entry(id.to_string()).or_insert(0);
        *count += 1;
        if *count > 1 {
            state.figures.duplicates += 1;
            return;
        }
        let Some(deps) = self.deps.get(id).filter(|_| !state.own.contains(id)) else {
            state.figures.unexpected += 1;
            return;
        };
        state.figures.delivered += 1;
        self.last_progress = self.now;
        for dep in deps {
            if !state.delivered.contains_key(dep) && !state.own.contains(dep) {
                state.figures.causal_violations += 1;
                if state.figures.violation_examples.len() < 5 {
                    let example = format!(
                        "{} <- {}",
                        &id[..12.min(id.len())],
                        &dep[..12.min(dep.len())]
                    );
                    state.figures.violation_examples.push(example);
                }
            }
        }
    }

    fn rust_converged(&self) -> bool {
        self.nodes
            .iter()
            .filter(|node| node.figures.kind == Kind::Rust)
            .all(|node| node.figures.converged_at.is_some())
    }

    /// Marks participants that delivered everything with nothing left unacknowledged;
    /// true once all have.
    fn check_convergence(&mut self) -> bool {
        if self.sends_left > 0 {
            return false;
        }
        let expected = self.config.messages_per_participant * (self.nodes.len() - 1);
        let now = self.now;
        let mut all = true;
        for state in &mut self.nodes {
            if state.figures.converged_at.is_none() {
                if state.figures.delivered == expected && state.outgoing.is_empty() {
                    state.figures.converged_at = Some(now);
                } else {
                    all = false;
                }
            }
        }
        all
    }

    async fn finish(mut self) -> Result<Report, InteropError> {
        let sent_by: Vec<HashSet<String>> = self.nodes.iter().map(|n| n.own.clone()).collect();
        let channel = self.config.channel.clone();
        for index in 0..self.nodes.len() {
            let (outgoing, incoming) = if let Some(peer) = self.nodes[index].rust.as_ref() {
                let state = peer.manager.channel_state(&channel).await?;
                (state.outgoing.len(), state.incoming.len())
            } else {
                let name = self.nodes[index].figures.name.clone();
                let state = self.js().await?.state(&name).await?;
                (state.outgoing.len(), state.incoming.len())
            };
            let node = &mut self.nodes[index];
            node.figures.outgoing_left = outgoing;
            node.figures.incoming_left = incoming;
            node.figures.expected = self.config.messages_per_participant * (sent_by.len() - 1);
            let mut missing: Vec<String> = sent_by
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .flat_map(|(_, ids)| ids.iter())
                .filter(|id| !node.delivered.contains_key(*id))
                .cloned()
                .collect();
            missing.sort();
            node.figures.not_delivered = missing;
        }
        if let Some(js) = self.js.take() {
            js.shutdown().await?;
        }
        Ok(Report {
            participants: self.nodes.into_iter().map(|node| node.figures).collect(),
            loss: self.config.loss,
            seed: self.config.seed,
            start_ms: self.config.start_ms,
            last_send_ms: self.last_send.unwrap_or(self.now),
            end_ms: self.now,
            stop: self.stop,
            copies: self.copies,
            copies_lost: self.copies_lost,
            copies_delayed: self.copies_delayed,
        })
    }
}
