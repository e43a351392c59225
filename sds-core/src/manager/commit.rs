//! The op-end commit: what is written, when a failed write is retried, how long a backend
//! call may take, and the bound on what waits for a failing backend.
//!
//! An operation commits only when it left something to write (a dirty snapshot or queued
//! history), so duplicates and other no-ops cost no write. After a failed commit, writes
//! wait for a backoff (`commit_retry_min_ms`, doubling up to `commit_retry_max_ms`, on the
//! injected clock) and operations in between only queue their changes. Every backend call
//! runs under `commit_timeout_ms`: a call that does not return counts as a failed write and
//! its changes stay queued. Past `max_pending_history` queued history changes the queue is
//! dropped and the next successful commit rewrites the channel's whole stored history.
//!
//! A history batch of more than
//! [`MAX_HISTORY_BATCH`](crate::persistence::MAX_HISTORY_BATCH) entries is written as several
//! commits, the snapshot with the last one (the constant says why); any part failing fails
//! the write, and the retry sends every part again.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use sds_codec::storage::{ChannelData, HistoryUpdate};
use tracing::{debug, warn};

use super::ReliabilityManager;
use super::admission::Slot;
use crate::channel::Channel;
use crate::clock::UnixMillis;
use crate::config::ReliabilityConfig;
use crate::event::{Event, Limit};
use crate::persistence::PersistenceError;
use crate::persistence::batch::{history_batch_len, split_history_batch};

/// The write side of one channel: retry backoff and the pending history rewrite.
#[derive(Debug, Default)]
pub(super) struct CommitState {
    /// The delay that followed the last failed write; `None` while writes succeed.
    backoff_ms: Option<u64>,
    /// No write before this time while `backoff_ms` is set.
    retry_at: UnixMillis,
    /// The R2 queue was given up: the next commit rewrites the whole stored history.
    rewrite_history: bool,
}

impl CommitState {
    fn may_write(&self, now: UnixMillis) -> bool {
        self.backoff_ms.is_none() || now >= self.retry_at
    }

    fn failed(&mut self, now: UnixMillis, config: &ReliabilityConfig) {
        let delay = match self.backoff_ms {
            None => config.commit_retry_min_ms,
            Some(previous) => previous
                .saturating_mul(2)
                .clamp(config.commit_retry_min_ms, config.commit_retry_max_ms),
        };
        self.backoff_ms = Some(delay);
        self.retry_at = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
    }

    fn succeeded(&mut self) {
        self.backoff_ms = None;
        self.rewrite_history = false;
    }

    /// Nothing is owed to the backend beyond what the channel itself shows.
    pub(super) fn is_settled(&self) -> bool {
        self.backoff_ms.is_none() && !self.rewrite_history
    }
}

