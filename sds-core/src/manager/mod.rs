//! The reliability manager: the async driver around the per-channel state machines.
//!
//! It owns the channels, serializes operations per channel with an async lock (different
//! channels proceed in parallel), reads the injected clock, issues the op-end commit and
//! forwards events to the application's [`Events`] stream.
//!
//! Concepts live in their own modules: which channels may be opened ([`admission`]), what an
//! operation writes and when a failed write is retried ([`commit`]), the periodic passes
//! ([`sweeps`]) and their timers ([`maintenance`]), the claim on the persistence namespace
//! ([`fence`]).

mod admission;
mod builder;
mod commit;
mod fence;
mod lifecycle;
mod maintenance;
mod sweeps;

use std::fmt;
use std::sync::{Arc, Mutex};

use sds_codec::wire::{MessageKind, SdsMessage, decode_message, encode_message};
use tracing::debug;

use crate::channel::{Channel, Settings, UnwrapStatus, Unwrapped};
use crate::clock::{Clock, UnixMillis};
use crate::error::SdsError;
use crate::event::{DropReason, Event, EventSender, Limit};
use crate::hints::RetrievalHintProvider;
use crate::persistence::Persistence;

use admission::{OpenError, Registry, Use};

pub use builder::ManagerBuilder;
pub use lifecycle::ReopenedChannels;
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
    /// History changes not yet written to the backend (the R2 queue's length; 0 while the
    /// queue is replaced by a pending rewrite of the whole history).
    pub pending_history: usize,
}

struct Inner {
    settings: Arc<Settings>,
    persistence: Arc<dyn Persistence>,
    clock: Arc<dyn Clock>,
    hints: Option<Arc<dyn RetrievalHintProvider>>,
    registry: Mutex<Registry>,
    events: EventSender,
    fence: fence::Fence,
    lifecycle: lifecycle::Lifecycle,
}

