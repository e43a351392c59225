//! SDS-R on one channel: asking peers for messages we lack, and answering their requests.
//!
//! A request entry lives until the message arrives, is marked met, or is given up. It
//! rides outgoing messages (most overdue first, capped per message) and is asked again,
//! with a fresh T_req, until one of those happens: a lost request or a lost answer must
//! not leave a message missing forever. A peer asking for the same id postpones our own
//! request instead of cancelling it, so a lost answer to their request is still covered.

use sds_codec::wire::{HistoryEntry, SdsMessage, encode_message};

use super::Channel;
use crate::clock::UnixMillis;
use crate::event::Event;
use crate::repair_timing::{in_response_group, request_at, response_at};

/// A sync-revealed loss that no buffered message waits for is given up after this many
/// unanswered requests: the id may be gone from every peer's log, and a later sync that
/// still names it schedules it again.
const REQUESTS_BEFORE_GIVING_UP: u32 = 5;

/// A message we lack and ask peers for.
#[derive(Debug, Clone)]
pub(crate) struct OutgoingRepair {
    pub(crate) entry: HistoryEntry,
    /// When the request is due (again).
    pub(crate) request_at: UnixMillis,
    /// Requests sent so far in this process (not persisted: a restart starts over).
    pub(crate) requests_sent: u32,
}

/// A peer's request we may answer by rebroadcasting a message of our log.
#[derive(Debug, Clone)]
pub(crate) struct IncomingRepair {
    pub(crate) entry: HistoryEntry,
    pub(crate) bytes: Vec<u8>,
    pub(crate) respond_at: UnixMillis,
}

impl Channel {
    fn next_request_at(&self, now: UnixMillis, message_id: &str) -> UnixMillis {
        request_at(
            now,
            &self.settings.participant_id,
            message_id,
            self.config().repair_t_min_ms,
            self.config().repair_t_max_ms,
        )
    }

    /// Starts asking for `missing` (ids we never received), unless already asking.
    pub(super) fn schedule_repairs(&mut self, now: UnixMillis, missing: &[HistoryEntry]) {
        if !self.settings.repair_active() {
            return;
        }
        for entry in missing {
            if self.outgoing_repairs.contains_key(&entry.message_id) {
                continue;
            }
            let request_at = self.next_request_at(now, &entry.message_id);
            self.outgoing_repairs.insert(
                entry.message_id.clone(),
                OutgoingRepair {
                    entry: entry.clone(),
                    request_at,
                    requests_sent: 0,
                },
            );
            self.meta_dirty = true;
        }
    }

    /// The outgoing repair entries due at `now`, most overdue first, capped.
    pub(super) fn due_repair_requests(&self, now: UnixMillis) -> Vec<HistoryEntry> {
        if !self.settings.repair_active() {
            return Vec::new();
        }
        let mut due: Vec<&OutgoingRepair> = self
            .outgoing_repairs
            .values()
            .filter(|repair| repair.request_at <= now)
            .collect();
        due.sort_by(|a, b| {
            (a.request_at, &a.entry.message_id).cmp(&(b.request_at, &b.entry.message_id))
        });
        due.into_iter()
            .take(self.config().max_repair_requests)
            .map(|repair| repair.entry.clone())
            .collect()
    }

    /// The requests rode a message that is now on its way: ask again at a fresh T_req if
    /// nothing arrives by then.
    pub(super) fn requests_sent(&mut self, now: UnixMillis, requested: &[HistoryEntry]) {
        for request in requested {
            let next = self.next_request_at(now, &request.message_id);
            if let Some(repair) = self.outgoing_repairs.get_mut(&request.message_id) {
                repair.requests_sent = repair.requests_sent.saturating_add(1);
                repair.request_at = next;
                self.meta_dirty = true;
            }
        }
    }

    /// The message arrived or was met out of band: stop asking for it and stop answering
    /// for it (someone else's answer, or the original, reached the group).
    pub(super) fn clear_repairs(&mut self, message_id: &str) {
        let cleared = self.outgoing_repairs.remove(message_id).is_some()
            | self.incoming_repairs.remove(message_id).is_some();
        self.meta_dirty |= cleared;
    }

