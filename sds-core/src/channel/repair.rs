//! SDS-R on one channel: asking peers for messages we lack, and answering their requests.
//!
//! A request entry lives until the message arrives, is marked met, or is given up. It
//! rides outgoing messages (most overdue first, capped per message; the repair sweep asks
//! the application for a sync when one is due and nothing carried it) and is asked again,
//! with a fresh T_req, until one of those happens: a lost request or a lost answer must
//! not leave a message missing forever. A peer asking for the same id postpones our own
//! request instead of cancelling it, so a lost answer to their request is still covered;
//! it does so at most once per request cycle, so a peer repeating that request cannot hold
//! ours back forever.
//!
//! Everything a peer can make us hold here is bounded:
//! - requests: at most `max_outgoing_repairs` entries. A loss found past it is not
//!   requested ([`Limit::OutgoingRepairs`]), except that a dependency a buffered message
//!   waits for takes the place of a loss only a sync revealed: that message cannot be
//!   delivered without it, while a sync-revealed loss is asked for again by the next sync
//!   that names it. Dependencies left out are re-armed by the incoming sweep once room frees.
//!   For the same reason awaited requests ride outgoing messages first.
//! - answers: at most `max_repair_answers_per_message` scheduled per received message,
//!   `max_repair_answers_per_sender` per sender per `repair_answer_window_ms`, and
//!   `max_incoming_repairs` pending in all ([`Limit::RepairAnswers`]). A pending answer is
//!   only an id: the bytes are encoded from the log when it is due, and an answer whose
//!   message left the log meanwhile is skipped.
//!
//! Besides requests, a sync message's bloom filter tells us which of our log's messages its
//! sender never received: those old enough are answered as if requested (see
//! [`Channel::answer_losses_in_filter`]), under the same bounds. That is what repairs a
//! message nobody names any more.

use std::collections::{HashMap, HashSet};

use sds_codec::wire::{HistoryEntry, SdsMessage, encode_message};
use tracing::debug;

use super::log::LogEntry;
use super::{Channel, unix_to_lamport};
use crate::bloom::{BloomFilter, RollingBloomFilter};
use crate::clock::UnixMillis;
use crate::event::{Event, Limit};
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
    /// A peer's request for the same id already postponed ours since ours last went out
    /// (not persisted: a restart allows one more postponement).
    pub(crate) postponed: bool,
}

impl OutgoingRepair {
    /// A request not sent nor postponed yet, due at `request_at`.
    pub(crate) fn new(entry: HistoryEntry, request_at: UnixMillis) -> Self {
        OutgoingRepair {
            entry,
            request_at,
            requests_sent: 0,
            postponed: false,
        }
    }
}

/// A peer's request we may answer by rebroadcasting a message of our log. Only the id is
/// held: the answer is encoded from the log when it is due.
#[derive(Debug, Clone)]
pub(crate) struct IncomingRepair {
    pub(crate) entry: HistoryEntry,
    pub(crate) respond_at: UnixMillis,
}

/// Answers scheduled for one sender's requests in its current window.
#[derive(Debug, Clone, Copy)]
struct AnswerWindow {
    started_at: UnixMillis,
    answers: u32,
}

/// Per-sender answer budgets (`max_repair_answers_per_sender` per
/// `repair_answer_window_ms`), fixed windows opened by a sender's first answer.
///
/// In memory only: a restart gives every sender a fresh window. At most
/// `max_incoming_repairs` senders are tracked; past that, expired windows are forgotten
/// first, then the oldest. A sender forgotten early gets a fresh budget, which only matters
/// to a peer using many sender ids, and such a peer gets fresh budgets anyway: the
/// per-message and total caps are what bound it.
#[derive(Debug, Default)]
pub(crate) struct AnswerBudgets {
    windows: HashMap<String, AnswerWindow>,
}

impl AnswerBudgets {
    fn window_ms(window_ms: u64) -> i64 {
        i64::try_from(window_ms).unwrap_or(i64::MAX)
    }

    /// Answers `sender` may still get scheduled at `now`.
    fn remaining(&self, sender: &str, now: UnixMillis, limit: u32, window_ms: u64) -> u32 {
        match self.windows.get(sender) {
            Some(window) if now.saturating_sub(window.started_at) < Self::window_ms(window_ms) => {
                limit.saturating_sub(window.answers)
            }
            _ => limit,
        }
    }

