//! The reliability manager: the async driver around the per-channel state machines.
//!
//! It owns the channels, serializes operations per channel with an async lock (different
//! channels proceed in parallel), reads the injected clock, issues the op-end commit and
//! forwards events to the application's [`Events`] stream.

mod builder;
mod maintenance;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use sds_codec::storage::HistoryUpdate;
use sds_codec::wire::{MessageKind, SdsMessage, decode_message, encode_message};
use tokio::sync::{OwnedMutexGuard, mpsc};
use tracing::{debug, warn};

use crate::channel::{Channel, Settings, UnwrapStatus, Unwrapped};
use crate::clock::{Clock, UnixMillis};
use crate::error::SdsError;
use crate::event::Event;
use crate::hints::RetrievalHintProvider;
use crate::persistence::Persistence;

pub use builder::ManagerBuilder;
pub use maintenance::MaintenanceHandle;

/// A read-only view of one channel's in-memory state, for applications and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelState {
    /// The channel's Lamport clock.
    pub lamport: u64,
    /// Ids in the local log, oldest first ((lamport, id) order).
    pub log: Vec<String>,
    /// Ids of sent messages not yet acknowledged, oldest first.
    pub outgoing: Vec<String>,
    /// Ids of received messages waiting for dependencies, in arrival order.
    pub incoming: Vec<String>,
    /// History changes not yet written to the backend (the R2 queue's length).
    pub pending_history: usize,
}

#[derive(Default)]
struct Slot {
    channel: Option<Channel>,
    // Set by remove_channel so a task that waited on this slot's lock retries on a fresh
    // slot instead of resurrecting the removed channel.
    removed: bool,
}

type SlotGuard = OwnedMutexGuard<Slot>;

struct Inner {
    settings: Arc<Settings>,
    persistence: Arc<dyn Persistence>,
    clock: Arc<dyn Clock>,
    hints: Option<Arc<dyn RetrievalHintProvider>>,
    channels: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    events: mpsc::UnboundedSender<Event>,
}

/// Runs the SDS protocol for one participant over any number of channels.
///
/// Cheap to clone; clones share the same channels. Create one with
/// [`ReliabilityManager::builder`].
#[derive(Clone)]
pub struct ReliabilityManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for ReliabilityManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReliabilityManager")
            .field("participant_id", &self.inner.settings.participant_id)
            .field("config", &self.inner.settings.config)
            .finish_non_exhaustive()
    }
}

/// Which periodic pass to run over every open channel.
#[derive(Debug, Clone, Copy)]
enum Sweep {
    Outgoing,
    Incoming,
    Repairs,
}

impl ReliabilityManager {
    /// Starts configuring a manager for the participant with this id. An empty id is
    /// allowed and disables SDS-R (peers could not address repairs to us).
    pub fn builder(participant_id: impl Into<String>) -> ManagerBuilder {
        ManagerBuilder::new(participant_id.into())
    }

    /// This participant's id.
    pub fn participant_id(&self) -> &str {
        &self.inner.settings.participant_id
    }

    fn slot(&self, channel: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        channels.entry(channel.to_string()).or_default().clone()
    }

    fn open_slots(&self) -> Vec<(String, Arc<tokio::sync::Mutex<Slot>>)> {
        let channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut slots: Vec<_> = channels
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        slots
    }

