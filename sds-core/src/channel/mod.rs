//! One channel's protocol state: a sans-I/O state machine.
//!
//! Every method takes the current time explicitly and never touches a clock, a socket or
//! a database. Effects come out as [`Event`]s queued on the channel (drained with
//! [`Channel::drain_events`]), history changes queued in its [`PendingHistory`], and a
//! "meta dirty" flag telling the driver a snapshot save is due. The flag is set only when
//! something a snapshot holds changed: a duplicate or a sync that tells us nothing new
//! commits nothing.
//!
//! Received messages are judged by exact knowledge, never by our bloom filter (which is only
//! the acknowledgement signal we send peers; see `known`):
//! - Lamport: a timestamp beyond `now + max_lamport_skew_ms` is refused (a content message
//!   is dropped with [`DropReason::LamportTooFarAhead`], a sync message ignored), and only
//!   accepted messages (delivered, buffered, or a sync processed) move our clock.
//! - Identity: ids are first-come. A content message whose id we hold (log, incoming
//!   buffer, outgoing buffer) is a duplicate only when its sender and content match what we
//!   hold; otherwise it is dropped with [`DropReason::ConflictingId`] and what we hold stays.
//!   That includes a peer claiming one of our own ids. An id delivered here and evicted from
//!   the log since is still remembered (without its content): a message under it is a
//!   duplicate, never delivered twice.
//! - Dependencies: met only when in the log or remembered exactly as delivered, marked met
//!   or given up; a bloom false positive never delivers a message out of causal order.

mod acknowledgement;
mod incoming;
mod known;
mod log;
mod outgoing;
mod repair;
mod snapshot;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sds_codec::wire::{HistoryEntry, MessageKind, SdsMessage, encode_message};
use tracing::debug;

use crate::bloom::RollingBloomFilter;
use crate::clock::UnixMillis;
use crate::config::{ConfigError, ReliabilityConfig};
use crate::error::SdsError;
use crate::event::{DropReason, Event};
use crate::hints::RetrievalHintProvider;
use crate::pending_history::PendingHistory;

use incoming::{Incoming, IncomingBuffer};
use known::{Known, KnownIds};
use log::LocalLog;
use outgoing::{Outgoing, OutgoingBuffer, OutgoingLedger};
use repair::{AnswerBudgets, IncomingRepair, OutgoingRepair};
use snapshot::SnapshotCache;

/// What the protocol needs to know about the local participant.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) participant_id: String,
    pub(crate) config: ReliabilityConfig,
}

impl Settings {
    /// SDS-R runs only when enabled and when we have an id peers can address.
    fn repair_active(&self) -> bool {
        self.config.repair_enabled && !self.participant_id.is_empty()
    }
}

/// What happened to a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnwrapStatus {
    /// Delivered (a [`Event::MessageReady`] was emitted, maybe followed by cascaded ones).
    Delivered,
    /// Buffered until these dependencies are delivered or marked met.
    Buffered {
        /// Ids of the missing dependencies.
        missing: Vec<String>,
    },
    /// Already delivered or buffered, from the same sender with the same content (or
    /// delivered and evicted from the log since); ignored apart from clearing repair state.
    /// An id we hold for a different sender or content is not a duplicate but a conflict:
    /// [`DropReason::ConflictingId`].
    Duplicate,
    /// Sent by this participant; not processed again.
    OwnMessage,
    /// A sync message: acknowledgements and the clock were updated; nothing delivered.
    SyncProcessed,
    /// An ephemeral message: delivered at once, outside ordering and reliability.
    Ephemeral {
        /// Its payload.
        content: Vec<u8>,
    },
    /// Dropped: a bound was reached, its Lamport timestamp runs too far ahead, or its id is
    /// held for a different message (ids are first-come; see [`DropReason`]). A content
    /// message also emits [`Event::MessageDropped`]; a sync message with a timestamp too far
    /// ahead is ignored entirely, with no event and no state change.
    Dropped(DropReason),
}