impl ReliabilityManager {
    /// Runs a backend call under `commit_timeout_ms`; a call still running then is
    /// abandoned and reported as [`PersistenceError::Unavailable`].
    pub(super) async fn within_deadline<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, PersistenceError>>,
    ) -> Result<T, PersistenceError> {
        let Some(limit_ms) = self.inner.settings.config.commit_timeout_ms else {
            return call.await;
        };
        match tokio::time::timeout(Duration::from_millis(limit_ms), call).await {
            Ok(result) => result,
            Err(_) => Err(PersistenceError::unavailable(format!(
                "{what} did not return within commit_timeout_ms ({limit_ms} ms)"
            ))),
        }
    }

    /// The op end: bound the R2 queue, commit if something is due and the backoff allows,
    /// save retrieval hints, then hand over the events, so the application hears of a
    /// delivery after it was offered to storage.
    pub(super) async fn finish(&self, channel: &str, slot: &mut Slot) {
        // A failed write is logged, evented and retried here; the caller needs no result.
        let _ = self.finish_with(channel, slot, false).await;
    }

    /// [`Self::finish`], writing now whatever the retry backoff says when `force` is set
    /// (the last flush of [`ReliabilityManager::shutdown`]). Returns the error of a commit
    /// or hint save that failed.
    pub(super) async fn finish_with(
        &self,
        channel: &str,
        slot: &mut Slot,
        force: bool,
    ) -> Result<(), PersistenceError> {
        let Slot {
            channel: state,
            commit,
            ..
        } = slot;
        let Some(state) = state.as_mut() else {
            return Ok(());
        };
        let mut outcome = Ok(());
        self.bound_pending(channel, state, commit);
        let now = self.inner.clock.now_ms();
        let due = state.is_meta_dirty() || !state.pending().is_empty() || commit.rewrite_history;
        if due && (force || commit.may_write(now)) && !self.is_fenced() {
            match self.write(channel, state, commit.rewrite_history).await {
                Ok(()) => {
                    state.pending_mut().clear();
                    state.set_meta_dirty(false);
                    commit.succeeded();
                    if state.set_degraded(false) {
                        debug!(channel, "persistence recovered");
                        self.emit(Event::PersistenceRecovered {
                            channel: channel.to_string(),
                        });
                    }
                }
                // A newer writer owns the namespace: nothing is retried (see `fence`), and
                // memory stays the truth.
                Err(err) if self.writer_fenced(channel, &err) => {
                    state.set_meta_dirty(true);
                    outcome = Err(err);
                }
                Err(err) => {
                    // In-memory state stays the truth: keep the queue, resave the snapshot
                    // with the next write, and wait before trying again.
                    state.set_meta_dirty(true);
                    commit.failed(self.inner.clock.now_ms(), &self.inner.settings.config);
                    warn!(channel, %err, pending = state.pending().len(),
                        retry_in_ms = commit.backoff_ms, "commit failed");
                    if state.set_degraded(true) {
                        self.emit(Event::PersistenceDegraded {
                            channel: channel.to_string(),
                            error: err.to_string(),
                        });
                    }
                    outcome = Err(err);
                }
            }
        } else if due && force && self.is_fenced() {
            // The last flush must not claim a write that a newer writer's fence forbids.
            outcome = Err(self.fenced_error());
        }
        if outcome.is_ok()
            && (force || commit.may_write(self.inner.clock.now_ms()))
            && !self.is_fenced()
        {
            outcome = self.flush_hints(channel, state).await;
        }
        for event in state.drain_events() {
            self.emit(event);
        }
        outcome
    }

    /// Keeps the R2 queue within `max_pending_history`: past it the queue is dropped and
    /// the whole history is rewritten by the next commit instead. While a rewrite is
    /// pending, nothing is queued (the rewrite covers it).
    fn bound_pending(&self, channel: &str, state: &mut Channel, commit: &mut CommitState) {
        let queued = state.pending().len();
        if queued == 0 {
            return;
        }
        if commit.rewrite_history {
            state.pending_mut().clear();
            return;
        }
        if queued > self.inner.settings.config.max_pending_history {
            warn!(
                channel,
                queued, "R2 queue over its bound: the history will be rewritten"
            );
            state.pending_mut().clear();
            commit.rewrite_history = true;
            self.emit(Event::LimitReached {
                channel: channel.to_string(),
                limit: Limit::PendingHistory,
                dropped: queued,
            });
        }
    }

    /// One commit: the snapshot if dirty (always with a rewrite) and the queued history, or
    /// the whole history when rewriting.
    async fn write(
        &self,
        channel: &str,
        state: &mut Channel,
        rewrite: bool,
    ) -> Result<(), PersistenceError> {
        let persistence = &self.inner.persistence;
        let history = if rewrite {
            let stored = self
                .within_deadline("load_channel", persistence.load_channel(channel))
                .await?;
            rewritten_history(state, &stored)
        } else {
            // From here on the backend may hold these appends, whatever the outcome.
            state.pending_mut().mark_offered();
            pending_update(state)
        };
        let meta = (rewrite || state.is_meta_dirty()).then(|| state.snapshot_meta());
        let parts = history.map(split_history_batch).unwrap_or_default();
        let Some((last, first)) = parts.split_last() else {
            return match meta {
                Some(meta) => {
                    let commit = persistence.commit(channel, Some(&meta), None);
                    self.within_deadline("commit", commit).await
                }
                None => Ok(()),
            };
        };
        if !first.is_empty() {
            debug!(
                channel,
                parts = parts.len(),
                entries = parts.iter().map(history_batch_len).sum::<usize>(),
                "history batch split"
            );
        }
        // Parts in order, the snapshot with the last: a failure stops here and the retry
        // sends every part again (they are idempotent).
        for part in first {
            let commit = persistence.commit(channel, None, Some(part));
            self.within_deadline("commit", commit).await?;
        }
        let commit = persistence.commit(channel, meta.as_ref(), Some(last));
        self.within_deadline("commit", commit).await
    }

    /// Saves the retrieval hints gathered by the operation, in order, stopping at the first
    /// failure; what is not saved stays queued for the next operation (also when the call
    /// is cancelled midway: a hint is only dequeued once every hint before it was saved).
    async fn flush_hints(
        &self,
        channel: &str,
        state: &mut Channel,
    ) -> Result<(), PersistenceError> {
        let hints = state.take_pending_hints();
        if hints.is_empty() {
            return Ok(());
        }
        state.requeue_hints(hints.clone());
        for (saved, (message_id, hint)) in hints.iter().enumerate() {
            let call = self
                .inner
                .persistence
                .set_retrieval_hint(channel, message_id, hint);
            if let Err(err) = self.within_deadline("set_retrieval_hint", call).await {
                warn!(channel, message_id, %err, "saving retrieval hint failed");
                self.writer_fenced(channel, &err);
                let mut queued = state.take_pending_hints();
                queued.drain(..saved);
                state.requeue_hints(queued);
                return Err(err);
            }
        }
        let mut queued = state.take_pending_hints();
        queued.drain(..hints.len().min(queued.len()));
        state.requeue_hints(queued);
        Ok(())
    }
}

/// The R2 queue as one history batch, reading appended messages from the log.
fn pending_update(state: &Channel) -> Option<HistoryUpdate> {
    if state.pending().is_empty() {
        return None;
    }
    let (appends, evicts) = state.pending().ordered();
    let update = HistoryUpdate {
        append: appends
            .into_iter()
            .filter_map(|id| state.log_entry_for_append(id))
            .collect(),
        evict: evicts.into_iter().map(str::to_string).collect(),
    };
    (!update.is_empty()).then_some(update)
}

/// The batch that makes the stored history equal the log: every logged message appended
/// (appends are idempotent), every other stored id evicted.
fn rewritten_history(state: &Channel, stored: &ChannelData) -> Option<HistoryUpdate> {
    let log = state.log_ids();
    let keep: HashSet<&str> = log.iter().map(String::as_str).collect();
    let update = HistoryUpdate {
        append: log
            .iter()
            .filter_map(|id| state.log_entry_for_append(id))
            .collect(),
        evict: stored
            .history
            .iter()
            .map(|logged| logged.message_id())
            .filter(|id| !keep.contains(id))
            .map(str::to_string)
            .collect(),
    };
    (!update.is_empty()).then_some(update)
}
