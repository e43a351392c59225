//! The in-memory backend: no durability, full contract.
//!
//! [`MemoryPersistence`] keeps the prost structs it is given (cloned, never encoded), so it
//! is fast enough for tests and for applications that need no durability. Cloning a
//! snapshot copies no buffered message: they are shared bytes held in shared chunks
//! ([`sds_codec::storage::Entries`]), so keeping the snapshot of a channel with thousands of
//! unacknowledged messages costs a few reference counts per save. Many instances
//! can share one [`MemoryStore`], each bound to its own namespace, the way nodes share one
//! database with a real backend.
//!
//! [`Persistence::commit`] is atomic here: the snapshot and the history batch are applied
//! under one lock, and nothing can fail once applying has started.
//!
//! The writer fence ([`Persistence::claim_writer`]) is kept per namespace in the store, so
//! two instances bound to one namespace (two managers misconfigured onto it) fence each
//! other: every write checks the instance's claim under the same lock that applies it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage, SCHEMA_VERSION};

use super::{BackendCapabilities, Persistence, PersistenceError, WriterEpoch};

/// The namespace [`MemoryPersistence::new`] binds to.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a history entry sits in a channel's ordered log: (lamport, message id).
type HistoryKey = (u64, String);

/// One channel's stored state.
#[derive(Debug, Default)]
struct StoredChannel {
    /// The last saved snapshot; `None` until the first save.
    meta: Option<ChannelMeta>,
    /// The local log, ordered by (lamport, message id); each entry carries its hint.
    history: BTreeMap<HistoryKey, LoggedMessage>,
    /// Message id -> its key in `history`, so eviction by id does not scan.
    index: HashMap<String, HistoryKey>,
}

impl StoredChannel {
    fn is_empty(&self) -> bool {
        self.meta.is_none() && self.history.is_empty()
    }

    /// Adds a message; a message already stored under the same id is replaced, keeping its
    /// hint when the new entry carries none.
    fn append(&mut self, entry: &LoggedMessage) {
        let id = entry.message_id().to_owned();
        let key = (entry.lamport(), id.clone());
        let old = self
            .index
            .remove(&id)
            .and_then(|old_key| self.history.remove(&old_key));
        let mut entry = entry.clone();
        if entry.retrieval_hint.is_none() {
            entry.retrieval_hint = old.and_then(|old| old.retrieval_hint);
        }
        self.history.insert(key.clone(), entry);
        self.index.insert(id, key);
    }

    fn evict(&mut self, id: &str) {
        if let Some(key) = self.index.remove(id) {
            self.history.remove(&key);
        }
    }

    /// Evictions first, then appends: the contract's order (an id in both lists ends
    /// stored, as appended).
    fn apply(&mut self, update: &HistoryUpdate) {
        for id in &update.evict {
            self.evict(id);
        }
        for entry in &update.append {
            self.append(entry);
        }
    }
}

/// All namespaces: namespace -> channel -> state.
type Namespaces = HashMap<String, HashMap<String, StoredChannel>>;