/// The result of unwrapping received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped {
    /// Channel the message belongs to.
    pub channel: String,
    /// Id of the message.
    pub message_id: String,
    /// What happened to it.
    pub status: UnwrapStatus,
}

/// The causal dependencies of a received message that are not delivered yet.
#[derive(Debug, Default)]
struct Dependencies {
    /// Never received here: these are asked for and count against
    /// `max_missing_dependencies`.
    unknown: Vec<HistoryEntry>,
    /// Received, but waiting in the incoming buffer for dependencies of their own.
    waiting: Vec<String>,
}

impl Dependencies {
    fn all_met(&self) -> bool {
        self.unknown.is_empty() && self.waiting.is_empty()
    }
}

/// The protocol state of one channel.
#[derive(Debug)]
pub(crate) struct Channel {
    id: String,
    settings: Arc<Settings>,
    lamport: u64,
    log: LocalLog,
    bloom: RollingBloomFilter,
    known: KnownIds,
    outgoing: OutgoingBuffer,
    /// An id index and a byte count of `outgoing`, and what a retried wrap needs.
    outgoing_ledger: OutgoingLedger,
    incoming: IncomingBuffer,
    outgoing_repairs: BTreeMap<String, OutgoingRepair>,
    incoming_repairs: BTreeMap<String, IncomingRepair>,
    answer_budgets: AnswerBudgets,
    pending: PendingHistory,
    pending_hints: Vec<(String, Vec<u8>)>,
    events: Vec<Event>,
    meta_dirty: bool,
    degraded: bool,
    snapshots: SnapshotCache,
}

fn unix_to_lamport(now: UnixMillis) -> u64 {
    u64::try_from(now).unwrap_or(0)
}

impl Channel {
    /// A channel with no state.
    pub(crate) fn new(id: &str, settings: Arc<Settings>) -> Result<Self, SdsError> {
        let bloom = RollingBloomFilter::new(
            settings.config.bloom_capacity,
            settings.config.bloom_error_rate,
        )
        .map_err(|err| ConfigError(err.to_string()))?;
        let known = KnownIds::new(settings.config.bloom_capacity);
        Ok(Channel {
            id: id.to_string(),
            settings,
            lamport: 0,
            log: LocalLog::default(),
            bloom,
            known,
            outgoing: OutgoingBuffer::default(),
            outgoing_ledger: OutgoingLedger::default(),
            incoming: IncomingBuffer::default(),
            outgoing_repairs: BTreeMap::new(),
            incoming_repairs: BTreeMap::new(),
            answer_budgets: AnswerBudgets::default(),
            pending: PendingHistory::default(),
            pending_hints: Vec::new(),
            events: Vec::new(),
            meta_dirty: false,
            degraded: false,
            snapshots: SnapshotCache::default(),
        })
    }

    fn config(&self) -> &ReliabilityConfig {
        &self.settings.config
    }

    /// The channel's Lamport clock.
    pub(crate) fn lamport(&self) -> u64 {
        self.lamport
    }

