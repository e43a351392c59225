//! A byte-level reference backend for the crate's own tests, with switchable defects.
//!
//! It stores what real backends store (the storage codec's bytes: one snapshot blob and
//! one row per history entry), so it offers every capability, raw corruption included.
//! Healthy, it must pass the whole suite; with a [`Defect`] it reproduces a bug real
//! backends could have, and the suite must catch it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use sds_codec::storage::{
    ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage, decode_channel_meta,
    decode_logged_message, encode_channel_meta, encode_logged_message,
};
use sds_persist_conformance::sds_core::persistence::{BackendCapabilities, WriterEpoch};
use sds_persist_conformance::{Capabilities, Harness, HarnessError, Persistence, PersistenceError};

/// A bug to build into the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Load returns the history in arrival order (what nim-sds does).
    InsertionOrderHistory,
    /// Drop wipes the snapshot and leaves the history behind.
    DropLeavesHistory,
    /// Commit applies the snapshot and silently drops the history batch.
    CommitSkipsHistory,
    /// The mid-commit abort happens after the snapshot was written (no transaction).
    NonAtomicCommit,
    /// Saving a snapshot appends its buffers to the stored ones.
    SaveMerges,
    /// Loading a channel never saved fails instead of returning empty data.
    UnknownChannelIsError,
    /// Siblings share one namespace.
    SharedNamespaces,
    /// Evictions do nothing.
    EvictIgnored,
    /// Every append adds a row, even for an id already stored.
    AppendNotIdempotent,
    /// Re-appending an id at a new Lamport timestamp leaves the old row behind.
    StaleRowOnMove,
    /// Hints are accepted and dropped.
    HintsLost,
    /// Hints live apart from their row and outlive its eviction.
    HintsOutliveEviction,
    /// History is ordered by the Lamport timestamp read as a signed 64-bit integer.
    SignedLamport,
    /// A load also returns the history of channels whose names start with the channel's.
    PrefixChannels,
    /// History rows that fail to decode are skipped.
    CorruptRowsSkipped,
    /// A snapshot of an unknown schema version loads as an empty one.
    UnknownSchemaLoadsEmpty,
    /// Drop also wipes every other channel whose name starts with the channel's.
    PrefixDrop,
    /// Commit writes the snapshot and the history under separate locks (the trait's
    /// non-atomic default). The window between them is widened so the bug shows
    /// deterministically: it stays open until some load ran, or for 500 yields.
    SplitCommit,
    /// A load that cannot reach the server returns empty data instead of an error (a
    /// client that maps "connection refused" to "no such key").
    UnreachableLoadsEmpty,
    /// Ids at one Lamport timestamp sort by a locale collation (case-insensitive and
    /// accent-folding, bytes breaking ties), as a PostgreSQL `text` column with a locale
    /// collation would sort them, instead of by bytes.
    CollatedIds,
    /// History is ordered by the Lamport timestamp as an `f64` (a Redis sorted-set score),
    /// exact only up to 2^53: larger timestamps round, and those rounding together sort
    /// by id.
    FloatLamport,
    /// Claims return epochs, but writes never compare them with the namespace's (a backend
    /// that stores the epoch and forgets to check it in the write's transaction).
    IgnoresFence,
    /// Each instance numbers its own claims from 1 (an epoch kept in the process, not in
    /// the storage), so a restarted writer's claim equals the stale writer's.
    EpochNotShared,
}

