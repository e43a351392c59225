//! Which channels a manager holds in memory, and who may open one.
//!
//! The application joins channels ([`ReliabilityManager::join_channel`], or implicitly by
//! sending on one). A network message opens only a joined channel, unless
//! `accept_any_channel` is on, and then only while fewer than `max_channels` are open; any
//! other message is dropped before anything is loaded or stored. Reads never open a channel
//! that is not joined. The joined set lives in memory: it survives a channel being unloaded
//! when idle, not a restart (the application joins again after one).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, MutexGuard, PoisonError};

use tokio::sync::OwnedMutexGuard;
use tracing::{debug, warn};

use super::ReliabilityManager;
use super::commit::CommitState;
use crate::channel::Channel;
use crate::clock::UnixMillis;
use crate::error::SdsError;
use crate::event::DropReason;

/// One channel's place in the manager: its state once loaded, and the bookkeeping of the
/// driver around it.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) channel: Option<Channel>,
    /// Set when the slot leaves the registry (the channel was removed or unloaded, or its
    /// bootstrap failed), so a task that waited on its lock retries on a fresh slot instead
    /// of resurrecting the old one.
    pub(super) retired: bool,
    /// When the channel was last used by the application or the network (sweeps, sync
    /// builds and reads do not count): what idle unloading measures.
    pub(super) last_used: UnixMillis,
    pub(super) commit: CommitState,
}

pub(super) type SlotRef = Arc<tokio::sync::Mutex<Slot>>;
pub(super) type SlotGuard = OwnedMutexGuard<Slot>;

/// The open channels and the joined set, under one lock so that admission (count, then
/// insert) is atomic.
#[derive(Default)]
pub(super) struct Registry {
    slots: HashMap<String, SlotRef>,
    joined: HashSet<String>,
}

/// Who is asking for a channel, which decides whether it may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// The application acts on the channel: joins it, and counts as activity.
    App,
    /// The application builds a sync message: joins a channel that is not open yet (an
    /// open channel it did not join, one accepted under `accept_any_channel`, stays
    /// unjoined, so answering `SyncDue` never turns a peer's channel into a joined one),
    /// and leaves an idle channel idle.
    Sync,
    /// A received message: admitted if joined, or under `accept_any_channel` within
    /// `max_channels`; counts as activity.
    Network,
    /// A read: loads a joined channel, never creates one.
    Read,
}

impl Use {
    fn is_activity(self) -> bool {
        matches!(self, Use::App | Use::Network)
    }
}

/// Why a channel could not be opened.
pub(super) enum OpenError {
    /// A network message was not admitted; it is dropped for this reason.
    Refused(DropReason),
    /// A read named a channel that is neither joined nor open.
    Unknown,
    /// Loading the channel failed (or the operation itself failed).
    Failed(SdsError),
}

impl OpenError {
    /// The error an application call reports.
    pub(super) fn into_sds(self, channel: &str) -> SdsError {
        match self {
            // Only network messages are refused, and they never take this path; report
            // it as the read would, rather than panic.
            OpenError::Refused(_) | OpenError::Unknown => {
                SdsError::UnknownChannel(channel.to_string())
            }
            OpenError::Failed(err) => err,
        }
    }
}

impl From<SdsError> for OpenError {
    fn from(err: SdsError) -> Self {
        OpenError::Failed(err)
    }
}

impl ReliabilityManager {
    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every update of the registry is a single map or set operation: a panic cannot
        // leave it half-written, so a poisoned lock still guards valid data.
        self.inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot for `channel` if `usage` may have it, created if needed.
    fn admit(&self, channel: &str, usage: Use) -> Result<SlotRef, OpenError> {
        let config = &self.inner.settings.config;
        let mut registry = self.registry();
        if let Some(slot) = registry.slots.get(channel) {
            let slot = slot.clone();
            if usage == Use::App {
                registry.joined.insert(channel.to_string());
            }
            return Ok(slot);
        }
        match usage {
            Use::App | Use::Sync => {
                registry.joined.insert(channel.to_string());
            }
            Use::Read if registry.joined.contains(channel) => {}
            Use::Read => return Err(OpenError::Unknown),
            Use::Network if registry.joined.contains(channel) => {}
            Use::Network if !config.accept_any_channel => {
                return Err(OpenError::Refused(DropReason::ChannelNotJoined));
            }
            Use::Network if registry.slots.len() >= config.max_channels => {
                return Err(OpenError::Refused(DropReason::TooManyChannels));
            }
            Use::Network => {}
        }
        let slot = SlotRef::default();
        registry.slots.insert(channel.to_string(), slot.clone());
        Ok(slot)
    }