    /// Ids in the local log, oldest first.
    pub(crate) fn log_ids(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|entry| entry.message.message_id.clone())
            .collect()
    }

    /// Ids of sent messages not yet acknowledged, oldest first.
    pub(crate) fn outgoing_ids(&self) -> Vec<String> {
        self.outgoing
            .iter()
            .map(|entry| entry.message.message_id.clone())
            .collect()
    }

    /// Ids of received messages waiting for dependencies, in arrival order.
    pub(crate) fn incoming_ids(&self) -> Vec<String> {
        self.incoming
            .iter()
            .map(|entry| entry.message.message_id.clone())
            .collect()
    }

    /// Takes the events produced since the last call.
    pub(crate) fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub(crate) fn pending(&self) -> &PendingHistory {
        &self.pending
    }

    pub(crate) fn pending_mut(&mut self) -> &mut PendingHistory {
        &mut self.pending
    }

    pub(crate) fn take_pending_hints(&mut self) -> Vec<(String, Vec<u8>)> {
        std::mem::take(&mut self.pending_hints)
    }

    pub(crate) fn requeue_hints(&mut self, hints: Vec<(String, Vec<u8>)>) {
        self.pending_hints.extend(hints);
    }

    pub(crate) fn is_meta_dirty(&self) -> bool {
        self.meta_dirty
    }

    pub(crate) fn set_meta_dirty(&mut self, dirty: bool) {
        self.meta_dirty = dirty;
    }

    /// True when nothing about the channel lives in memory alone: nothing buffered, no
    /// repair work, no unwritten change, no undelivered event. Such a channel can be
    /// unloaded and restored from its stored state (the manager's idle unloading).
    pub(crate) fn is_quiescent(&self) -> bool {
        self.outgoing.is_empty()
            && self.incoming.len() == 0
            && self.outgoing_repairs.is_empty()
            && self.incoming_repairs.is_empty()
            && self.pending.is_empty()
            && self.pending_hints.is_empty()
            && self.events.is_empty()
            && !self.meta_dirty
            && !self.degraded
    }

    /// Marks the persistence state; returns true when it changed.
    pub(crate) fn set_degraded(&mut self, degraded: bool) -> bool {
        std::mem::replace(&mut self.degraded, degraded) != degraded
    }

    pub(crate) fn log_entry_for_append(
        &self,
        message_id: &str,
    ) -> Option<sds_codec::storage::LoggedMessage> {
        self.log.get(message_id).map(|entry| entry.to_logged())
    }

    fn is_buffered(&self, message_id: &str) -> bool {
        self.incoming.contains(message_id)
    }

    /// Whether the message's id was taken here before by a message that left the log: it
    /// was delivered and evicted since (always a duplicate: ids are first-come and we can no
    /// longer compare content), or it was marked met or given up and the message is older
    /// than everything in a full log (it could not be placed in the log anyway).
    ///
    /// Exact knowledge only: a bloom false positive must never swallow a new message.
    fn is_evicted_duplicate(&self, message: &SdsMessage) -> bool {
        match self.known.get(&message.message_id) {
            None => false,
            Some(Known::Evicted) => true,
            Some(Known::Met) => {
                if self.log.len() < self.config().max_message_history {
                    return false;
                }
                let key = (
                    message.lamport_timestamp.unwrap_or(0),
                    message.message_id.as_str(),
                );
                self.log
                    .oldest_key()
                    .is_some_and(|(lamport, id)| key < (lamport, id))
            }
        }
    }

    /// A dependency is met only by exact knowledge: it is in the log, or remembered as
    /// delivered and evicted, marked met out of band or given up as lost - unless it only
    /// waits in our buffer. Never by a bloom hit: a false positive would deliver a message
    /// before its dependency.
    fn dependency_met(&self, message_id: &str) -> bool {
        self.log.contains(message_id)
            || (self.known.contains(message_id) && !self.is_buffered(message_id))
    }

    /// The id left the log or never needs to enter it: remember it exactly.
    fn remember(&mut self, message_id: &str, kind: Known) {
        self.known.remember(message_id, kind);
    }

    fn log_message(&mut self, message: SdsMessage) {
        self.pending.queue_append(&message.message_id);
        let capacity = self.config().max_message_history;
        for evicted in self.log.insert(message, None, capacity) {
            self.known.remember(&evicted, Known::Evicted);
            self.pending.queue_evict(&evicted);
        }
    }

    /// The message we hold under `message_id`, delivered, buffered or sent.
    fn held_message(&self, message_id: &str) -> Option<&SdsMessage> {
        if let Some(entry) = self.log.get(message_id) {
            return Some(&entry.message);
        }
        if self.is_buffered(message_id) {
            return self
                .incoming
                .iter()
                .map(|entry| &entry.message)
                .find(|held| held.message_id == message_id);
        }
        self.outgoing_message(message_id)
    }

    fn causal_history(&self) -> Vec<HistoryEntry> {
        self.log
            .newest(self.config().max_causal_history)
            .into_iter()
            .map(|entry| entry.to_history_entry())
            .collect()
    }

    fn ask_hints(&mut self, provider: Option<&dyn RetrievalHintProvider>) {
        let Some(provider) = provider else { return };
        for id in self.log.newest_ids(self.settings.config.max_causal_history) {
            let Some(entry) = self.log.get_mut(&id) else {
                continue;
            };
            if entry.retrieval_hint.is_some() || entry.hint_asked {
                continue;
            }
            entry.hint_asked = true;
            if let Some(hint) = provider.retrieval_hint(&self.id, &id) {
                entry.retrieval_hint = Some(hint.clone());
                self.pending_hints.push((id, hint));
            }
        }
    }

    /// Wraps application content into a message to broadcast (RFC "send").
    pub(crate) fn wrap(
        &mut self,
        now: UnixMillis,
        message_id: String,
        content: Vec<u8>,
        hints: Option<&dyn RetrievalHintProvider>,
    ) -> Result<Vec<u8>, SdsError> {
        if message_id.is_empty() {
            return Err(SdsError::InvalidInput(
                "message id must not be empty".into(),
            ));
        }
        if content.is_empty() {
            return Err(SdsError::InvalidInput(
                "content must not be empty (an empty payload is a sync message)".into(),
            ));
        }
        // A retry (same id, same content, ours) returns what was wrapped; another message's
        // id is refused: ids are first-come per channel.
        if let Some(bytes) = self.rewrap(&message_id, &content)? {
            return Ok(bytes);
        }
        self.ask_hints(hints);
        let lamport = unix_to_lamport(now).max(self.lamport.saturating_add(1));
        let repair_request = self.due_repair_requests(now);
        let message = SdsMessage {
            sender_id: self.settings.participant_id.clone(),
            message_id,
            channel_id: self.id.clone(),
            lamport_timestamp: Some(lamport),
            causal_history: self.causal_history(),
            bloom_filter: Some(self.bloom.to_bytes()),
            repair_request,
            content: Some(content),
        };
        // Encode before touching state, so an oversize message leaves the channel as it was.
        let bytes = encode_message(&message)?;
        let mut message = message;
        self.lamport = lamport;
        self.requests_sent(now, &message.repair_request);
        self.bloom.insert(&message.message_id);
        // Buffered copies drop the bloom filter: at the default size it is ~18 KB, and every
        // snapshot would carry one per unacknowledged message. A resend attaches the
        // current filter instead, which is also the fresher acknowledgement signal. The
        // filter sent is kept for the last wrap only, so a retry returns the same bytes.
        let bloom_filter = message.bloom_filter.take();
        let stored = self.snapshots.store(&message);
        self.buffer_outgoing(Outgoing::new(message.clone(), stored, now), bloom_filter);
        self.log_message(message);
        self.meta_dirty = true;
        Ok(bytes)
    }

    /// Builds a sync message: causal history, bloom filter and due repair requests, no
    /// content. Never logged or buffered.
    ///
    /// A sync ticks the Lamport clock like a send, as @waku/sds does: peers then see our
    /// clock advance with time even while we have nothing to say.
    pub(crate) fn build_sync(&mut self, now: UnixMillis) -> Result<Vec<u8>, SdsError> {
        let repair_request = self.due_repair_requests(now);
        let lamport = unix_to_lamport(now).max(self.lamport.saturating_add(1));
        let message = SdsMessage {
            sender_id: self.settings.participant_id.clone(),
            message_id: format!("sync:{}:{}:{}", self.settings.participant_id, lamport, now),
            channel_id: self.id.clone(),
            lamport_timestamp: Some(lamport),
            causal_history: self.causal_history(),
            bloom_filter: Some(self.bloom.to_bytes()),
            repair_request,
            content: None,
        };
        let bytes = encode_message(&message)?;
        // The tick alone does not dirty the snapshot: an idle channel's sync must not
        // commit, and a tick lost in a crash only matters while the clock is ahead of
        // wall time, where the next send's max(now, lamport + 1) still orders correctly.
        self.lamport = lamport;
        self.requests_sent(now, &message.repair_request);
        Ok(bytes)
    }

    /// Processes a received message (RFC "receive").
    pub(crate) fn unwrap(&mut self, now: UnixMillis, message: SdsMessage) -> Unwrapped {
        let message_id = message.message_id.clone();
        let lamport = message.lamport_timestamp;
        let status = self.unwrap_status(now, message);
        // Only an accepted message moves the clock: one that was refused or dropped says
        // nothing we act on, and must not drag our timestamps along.
        if matches!(
            status,
            UnwrapStatus::Delivered | UnwrapStatus::Buffered { .. } | UnwrapStatus::SyncProcessed
        ) {
            self.advance_clock(now, lamport);
        }
        Unwrapped {
            channel: self.id.clone(),
            message_id,
            status,
        }
    }

    /// Moves the clock to an accepted message's timestamp. A move that stays within wall
    /// time does not dirty the snapshot, as a sync's own tick does not: were it lost in a
    /// crash, our next send still takes `max(now, lamport + 1)`, past it. A move beyond wall
    /// time is saved.
    fn advance_clock(&mut self, now: UnixMillis, lamport: Option<u64>) {
        let Some(lamport) = lamport.filter(|lamport| *lamport > self.lamport) else {
            return;
        };
        self.lamport = lamport;
        if lamport > unix_to_lamport(now) {
            self.meta_dirty = true;
        }
    }

    /// The highest Lamport timestamp accepted at `now`.
    fn lamport_limit(&self, now: UnixMillis) -> u64 {
        unix_to_lamport(now).saturating_add(self.config().max_lamport_skew_ms)
    }

    /// Records and reports a dropped content message.
    fn drop_message(&mut self, message_id: String, reason: DropReason) -> UnwrapStatus {
        debug!(channel = %self.id, %message_id, ?reason, "dropping received message");
        self.events.push(Event::MessageDropped {
            channel: self.id.clone(),
            message_id,
            reason: reason.clone(),
        });
        UnwrapStatus::Dropped(reason)
    }

    fn unwrap_status(&mut self, now: UnixMillis, mut message: SdsMessage) -> UnwrapStatus {
        if message.sender_id == self.settings.participant_id {
            return UnwrapStatus::OwnMessage;
        }
        let id = message.message_id.clone();
        let kind = message.kind();
        if kind == MessageKind::Ephemeral {
            return UnwrapStatus::Ephemeral {
                content: message.content.take().unwrap_or_default(),
            };
        }
        let lamport = message.lamport_timestamp.unwrap_or(0);
        let limit = self.lamport_limit(now);
        if lamport > limit {
            let reason = DropReason::LamportTooFarAhead { lamport, limit };
            if kind == MessageKind::Sync {
                debug!(channel = %self.id, sender = %message.sender_id, lamport, limit,
                    "ignoring sync message from too far ahead");
                return UnwrapStatus::Dropped(reason);
            }
            return self.drop_message(id, reason);
        }
        if kind == MessageKind::Sync {
            self.observe(now, &message);
            self.detect_losses_from_sync(now, &message);
            self.answer_losses_in_filter(now, &message);
            return UnwrapStatus::SyncProcessed;
        }
        if let Some(held) = self.held_message(&id) {
            if held.sender_id != message.sender_id || held.content != message.content {
                // First come, first kept: a second claim on an id never replaces or shadows
                // the message we hold, and leaves its repair state alone.
                return self.drop_message(id, DropReason::ConflictingId);
            }
            // Someone rebroadcast a message we hold: our own repair work for it is moot.
            self.clear_repairs(&id);
            return UnwrapStatus::Duplicate;
        }
        if self.is_evicted_duplicate(&message) {
            self.clear_repairs(&id);
            return UnwrapStatus::Duplicate;
        }
        self.observe(now, &message);

        let dependencies = self.dependencies_of(&message);
        if dependencies.all_met() {
            self.clear_repairs(&id);
            self.bloom.insert(&id);
            self.deliver(message);
            self.cascade(vec![id]);
            return UnwrapStatus::Delivered;
        }
        // Only ids we never received count against the bound: a dependency waiting in our
        // buffer costs nothing new, and counting it would turn one unrepaired loss into a
        // drop of every later message that names it (and they name up to 200 ids).
        let unknown = dependencies.unknown.len();
        message.bloom_filter = None;
        let drop_reason = if unknown > self.config().max_missing_dependencies {
            Err(DropReason::TooManyMissingDependencies(unknown))
        } else {
            // Room is made at the expense of whoever holds the most (see
            // `IncomingBuffer::make_room`); the newcomer is dropped only when it cannot fit
            // without evicting more than its own sender's messages.
            let size = incoming::message_size(&message);
            self.incoming
                .make_room(&message.sender_id, size, &self.incoming_budget())
                .ok_or(DropReason::IncomingBufferFull)
        };
        let evicted = match drop_reason {
            Ok(evicted) => evicted,
            Err(reason) => {
                // A dropped message keeps any request we have out for it: it is still missing.
                debug!(channel = %self.id, message_id = %id, ?reason, "dropping received message");
                self.events.push(Event::MessageDropped {
                    channel: self.id.clone(),
                    message_id: id,
                    reason: reason.clone(),
                });
                return UnwrapStatus::Dropped(reason);
            }
        };
        self.evict_incoming(&evicted);
        self.clear_repairs(&id);
        self.bloom.insert(&id);
        let left_out = self.schedule_repairs(now, &dependencies.unknown, true);
        self.report_unrequested(left_out);
        let mut missing_ids: Vec<String> = dependencies
            .unknown
            .iter()
            .map(|entry| entry.message_id.clone())
            .collect();
        // A dependency evicted just now to make room stays missing: it is requested below.
        missing_ids.extend(dependencies.waiting);
        if !dependencies.unknown.is_empty() {
            self.events.push(Event::MissingDependencies {
                channel: self.id.clone(),
                message_id: id,
                missing: dependencies.unknown,
            });
        }
        self.incoming.push(Incoming {
            stored: self.snapshots.store(&message),
            message,
            missing: missing_ids.iter().cloned().collect(),
            received_at: now,
        });
        if !evicted.is_empty() {
            // Messages that waited here for an evicted one (the newcomer too) ask for it.
            self.rearm_repairs(now);
        }
        self.meta_dirty = true;
        UnwrapStatus::Buffered {
            missing: missing_ids,
        }
    }

    /// Sorts the message's causal history into what is met, what we never received and
    /// what waits in our buffer; each id once.
    fn dependencies_of(&self, message: &SdsMessage) -> Dependencies {
        let mut seen = HashSet::new();
        let mut dependencies = Dependencies::default();
        for entry in &message.causal_history {
            if !seen.insert(entry.message_id.as_str()) || self.dependency_met(&entry.message_id) {
                continue;
            }
            if self.is_buffered(&entry.message_id) {
                dependencies.waiting.push(entry.message_id.clone());
            } else {
                dependencies.unknown.push(entry.clone());
            }
        }
        dependencies
    }

    /// The parts of receiving that content and sync messages share: acknowledgements and
    /// the sender's repair requests. Marks the snapshot dirty only when one of them changed
    /// something (the repair helpers mark their own changes); the clock moves once the
    /// message is accepted (see [`Channel::unwrap`]).
    fn observe(&mut self, now: UnixMillis, message: &SdsMessage) {
        if self.review_acks(message) {
            self.meta_dirty = true;
        }
        self.handle_repair_requests(now, message);
    }

    fn deliver(&mut self, message: SdsMessage) {
        self.outgoing_repairs.remove(&message.message_id);
        // The log keeps the content too: it is what a repair rebroadcasts.
        self.events.push(Event::MessageReady {
            channel: self.id.clone(),
            message_id: message.message_id.clone(),
            sender_id: message.sender_id.clone(),
            lamport: message.lamport_timestamp.unwrap_or(0),
            content: message.content.clone().unwrap_or_default(),
        });
        self.log_message(message);
        self.meta_dirty = true;
    }

    /// Delivers every buffered message that the newly delivered (or met) ids unblock,
    /// transitively, in (lamport, id) order within each wave.
    fn cascade(&mut self, mut newly_met: Vec<String>) {
        while !newly_met.is_empty() {
            self.incoming.resolve(&newly_met);
            newly_met.clear();
            for entry in self.incoming.take_where(|entry| entry.missing.is_empty()) {
                newly_met.push(entry.message.message_id.clone());
                self.deliver(entry.message);
            }
        }
    }

    /// The application fetched these messages out of band: stop waiting for them, and stop
    /// asking peers for them.
    ///
    /// Our pending answers to peers' requests for them stay: we only answer for messages in
    /// our log, and the application holding a copy says nothing about whether the peer that
    /// asked got one. Someone's rebroadcast reaching us is what cancels an answer.
    pub(crate) fn mark_dependencies_met(&mut self, message_ids: &[String]) {
        for id in message_ids {
            self.bloom.insert(id);
            self.remember(id, Known::Met);
            self.outgoing_repairs.remove(id);
        }
        self.cascade(message_ids.to_vec());
        self.meta_dirty = true;
    }

    /// Delivers buffered messages whose dependencies have been missing longer than the
    /// lost-dependency timeout (`lost_dependency_timeout_ms`, 30 minutes by default, counted
    /// from the message's arrival), reporting those dependencies lost.
    ///
    /// Also re-arms SDS-R for dependencies that are still missing but no longer have a
    /// pending request: a request goes out once, and if its answer is lost too the message
    /// would otherwise wait forever.
    pub(crate) fn sweep_incoming(&mut self, now: UnixMillis) {
        self.rearm_repairs(now);
        let Some(timeout) = self.config().lost_dependency_timeout_ms else {
            return;
        };
        let timeout = i64::try_from(timeout).unwrap_or(i64::MAX);
        let expired = self
            .incoming
            .take_where(|entry| now.saturating_sub(entry.received_at) >= timeout);
        if expired.is_empty() {
            return;
        }
        for entry in expired {
            let id = entry.message.message_id.clone();
            // Expired together, in delivery order: one delivered earlier in this pass is not
            // lost to those that waited for it.
            let lost: Vec<String> = entry
                .missing
                .into_iter()
                .filter(|missing| !self.log.contains(missing))
                .collect();
            // Given up on: later messages that depend on these must not wait for them too.
            for lost_id in &lost {
                self.outgoing_repairs.remove(lost_id);
                self.bloom.insert(lost_id);
                self.remember(lost_id, Known::Met);
            }
            self.events.push(Event::DependenciesLost {
                channel: self.id.clone(),
                message_id: id.clone(),
                lost: lost.clone(),
            });
            self.deliver(entry.message);
            let mut met = lost;
            met.push(id);
            self.cascade(met);
        }
        self.meta_dirty = true;
    }

    /// Rebuilds the bloom filter when it holds too many ids. Inserts already clean it once it
    /// is over its maximum, so this timer pass is a backstop that normally finds nothing to
    /// do. The filter is not persisted, so this never needs a commit.
    pub(crate) fn clean_bloom(&mut self) {
        self.bloom.clean();
    }
}

#[cfg(test)]
mod tests;
