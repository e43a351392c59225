//! The persistence contract: five operations and an atomic op-end commit.
//!
//! In-memory state is the source of truth; a backend gives durability across restarts.
//! Every protocol operation ends with at most one [`Persistence::commit`], carrying the
//! channel's new snapshot and the batch of history changes the operation made.

mod error;
pub mod fault;
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};

pub use error::{BoxError, PersistenceError, PersistenceErrorKind};

/// A durable store for channel state. Implementations must be safe to share between tasks;
/// the manager calls them concurrently for different channels, and never concurrently for
/// the same channel.
///
/// A backend instance serves one namespace (chosen when it is built), so many nodes can
/// share one database without seeing each other's channels.
#[async_trait]
pub trait Persistence: Send + Sync {
    /// Replaces the channel's snapshot whole (never merges). Idempotent: a later successful
    /// save repairs a failed one.
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError>;

    /// Applies one batch of history changes: appends (idempotent per message id) and
    /// evictions (an unknown id is a no-op). Never called with an empty update.
    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError>;

    /// Loads a channel for bootstrap. A channel never saved loads as
    /// [`ChannelData::empty`], not as an error; history comes back oldest first,
    /// ordered by (lamport, message id), each entry with its stored retrieval hint.
    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError>;

    /// Wipes the channel's snapshot, history and hints, atomically. Dropping a channel that
    /// does not exist succeeds.
    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError>;

    /// Records the application's retrieval hint for a logged message; it comes back with
    /// the history entry on load. A hint for a message not in the history is ignored.
    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError>;

    /// Commits one protocol operation's state: the snapshot (if it changed) and the history
    /// batch (if not empty).
    ///
    /// The default saves the meta, then applies the history, back to back, stopping at the
    /// first failure. It is not atomic: backends that can should override it so both parts
    /// land together or not at all.
    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        if let Some(meta) = meta {
            self.save_channel_meta(channel, meta).await?;
        }
        if let Some(history) = history.filter(|update| !update.is_empty()) {
            self.update_history(channel, history).await?;
        }
        Ok(())
    }
}

macro_rules! forward_persistence {
    ($($pointer:ident),*) => {$(
        #[async_trait]
        impl<P: Persistence + ?Sized> Persistence for $pointer<P> {
            async fn save_channel_meta(
                &self,
                channel: &str,
                meta: &ChannelMeta,
            ) -> Result<(), PersistenceError> {
                (**self).save_channel_meta(channel, meta).await
            }

            async fn update_history(
                &self,
                channel: &str,
                update: &HistoryUpdate,
            ) -> Result<(), PersistenceError> {
                (**self).update_history(channel, update).await
            }

            async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
                (**self).load_channel(channel).await
            }

            async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
                (**self).drop_channel(channel).await
            }

            async fn set_retrieval_hint(
                &self,
                channel: &str,
                message_id: &str,
                hint: &[u8],
            ) -> Result<(), PersistenceError> {
                (**self).set_retrieval_hint(channel, message_id, hint).await
            }

            async fn commit(
                &self,
                channel: &str,
                meta: Option<&ChannelMeta>,
                history: Option<&HistoryUpdate>,
            ) -> Result<(), PersistenceError> {
                (**self).commit(channel, meta, history).await
            }
        }
    )*};
}

forward_persistence!(Arc, Box);
