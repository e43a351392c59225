//! The local log: delivered messages ordered by (lamport, message id), capped FIFO.

use std::collections::{BTreeMap, HashMap};

use sds_codec::storage::LoggedMessage;
use sds_codec::wire::{HistoryEntry, SdsMessage};

/// One delivered message and what we know about fetching it.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    /// The message as delivered, without its bloom filter (it is never needed again and
    /// would make every stored history row ~18 KB at the default size).
    pub(crate) message: SdsMessage,
    pub(crate) retrieval_hint: Option<Vec<u8>>,
    /// Whether the hint provider was already asked in this process.
    pub(crate) hint_asked: bool,
}

impl LogEntry {
    pub(crate) fn to_history_entry(&self) -> HistoryEntry {
        HistoryEntry {
            message_id: self.message.message_id.clone(),
            retrieval_hint: self.retrieval_hint.clone(),
            sender_id: Some(self.message.sender_id.clone()),
        }
    }

    pub(crate) fn to_logged(&self) -> LoggedMessage {
        LoggedMessage {
            message: Some(self.message.clone()),
            retrieval_hint: self.retrieval_hint.clone(),
        }
    }
}

type LogKey = (u64, String);

/// Delivered messages in the RFC's order, with an id index so lookups and evictions by id
/// never scan.
#[derive(Debug, Default)]
pub(crate) struct LocalLog {
    entries: BTreeMap<LogKey, LogEntry>,
    lamport_of: HashMap<String, u64>,
}

impl LocalLog {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// (lamport, id) of the oldest entry.
    pub(crate) fn oldest_key(&self) -> Option<(u64, &str)> {
        self.entries
            .first_key_value()
            .map(|((lamport, id), _)| (*lamport, id.as_str()))
    }

    pub(crate) fn contains(&self, message_id: &str) -> bool {
        self.lamport_of.contains_key(message_id)
    }

    pub(crate) fn get(&self, message_id: &str) -> Option<&LogEntry> {
        let lamport = *self.lamport_of.get(message_id)?;
        self.entries.get(&(lamport, message_id.to_string()))
    }

    pub(crate) fn get_mut(&mut self, message_id: &str) -> Option<&mut LogEntry> {
        let lamport = *self.lamport_of.get(message_id)?;
        self.entries.get_mut(&(lamport, message_id.to_string()))
    }

    /// Inserts a message (its bloom filter stripped) and returns the ids evicted to stay
    /// within `capacity`, oldest first. The new message itself may be evicted if it is
    /// the oldest.
    pub(crate) fn insert(
        &mut self,
        mut message: SdsMessage,
        retrieval_hint: Option<Vec<u8>>,
        capacity: usize,
    ) -> Vec<String> {
        message.bloom_filter = None;
        let lamport = message.lamport_timestamp.unwrap_or(0);
        let id = message.message_id.clone();
        if let Some(old) = self.lamport_of.insert(id.clone(), lamport) {
            self.entries.remove(&(old, id.clone()));
        }
        self.entries.insert(
            (lamport, id),
            LogEntry {
                message,
                retrieval_hint,
                hint_asked: false,
            },
        );
        let mut evicted = Vec::new();
        while self.entries.len() > capacity {
            match self.entries.pop_first() {
                Some(((_, id), _)) => {
                    self.lamport_of.remove(&id);
                    evicted.push(id);
                }
                None => break,
            }
        }
        evicted
    }

    /// The newest `count` entries, oldest of them first.
    pub(crate) fn newest(&self, count: usize) -> Vec<&LogEntry> {
        // Walk from the newest end so the cost is `count`, not the log length.
        let mut newest: Vec<&LogEntry> = self.entries.values().rev().take(count).collect();
        newest.reverse();
        newest
    }

    /// Ids of the newest `count` entries, oldest of them first.
    pub(crate) fn newest_ids(&self, count: usize) -> Vec<String> {
        self.newest(count)
            .into_iter()
            .map(|entry| entry.message.message_id.clone())
            .collect()
    }

    /// Every entry, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.values()
    }

    pub(crate) fn max_lamport(&self) -> u64 {
        self.entries.last_key_value().map_or(0, |((l, _), _)| *l)
    }
}
