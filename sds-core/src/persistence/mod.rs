//! The persistence contract: five operations and an atomic op-end commit.
//!
//! In-memory state is the source of truth; a backend gives durability across restarts.
//! Every protocol operation ends with at most one [`Persistence::commit`], carrying the
//! channel's new snapshot and the batch of history changes the operation made (several
//! commits when the batch is larger than [`MAX_HISTORY_BATCH`]).
//!
//! # The rules every backend keeps
//!
//! The conformance suite (`sds-persist-conformance`) has a case for every rule that can be
//! checked from outside; the rules below name them.
//!
//! ## Ids and order
//!
//! - **Ids are byte strings compared as bytes.** Channel ids and message ids are arbitrary
//!   UTF-8 strings: empty, NUL, quotes, separators and any non-ASCII character included. A
//!   backend stores them byte-exact and orders message ids by their UTF-8 bytes (which is
//!   Rust's `str` order), never by a locale collation: `"B" < "a" < "a\0" < "a b" < "ä"`
//!   holds whatever the server's locale. In SQL, store ids as `bytea` (PostgreSQL `text` rejects
//!   NUL, and sorts by the database collation unless the column or query says
//!   `COLLATE "C"`); in Redis, use byte-ordered members (`ZRANGEBYLEX` compares bytes).
//!   (cases: `awkward_message_ids_stay_distinct`, `history_loads_in_lamport_then_id_order`,
//!   `message_ids_order_by_bytes_never_by_collation`)
//! - **Lamport timestamps are the full `u64` range** and keep their exact value. A store
//!   with signed 64-bit integers maps them with the order-preserving [`order::lamport_to_i64`]
//!   (a plain cast would sort everything above `i64::MAX` first); a store whose numbers are
//!   doubles (Redis scores) must not use them for timestamps, which are exact only up to
//!   2^53: prefix a byte-ordered key with [`order::lamport_sort_key`] instead.
//!   (cases: `history_order_holds_across_the_full_lamport_range`)
//! - **History loads oldest first, by (lamport, message id)**, both compared as above.
//!
//! ## History batches
//!
//! - **Evictions first, then appends.** An update applies its `evict` list, then its
//!   `append` list in order. An id named in both lists therefore ends stored, as the
//!   appended entry, carrying only the hint that entry carries (the eviction forgot the old
//!   one). The manager never names one id in both lists; the rule makes every backend agree
//!   when another caller does. (cases: `id_in_both_lists_of_one_update_ends_appended`)
//! - **Appends are idempotent per id; a re-append replaces.** Appending an id that is stored
//!   replaces its entry (moving it if its Lamport timestamp changed): one entry per id, ever.
//!   The stored retrieval hint is kept when the appended entry carries none, and replaced by
//!   the one it carries: a retried or rewritten batch (which carries no hints) never erases a
//!   hint saved in between. (cases: `reappending_an_id_is_idempotent`,
//!   `reappending_an_id_at_a_new_lamport_moves_it`,
//!   `reappend_keeps_the_stored_hint_unless_it_carries_one`)
//! - **Evicting an unknown id is a no-op**, and evicting an id forgets its hint.
//!   (cases: `evicting_an_unknown_id_is_a_no_op`, `hint_of_an_evicted_message_is_gone`)
//! - **Batch size.** The manager puts at most [`MAX_HISTORY_BATCH`] entries (appends plus
//!   evictions) in one update, and splits larger ones into several commits (see the
//!   constant), so a backend may size statements, pipelines and scripts for that bound. A
//!   larger batch from another caller must still be applied whole.
//!
//! ## Failures, timeouts and retries
//!
//! - **Every operation is idempotent**, so retrying after an unknown outcome is safe: a
//!   call that timed out (the manager gives up after `commit_timeout_ms`, maybe after the
//!   server committed) or failed on a lost connection may have landed, and the manager then
//!   sends the same changes again, merged with newer ones. Saving the same snapshot, applying
//!   the same batch, setting the same hint or dropping the same channel twice leaves the
//!   state of doing it once. (cases: `replaying_a_commit_changes_nothing`,
//!   `replaying_a_split_batch_is_idempotent`)
//! - **An abandoned call never lands after a later one.** The manager abandons a call by
//!   dropping its future. A backend must then either finish or roll back that call before a
//!   later call on the same channel takes effect (for example: roll back the transaction of
//!   a dropped future, or close its connection), so a stale snapshot never overwrites a newer
//!   one.
//! - **"Could not read" is an error, never empty data.** [`Persistence::load_channel`]
//!   returns data only when it read it: an unreachable server is
//!   [`PersistenceErrorKind::Unavailable`], undecodable bytes are
//!   [`PersistenceErrorKind::Corrupt`].
//!   (cases: `unreachable_backend_fails_bootstrap_as_unavailable`,
//!   `corrupt_snapshot_fails_bootstrap_as_corrupt`)
//!
//! ## Namespaces and channels
//!
//! - A backend instance serves one namespace; no operation ever reads or writes another
//!   namespace's data, [`Persistence::list_channels`] included.
//!   (cases: `list_channels_lists_exactly_the_stored_channels`)
//! - A channel is stored once it has a snapshot or a history entry, and no longer once it is
//!   dropped (or its last entry evicted with no snapshot saved).
//!   (cases: `dropped_channel_is_no_longer_listed`)
//!
//! ## Writer fence
//!
//! - A writer that claimed its namespace ([`Persistence::claim_writer`]) has every write
//!   refused as [`PersistenceErrorKind::Fenced`], with nothing applied, once a newer writer
//!   claimed the same namespace; reads are never fenced, and instances that never claimed
//!   are not checked. Backends that keep the fence declare
//!   [`BackendCapabilities::fencing`]. (cases: the `fence` group,
//!   `stale_writer_commit_fails_as_fenced_and_writes_nothing`,
//!   `no_stale_write_lands_after_a_concurrent_claim`,
//!   `every_write_of_a_stale_writer_is_fenced`, `new_claim_after_restart_supersedes`,
//!   `claims_are_per_namespace`, `unclaimed_instance_is_not_fenced`,
//!   `fenced_manager_stops_writing_and_says_so`)
//!
//! ## Shutdown
//!
//! - [`Persistence::close`] makes every acknowledged write durable (flushes buffers, logs,
//!   fsyncs) and releases what it can; a new instance on the same storage then loads
//!   everything. (cases: `close_then_reopen_keeps_everything`)
//!
//! What a backend promises beyond these rules (atomic commit, durability on acknowledge,
//! listing) it declares with [`Persistence::capabilities`].

