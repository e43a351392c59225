//! The writer fence, manager side: the manager claims its persistence namespace once,
//! before its first backend call, and a manager a newer one fenced tells the application
//! once and writes nothing from then on.
//!
//! A fenced manager does not retry: the refusal is permanent (a newer writer owns the
//! namespace), so retrying could only fail forever or, if it claimed again, fence the newer
//! writer in turn. It keeps working in memory, so the application can finish what it is
//! doing and stop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sds_codec::storage::ChannelData;
use tracing::{info, warn};

use super::ReliabilityManager;
use crate::error::SdsError;
use crate::event::Event;
use crate::persistence::{PersistenceError, PersistenceErrorKind, WriterEpoch};

/// No epoch held: not claimed yet, or the backend keeps no fence (epochs start at 1).
const NO_EPOCH: u64 = 0;

/// The manager's claim on its namespace.
#[derive(Debug, Default)]
pub(super) struct Fence {
    /// Whether the claim was made; locked across the claim so it is made once.
    claimed: tokio::sync::Mutex<bool>,
    /// The epoch held, for synchronous readers.
    epoch: AtomicU64,
    /// A write was refused as fenced: nothing is written any more.
    fenced: AtomicBool,
    /// The namespace's epoch the refusal reported.
    fenced_at: AtomicU64,
}

impl ReliabilityManager {
    /// Claims this manager's persistence namespace (the writer fence) if it has not yet,
    /// and returns the epoch it holds; `None` when the backend keeps no fence.
    ///
    /// [`ManagerBuilder::start`](super::ManagerBuilder::start) claims when the manager
    /// starts; a manager made with [`ManagerBuilder::build`](super::ManagerBuilder::build)
    /// claims at its first backend call, or when this is called. One claim per manager:
    /// calling again returns the same epoch, also after the manager was fenced (a fenced
    /// manager never takes the namespace back; start a new one for that).
    ///
    /// Once claimed, a manager started later on the same namespace fences this one: its
    /// writes are refused, it emits [`Event::WriterFenced`] once, and writes nothing from
    /// then on.
    pub async fn claim_writer(&self) -> Result<Option<WriterEpoch>, SdsError> {
        Ok(self.ensure_claimed().await?)
    }

    /// The epoch this manager claimed; `None` before its claim or when the backend keeps
    /// no fence.
    pub fn writer_epoch(&self) -> Option<WriterEpoch> {
        match self.inner.fence.epoch.load(Ordering::SeqCst) {
            NO_EPOCH => None,
            epoch => Some(WriterEpoch::new(epoch)),
        }
    }

    /// Whether a newer manager claimed the namespace and this one stopped writing (see
    /// [`Event::WriterFenced`]).
    pub fn is_fenced(&self) -> bool {
        self.inner.fence.fenced.load(Ordering::SeqCst)
    }

    /// The claim, made once; a failed claim is tried again by the next caller.
    pub(super) async fn ensure_claimed(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        let mut claimed = self.inner.fence.claimed.lock().await;
        if *claimed {
            return Ok(self.writer_epoch());
        }
        let claim = self.inner.persistence.claim_writer();
        let epoch = self.within_deadline("claim_writer", claim).await?;
        let participant = self.participant_id();
        match epoch {
            Some(epoch) => {
                info!(
                    participant,
                    epoch = epoch.get(),
                    "claimed the persistence namespace: managers that claimed it before can no longer write"
                );
                self.inner.fence.epoch.store(epoch.get(), Ordering::SeqCst);
            }
            None => info!(
                participant,
                "the persistence backend keeps no writer fence: another manager on this namespace would overwrite this one's state unnoticed"
            ),
        }
        *claimed = true;
        Ok(epoch)
    }

    /// Whether `err` is the fence refusing this manager's write. The first time, the
    /// manager stops writing and tells the application.
    pub(super) fn writer_fenced(&self, channel: &str, err: &PersistenceError) -> bool {
        if err.kind() != PersistenceErrorKind::Fenced {
            return false;
        }
        if let PersistenceError::Fenced { current, .. } = err {
            self.inner
                .fence
                .fenced_at
                .fetch_max(current.get(), Ordering::SeqCst);
        }
        if !self.inner.fence.fenced.swap(true, Ordering::SeqCst) {
            warn!(
                channel,
                %err,
                "a newer manager claimed the persistence namespace: this one writes nothing from now on"
            );
            self.emit(Event::WriterFenced {
                channel: channel.to_string(),
                error: err.to_string(),
            });
        }
        true
    }

    /// Why a fenced manager leaves state unwritten: the refusal it got.
    pub(super) fn fenced_error(&self) -> PersistenceError {
        PersistenceError::fenced(
            WriterEpoch::new(self.inner.fence.epoch.load(Ordering::SeqCst)),
            WriterEpoch::new(self.inner.fence.fenced_at.load(Ordering::SeqCst)),
        )
    }

    /// Loads a channel for bootstrap, claiming the namespace first if not yet claimed.
    pub(super) async fn load_claimed(
        &self,
        channel: &str,
    ) -> Result<ChannelData, PersistenceError> {
        self.ensure_claimed().await?;
        let load = self.inner.persistence.load_channel(channel);
        self.within_deadline("load_channel", load).await
    }

    /// Drops a channel from the backend, claiming the namespace first if not yet claimed;
    /// a refusal by the fence stops this manager's writes.
    pub(super) async fn drop_claimed(&self, channel: &str) -> Result<(), PersistenceError> {
        self.ensure_claimed().await?;
        let drop = self.inner.persistence.drop_channel(channel);
        let result = self.within_deadline("drop_channel", drop).await;
        if let Err(err) = &result {
            self.writer_fenced(channel, err);
        }
        result
    }
}