    /// Whether a network message for `channel` can be considered at all: the channel is
    /// joined or open, or any channel is accepted. Opens nothing.
    pub(super) fn may_receive(&self, channel: &str) -> bool {
        if self.inner.settings.config.accept_any_channel {
            return true;
        }
        let registry = self.registry();
        registry.joined.contains(channel) || registry.slots.contains_key(channel)
    }

    /// The slot for `channel` whatever its admission, for [`Self::remove_channel`]: a
    /// slot it creates lives only for the removal.
    pub(super) fn slot_for_removal(&self, channel: &str) -> SlotRef {
        self.registry()
            .slots
            .entry(channel.to_string())
            .or_default()
            .clone()
    }

    /// Forgets that the application joined `channel`.
    pub(super) fn leave(&self, channel: &str) {
        self.registry().joined.remove(channel);
    }

    /// The registered slots, sorted by channel id.
    pub(super) fn open_slots(&self) -> Vec<(String, SlotRef)> {
        let registry = self.registry();
        let mut slots: Vec<_> = registry
            .slots
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        slots
    }

    /// Joined channels, sorted.
    pub(super) fn joined(&self) -> Vec<String> {
        let mut joined: Vec<String> = self.registry().joined.iter().cloned().collect();
        joined.sort();
        joined
    }

    pub(super) fn is_joined_now(&self, channel: &str) -> bool {
        self.registry().joined.contains(channel)
    }

    /// Removes `slot` from the registry if it is still the one registered for `channel`.
    pub(super) fn forget_slot(&self, channel: &str, slot: &SlotRef) {
        let mut registry = self.registry();
        if registry
            .slots
            .get(channel)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            registry.slots.remove(channel);
        }
    }

    /// Locks a channel that `usage` may open, bootstrapping it from persistence first if
    /// it is not in memory.
    pub(super) async fn open(&self, channel: &str, usage: Use) -> Result<SlotGuard, OpenError> {
        loop {
            self.ensure_running()?;
            let slot = self.admit(channel, usage)?;
            let mut guard = slot.clone().lock_owned().await;
            if guard.retired {
                continue;
            }
            // Checked again under the lock: shutdown flushes each channel under its lock
            // after setting the flag, so nothing can run on a channel after its flush.
            if self.is_shut_down() {
                if guard.channel.is_none() {
                    guard.retired = true;
                    self.forget_slot(channel, &slot);
                }
                return Err(OpenError::Failed(SdsError::ShutDown));
            }
            let now = self.inner.clock.now_ms();
            if guard.channel.is_none() {
                let loaded = match self.load_claimed(channel).await {
                    Ok(data) => Channel::restore(channel, self.inner.settings.clone(), data),
                    Err(err) => Err(SdsError::Persistence(err)),
                };
                match loaded {
                    Ok(restored) => {
                        debug!(channel, "channel bootstrapped");
                        guard.channel = Some(restored);
                        guard.last_used = now;
                    }
                    Err(err) => {
                        warn!(channel, %err, "channel bootstrap failed");
                        // Not open: forget the slot so the channel is not listed or swept,
                        // and let waiters retry on a fresh one. A joined channel stays
                        // joined; its next use tries the load again.
                        guard.retired = true;
                        self.forget_slot(channel, &slot);
                        return Err(OpenError::Failed(err));
                    }
                }
            }
            if usage.is_activity() {
                guard.last_used = now;
            }
            return Ok(guard);
        }
    }
}