/// A locale collation's sort key: lower case, accents folded, so `"A"` sorts with `"a"`
/// (after `"_"`, where bytes put it before) and `"ä"` with `"a"` (where bytes put it after
/// every ASCII id).
fn collation_key(id: &str) -> String {
    id.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            other => other,
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Row {
    lamport: u64,
    id: String,
    bytes: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
struct Channel {
    meta: Option<Vec<u8>>,
    /// In arrival order; sorted on load.
    rows: Vec<Row>,
    /// Only with [`Defect::HintsOutliveEviction`].
    loose_hints: HashMap<String, Vec<u8>>,
}

/// (namespace, channel) -> what is stored.
type Channels = HashMap<(String, String), Channel>;
type Store = Arc<Mutex<Channels>>;

/// The reference backend: one namespace of a shared byte store.
#[derive(Debug, Clone)]
pub struct BytesBackend {
    store: Store,
    namespace: String,
    defect: Option<Defect>,
    unreachable: bool,
    abort_next_commit: Arc<AtomicBool>,
    /// Loads served by the whole store (for [`Defect::SplitCommit`]).
    loads: Arc<AtomicU64>,
    /// Namespace -> its writer epoch, shared by the whole store; locked only under `store`.
    fences: Arc<Mutex<HashMap<String, u64>>>,
    /// The epoch this instance claimed (0: never claimed); shared by its clones.
    claimed: Arc<AtomicU64>,
}

impl BytesBackend {
    /// Refuses a write of a superseded writer; call with the store lock held.
    fn check_fence(&self) -> Result<(), PersistenceError> {
        let held = self.claimed.load(Ordering::SeqCst);
        if held == 0 || self.has(Defect::IgnoresFence) {
            return Ok(());
        }
        let current = self
            .fences
            .lock()
            .unwrap()
            .get(&self.namespace)
            .copied()
            .unwrap_or(0);
        if current == held {
            Ok(())
        } else {
            Err(PersistenceError::fenced(
                WriterEpoch::new(held),
                WriterEpoch::new(current),
            ))
        }
    }

    fn has(&self, defect: Defect) -> bool {
        self.defect == Some(defect)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Channels>, PersistenceError> {
        if self.unreachable {
            return Err(PersistenceError::unavailable(
                "connection refused: 127.0.0.1:1 (reference backend, unreachable)",
            ));
        }
        Ok(self.store.lock().unwrap())
    }

    fn key(&self, channel: &str) -> (String, String) {
        (self.namespace.clone(), channel.to_string())
    }

    fn apply_meta(&self, stored: &mut Channel, meta: &ChannelMeta) {
        if self.has(Defect::SaveMerges)
            && let Some(old) = stored
                .meta
                .as_deref()
                .and_then(|bytes| decode_channel_meta(bytes).ok())
        {
            let mut merged = old;
            merged.lamport = meta.lamport;
            merged.outgoing.extend(meta.outgoing.iter().cloned());
            merged.incoming.extend(meta.incoming.iter().cloned());
            merged
                .outgoing_repairs
                .extend(meta.outgoing_repairs.iter().cloned());
            merged
                .incoming_repairs
                .extend(meta.incoming_repairs.iter().cloned());
            stored.meta = Some(encode_channel_meta(&merged));
            return;
        }
        stored.meta = Some(encode_channel_meta(meta));
    }

    fn apply_history(&self, stored: &mut Channel, update: &HistoryUpdate) {
        // The contract's order: evictions, then appends.
        if !self.has(Defect::EvictIgnored) {
            for id in &update.evict {
                stored.rows.retain(|row| row.id != *id);
            }
        }
        for entry in &update.append {
            let id = entry.message_id().to_string();
            let lamport = entry.lamport();
            let mut entry = entry.clone();
            if !self.has(Defect::AppendNotIdempotent) {
                let stale_ok = self.has(Defect::StaleRowOnMove);
                let mut old_hint = None;
                stored.rows.retain(|row| {
                    let same = row.id == id && (!stale_ok || row.lamport == lamport);
                    if same {
                        old_hint = decode_logged_message(&row.bytes)
                            .ok()
                            .and_then(|old| old.retrieval_hint);
                    }
                    !same
                });
                if entry.retrieval_hint.is_none() {
                    entry.retrieval_hint = old_hint;
                }
            }
            stored.rows.push(Row {
                lamport,
                id,
                bytes: encode_logged_message(&entry),
            });
        }
    }

    fn decode_history(&self, rows: &[Row]) -> Result<Vec<LoggedMessage>, PersistenceError> {
        let mut history = Vec::new();
        for row in rows {
            match decode_logged_message(&row.bytes) {
                Ok(entry) => history.push((row.lamport, entry)),
                Err(_) if self.has(Defect::CorruptRowsSkipped) => {}
                Err(err) => {
                    return Err(PersistenceError::corrupt(format!(
                        "history row {:?}: {err}",
                        row.id
                    )));
                }
            }
        }
        if !self.has(Defect::InsertionOrderHistory) {
            if self.has(Defect::SignedLamport) {
                history.sort_by(|(la, a), (lb, b)| {
                    ((*la as i64), a.message_id()).cmp(&((*lb as i64), b.message_id()))
                });
            } else if self.has(Defect::CollatedIds) {
                history.sort_by(|(la, a), (lb, b)| {
                    let key = |id: &str| (collation_key(id), id.to_string());
                    (la, key(a.message_id())).cmp(&(lb, key(b.message_id())))
                });
            } else if self.has(Defect::FloatLamport) {
                history.sort_by(|(la, a), (lb, b)| {
                    let score = |lamport: u64| lamport as f64;
                    score(*la)
                        .total_cmp(&score(*lb))
                        .then_with(|| a.message_id().cmp(b.message_id()))
                });
            } else {
                history.sort_by(|(la, a), (lb, b)| (la, a.message_id()).cmp(&(lb, b.message_id())));
            }
        }
        Ok(history.into_iter().map(|(_, entry)| entry).collect())
    }
}

#[async_trait]
impl Persistence for BytesBackend {
    /// The writer fence, atomic commit and listing, declared so their cases run.
    fn capabilities(&self) -> BackendCapabilities {
        BackendCapabilities::CONSERVATIVE
            .with_fencing(true)
            .with_atomic_commit(true)
            .with_list_channels(true)
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        let store = self.lock()?;
        let mut channels: Vec<String> = store
            .iter()
            .filter(|((namespace, _), stored)| {
                *namespace == self.namespace && (stored.meta.is_some() || !stored.rows.is_empty())
            })
            .map(|((_, channel), _)| channel.clone())
            .collect();
        channels.sort();
        Ok(channels)
    }

    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        let _writes = self.lock()?;
        let mut fences = self.fences.lock().unwrap();
        let epoch = if self.has(Defect::EpochNotShared) {
            self.claimed.load(Ordering::SeqCst) + 1
        } else {
            fences.get(&self.namespace).copied().unwrap_or(0) + 1
        };
        fences.insert(self.namespace.clone(), epoch);
        self.claimed.store(epoch, Ordering::SeqCst);
        Ok(Some(WriterEpoch::new(epoch)))
    }

    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        let mut store = self.lock()?;
        self.check_fence()?;
        let stored = store.entry(self.key(channel)).or_default();
        self.apply_meta(stored, meta);
        Ok(())
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        let mut store = self.lock()?;
        self.check_fence()?;
        let stored = store.entry(self.key(channel)).or_default();
        self.apply_history(stored, update);
        Ok(())
    }

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        if self.unreachable && self.has(Defect::UnreachableLoadsEmpty) {
            return Ok(ChannelData::empty());
        }
        let store = self.lock()?;
        self.loads.fetch_add(1, Ordering::SeqCst);
        let mut rows = Vec::new();
        let mut hints = HashMap::new();
        let stored = store.get(&self.key(channel));
        if self.has(Defect::PrefixChannels) {
            for ((namespace, name), other) in store.iter() {
                if *namespace == self.namespace && name.starts_with(channel) {
                    rows.extend(other.rows.iter().cloned());
                }
            }
        } else if let Some(stored) = stored {
            rows = stored.rows.clone();
            hints = stored.loose_hints.clone();
        }
        if stored.is_none() && rows.is_empty() {
            if self.has(Defect::UnknownChannelIsError) {
                return Err(PersistenceError::other(format!("no channel {channel:?}")));
            }
            return Ok(ChannelData::empty());
        }
        let meta = match stored.and_then(|stored| stored.meta.as_deref()) {
            None => ChannelMeta::empty(),
            Some(bytes) => match decode_channel_meta(bytes) {
                Ok(meta) => meta,
                Err(sds_codec::CodecError::UnsupportedSchema { .. })
                    if self.has(Defect::UnknownSchemaLoadsEmpty) =>
                {
                    ChannelMeta::empty()
                }
                Err(err) => return Err(err.into()),
            },
        };
        let mut history = self.decode_history(&rows)?;
        for entry in &mut history {
            if let Some(hint) = hints.get(entry.message_id()) {
                entry.retrieval_hint = Some(hint.clone());
            }
        }
        Ok(ChannelData {
            meta: Some(meta),
            history,
        })
    }

    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        let mut store = self.lock()?;
        self.check_fence()?;
        if self.has(Defect::DropLeavesHistory) {
            if let Some(stored) = store.get_mut(&self.key(channel)) {
                stored.meta = None;
            }
        } else if self.has(Defect::PrefixDrop) {
            store.retain(|(namespace, name), _| {
                !(*namespace == self.namespace && name.starts_with(channel))
            });
        } else {
            store.remove(&self.key(channel));
        }
        Ok(())
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        let mut store = self.lock()?;
        self.check_fence()?;
        if self.has(Defect::HintsLost) {
            return Ok(());
        }
        let Some(stored) = store.get_mut(&self.key(channel)) else {
            return Ok(());
        };
        if self.has(Defect::HintsOutliveEviction) {
            if stored.rows.iter().any(|row| row.id == message_id) {
                stored
                    .loose_hints
                    .insert(message_id.to_string(), hint.to_vec());
            }
            return Ok(());
        }
        for row in stored.rows.iter_mut().filter(|row| row.id == message_id) {
            let mut entry = decode_logged_message(&row.bytes)?;
            entry.retrieval_hint = Some(hint.to_vec());
            row.bytes = encode_logged_message(&entry);
        }
        Ok(())
    }

    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        let history = history.filter(|update| !update.is_empty());
        if self.has(Defect::SplitCommit) {
            if let Some(meta) = meta {
                self.save_channel_meta(channel, meta).await?;
            }
            let seen = self.loads.load(Ordering::SeqCst);
            for _ in 0..500 {
                if self.loads.load(Ordering::SeqCst) != seen {
                    break;
                }
                tokio::task::yield_now().await;
            }
            if let Some(history) = history {
                self.update_history(channel, history).await?;
            }
            return Ok(());
        }
        let mut store = self.lock()?;
        self.check_fence()?;
        let stored = store.entry(self.key(channel)).or_default();
        // Stage on a copy: the transaction.
        let mut staged = stored.clone();
        if let Some(meta) = meta {
            self.apply_meta(&mut staged, meta);
        }
        if history.is_some() && self.abort_next_commit.swap(false, Ordering::SeqCst) {
            if self.has(Defect::NonAtomicCommit) {
                *stored = staged;
            }
            return Err(PersistenceError::unavailable(
                "commit aborted after its meta",
            ));
        }
        if let Some(history) = history
            && !self.has(Defect::CommitSkipsHistory)
        {
            self.apply_history(&mut staged, history);
        }
        *stored = staged;
        Ok(())
    }
}

