//! A manager's life beyond single operations: finding the channels stored by an earlier
//! run, and the clean shutdown that leaves nothing acknowledged behind.
//!
//! After [`ReliabilityManager::shutdown`] every operation on channels is refused with
//! [`SdsError::ShutDown`] and the periodic passes do nothing, so no write can follow the
//! backend's [`close`](crate::persistence::Persistence::close).

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::stream;
use tracing::{info, warn};

use super::ReliabilityManager;
use crate::error::SdsError;
use crate::persistence::PersistenceError;

/// Whether the manager was shut down.
#[derive(Debug, Default)]
pub(super) struct Lifecycle {
    shut_down: AtomicBool,
}

/// What [`ReliabilityManager::reopen_stored_channels`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReopenedChannels {
    /// The stored channels now joined and loaded, sorted.
    pub opened: Vec<String>,
    /// The stored channels that could not be loaded, with why (sorted by channel). They
    /// are joined all the same: their next use tries the load again.
    pub failed: Vec<(String, SdsError)>,
}

impl ReliabilityManager {
    /// Whether [`Self::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.lifecycle.shut_down.load(Ordering::SeqCst)
    }

    /// [`SdsError::ShutDown`] once the manager was shut down.
    pub(super) fn ensure_running(&self) -> Result<(), SdsError> {
        if self.is_shut_down() {
            Err(SdsError::ShutDown)
        } else {
            Ok(())
        }
    }

    /// The channels the backend stores in this manager's namespace, sorted, whether this
    /// manager has them open or not.
    ///
    /// Fails with [`SdsError::Persistence`] when the backend cannot be read, or cannot list
    /// its channels at all (it does not declare
    /// [`list_channels`](crate::persistence::BackendCapabilities::list_channels)).
    pub async fn stored_channels(&self) -> Result<Vec<String>, SdsError> {
        self.ensure_running()?;
        let list = self.inner.persistence.list_channels();
        Ok(self.within_deadline("list_channels", list).await?)
    }

    /// The stored channels to include in a reset: all of them when the backend can list
    /// them, none (with a warning) when it cannot.
    pub(super) async fn stored_channels_for_reset(&self) -> Result<Vec<String>, SdsError> {
        if self.inner.persistence.capabilities().list_channels {
            return self.stored_channels().await;
        }
        warn!(
            "the persistence backend cannot list its channels: reset removes only the \
             channels this manager has open or joined"
        );
        Ok(Vec::new())
    }

    /// Joins and loads every channel stored in the backend's namespace, as after a
    /// restart, so the periodic passes cover them again: unacknowledged messages are
    /// resent, buffered ones swept, repairs answered. Channels already joined are left as
    /// they are.
    ///
    /// Fails with [`SdsError::Persistence`] only when the channels cannot be listed (see
    /// [`Self::stored_channels`]). A channel that cannot be loaded (corrupt, unreadable) is
    /// reported in [`ReopenedChannels::failed`] and the others are opened all the same.
    pub async fn reopen_stored_channels(&self) -> Result<ReopenedChannels, SdsError> {
        let stored = self.stored_channels().await?;
        let mut report = ReopenedChannels::default();
        for channel in stored {
            match self.join_channel(&channel).await {
                Ok(()) => report.opened.push(channel),
                Err(err) => {
                    warn!(channel, %err, "stored channel could not be reopened");
                    report.failed.push((channel, err));
                }
            }
        }
        info!(
            opened = report.opened.len(),
            failed = report.failed.len(),
            "stored channels reopened"
        );
        Ok(report)
    }

    /// Shuts the manager down cleanly: writes every open channel's unwritten state now
    /// (ignoring the retry backoff of a channel whose last write failed), saves queued
    /// retrieval hints, then closes the backend
    /// ([`Persistence::close`](crate::persistence::Persistence::close): flushes what it
    /// buffers, so nothing acknowledged is lost even with fsync off).
    ///
    /// From the first call on, every operation on channels fails with
    /// [`SdsError::ShutDown`] and the periodic passes do nothing; an operation already
    /// running finishes first (its channel is flushed after it). Calling it again returns
    /// `Ok` at once.
    ///
    /// Fails with [`SdsError::Persistence`] (the first failure; every one is logged) when a
    /// channel could not be written or the backend not closed: that state was not stored.
    /// The backend is closed even then.
    pub async fn shutdown(&self) -> Result<(), SdsError> {
        if self.inner.lifecycle.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let limit = self.inner.settings.config.max_concurrent_sweeps;
        let mut failures: Vec<(String, PersistenceError)> = stream::iter(self.open_slots())
            .map(|(channel, slot)| async move {
                let mut guard = slot.lock_owned().await;
                if guard.retired {
                    return None;
                }
                let flushed = self.finish_with(&channel, &mut guard, true).await;
                flushed.err().map(|err| (channel, err))
            })
            .buffer_unordered(limit)
            .filter_map(|failure| async move { failure })
            .collect()
            .await;
        failures.sort_by(|a, b| a.0.cmp(&b.0));
        for (channel, err) in &failures {
            warn!(channel, %err, "state not written at shutdown");
        }
        let close = self.inner.persistence.close();
        let closed = self.within_deadline("close", close).await;
        if let Err(err) = &closed {
            warn!(%err, "closing the persistence backend failed");
        }
        info!(
            unwritten_channels = failures.len(),
            closed = closed.is_ok(),
            "reliability manager shut down"
        );
        match failures.into_iter().next() {
            Some((_, err)) => Err(err.into()),
            None => Ok(closed?),
        }
    }
}