/// Runs the SDS protocol for one participant over any number of channels.
///
/// Cheap to clone; clones share the same channels. Create one with
/// [`ReliabilityManager::builder`].
///
/// The manager accepts network messages only for channels the application joined
/// ([`Self::join_channel`], [`Self::ensure_channel`], or sending on the channel), unless
/// `accept_any_channel` is configured. The joined set is kept in memory: after a restart,
/// join the channels again, or join every stored one with
/// [`Self::reopen_stored_channels`].
///
/// End it with [`Self::shutdown`]: it writes what is unwritten and closes the backend.
///
/// Backend calls run under `commit_timeout_ms` with `tokio::time::timeout`, so the manager
/// needs a tokio runtime with the time driver enabled (unless the timeout is `None`).
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

    /// Runs one operation on a channel under its lock, then the op-end commit (which
    /// writes only if the operation left something to write).
    async fn run<R>(
        &self,
        channel: &str,
        usage: Use,
        op: impl FnOnce(&mut Channel, UnixMillis) -> Result<R, SdsError>,
    ) -> Result<R, OpenError> {
        let mut guard = self.open(channel, usage).await?;
        let Some(state) = guard.channel.as_mut() else {
            return Err(OpenError::Failed(SdsError::ChannelClosed(
                channel.to_string(),
            )));
        };
        let now = self.inner.clock.now_ms();
        let result = op(state, now)?;
        self.finish(channel, &mut guard).await;
        Ok(result)
    }

    /// [`Self::run`] for application calls, which are never refused admission.
    async fn run_app<R>(
        &self,
        channel: &str,
        usage: Use,
        op: impl FnOnce(&mut Channel, UnixMillis) -> Result<R, SdsError>,
    ) -> Result<R, SdsError> {
        self.run(channel, usage, op)
            .await
            .map_err(|err| err.into_sds(channel))
    }

    fn emit(&self, event: Event) {
        self.inner.events.send(event);
    }

    /// Joins `channel`: network messages for it are accepted from now on, and it is opened
    /// at once (bootstrapped from persistence, so its stored buffers are swept again).
    ///
    /// The joined set lives in memory: it survives the channel being unloaded when idle,
    /// not a restart. Fails with [`SdsError::Persistence`] when the backend cannot be read
    /// or holds data this build refuses; the channel stays joined and its next use tries
    /// the load again.
    pub async fn join_channel(&self, channel: &str) -> Result<(), SdsError> {
        let mut guard = self
            .open(channel, Use::App)
            .await
            .map_err(|err| err.into_sds(channel))?;
        // A history trimmed at bootstrap is written back now.
        self.finish(channel, &mut guard).await;
        Ok(())
    }

    /// Joins and bootstraps a channel: the same as [`Self::join_channel`].
    ///
    /// Fails with [`SdsError::Persistence`] when the backend cannot be read or holds data
    /// this build refuses, so "empty" and "could not read" are never confused.
    pub async fn ensure_channel(&self, channel: &str) -> Result<(), SdsError> {
        self.join_channel(channel).await
    }

    /// Whether the application joined `channel` (and has not removed it since).
    pub fn is_joined(&self, channel: &str) -> bool {
        self.is_joined_now(channel)
    }

    /// The channels the application joined, sorted (loaded or not).
    pub fn joined_channels(&self) -> Vec<String> {
        self.joined()
    }

    /// Wraps application content for broadcast on `channel` (joining it) and returns the
    /// bytes to send.
    ///
    /// The message id must be unique in the channel. Never fails because persistence
    /// failed; fails on an empty id or content, a reused id, an oversize message, or a
    /// channel that cannot be bootstrapped.
    ///
    /// Ids are first-come per channel: an id under which the channel holds a message (in
    /// its log, incoming buffer or outgoing buffer) from another sender, or with other
    /// content, is refused with [`SdsError::DuplicateMessageId`], and a peer that uses an
    /// id first keeps it. Applications should therefore use unpredictable ids (random, or a
    /// hash of the content and a secret), so no peer can take the next one; and should
    /// never reuse one (an id becomes free here only once its message has left the log and
    /// the outgoing buffer, while peers may still hold it).
    ///
    /// Retrying is safe. A call cancelled at any point (a caller timeout dropping it while
    /// the backend commit is in flight, say) leaves the channel consistent: either nothing
    /// happened, or the message was wrapped, logged and buffered once, and its commit is
    /// retried by the next operation. Calling again with the same id and content never wraps
    /// a second message; it returns the one wrapped:
    /// - byte for byte the same bytes, for the last message wrapped on the channel (a retry
    ///   before any other wrap on it, in the same process, while the channel stays loaded);
    /// - for an older one still in the log or the outgoing buffer, the same message (id,
    ///   sender, Lamport timestamp, causal history, repair requests, content) re-encoded
    ///   with the current bloom filter, as a resend carries.
    ///
    /// A retry changes no state and commits only what an earlier, interrupted call left
    /// unwritten.
    pub async fn wrap_outgoing(
        &self,
        channel: &str,
        message_id: impl Into<String>,
        content: Vec<u8>,
    ) -> Result<Vec<u8>, SdsError> {
        let message_id = message_id.into();
        let hints = self.inner.hints.clone();
        self.run_app(channel, Use::App, move |state, now| {
            state.wrap(now, message_id, content, hints.as_deref())
        })
        .await
    }

    /// Wraps content as an ephemeral message: no ordering, no acknowledgement, no state.
    /// Does not join the channel.
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

    /// Builds a sync message for `channel`: causal history, bloom filter, due repair
    /// requests, no content, to broadcast when the channel is otherwise quiet.
    ///
    /// Joins a channel that is not open; a channel open without being joined (accepted under
    /// `accept_any_channel`) is synced without joining it, so answering every
    /// [`Event::SyncDue`] never makes peers' channels joined ones. Building a sync does not
    /// count as activity: a channel nobody writes to is still unloaded after
    /// `channel_idle_unload_ms`.
    pub async fn build_sync_message(&self, channel: &str) -> Result<Vec<u8>, SdsError> {
        self.run_app(channel, Use::Sync, |state, now| state.build_sync(now))
            .await
    }

    /// Processes received bytes. The channel is read from the message.
    ///
    /// A message for a channel the application did not join is dropped (returned as
    /// [`UnwrapStatus::Dropped`] with [`crate::DropReason::ChannelNotJoined`], with an
    /// [`Event::MessageDropped`]) and opens, loads and stores nothing. With
    /// `accept_any_channel`, any channel is opened on first use, up to `max_channels` open
    /// at once ([`crate::DropReason::TooManyChannels`] past it; joined channels are never
    /// refused).
    ///
    /// Content and sync messages end with at most one commit, none if nothing changed (a
    /// duplicate, say); ephemeral messages and our own messages touch no state. Fails only
    /// on bytes that are not an SDS message (or are oversize) and on a channel that cannot
    /// be bootstrapped.
    pub async fn unwrap_received(&self, bytes: &[u8]) -> Result<Unwrapped, SdsError> {
        self.ensure_running()?;
        let message = decode_message(bytes)?;
        if message.message_id.is_empty() {
            return Err(SdsError::InvalidInput(
                "received message has an empty message id".into(),
            ));
        }
        let channel = message.channel_id.clone();
        if !self.may_receive(&channel) {
            return Ok(self.refuse(channel, message.message_id, DropReason::ChannelNotJoined));
        }
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
        let message_id = message.message_id.clone();
        match self
            .run(&channel, Use::Network, |state, now| {
                Ok(state.unwrap(now, message))
            })
            .await
        {
            Ok(unwrapped) => Ok(unwrapped),
            Err(OpenError::Refused(reason)) => Ok(self.refuse(channel, message_id, reason)),
            Err(err) => Err(err.into_sds(&channel)),
        }
    }

    /// Drops a message the channel admission refused, with its event.
    fn refuse(&self, channel: String, message_id: String, reason: DropReason) -> Unwrapped {
        debug!(
            channel,
            message_id,
            ?reason,
            "message for a channel not admitted"
        );
        self.emit(Event::MessageDropped {
            channel: channel.clone(),
            message_id: message_id.clone(),
            reason: reason.clone(),
        });
        Unwrapped {
            channel,
            message_id,
            status: UnwrapStatus::Dropped(reason),
        }
    }

    /// Tells the manager the application obtained these messages out of band (e.g. from a
    /// store node): buffered messages stop waiting for them and are delivered if ready.
    ///
    /// Refuses more than `max_mark_met_ids` ids in one call with
    /// [`SdsError::InvalidInput`] (and an [`Event::LimitReached`]) and changes nothing then:
    /// split the list.
    pub async fn mark_dependencies_met(
        &self,
        channel: &str,
        message_ids: &[String],
    ) -> Result<(), SdsError> {
        let limit = self.inner.settings.config.max_mark_met_ids;
        if message_ids.len() > limit {
            self.emit(Event::LimitReached {
                channel: channel.to_string(),
                limit: Limit::MarkMetIds,
                dropped: message_ids.len(),
            });
            return Err(SdsError::InvalidInput(format!(
                "mark_dependencies_met names {} ids, more than max_mark_met_ids ({limit}); \
                 nothing was marked, split the call",
                message_ids.len()
            )));
        }
        self.run_app(channel, Use::App, |state, _now| {
            state.mark_dependencies_met(message_ids);
            Ok(())
        })
        .await
    }

    /// Closes a channel, leaves it (see [`Self::join_channel`]) and wipes its stored state.
    ///
    /// Fails with [`SdsError::Persistence`] when the backend could not drop it; the channel
    /// then stays open, joined and intact, so a wipe is never claimed that did not happen.
    pub async fn remove_channel(&self, channel: &str) -> Result<(), SdsError> {
        loop {
            self.ensure_running()?;
            let slot = self.slot_for_removal(channel);
            let mut guard = slot.clone().lock_owned().await;
            if guard.retired {
                continue;
            }
            if self.is_shut_down() {
                if guard.channel.is_none() {
                    guard.retired = true;
                    self.forget_slot(channel, &slot);
                }
                return Err(SdsError::ShutDown);
            }
            if let Err(err) = self.drop_claimed(channel).await {
                tracing::warn!(channel, %err, "dropping channel failed");
                if guard.channel.is_none() {
                    // The slot was made for this call only.
                    guard.retired = true;
                    self.forget_slot(channel, &slot);
                }
                return Err(err.into());
            }
            guard.retired = true;
            guard.channel = None;
            self.forget_slot(channel, &slot);
            self.leave(channel);
            return Ok(());
        }
    }

    /// Removes every channel this manager has open or joined and every channel stored in
    /// its namespace (see [`Self::remove_channel`]); stops at the first failure, and fails
    /// before removing anything when the stored channels cannot be listed. With a backend
    /// that cannot list its channels (see
    /// [`BackendCapabilities::list_channels`](crate::persistence::BackendCapabilities)),
    /// stored channels this manager does not have open or joined keep their state.
    pub async fn reset(&self) -> Result<(), SdsError> {
        self.ensure_running()?;
        let mut channels = self.stored_channels_for_reset().await?;
        channels.extend(self.open_channels());
        channels.extend(self.joined_channels());
        channels.sort();
        channels.dedup();
        for channel in channels {
            self.remove_channel(&channel).await?;
        }
        Ok(())
    }

    /// Ids of the channels loaded in this manager, sorted.
    pub fn open_channels(&self) -> Vec<String> {
        self.open_slots().into_iter().map(|(id, _)| id).collect()
    }

    /// A view of a channel's in-memory state.
    ///
    /// Never creates a channel: a joined channel that was unloaded is loaded again, and a
    /// channel neither joined nor open is [`SdsError::UnknownChannel`].
    pub async fn channel_state(&self, channel: &str) -> Result<ChannelState, SdsError> {
        let guard = self
            .open(channel, Use::Read)
            .await
            .map_err(|err| err.into_sds(channel))?;
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

    /// The local log's ids, oldest first (see [`Self::channel_state`] for unknown
    /// channels).
    pub async fn log_ids(&self, channel: &str) -> Result<Vec<String>, SdsError> {
        Ok(self.channel_state(channel).await?.log)
    }
}