    /// Counts `answers` scheduled for `sender` at `now`.
    fn record(
        &mut self,
        sender: &str,
        now: UnixMillis,
        answers: u32,
        window_ms: u64,
        max_senders: usize,
    ) {
        let window_ms = Self::window_ms(window_ms);
        if !self.windows.contains_key(sender) && self.windows.len() >= max_senders {
            self.windows
                .retain(|_, window| now.saturating_sub(window.started_at) < window_ms);
            while self.windows.len() >= max_senders.max(1) {
                let oldest = self
                    .windows
                    .iter()
                    .min_by_key(|(id, window)| (window.started_at, id.as_str()))
                    .map(|(id, _)| id.clone());
                match oldest {
                    Some(id) => self.windows.remove(&id),
                    None => break,
                };
            }
        }
        let window = self
            .windows
            .entry(sender.to_string())
            .or_insert(AnswerWindow {
                started_at: now,
                answers: 0,
            });
        if now.saturating_sub(window.started_at) >= window_ms {
            *window = AnswerWindow {
                started_at: now,
                answers: 0,
            };
        }
        window.answers = window.answers.saturating_add(answers);
    }
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

    /// Ids of the dependencies buffered messages wait for.
    fn awaited_ids(&self) -> HashSet<&str> {
        self.incoming
            .iter()
            .flat_map(|buffered| buffered.missing.iter().map(String::as_str))
            .collect()
    }

    /// Starts asking for `missing` (ids we never received), unless already asking, within
    /// `max_outgoing_repairs`. With `awaited` (a buffered message waits for them) an entry
    /// that no buffered message waits for makes room when the cap is reached.
    ///
    /// Returns how many losses are left unrequested (not scheduled, or pushed out).
    pub(super) fn schedule_repairs(
        &mut self,
        now: UnixMillis,
        missing: &[HistoryEntry],
        awaited: bool,
    ) -> usize {
        if !self.settings.repair_active() {
            return 0;
        }
        let cap = self.config().max_outgoing_repairs;
        let mut left_out = 0;
        // Computed once the cap bites, and only then: the common case never pays for it.
        let mut displaceable: Option<Vec<(u32, String)>> = None;
        for entry in missing {
            if self.outgoing_repairs.contains_key(&entry.message_id) {
                continue;
            }
            if self.outgoing_repairs.len() >= cap {
                if !awaited {
                    left_out += 1;
                    continue;
                }
                let candidates = displaceable.get_or_insert_with(|| {
                    // The caller's message is not buffered yet: its own dependencies are
                    // awaited too.
                    let mut waited_for = self.awaited_ids();
                    waited_for.extend(missing.iter().map(|entry| entry.message_id.as_str()));
                    let mut candidates: Vec<(u32, String)> = self
                        .outgoing_repairs
                        .iter()
                        .filter(|(id, _)| !waited_for.contains(id.as_str()))
                        .map(|(id, repair)| (repair.requests_sent, id.clone()))
                        .collect();
                    // Popped from the end: the loss asked for most often (the nearest to
                    // being given up anyway) goes first.
                    candidates.sort();
                    candidates
                });
                match candidates.pop() {
                    Some((_, victim)) => {
                        debug!(channel = %self.id, %victim, for_id = %entry.message_id,
                            "a sync-revealed repair request makes room for an awaited one");
                        self.outgoing_repairs.remove(&victim);
                        left_out += 1;
                    }
                    None => {
                        left_out += 1;
                        continue;
                    }
                }
            }
            let request_at = self.next_request_at(now, &entry.message_id);
            self.outgoing_repairs.insert(
                entry.message_id.clone(),
                OutgoingRepair::new(entry.clone(), request_at),
            );
            self.meta_dirty = true;
        }
        left_out
    }

    /// Reports losses that [`Self::schedule_repairs`] left unrequested.
    pub(super) fn report_unrequested(&mut self, left_out: usize) {
        if left_out == 0 {
            return;
        }
        debug!(channel = %self.id, left_out, "outgoing repair requests at their cap");
        self.events.push(Event::LimitReached {
            channel: self.id.clone(),
            limit: Limit::OutgoingRepairs,
            dropped: left_out,
        });
    }

    /// Trims restored request entries to `max_outgoing_repairs` (the cap may have been
    /// lowered, or the snapshot written before it existed), keeping the soonest due.
    pub(super) fn trim_outgoing_repairs(&mut self) {
        let cap = self.config().max_outgoing_repairs;
        if self.outgoing_repairs.len() <= cap {
            return;
        }
        let mut by_due: Vec<(UnixMillis, String)> = self
            .outgoing_repairs
            .iter()
            .map(|(id, repair)| (repair.request_at, id.clone()))
            .collect();
        by_due.sort();
        for (_, id) in by_due.into_iter().skip(cap) {
            self.outgoing_repairs.remove(&id);
        }
        self.meta_dirty = true;
    }