    pub(super) fn handle_repair_requests(&mut self, now: UnixMillis, message: &SdsMessage) {
        if !self.settings.repair_active() {
            return;
        }
        for request in &message.repair_request {
            let id = &request.message_id;
            // A peer already asked for what we miss: their answer will reach us too, so ours
            // waits a fresh T_req and only goes out if that answer is lost.
            let postponed = self.next_request_at(now, id);
            if let Some(ours) = self.outgoing_repairs.get_mut(id) {
                ours.request_at = ours.request_at.max(postponed);
            }
            if self.incoming_repairs.contains_key(id) {
                continue;
            }
            let Some(logged) = self.log.get(id) else {
                continue;
            };
            let sender = logged.message.sender_id.clone();
            let participant = &self.settings.participant_id;
            if !in_response_group(
                participant,
                &sender,
                id,
                self.settings.config.repair_response_groups,
            ) {
                continue;
            }
            let Ok(bytes) = encode_message(&logged.message) else {
                continue;
            };
            let respond_at = response_at(
                now,
                participant,
                &sender,
                id,
                self.settings.config.repair_t_max_ms,
            );
            self.incoming_repairs.insert(
                id.clone(),
                IncomingRepair {
                    entry: request.clone(),
                    bytes,
                    respond_at,
                },
            );
        }
    }

    /// A sync message is how the tail of a conversation gets repaired: its causal history
    /// names the sender's newest messages, and any we never received are reported and
    /// requested. The sync message itself is never buffered.
    pub(super) fn detect_losses_from_sync(&mut self, now: UnixMillis, message: &SdsMessage) {
        let dependencies = self.dependencies_of(message);
        let missing: Vec<HistoryEntry> = dependencies
            .unknown
            .into_iter()
            .filter(|entry| !self.outgoing_repairs.contains_key(&entry.message_id))
            .collect();
        // The same bound as for a content message: a sync naming more unknown ids than any
        // honest peer could have sent since our last contact is not trusted to schedule work.
        if missing.is_empty() || missing.len() > self.config().max_missing_dependencies {
            return;
        }
        self.schedule_repairs(now, &missing);
        self.events.push(Event::MissingDependencies {
            channel: self.id.clone(),
            message_id: message.message_id.clone(),
            missing,
        });
    }

    /// Re-arms SDS-R for dependencies of buffered messages that have no request entry
    /// (given up on, or restored from a snapshot without one).
    pub(super) fn rearm_repairs(&mut self, now: UnixMillis) -> bool {
        if !self.settings.repair_active() {
            return false;
        }
        // A dependency that sits in our own buffer arrived already: it waits for its own
        // dependencies, and asking peers for it again would only add traffic.
        let unrequested: Vec<HistoryEntry> = self
            .incoming
            .iter()
            .flat_map(|buffered| {
                buffered
                    .message
                    .causal_history
                    .iter()
                    .filter(|dependency| buffered.missing.contains(&dependency.message_id))
            })
            .filter(|dependency| {
                !self.outgoing_repairs.contains_key(&dependency.message_id)
                    && !self.incoming.contains(&dependency.message_id)
            })
            .cloned()
            .collect();
        let before = self.outgoing_repairs.len();
        self.schedule_repairs(now, &unrequested);
        self.outgoing_repairs.len() != before
    }

    /// Answers due repair requests, and gives up on sync-revealed losses that stayed
    /// unanswered through [`REQUESTS_BEFORE_GIVING_UP`] requests and that no buffered
    /// message waits for.
    pub(crate) fn sweep_repairs(&mut self, now: UnixMillis) -> bool {
        let mut changed = false;
        let due: Vec<String> = self
            .incoming_repairs
            .iter()
            .filter(|(_, repair)| repair.respond_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(repair) = self.incoming_repairs.remove(&id) {
                changed = true;
                self.events.push(Event::RepairReady {
                    channel: self.id.clone(),
                    message_id: repair.entry.message_id,
                    bytes: repair.bytes,
                });
            }
        }
        let awaited: std::collections::HashSet<&str> = self
            .incoming
            .iter()
            .flat_map(|buffered| buffered.missing.iter().map(String::as_str))
            .collect();
        let given_up: Vec<String> = self
            .outgoing_repairs
            .iter()
            .filter(|(id, repair)| {
                repair.requests_sent >= REQUESTS_BEFORE_GIVING_UP
                    && repair.request_at <= now
                    && !awaited.contains(id.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in given_up {
            self.outgoing_repairs.remove(&id);
            changed = true;
        }
        self.meta_dirty |= changed;
        changed
    }
}