    /// Removes `slot` from the map if it is still the one registered for `channel`.
    fn forget_slot(&self, channel: &str, slot: &Arc<tokio::sync::Mutex<Slot>>) {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if channels
            .get(channel)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            channels.remove(channel);
        }
    }

    /// Locks a channel, bootstrapping it from persistence on first use.
    async fn lock_loaded(&self, channel: &str) -> Result<SlotGuard, SdsError> {
        loop {
            let slot = self.slot(channel);
            let mut guard = slot.clone().lock_owned().await;
            if guard.removed {
                continue;
            }
            if guard.channel.is_none() {
                let loaded = match self.inner.persistence.load_channel(channel).await {
                    Ok(data) => Channel::restore(channel, self.inner.settings.clone(), data),
                    Err(err) => Err(SdsError::Persistence(err)),
                };
                match loaded {
                    Ok(restored) => {
                        debug!(channel, "channel bootstrapped");
                        guard.channel = Some(restored);
                    }
                    Err(err) => {
                        warn!(channel, %err, "channel bootstrap failed");
                        // Not open: forget the slot so the channel is not listed or swept,
                        // and let waiters retry on a fresh one.
                        guard.removed = true;
                        self.forget_slot(channel, &slot);
                        return Err(err);
                    }
                }
            }
            return Ok(guard);
        }
    }

    /// Runs one operation on a channel under its lock, then the op-end commit.
    /// `foreground` operations always save the snapshot; others only when they changed it.
    async fn run<R>(
        &self,
        channel: &str,
        foreground: bool,
        op: impl FnOnce(&mut Channel, UnixMillis) -> Result<R, SdsError>,
    ) -> Result<R, SdsError> {
        let mut guard = self.lock_loaded(channel).await?;
        let Some(state) = guard.channel.as_mut() else {
            return Err(SdsError::ChannelClosed(channel.to_string()));
        };
        let now = self.inner.clock.now_ms();
        let result = op(state, now)?;
        self.finish(channel, state, foreground).await;
        Ok(result)
    }

    /// The op end: at most one commit (snapshot and/or pending history), then hints, then
    /// the events, so the application hears of a delivery after it was offered to storage.
    async fn finish(&self, channel: &str, state: &mut Channel, foreground: bool) {
        let meta = (foreground || state.is_meta_dirty()).then(|| state.to_meta());
        let history = pending_update(state);
        if meta.is_some() || history.is_some() {
            match self
                .inner
                .persistence
                .commit(channel, meta.as_ref(), history.as_ref())
                .await
            {
                Ok(()) => {
                    state.pending_mut().clear();
                    state.set_meta_dirty(false);
                    if state.set_degraded(false) {
                        debug!(channel, "persistence recovered");
                        self.emit(Event::PersistenceRecovered {
                            channel: channel.to_string(),
                        });
                    }
                }
                Err(err) => {
                    // In-memory state stays the truth: keep the queue and resave the
                    // snapshot with the next operation.
                    warn!(channel, %err, pending = state.pending().len(), "commit failed");
                    state.set_meta_dirty(true);
                    if state.set_degraded(true) {
                        self.emit(Event::PersistenceDegraded {
                            channel: channel.to_string(),
                            error: err.to_string(),
                        });
                    }
                }
            }
        }
        self.flush_hints(channel, state).await;
        for event in state.drain_events() {
            self.emit(event);
        }
    }

    async fn flush_hints(&self, channel: &str, state: &mut Channel) {
        let hints = state.take_pending_hints();
        let mut failed = Vec::new();
        for (message_id, hint) in hints {
            if let Err(err) = self
                .inner
                .persistence
                .set_retrieval_hint(channel, &message_id, &hint)
                .await
            {
                warn!(channel, message_id, %err, "saving retrieval hint failed");
                failed.push((message_id, hint));
            }
        }
        state.requeue_hints(failed);
    }

    fn emit(&self, event: Event) {
        // A dropped receiver means the application stopped listening; nothing to do.
        let _ = self.inner.events.send(event);
    }

    /// Bootstraps a channel from persistence if it is not open yet.
    ///
    /// Fails with [`SdsError::Persistence`] when the backend cannot be read or holds data
    /// this build refuses, so "empty" and "could not read" are never confused.
    pub async fn ensure_channel(&self, channel: &str) -> Result<(), SdsError> {
        let mut guard = self.lock_loaded(channel).await?;
        if let Some(state) = guard.channel.as_mut() {
            // A history trimmed at bootstrap is written back now.
            self.finish(channel, state, false).await;
        }
        Ok(())
    }

    /// Wraps application content for broadcast on `channel` and returns the bytes to send.
    ///
    /// The message id must be unique in the channel. Never fails because persistence
    /// failed; fails on an empty id or content, a reused id, an oversize message, or a
    /// channel that cannot be bootstrapped.
    pub async fn wrap_outgoing(
        &self,
        channel: &str,
        message_id: impl Into<String>,
        content: Vec<u8>,
    ) -> Result<Vec<u8>, SdsError> {
        let message_id = message_id.into();
        let hints = self.inner.hints.clone();
        self.run(channel, true, move |state, now| {
            state.wrap(now, message_id, content, hints.as_deref())
        })
        .await
    }

    /// Wraps content as an ephemeral message: no ordering, no acknowledgement, no state.
    pub fn wrap_ephemeral(
        &self,
        channel: &str,
        message_id: impl Into<String>,
        content: Vec<u8>,
    ) -> Result<Vec<u8>, SdsError> {
        let message = SdsMessage {
            sender_id: self.inner.settings.participant_id.clone(),
            message_id: message_id.into(),
            channel_id: channel.to_string(),
            content: Some(content),
            ..Default::default()
        };
        if message.message_id.is_empty() {
            return Err(SdsError::InvalidInput(
                "message id must not be empty".into(),
            ));
        }
        Ok(encode_message(&message)?)
    }

    /// Builds a sync message for `channel` (causal history, bloom filter, due repair
    /// requests, no content) to broadcast when the channel is otherwise quiet.
    pub async fn build_sync_message(&self, channel: &str) -> Result<Vec<u8>, SdsError> {
        self.run(channel, false, |state, now| state.build_sync(now))
            .await
    }

    /// Processes received bytes. The channel is read from the message and bootstrapped on
    /// first use, so one manager serves any number of channels.
    ///
    /// Content and sync messages end with one commit; ephemeral messages and our own
    /// messages touch no state. Fails only on bytes that are not an SDS message (or are
    /// oversize) and on a channel that cannot be bootstrapped.
    pub async fn unwrap_received(&self, bytes: &[u8]) -> Result<Unwrapped, SdsError> {
        let message = decode_message(bytes)?;
        if message.message_id.is_empty() {
            return Err(SdsError::InvalidInput(
                "received message has an empty message id".into(),
            ));
        }
        let channel = message.channel_id.clone();
        let shortcut = if message.sender_id == self.inner.settings.participant_id {
            Some(UnwrapStatus::OwnMessage)
        } else if message.kind() == MessageKind::Ephemeral {
            Some(UnwrapStatus::Ephemeral {
                content: message.content.clone().unwrap_or_default(),
            })
        } else {
            None
        };
        if let Some(status) = shortcut {
            return Ok(Unwrapped {
                channel,
                message_id: message.message_id,
                status,
            });
        }
        self.run(&channel, true, |state, now| Ok(state.unwrap(now, message)))
            .await
    }

    /// Tells the manager the application obtained these messages out of band (e.g. from a
    /// store node): buffered messages stop waiting for them and are delivered if ready.
    pub async fn mark_dependencies_met(
        &self,
        channel: &str,
        message_ids: &[String],
    ) -> Result<(), SdsError> {
        self.run(channel, true, |state, _now| {
            state.mark_dependencies_met(message_ids);
            Ok(())
        })
        .await
    }

    /// Closes a channel and wipes its stored state.
    ///
    /// Fails with [`SdsError::Persistence`] when the backend could not drop it; the channel
    /// then stays open and intact, so a wipe is never claimed that did not happen.
    pub async fn remove_channel(&self, channel: &str) -> Result<(), SdsError> {
        let slot = self.slot(channel);
        let mut guard = slot.clone().lock_owned().await;
        if guard.removed {
            return Ok(());
        }
        self.inner
            .persistence
            .drop_channel(channel)
            .await
            .inspect_err(|err| warn!(channel, %err, "dropping channel failed"))?;
        guard.removed = true;
        guard.channel = None;
        self.forget_slot(channel, &slot);
        Ok(())
    }

    /// Removes every channel this manager has open (see [`Self::remove_channel`]); stops
    /// at the first failure.
    pub async fn reset(&self) -> Result<(), SdsError> {
        for (channel, _) in self.open_slots() {
            self.remove_channel(&channel).await?;
        }
        Ok(())
    }

    /// Ids of the channels open in this manager, sorted.
    pub fn open_channels(&self) -> Vec<String> {
        self.open_slots().into_iter().map(|(id, _)| id).collect()
    }

    /// A view of a channel's in-memory state (bootstrapping it if needed).
    pub async fn channel_state(&self, channel: &str) -> Result<ChannelState, SdsError> {
        let guard = self.lock_loaded(channel).await?;
        let state = guard
            .channel
            .as_ref()
            .ok_or_else(|| SdsError::ChannelClosed(channel.to_string()))?;
        Ok(ChannelState {
            lamport: state.lamport(),
            log: state.log_ids(),
            outgoing: state.outgoing_ids(),
            incoming: state.incoming_ids(),
            pending_history: state.pending().len(),
        })
    }

    /// The local log's ids, oldest first (bootstrapping the channel if needed).
    pub async fn log_ids(&self, channel: &str) -> Result<Vec<String>, SdsError> {
        Ok(self.channel_state(channel).await?.log)
    }

    async fn sweep(&self, sweep: Sweep) {
        for (channel, slot) in self.open_slots() {
            let mut guard = slot.lock_owned().await;
            if guard.removed {
                continue;
            }
            let Some(state) = guard.channel.as_mut() else {
                continue;
            };
            let now = self.inner.clock.now_ms();
            match sweep {
                Sweep::Outgoing => state.sweep_outgoing(now),
                Sweep::Incoming => state.sweep_incoming(now),
                Sweep::Repairs => state.sweep_repairs(now),
            };
            // Also retries a failed commit: a degraded channel is dirty.
            self.finish(&channel, state, false).await;
        }
    }

    /// One pass of the outgoing sweep over every open channel (channels are opened by
    /// use or by [`Self::ensure_channel`]; after a restart, call `ensure_channel` for the
    /// application's channels so their stored buffers are swept again): resends unacknowledged
    /// messages whose interval passed ([`Event::Resend`]) and gives up on those out of
    /// attempts ([`Event::MessageSendFailed`]). Commits only channels it changed.
    pub async fn sweep_outgoing(&self) {
        self.sweep(Sweep::Outgoing).await;
    }

    /// One pass of the incoming-buffer sweep: with a lost-dependency timeout configured,
    /// delivers messages that waited too long ([`Event::DependenciesLost`]).
    pub async fn sweep_incoming(&self) {
        self.sweep(Sweep::Incoming).await;
    }

    /// One pass of the SDS-R sweep: hands due repairs to the application
    /// ([`Event::RepairReady`]) and forgets expired repair requests.
    pub async fn sweep_repairs(&self) {
        self.sweep(Sweep::Repairs).await;
    }

    /// One pass of bloom filter cleaning over every open channel (no commit: the filter
    /// is rebuilt from history on load).
    pub async fn clean_bloom_filters(&self) {
        for (_, slot) in self.open_slots() {
            let mut guard = slot.lock_owned().await;
            if let Some(state) = guard.channel.as_mut() {
                state.clean_bloom();
            }
        }
    }

    /// Emits [`Event::SyncDue`] for every open channel.
    pub fn announce_sync_due(&self) {
        for channel in self.open_channels() {
            self.emit(Event::SyncDue { channel });
        }
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