    /// The outgoing repair entries due at `now`, most overdue first, capped.
    ///
    /// When more are due than one message carries, those a buffered message waits for go
    /// first: a flood of sync-revealed losses (a peer naming ids nobody sent) must not queue
    /// ahead of a dependency that blocks delivery.
    pub(super) fn due_repair_requests(&self, now: UnixMillis) -> Vec<HistoryEntry> {
        if !self.settings.repair_active() {
            return Vec::new();
        }
        let cap = self.config().max_repair_requests;
        let mut due: Vec<&OutgoingRepair> = self
            .outgoing_repairs
            .values()
            .filter(|repair| repair.request_at <= now)
            .collect();
        if due.len() > cap {
            let awaited = self.awaited_ids();
            due.sort_by_cached_key(|repair| {
                (
                    !awaited.contains(repair.entry.message_id.as_str()),
                    repair.request_at,
                    repair.entry.message_id.clone(),
                )
            });
        } else {
            due.sort_by(|a, b| {
                (a.request_at, &a.entry.message_id).cmp(&(b.request_at, &b.entry.message_id))
            });
        }
        due.into_iter()
            .take(cap)
            .map(|repair| repair.entry.clone())
            .collect()
    }

    /// Whether a repair request is due and waits for a message to carry it.
    pub(crate) fn repair_requests_waiting(&self, now: UnixMillis) -> bool {
        self.settings.repair_active()
            && self
                .outgoing_repairs
                .values()
                .any(|repair| repair.request_at <= now)
    }