/// Shared in-memory storage that many [`MemoryPersistence`] instances use, each in its own
/// namespace. Cloning is cheap; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    namespaces: Arc<Mutex<Namespaces>>,
    /// Namespace -> its writer epoch (the last claim). Apart from `namespaces` so that
    /// listing namespaces is unchanged, and only ever locked while `namespaces` is held, so
    /// a claim cannot slip between a write's fence check and the write.
    fences: Arc<Mutex<HashMap<String, u64>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A backend over this store that reads and writes only `namespace`. Two backends bound
    /// to the same namespace see the same data (as a restarted process would).
    pub fn namespace(&self, namespace: impl Into<String>) -> MemoryPersistence {
        MemoryPersistence {
            store: self.clone(),
            namespace: namespace.into(),
            abort_next_commit: Arc::new(AtomicBool::new(false)),
            claimed: Arc::new(AtomicU64::new(UNCLAIMED)),
        }
    }

    /// The names of the namespaces that currently hold at least one channel, sorted.
    pub fn namespaces(&self) -> Result<Vec<String>, PersistenceError> {
        let guard = self.lock()?;
        let mut names: Vec<String> = guard
            .iter()
            .filter(|(_, channels)| !channels.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Namespaces>, PersistenceError> {
        // A poisoned lock means a thread panicked while holding it; the data may be
        // half-written, so refuse rather than serve it.
        self.namespaces
            .lock()
            .map_err(|_| PersistenceError::other("in-memory store lock poisoned by a panic"))
    }

    /// The writer epochs; call only while holding [`MemoryStore::lock`].
    fn fences(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // Every update is one map insert: a poisoned lock still guards whole data.
        self.fences
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The claim of an instance that never claimed (epochs start at 1).
const UNCLAIMED: u64 = 0;

/// An in-memory [`Persistence`] backend bound to one namespace of a [`MemoryStore`].
///
/// Clones share the store, the namespace, the armed test hook and the writer claim.
#[derive(Debug, Clone)]
pub struct MemoryPersistence {
    store: MemoryStore,
    namespace: String,
    abort_next_commit: Arc<AtomicBool>,
    /// The epoch this instance claimed, [`UNCLAIMED`] before its first claim.
    claimed: Arc<AtomicU64>,
}

impl Default for MemoryPersistence {
    fn default() -> Self {
        MemoryPersistence::new()
    }
}

impl MemoryPersistence {
    /// A backend over a fresh store, in the namespace [`DEFAULT_NAMESPACE`].
    pub fn new() -> Self {
        MemoryStore::new().namespace(DEFAULT_NAMESPACE)
    }

    /// The store this backend writes to.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The namespace this backend is bound to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The ids of the channels this namespace holds (saved meta or history), sorted.
    pub fn channels(&self) -> Result<Vec<String>, PersistenceError> {
        let guard = self.store.lock()?;
        let mut names: Vec<String> = guard
            .get(&self.namespace)
            .map(|channels| channels.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// Test hook: the next [`Persistence::commit`] that carries a history batch fails as a
    /// transaction aborted between its snapshot and its history would: nothing of that
    /// commit is applied. The failure is [`PersistenceError::Unavailable`].
    pub fn abort_next_commit_after_meta(&self) {
        self.abort_next_commit.store(true, Ordering::SeqCst);
    }

    /// Runs `f` on this namespace's channel map under the store lock.
    fn with_channels<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, StoredChannel>) -> Result<T, PersistenceError>,
    ) -> Result<T, PersistenceError> {
        let mut guard = self.store.lock()?;
        self.check_fence()?;
        let channels = guard.entry(self.namespace.clone()).or_default();
        let result = f(channels);
        if channels.is_empty() {
            guard.remove(&self.namespace);
        }
        result
    }
}

impl MemoryPersistence {
    /// Refuses a write of an instance whose claim a newer one superseded. Call with the
    /// store lock held, so no claim lands between the check and the write.
    fn check_fence(&self) -> Result<(), PersistenceError> {
        let held = self.claimed.load(Ordering::SeqCst);
        if held == UNCLAIMED {
            return Ok(());
        }
        let current = self
            .store
            .fences()
            .get(&self.namespace)
            .copied()
            .unwrap_or(UNCLAIMED);
        if current == held {
            return Ok(());
        }
        tracing::debug!(namespace = %self.namespace, held, current, "write of a fenced writer refused");
        Err(PersistenceError::fenced(
            WriterEpoch::new(held),
            WriterEpoch::new(current),
        ))
    }
}

fn check_schema(meta: &ChannelMeta) -> Result<(), PersistenceError> {
    if meta.schema_version == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(PersistenceError::UnsupportedSchema {
            found: meta.schema_version,
            supported: SCHEMA_VERSION,
        })
    }
}

#[async_trait]
impl Persistence for MemoryPersistence {
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.with_channels(|channels| {
            channels.entry(channel.to_owned()).or_default().meta = Some(meta.clone());
            Ok(())
        })
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.with_channels(|channels| {
            let stored = channels.entry(channel.to_owned()).or_default();
            stored.apply(update);
            if stored.is_empty() {
                channels.remove(channel);
            }
            Ok(())
        })
    }

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        let guard = self.store.lock()?;
        let Some(stored) = guard
            .get(&self.namespace)
            .and_then(|channels| channels.get(channel))
        else {
            return Ok(ChannelData::empty());
        };
        let meta = match &stored.meta {
            Some(meta) => {
                // Real backends refuse unknown layouts when decoding; so does this one.
                check_schema(meta)?;
                meta.clone()
            }
            None => ChannelMeta::empty(),
        };
        Ok(ChannelData {
            meta: Some(meta),
            history: stored.history.values().cloned().collect(),
        })
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        self.with_channels(|channels| {
            channels.remove(channel);
            Ok(())
        })
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        self.with_channels(|channels| {
            let Some(stored) = channels.get_mut(channel) else {
                return Ok(());
            };
            if let Some(key) = stored.index.get(message_id)
                && let Some(entry) = stored.history.get_mut(key)
            {
                entry.retrieval_hint = Some(hint.to_vec());
            }
            Ok(())
        })
    }

    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        let history = history.filter(|update| !update.is_empty());
        if meta.is_none() && history.is_none() {
            return Ok(());
        }
        self.with_channels(|channels| {
            // Applying to memory cannot fail once it starts, so checking the one thing that
            // can fail (the test hook) first, under the same lock, makes the commit atomic
            // without staging a copy of the channel.
            if history.is_some() && self.abort_next_commit.swap(false, Ordering::SeqCst) {
                tracing::debug!(channel, "in-memory commit aborted between its parts");
                return Err(PersistenceError::unavailable(
                    "commit aborted between its snapshot and its history (test hook)",
                ));
            }
            let stored = channels.entry(channel.to_owned()).or_default();
            if let Some(meta) = meta {
                stored.meta = Some(meta.clone());
            }
            if let Some(history) = history {
                stored.apply(history);
            }
            if stored.is_empty() {
                channels.remove(channel);
            }
            Ok(())
        })
    }

    /// Atomic commit and listing; nothing outlives the process.
    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::CONSERVATIVE
            .with_atomic_commit(true)
            .with_list_channels(true)
            .with_fencing(true)
    }

    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        // Under the store lock: no write of the namespace is between its check and its
        // apply while the epoch moves.
        let _writes = self.store.lock()?;
        let mut fences = self.store.fences();
        let current = fences.entry(self.namespace.clone()).or_insert(UNCLAIMED);
        let next = WriterEpoch::new(*current)
            .next()
            .ok_or_else(|| PersistenceError::other("writer epoch exhausted"))?;
        *current = next.get();
        self.claimed.store(next.get(), Ordering::SeqCst);
        tracing::debug!(namespace = %self.namespace, epoch = next.get(), "namespace claimed");
        Ok(Some(next))
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        self.channels()
    }
}