pub mod batch;
mod capabilities;
mod error;
pub mod fault;
mod fence;
pub mod key_parts;
pub mod memory;
pub mod order;
pub mod write_order;

use std::sync::Arc;

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};

pub use capabilities::BackendCapabilities;
pub use error::{BoxError, PersistenceError, PersistenceErrorKind};
pub use fence::WriterEpoch;

/// The most history entries (appends plus evictions) the manager puts in one update.
///
/// A larger batch (a long outage's queue, a rewrite of the whole history) is split into
/// several commits of at most this many entries, appends first in delivery order, then
/// evictions. Each commit is atomic on its own; together they are not, and need not be:
/// every part is idempotent, and a failure between parts leaves the whole batch queued, so
/// the retry sends every part again and completes it. The snapshot goes with the last part
/// only: until it lands, the stored snapshot is the previous one, whose buffers still hold
/// what the missing parts would log, so a crash between parts loses nothing; a new snapshot
/// stored before its history could drop a message that left the incoming buffer for a log
/// entry not written yet.
///
/// Part of the contract so backends can size what they send: SQL statements (parameter
/// limits), Redis pipelines and scripts.
pub const MAX_HISTORY_BATCH: usize = 1_000;

/// A durable store for channel state. Implementations must be safe to share between tasks;
/// the manager calls them concurrently for different channels, and never concurrently for
/// the same channel.
///
/// A backend instance serves one namespace (chosen when it is built), so many nodes can
/// share one database without seeing each other's channels.
///
/// The [module documentation](self) states the rules every implementation keeps: how ids
/// and Lamport timestamps are stored and ordered, how a batch naming one id twice applies,
/// what a re-append does to a stored hint, and why every operation must be idempotent.
#[async_trait]
pub trait Persistence: Send + Sync {
    /// Replaces the channel's snapshot whole (never merges). Idempotent: a later successful
    /// save repairs a failed one.
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError>;