    /// The requests rode a message that is now on its way: ask again at a fresh T_req if
    /// nothing arrives by then. A new request cycle starts: a peer may postpone it once.
    pub(super) fn requests_sent(&mut self, now: UnixMillis, requested: &[HistoryEntry]) {
        for request in requested {
            let next = self.next_request_at(now, &request.message_id);
            if let Some(repair) = self.outgoing_repairs.get_mut(&request.message_id) {
                repair.requests_sent = repair.requests_sent.saturating_add(1);
                repair.request_at = next;
                repair.postponed = false;
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

    /// A peer asked for `message_id`, which we lack too: their answer will reach us as
    /// well, so ours waits a fresh T_req and only goes out if that answer is lost. Once per
    /// request cycle, or a peer repeating the request would postpone ours forever.
    fn postpone_ours(&mut self, now: UnixMillis, message_id: &str) {
        let Some(ours) = self.outgoing_repairs.get(message_id) else {
            return;
        };
        if ours.postponed {
            return;
        }
        let postponed = self.next_request_at(now, message_id);
        if let Some(ours) = self.outgoing_repairs.get_mut(message_id)
            && postponed > ours.request_at
        {
            ours.request_at = postponed;
            ours.postponed = true;
            self.meta_dirty = true;
        }
    }

    pub(super) fn handle_repair_requests(&mut self, now: UnixMillis, message: &SdsMessage) {
        if !self.settings.repair_active() || message.repair_request.is_empty() {
            return;
        }
        for request in &message.repair_request {
            self.postpone_ours(now, &request.message_id);
        }
        self.schedule_answers(
            now,
            &message.sender_id,
            message.repair_request.iter().cloned(),
        );
    }

    /// Repair from a peer's filter (see
    /// [`ReliabilityConfig::repair_from_filters_after_ms`](crate::ReliabilityConfig)): the
    /// messages of our log old enough to have reached the sender of `message` but missing
    /// from its bloom filter are answered as if it had requested them, oldest first, at most
    /// `max_repair_answers_per_message` per message and within the sender's answer budget.
    /// A bloom filter has no false negatives, so an id it lacks was never received there
    /// (or rolled out of its filter long ago); one it wrongly contains is only left to the
    /// next filter or to ordinary repair.
    pub(super) fn answer_losses_in_filter(&mut self, now: UnixMillis, message: &SdsMessage) {
        let Some(after_ms) = self.config().repair_from_filters_after_ms else {
            return;
        };
        if !self.settings.repair_active() {
            return;
        }
        let config = self.config();
        let per_message = config.max_repair_answers_per_message;
        // A sender out of budget gets nothing scheduled: skip the scan of our log too.
        if per_message == 0
            || self.answer_budgets.remaining(
                &message.sender_id,
                now,
                config.max_repair_answers_per_sender,
                config.repair_answer_window_ms,
            ) == 0
        {
            return;
        }
        let Some(bytes) = message.bloom_filter.as_deref() else {
            return;
        };
        let Ok(filter) =
            BloomFilter::from_bytes(config.bloom_capacity, config.bloom_error_rate, bytes)
        else {
            return;
        };
        // An overfilled filter contains (almost) every id: it reveals nothing.
        if filter.is_overfilled() {
            return;
        }
        let cutoff = unix_to_lamport(now).saturating_sub(after_ms);
        let participant = self.settings.participant_id.as_str();
        let groups = config.repair_response_groups;
        // Ids older than what a rolling filter remembers are absent from an honest peer's
        // filter too: only our newest that many entries can be judged.
        let horizon = RollingBloomFilter::remembered_at_least(config.bloom_capacity);
        let lost: Vec<HistoryEntry> = self
            .log
            .iter()
            .skip(self.log.len().saturating_sub(horizon))
            .take_while(|entry| entry.message.lamport_timestamp.unwrap_or(0) <= cutoff)
            .filter(|entry| {
                let id = entry.message.message_id.as_str();
                entry.message.sender_id != message.sender_id
                    && !self.incoming_repairs.contains_key(id)
                    && in_response_group(participant, &entry.message.sender_id, id, groups)
                    && !filter.contains(id)
            })
            .take(per_message)
            .map(LogEntry::to_history_entry)
            .collect();
        if !lost.is_empty() {
            debug!(channel = %self.id, peer = %message.sender_id, lost = lost.len(),
                "a peer's filter lacks messages of our log");
            self.schedule_answers(now, &message.sender_id, lost);
        }
    }

    /// Schedules answers to `requests` from `sender`, for the ids we hold in the log and
    /// whose response group we are in, within the per-message, per-sender and total bounds;
    /// reports the ones refused for a bound with [`Limit::RepairAnswers`].
    fn schedule_answers(
        &mut self,
        now: UnixMillis,
        sender: &str,
        requests: impl IntoIterator<Item = HistoryEntry>,
    ) {
        let config = self.config();
        let per_message = config.max_repair_answers_per_message;
        let total = config.max_incoming_repairs;
        let window_ms = config.repair_answer_window_ms;
        let per_sender = config.max_repair_answers_per_sender;
        let groups = config.repair_response_groups;
        let t_max = config.repair_t_max_ms;
        let mut sender_budget = self
            .answer_budgets
            .remaining(sender, now, per_sender, window_ms);
        let mut scheduled: usize = 0;
        let mut refused: usize = 0;
        for request in requests {
            let id = &request.message_id;
            if self.incoming_repairs.contains_key(id) {
                continue;
            }
            let Some(logged) = self.log.get(id) else {
                continue;
            };
            let original_sender = logged.message.sender_id.as_str();
            let participant = self.settings.participant_id.as_str();
            if !in_response_group(participant, original_sender, id, groups) {
                continue;
            }
            if scheduled >= per_message
                || sender_budget == 0
                || self.incoming_repairs.len() >= total
            {
                refused += 1;
                continue;
            }
            let respond_at = response_at(now, participant, original_sender, id, t_max);
            self.incoming_repairs.insert(
                id.clone(),
                IncomingRepair {
                    entry: request,
                    respond_at,
                },
            );
            scheduled += 1;
            sender_budget -= 1;
            self.meta_dirty = true;
        }
        if scheduled > 0 {
            let answers = u32::try_from(scheduled).unwrap_or(u32::MAX);
            self.answer_budgets
                .record(sender, now, answers, window_ms, total);
        }
        if refused > 0 {
            debug!(channel = %self.id, %sender, refused, "repair answers at their limit");
            self.events.push(Event::LimitReached {
                channel: self.id.clone(),
                limit: Limit::RepairAnswers,
                dropped: refused,
            });
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
        let left_out = self.schedule_repairs(now, &missing, false);
        self.report_unrequested(left_out);
        self.events.push(Event::MissingDependencies {
            channel: self.id.clone(),
            message_id: message.message_id.clone(),
            missing,
        });
    }

    /// Re-arms SDS-R for dependencies of buffered messages that have no request entry
    /// (given up on, left out at the cap, or restored from a snapshot without one). Losses
    /// still left out were reported when first found, so this reports nothing.
    pub(super) fn rearm_repairs(&mut self, now: UnixMillis) {
        if !self.settings.repair_active() {
            return;
        }
        // A dependency that sits in our own buffer arrived already: it waits for its own
        // dependencies, and asking peers for it again would only add traffic.
        let mut seen = HashSet::new();
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
                    && seen.insert(dependency.message_id.as_str())
            })
            .cloned()
            .collect();
        self.schedule_repairs(now, &unrequested, true);
    }

    /// Answers due repair requests, and gives up on sync-revealed losses that stayed
    /// unanswered through [`REQUESTS_BEFORE_GIVING_UP`] requests and that no buffered
    /// message waits for.
    pub(crate) fn sweep_repairs(&mut self, now: UnixMillis) {
        let mut changed = false;
        let due: Vec<String> = self
            .incoming_repairs
            .iter()
            .filter(|(_, repair)| repair.respond_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(repair) = self.incoming_repairs.remove(&id) else {
                continue;
            };
            changed = true;
            // Encoded now, from the log: a pending answer holds no copy of the message.
            let Some(logged) = self.log.get(&id) else {
                debug!(channel = %self.id, message_id = %id,
                    "repair answer skipped: the message left the log");
                continue;
            };
            match encode_message(&logged.message) {
                Ok(bytes) => self.events.push(Event::RepairReady {
                    channel: self.id.clone(),
                    message_id: repair.entry.message_id,
                    bytes,
                }),
                Err(err) => {
                    debug!(channel = %self.id, message_id = %id, %err,
                        "repair answer skipped: the message does not encode");
                }
            }
        }
        let awaited = self.awaited_ids();
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 60_000;

    #[test]
    fn a_sender_budget_refills_when_its_window_ends() {
        let mut budgets = AnswerBudgets::default();
        assert_eq!(budgets.remaining("mallory", 0, 100, WINDOW), 100);
        budgets.record("mallory", 0, 60, WINDOW, 10);
        budgets.record("mallory", 59_999, 40, WINDOW, 10);
        assert_eq!(budgets.remaining("mallory", 59_999, 100, WINDOW), 0);
        assert_eq!(budgets.remaining("carol", 59_999, 100, WINDOW), 100);
        assert_eq!(budgets.remaining("mallory", 60_000, 100, WINDOW), 100);
        budgets.record("mallory", 60_000, 1, WINDOW, 10);
        assert_eq!(budgets.remaining("mallory", 60_001, 100, WINDOW), 99);
    }

    #[test]
    fn tracked_senders_stay_within_their_bound() {
        let mut budgets = AnswerBudgets::default();
        for n in 0..50 {
            budgets.record(&format!("sybil-{n}"), n, 1, WINDOW, 10);
            assert!(budgets.windows.len() <= 10);
        }
        // The oldest windows went first; the newest are still counted.
        assert_eq!(budgets.remaining("sybil-49", 49, 100, WINDOW), 99);
        assert_eq!(budgets.remaining("sybil-0", 49, 100, WINDOW), 100);
        // Expired windows are dropped before live ones.
        budgets.record("late", 70_000, 1, WINDOW, 10);
        assert_eq!(budgets.windows.len(), 1);
    }

    fn tracked(budgets: &AnswerBudgets) -> Vec<&str> {
        let mut senders: Vec<&str> = budgets.windows.keys().map(String::as_str).collect();
        senders.sort_unstable();
        senders
    }

    /// A window expires exactly `window_ms` after it opened: making room for a new sender
    /// drops both windows that old (not only the oldest), and keeps the younger one.
    #[test]
    fn windows_expire_exactly_at_their_end_when_room_is_made() {
        let mut budgets = AnswerBudgets::default();
        budgets.record("a", 0, 1, WINDOW, 3);
        budgets.record("a2", 0, 1, WINDOW, 3);
        budgets.record("b", 10_000, 1, WINDOW, 3);
        budgets.record("c", 60_000, 1, WINDOW, 3);
        assert_eq!(tracked(&budgets), ["b", "c"]);
    }

    /// A sender already tracked is counted in its own window even when the table is full:
    /// nobody's window is dropped for it.
    #[test]
    fn a_tracked_sender_never_makes_room() {
        let mut budgets = AnswerBudgets::default();
        budgets.record("a", 0, 1, WINDOW, 2);
        budgets.record("b", 1, 1, WINDOW, 2);
        budgets.record("a", 2, 1, WINDOW, 2);
        assert_eq!(tracked(&budgets), ["a", "b"]);
        assert_eq!(budgets.remaining("a", 2, 100, WINDOW), 98);
        assert_eq!(budgets.remaining("b", 2, 100, WINDOW), 99);
    }
}