/// The harness of [`BytesBackend`]: every capability, optionally one defect.
#[derive(Debug, Clone, Default)]
pub struct BytesHarness {
    store: Store,
    fences: Arc<Mutex<HashMap<String, u64>>>,
    defect: Option<Defect>,
    next: Arc<AtomicU64>,
    loads: Arc<AtomicU64>,
}

impl BytesHarness {
    pub fn healthy() -> Self {
        BytesHarness::default()
    }

    pub fn with_defect(defect: Defect) -> Self {
        BytesHarness {
            defect: Some(defect),
            ..BytesHarness::default()
        }
    }

    fn backend(&self, namespace: String) -> BytesBackend {
        BytesBackend {
            store: self.store.clone(),
            namespace,
            defect: self.defect,
            unreachable: false,
            abort_next_commit: Arc::default(),
            loads: self.loads.clone(),
            fences: self.fences.clone(),
            claimed: Arc::default(),
        }
    }

    fn fresh(&self) -> String {
        format!("ns-{}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}

#[async_trait]
impl Harness for BytesHarness {
    type Backend = BytesBackend;

    fn name(&self) -> String {
        match self.defect {
            None => "reference".to_string(),
            Some(defect) => format!("reference with {defect:?}"),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn open(&self) -> Result<BytesBackend, HarnessError> {
        Ok(self.backend(self.fresh()))
    }

    async fn open_sibling(&self, of: &BytesBackend) -> Result<BytesBackend, HarnessError> {
        if self.defect == Some(Defect::SharedNamespaces) {
            return Ok(self.backend(of.namespace.clone()));
        }
        Ok(self.backend(self.fresh()))
    }

    async fn reopen(&self, of: &BytesBackend) -> Result<BytesBackend, HarnessError> {
        Ok(self.backend(of.namespace.clone()))
    }

    async fn write_raw_meta(
        &self,
        backend: &BytesBackend,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        let mut store = backend.store.lock().unwrap();
        store.entry(backend.key(channel)).or_default().meta = Some(bytes.to_vec());
        Ok(())
    }

    async fn write_raw_history_row(
        &self,
        backend: &BytesBackend,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), HarnessError> {
        let mut store = backend.store.lock().unwrap();
        let stored = store.entry(backend.key(channel)).or_default();
        stored.rows.retain(|row| row.id != message_id);
        stored.rows.push(Row {
            lamport,
            id: message_id.to_string(),
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    async fn open_unreachable(&self) -> Result<BytesBackend, HarnessError> {
        Ok(BytesBackend {
            unreachable: true,
            ..self.backend(self.fresh())
        })
    }

    async fn abort_next_commit_after_meta(
        &self,
        backend: &BytesBackend,
    ) -> Result<(), HarnessError> {
        backend.abort_next_commit.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn cleanup(&self, backend: &BytesBackend) -> Result<(), HarnessError> {
        let mut store = backend.store.lock().unwrap();
        store.retain(|(namespace, _), _| *namespace != backend.namespace);
        Ok(())
    }
}