#[cfg(test)]
mod tests {
    use sds_codec::storage::{OutgoingEntry, encode_buffered_message};
    use sds_codec::wire::SdsMessage;

    use super::*;

    fn logged(id: &str, lamport: u64) -> LoggedMessage {
        LoggedMessage {
            message: Some(SdsMessage {
                sender_id: "alice".into(),
                message_id: id.into(),
                channel_id: "ch".into(),
                lamport_timestamp: Some(lamport),
                content: Some(id.as_bytes().to_vec()),
                ..Default::default()
            }),
            retrieval_hint: None,
        }
    }

    fn meta(lamport: u64) -> ChannelMeta {
        ChannelMeta {
            lamport,
            outgoing: vec![OutgoingEntry {
                message: logged("out", lamport)
                    .message
                    .map(|message| encode_buffered_message(&message))
                    .unwrap_or_default(),
                sent_at_ms: 5,
                resend_attempts: 1,
                possible_acks: 0,
            }]
            .into(),
            ..ChannelMeta::empty()
        }
    }

    fn append(entries: &[LoggedMessage]) -> HistoryUpdate {
        HistoryUpdate {
            append: entries.to_vec(),
            evict: Vec::new(),
        }
    }

    fn ids(data: &ChannelData) -> Vec<&str> {
        data.history.iter().map(LoggedMessage::message_id).collect()
    }

    /// A backend reports the namespace it is bound to and the store it shares: what one
    /// writes, a backend of another namespace over `store()` lists.
    #[tokio::test]
    async fn a_backend_knows_its_namespace_and_store() {
        let backend = MemoryStore::new().namespace("tenant-a");
        assert_eq!(backend.namespace(), "tenant-a");
        backend.save_channel_meta("ch", &meta(1)).await.unwrap();
        assert_eq!(backend.store().namespaces().unwrap(), ["tenant-a"]);
        let neighbour = backend.store().namespace("tenant-b");
        assert_eq!(neighbour.store().namespaces().unwrap(), ["tenant-a"]);
    }