    /// Applies one batch of history changes: evictions (an unknown id is a no-op), then
    /// appends (idempotent per message id; a re-append keeps the stored hint unless it
    /// carries one). The manager never calls it with an empty update, nor with more than
    /// [`MAX_HISTORY_BATCH`] entries.
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
    /// land together or not at all, and then declare
    /// [`BackendCapabilities::atomic_commit`].
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

    /// What this backend promises beyond the rules every backend keeps. The manager logs
    /// it when it is built; the conformance suite runs the cases of every declared promise.
    ///
    /// The default promises nothing ([`BackendCapabilities::CONSERVATIVE`]): declare only
    /// what the suite proves.
    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::CONSERVATIVE
    }

    /// The ids of the channels stored in this namespace (a snapshot or a history entry),
    /// sorted by their bytes, each once; never a channel of another namespace, never a
    /// dropped one. Backends that implement it declare
    /// [`BackendCapabilities::list_channels`].
    ///
    /// The default fails with [`PersistenceError::Other`]: this backend cannot list.
    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        Err(PersistenceError::other(
            "this persistence backend cannot list its channels",
        ))
    }

    /// Makes every acknowledged write durable and releases what the backend can, at a
    /// clean shutdown: flushes buffers, logs and memtables, fsyncs. The manager calls it
    /// once, after its last write ([`crate::ReliabilityManager::shutdown`]), and makes no
    /// call afterwards; a backend may refuse calls after it. Closing twice succeeds.
    ///
    /// The default does nothing: right for a backend whose acknowledged writes are already
    /// durable.
    async fn close(&self) -> Result<(), PersistenceError> {
        Ok(())
    }

    /// Claims the namespace for this instance, the writer fence: raises the namespace's
    /// epoch, kept in the storage, and returns it; `Ok(None)` when the backend keeps no
    /// fence (the default, which fences nothing and claims nothing).
    ///
    /// A backend that implements it declares [`BackendCapabilities::fencing`] and keeps
    /// these rules:
    ///
    /// - Claims of one namespace return strictly increasing epochs, across instances,
    ///   processes and restarts, and the claim is durable before it returns. Raising the
    ///   epoch is atomic: two concurrent claims never return the same epoch.
    /// - The instance remembers its epoch (its clones share it); claiming again takes a new,
    ///   higher one. Every later write of the instance (`commit`, `save_channel_meta`,
    ///   `update_history`, `set_retrieval_hint`, `drop_channel`) checks, atomically with the
    ///   write itself, that the namespace's epoch is still the one it claimed. If a newer
    ///   claim exists, the write fails with [`PersistenceError::Fenced`] and applies
    ///   nothing, so a stale writer never overwrites the newer writer's state. The refusal
    ///   is permanent for that claim: retrying never succeeds.
    /// - Reads are never fenced, and an instance that never claimed is not checked (tools,
    ///   migrations, inspection): only writers that claimed are bound by the fence.
    /// - The fence is per namespace: a claim never fences a writer of another namespace.
    ///
    /// The manager claims once when it starts (`ManagerBuilder::start`, or its first
    /// backend call after `ManagerBuilder::build`), so the last manager started on a
    /// namespace is the one whose writes land. Give each manager its own instance: managers
    /// sharing one instance share its claim and do not fence each other.
    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        Ok(None)
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

            fn capabilities(&self) -> BackendCapabilities {
                (**self).capabilities()
            }

            async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
                (**self).list_channels().await
            }

            async fn close(&self) -> Result<(), PersistenceError> {
                (**self).close().await
            }

            async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
                (**self).claim_writer().await
            }
        }
    )*};
}

forward_persistence!(Arc, Box);
