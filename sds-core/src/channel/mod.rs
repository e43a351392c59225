//! One channel's protocol state: a sans-I/O state machine.
//!
//! Every method takes the current time explicitly and never touches a clock, a socket or
//! a database. Effects come out as [`Event`]s queued on the channel (drained with
//! [`Channel::drain_events`]), history changes queued in its [`PendingHistory`], and a
//! "meta dirty" flag telling the driver a snapshot save is due.

mod incoming;
mod log;
mod repair;
mod snapshot;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sds_codec::wire::{HistoryEntry, MessageKind, SdsMessage, encode_message};
use tracing::debug;

use crate::bloom::{BloomFilter, RollingBloomFilter};
use crate::clock::UnixMillis;
use crate::config::{ConfigError, ReliabilityConfig};
use crate::error::SdsError;
use crate::event::{DropReason, Event};
use crate::hints::RetrievalHintProvider;
use crate::pending_history::PendingHistory;

use incoming::{Incoming, IncomingBuffer};
use log::LocalLog;
use repair::{IncomingRepair, OutgoingRepair};

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
    /// Already delivered or buffered; ignored apart from clearing repair state.
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
    /// Dropped because a buffer bound was reached (a [`Event::MessageDropped`] was emitted).
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

#[derive(Debug, Clone)]
struct Outgoing {
    message: SdsMessage,
    sent_at: UnixMillis,
    resend_attempts: u32,
    possible_acks: u32,
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
    outgoing: Vec<Outgoing>,
    incoming: IncomingBuffer,
    outgoing_repairs: BTreeMap<String, OutgoingRepair>,
    incoming_repairs: BTreeMap<String, IncomingRepair>,
    pending: PendingHistory,
    pending_hints: Vec<(String, Vec<u8>)>,
    events: Vec<Event>,
    meta_dirty: bool,
    degraded: bool,
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
        Ok(Channel {
            id: id.to_string(),
            settings,
            lamport: 0,
            log: LocalLog::default(),
            bloom,
            outgoing: Vec::new(),
            incoming: IncomingBuffer::default(),
            outgoing_repairs: BTreeMap::new(),
            incoming_repairs: BTreeMap::new(),
            pending: PendingHistory::default(),
            pending_hints: Vec::new(),
            events: Vec::new(),
            meta_dirty: false,
            degraded: false,
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

    /// A message older than everything in a full log, whose id the bloom filter knows, was
    /// delivered before and evicted since. Restricting the bloom check to messages older
    /// than the log window keeps a false positive from swallowing a new message.
    fn is_evicted_duplicate(&self, message: &SdsMessage) -> bool {
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
            && self.bloom.contains(&message.message_id)
    }

    /// A dependency is met once delivered, or once known through the bloom filter (marked
    /// met out of band, or evicted from the log) unless it is only buffered here: a buffered
    /// message is in the bloom filter but not delivered yet.
    fn dependency_met(&self, message_id: &str) -> bool {
        self.log.contains(message_id)
            || (self.bloom.contains(message_id) && !self.is_buffered(message_id))
    }

    fn log_message(&mut self, message: SdsMessage) {
        self.pending.queue_append(&message.message_id);
        let capacity = self.config().max_message_history;
        for evicted in self.log.insert(message, None, capacity) {
            self.pending.queue_evict(&evicted);
        }
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
        if self.log.contains(&message_id)
            || self.is_buffered(&message_id)
            || self
                .outgoing
                .iter()
                .any(|entry| entry.message.message_id == message_id)
        {
            return Err(SdsError::DuplicateMessageId {
                channel: self.id.clone(),
                message_id,
            });
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
        self.lamport = lamport;
        self.requests_sent(now, &message.repair_request);
        self.bloom.insert(&message.message_id);
        // Buffered copies drop the bloom filter: at the default size it is ~18 KB, and every
        // snapshot would carry one per unacknowledged message. A resend attaches the
        // current filter instead, which is also the fresher acknowledgement signal.
        let mut buffered = message.clone();
        buffered.bloom_filter = None;
        self.outgoing.push(Outgoing {
            message: buffered,
            sent_at: now,
            resend_attempts: 0,
            possible_acks: 0,
        });
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
        let status = self.unwrap_status(now, message);
        Unwrapped {
            channel: self.id.clone(),
            message_id,
            status,
        }
    }

    fn unwrap_status(&mut self, now: UnixMillis, mut message: SdsMessage) -> UnwrapStatus {
        if message.sender_id == self.settings.participant_id {
            return UnwrapStatus::OwnMessage;
        }
        let id = message.message_id.clone();
        match message.kind() {
            MessageKind::Ephemeral => {
                return UnwrapStatus::Ephemeral {
                    content: message.content.take().unwrap_or_default(),
                };
            }
            MessageKind::Sync => {
                self.observe(now, &message);
                self.detect_losses_from_sync(now, &message);
                return UnwrapStatus::SyncProcessed;
            }
            MessageKind::Content => {}
        }
        if self.log.contains(&id) || self.is_buffered(&id) || self.is_evicted_duplicate(&message) {
            // Someone rebroadcast a message we hold: our own repair work for it is moot.
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
        let drop_reason = if unknown > self.config().max_missing_dependencies {
            Some(DropReason::TooManyMissingDependencies(unknown))
        } else if self.incoming.len() >= self.config().max_incoming_buffer {
            Some(DropReason::IncomingBufferFull)
        } else {
            None
        };
        if let Some(reason) = drop_reason {
            // A dropped message keeps any request we have out for it: it is still missing.
            debug!(channel = %self.id, message_id = %id, ?reason, "dropping received message");
            self.events.push(Event::MessageDropped {
                channel: self.id.clone(),
                message_id: id,
                reason: reason.clone(),
            });
            return UnwrapStatus::Dropped(reason);
        }
        self.clear_repairs(&id);
        self.bloom.insert(&id);
        self.schedule_repairs(now, &dependencies.unknown);
        let mut missing_ids: Vec<String> = dependencies
            .unknown
            .iter()
            .map(|entry| entry.message_id.clone())
            .collect();
        missing_ids.extend(dependencies.waiting);
        if !dependencies.unknown.is_empty() {
            self.events.push(Event::MissingDependencies {
                channel: self.id.clone(),
                message_id: id,
                missing: dependencies.unknown,
            });
        }
        message.bloom_filter = None;
        self.incoming.push(Incoming {
            message,
            missing: missing_ids.iter().cloned().collect(),
            received_at: now,
        });
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

    /// The parts of receiving that content and sync messages share: the clock,
    /// acknowledgements and the sender's repair requests.
    fn observe(&mut self, now: UnixMillis, message: &SdsMessage) {
        if let Some(lamport) = message.lamport_timestamp {
            self.lamport = self.lamport.max(lamport);
        }
        self.review_acks(message);
        self.handle_repair_requests(now, message);
        self.meta_dirty = true;
    }

    fn review_acks(&mut self, message: &SdsMessage) {
        if self.outgoing.is_empty() {
            return;
        }
        let acked: HashSet<&str> = message
            .causal_history
            .iter()
            .map(|entry| entry.message_id.as_str())
            .collect();
        let bloom = message.bloom_filter.as_deref().and_then(|bytes| {
            BloomFilter::from_bytes(
                self.settings.config.bloom_capacity,
                self.settings.config.bloom_error_rate,
                bytes,
            )
            .map_err(|err| {
                debug!(channel = %self.id, sender = %message.sender_id, %err,
                    "ignoring unusable bloom filter");
            })
            .ok()
        });
        let threshold = self.settings.config.possible_acks_threshold;
        let outgoing = std::mem::take(&mut self.outgoing);
        for mut entry in outgoing {
            let id = entry.message.message_id.clone();
            let acknowledged = if acked.contains(id.as_str()) {
                true
            } else if bloom.as_ref().is_some_and(|bloom| bloom.contains(&id)) {
                entry.possible_acks = entry.possible_acks.saturating_add(1);
                if entry.possible_acks < threshold {
                    self.events.push(Event::MessagePossiblyAcknowledged {
                        channel: self.id.clone(),
                        message_id: id.clone(),
                        count: entry.possible_acks,
                    });
                }
                entry.possible_acks >= threshold
            } else {
                false
            };
            if acknowledged {
                self.events.push(Event::MessageAcknowledged {
                    channel: self.id.clone(),
                    message_id: id,
                });
            } else {
                self.outgoing.push(entry);
            }
        }
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

    /// The application fetched these messages out of band: stop waiting for them.
    pub(crate) fn mark_dependencies_met(&mut self, message_ids: &[String]) {
        for id in message_ids {
            self.bloom.insert(id);
            self.outgoing_repairs.remove(id);
        }
        self.cascade(message_ids.to_vec());
        self.meta_dirty = true;
    }

    /// Resends unacknowledged messages whose interval passed, or gives up on them.
    /// Returns whether anything changed.
    pub(crate) fn sweep_outgoing(&mut self, now: UnixMillis) -> bool {
        let interval = i64::try_from(self.config().resend_interval_ms).unwrap_or(i64::MAX);
        let max_attempts = self.config().max_resend_attempts;
        let mut changed = false;
        let outgoing = std::mem::take(&mut self.outgoing);
        for mut entry in outgoing {
            if now.saturating_sub(entry.sent_at) < interval {
                self.outgoing.push(entry);
                continue;
            }
            changed = true;
            let id = entry.message.message_id.clone();
            if entry.resend_attempts >= max_attempts {
                self.events.push(Event::MessageSendFailed {
                    channel: self.id.clone(),
                    message_id: id,
                });
                continue;
            }
            let mut resent = entry.message.clone();
            resent.bloom_filter = Some(self.bloom.to_bytes());
            match encode_message(&resent) {
                Ok(bytes) => {
                    entry.resend_attempts += 1;
                    entry.sent_at = now;
                    self.events.push(Event::Resend {
                        channel: self.id.clone(),
                        message_id: id,
                        bytes,
                        attempt: entry.resend_attempts,
                    });
                    self.outgoing.push(entry);
                }
                Err(err) => {
                    // Cannot happen for a message that was encoded once; never resend garbage.
                    debug!(channel = %self.id, message_id = %id, %err, "dropping unencodable message");
                    self.events.push(Event::MessageSendFailed {
                        channel: self.id.clone(),
                        message_id: id,
                    });
                }
            }
        }
        self.meta_dirty |= changed;
        changed
    }

    /// Delivers buffered messages whose dependencies have been missing longer than the
    /// lost-dependency timeout, reporting those dependencies lost.
    ///
    /// Also re-arms SDS-R for dependencies that are still missing but no longer have a
    /// pending request: a request goes out once, and if its answer is lost too the message
    /// would otherwise wait forever.
    pub(crate) fn sweep_incoming(&mut self, now: UnixMillis) -> bool {
        let rearmed = self.rearm_repairs(now);
        let Some(timeout) = self.config().lost_dependency_timeout_ms else {
            return rearmed;
        };
        let timeout = i64::try_from(timeout).unwrap_or(i64::MAX);
        let expired = self
            .incoming
            .take_where(|entry| now.saturating_sub(entry.received_at) >= timeout);
        if expired.is_empty() {
            return rearmed;
        }
        for entry in expired {
            let id = entry.message.message_id.clone();
            let lost: Vec<String> = entry.missing.into_iter().collect();
            // Given up on: later messages that depend on these must not wait for them too.
            for lost_id in &lost {
                self.outgoing_repairs.remove(lost_id);
                self.bloom.insert(lost_id);
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
        true
    }

    /// Rebuilds the bloom filter when it holds too many ids. The filter is not persisted,
    /// so this never needs a commit.
    pub(crate) fn clean_bloom(&mut self) -> bool {
        self.bloom.clean()
    }
}

#[cfg(test)]
mod tests;