    #[tokio::test]
    async fn unknown_channel_loads_empty() {
        let backend = MemoryPersistence::new();
        let data = backend.load_channel("nope").await.unwrap();
        assert_eq!(data, ChannelData::empty());
    }

    #[tokio::test]
    async fn history_is_ordered_by_lamport_then_id() {
        let backend = MemoryPersistence::new();
        backend
            .update_history("ch", &append(&[logged("b", 2), logged("z", 1)]))
            .await
            .unwrap();
        backend
            .update_history("ch", &append(&[logged("a", 2), logged("c", 0)]))
            .await
            .unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(ids(&data), ["c", "z", "a", "b"]);
        assert_eq!(data.meta, Some(ChannelMeta::empty()));
    }

    #[tokio::test]
    async fn evict_by_id_and_reappend_is_idempotent() {
        let backend = MemoryPersistence::new();
        let update = append(&[logged("a", 1), logged("b", 2), logged("c", 3)]);
        backend.update_history("ch", &update).await.unwrap();
        backend.update_history("ch", &update).await.unwrap();
        backend
            .update_history(
                "ch",
                &HistoryUpdate {
                    append: vec![logged("d", 4)],
                    evict: vec!["b".into(), "unknown".into()],
                },
            )
            .await
            .unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(ids(&data), ["a", "c", "d"]);
    }

    #[tokio::test]
    async fn hints_live_on_the_entry() {
        let backend = MemoryPersistence::new();
        backend
            .update_history("ch", &append(&[logged("a", 1)]))
            .await
            .unwrap();
        backend
            .set_retrieval_hint("ch", "a", b"hash-a")
            .await
            .unwrap();
        backend
            .set_retrieval_hint("ch", "ghost", b"x")
            .await
            .unwrap();
        backend
            .set_retrieval_hint("other", "a", b"x")
            .await
            .unwrap();
        // Re-appending without a hint keeps the stored one.
        backend
            .update_history("ch", &append(&[logged("a", 1)]))
            .await
            .unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(ids(&data), ["a"]);
        assert_eq!(
            data.history[0].retrieval_hint.as_deref(),
            Some(&b"hash-a"[..])
        );
        assert_eq!(backend.channels().unwrap(), ["ch"]);

        backend
            .update_history(
                "ch",
                &HistoryUpdate {
                    append: vec![],
                    evict: vec!["a".into()],
                },
            )
            .await
            .unwrap();
        backend
            .update_history("ch", &append(&[logged("a", 1)]))
            .await
            .unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(data.history[0].retrieval_hint, None);
    }

    #[tokio::test]
    async fn namespaces_are_isolated_and_shared_by_name() {
        let store = MemoryStore::new();
        let a = store.namespace("node-a");
        let b = store.namespace("node-b");
        a.save_channel_meta("ch", &meta(7)).await.unwrap();
        a.update_history("ch", &append(&[logged("m", 1)]))
            .await
            .unwrap();
        assert_eq!(b.load_channel("ch").await.unwrap(), ChannelData::empty());

        let a_again = store.namespace("node-a");
        let data = a_again.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(7)));
        assert_eq!(ids(&data), ["m"]);
        assert_eq!(store.namespaces().unwrap(), ["node-a"]);

        b.drop_channel("ch").await.unwrap();
        assert_eq!(a.load_channel("ch").await.unwrap().history.len(), 1);
        a.drop_channel("ch").await.unwrap();
        a.drop_channel("ch").await.unwrap();
        assert_eq!(a.load_channel("ch").await.unwrap(), ChannelData::empty());
        assert!(store.namespaces().unwrap().is_empty());
    }

    /// Keeping and returning a snapshot copies no buffered message: what comes back shares
    /// the saved snapshot's chunks, and so its encoded messages.
    #[tokio::test]
    async fn kept_snapshot_shares_buffered_messages() {
        let backend = MemoryPersistence::new();
        let saved = meta(4);
        backend.commit("ch", Some(&saved), None).await.unwrap();
        let loaded = backend.load_channel("ch").await.unwrap().meta.unwrap();
        assert_eq!(loaded, saved);
        assert_eq!(saved.outgoing.chunks().len(), 1);
        assert!(std::sync::Arc::ptr_eq(
            &loaded.outgoing.chunks()[0],
            &saved.outgoing.chunks()[0]
        ));
    }

    #[tokio::test]
    async fn save_replaces_whole_snapshot() {
        let backend = MemoryPersistence::new();
        backend.save_channel_meta("ch", &meta(3)).await.unwrap();
        backend
            .save_channel_meta("ch", &ChannelMeta::empty())
            .await
            .unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(ChannelMeta::empty()));
    }

    #[tokio::test]
    async fn unknown_schema_version_is_refused_on_load() {
        let backend = MemoryPersistence::new();
        let future = ChannelMeta {
            schema_version: SCHEMA_VERSION + 1,
            ..ChannelMeta::empty()
        };
        backend.save_channel_meta("ch", &future).await.unwrap();
        let err = backend.load_channel("ch").await.unwrap_err();
        assert!(matches!(
            err,
            PersistenceError::UnsupportedSchema { found, supported }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
        ));
    }

    #[tokio::test]
    async fn commit_applies_both_parts() {
        let backend = MemoryPersistence::new();
        backend
            .commit(
                "ch",
                Some(&meta(9)),
                Some(&append(&[logged("a", 1), logged("b", 2)])),
            )
            .await
            .unwrap();
        backend
            .commit(
                "ch",
                None,
                Some(&HistoryUpdate {
                    append: vec![],
                    evict: vec!["a".into()],
                }),
            )
            .await
            .unwrap();
        backend.commit("ch", None, None).await.unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(9)));
        assert_eq!(ids(&data), ["b"]);
    }

    #[tokio::test]
    async fn aborted_commit_applies_nothing() {
        let backend = MemoryPersistence::new();
        backend
            .commit("ch", Some(&meta(1)), Some(&append(&[logged("a", 1)])))
            .await
            .unwrap();
        let before = backend.load_channel("ch").await.unwrap();

        backend.abort_next_commit_after_meta();
        let err = backend
            .commit(
                "ch",
                Some(&meta(2)),
                Some(&HistoryUpdate {
                    append: vec![logged("b", 2)],
                    evict: vec!["a".into()],
                }),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, PersistenceError::Unavailable { .. }));
        assert_eq!(backend.load_channel("ch").await.unwrap(), before);

        // The hook fires once.
        backend
            .commit("ch", Some(&meta(2)), Some(&append(&[logged("b", 2)])))
            .await
            .unwrap();
        let data = backend.load_channel("ch").await.unwrap();
        assert_eq!(data.meta, Some(meta(2)));
        assert_eq!(ids(&data), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_newer_claim_fences_the_older_instance_only() {
        let store = MemoryStore::new();
        let old = store.namespace("node");
        let new = store.namespace("node");
        let other = store.namespace("other");
        assert_eq!(old.claim_writer().await.unwrap(), Some(WriterEpoch::new(1)));
        assert_eq!(
            other.claim_writer().await.unwrap(),
            Some(WriterEpoch::new(1))
        );
        old.commit("ch", Some(&meta(1)), None).await.unwrap();
        assert_eq!(new.claim_writer().await.unwrap(), Some(WriterEpoch::new(2)));

        let err = old
            .commit("ch", Some(&meta(9)), Some(&append(&[logged("a", 1)])))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            PersistenceError::Fenced { held, current }
                if held.get() == 1 && current.get() == 2
        ));
        let stored = new.load_channel("ch").await.unwrap();
        assert_eq!(stored.meta, Some(meta(1)));
        assert!(stored.history.is_empty());
        // The clone shares the stale claim; the new claim writes; other namespaces and
        // instances that never claimed are not fenced.
        assert!(old.clone().drop_channel("ch").await.is_err());
        new.commit("ch", Some(&meta(2)), None).await.unwrap();
        other.commit("ch", Some(&meta(3)), None).await.unwrap();
        store
            .namespace("node")
            .save_channel_meta("tool", &meta(4))
            .await
            .unwrap();
        assert_eq!(new.channels().unwrap(), ["ch", "tool"]);
    }

    #[tokio::test]
    async fn emptied_channel_is_forgotten() {
        let backend = MemoryPersistence::new();
        backend
            .update_history("ch", &append(&[logged("a", 1)]))
            .await
            .unwrap();
        backend
            .update_history(
                "ch",
                &HistoryUpdate {
                    append: vec![],
                    evict: vec!["a".into()],
                },
            )
            .await
            .unwrap();
        assert!(backend.channels().unwrap().is_empty());
        assert_eq!(
            backend.load_channel("ch").await.unwrap(),
            ChannelData::empty()
        );
    }
}
