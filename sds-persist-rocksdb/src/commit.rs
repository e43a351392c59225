//! Writes: the op-end commit (one write batch), dropping a channel, retrieval hints.
//!
//! Everything here blocks: it runs on the blocking thread pool, except commits without fsync,
//! which run on the calling task (see `RocksDbPersistence::commit`).

use std::collections::HashMap;

use rocksdb::{WriteBatch, WriteOptions};
use sds_codec::storage::{
    HistoryUpdate, LoggedMessage, decode_logged_message, encode_logged_message,
};
use sds_core::persistence::PersistenceError;

use crate::db::durable_write_options;
use crate::error::storage_error;
use crate::keys::{ChannelKeys, decode_lamport, encode_lamport, prefix_end};
use crate::{RocksDbPersistence, fence};

/// Commits one protocol operation: the encoded snapshot (if any) and the history batch (if
/// any), as one write batch written with `options`.
pub(crate) fn commit(
    this: &RocksDbPersistence,
    channel: &str,
    meta: Option<&[u8]>,
    history: Option<&HistoryUpdate>,
    options: &WriteOptions,
) -> Result<(), PersistenceError> {
    let keys = this.keys(channel);
    let mut batch = WriteBatch::default();
    let has_both_parts = meta.is_some() && history.is_some();
    if let Some(meta) = meta {
        batch.put(keys.meta(), meta);
    }
    if has_both_parts && this.take_commit_failure() {
        // Test hook: fail between the two halves of the transaction. Nothing staged so far
        // may reach the database.
        return Err(PersistenceError::unavailable(format!(
            "injected failure: commit of channel {channel:?} aborted after staging the snapshot"
        )));
    }
    if let Some(history) = history {
        // The contract's order: evictions, then appends (an id in both ends stored).
        let mut stager = HistoryStager::new(this, &keys, channel);
        for id in &history.evict {
            stager.evict(&mut batch, id)?;
        }
        for message in &history.append {
            stager.append(&mut batch, message)?;
        }
    }
    fence::write_batch(this, channel, "commit", batch, options)
}

/// Wipes a channel's snapshot, history and index in one fsynced write batch.
pub(crate) fn drop_channel(
    this: &RocksDbPersistence,
    channel: &str,
) -> Result<(), PersistenceError> {
    let keys = this.keys(channel);
    let mut batch = WriteBatch::default();
    batch.delete(keys.meta());
    for prefix in [keys.history_prefix(), keys.index_prefix()] {
        let end = prefix_end(prefix).ok_or_else(|| {
            // Channel prefixes start with an ASCII tag, so an end always exists.
            PersistenceError::other(format!(
                "no key range for the prefix of channel {channel:?}"
            ))
        })?;
        batch.delete_range(prefix, end.as_slice());
    }
    fence::write_batch(this, channel, "drop", batch, &durable_write_options(true))
}

/// Records a retrieval hint inside the history row of `message_id`; a message that is not
/// in the history is ignored.
pub(crate) fn set_retrieval_hint(
    this: &RocksDbPersistence,
    channel: &str,
    message_id: &str,
    hint: Vec<u8>,
) -> Result<(), PersistenceError> {
    let keys = this.keys(channel);
    let Some(lamport) = stored_lamport(this, &keys, channel, message_id.as_bytes())? else {
        tracing::debug!(
            channel,
            message_id,
            "retrieval hint for a message not in the history"
        );
        return Ok(());
    };
    let row_key = keys.history_key(lamport, message_id.as_bytes());
    let Some(bytes) = this
        .db()
        .get(&row_key)
        .map_err(|err| storage_error(&format!("read history of channel {channel:?}"), err))?
    else {
        tracing::warn!(
            channel,
            message_id,
            lamport,
            "index entry without a history row"
        );
        return Ok(());
    };
    let mut row = decode_logged_message(&bytes).map_err(|err| {
        PersistenceError::corrupt(format!(
            "history row {message_id:?} of channel {channel:?}: {err}"
        ))
    })?;
    row.retrieval_hint = Some(hint);
    let mut batch = WriteBatch::default();
    batch.put(&row_key, encode_logged_message(&row));
    fence::write_batch(
        this,
        channel,
        "retrieval hint",
        batch,
        &this.write_options(),
    )
}

/// The lamport of a message according to the channel's index, if it is logged.
fn stored_lamport(
    this: &RocksDbPersistence,
    keys: &ChannelKeys,
    channel: &str,
    id: &[u8],
) -> Result<Option<u64>, PersistenceError> {
    let Some(value) = this
        .db()
        .get(keys.index_key(id))
        .map_err(|err| storage_error(&format!("read index of channel {channel:?}"), err))?
    else {
        return Ok(None);
    };
    decode_lamport(&value).map(Some).ok_or_else(|| {
        PersistenceError::corrupt(format!(
            "index entry of message {:?} in channel {channel:?} has {} bytes, expected 8",
            String::from_utf8_lossy(id),
            value.len()
        ))
    })
}

/// A history row as this batch leaves it.
#[derive(Debug, Clone)]
struct StagedRow {
    lamport: u64,
    hint: Option<Vec<u8>>,
}

/// Stages appends and evictions of one history batch, answering "what is stored for this
/// id" from the rows staged earlier in the same batch first, then from the database (a write
/// batch cannot be read back).
struct HistoryStager<'a> {
    this: &'a RocksDbPersistence,
    keys: &'a ChannelKeys,
    channel: &'a str,
    /// `None`: evicted earlier in this batch.
    staged: HashMap<String, Option<StagedRow>>,
}

impl<'a> HistoryStager<'a> {
    fn new(this: &'a RocksDbPersistence, keys: &'a ChannelKeys, channel: &'a str) -> Self {
        HistoryStager {
            this,
            keys,
            channel,
            staged: HashMap::new(),
        }
    }

    fn lamport_of(&self, id: &str) -> Result<Option<u64>, PersistenceError> {
        match self.staged.get(id) {
            Some(staged) => Ok(staged.as_ref().map(|row| row.lamport)),
            None => stored_lamport(self.this, self.keys, self.channel, id.as_bytes()),
        }
    }

    /// The hint stored with message `id` at `lamport`. An unreadable old row has none: it is
    /// about to be overwritten, which repairs it.
    fn hint_of(&self, id: &str, lamport: u64) -> Result<Option<Vec<u8>>, PersistenceError> {
        if let Some(staged) = self.staged.get(id) {
            return Ok(staged.as_ref().and_then(|row| row.hint.clone()));
        }
        let key = self.keys.history_key(lamport, id.as_bytes());
        let Some(bytes) = self.this.db().get(key).map_err(|err| {
            storage_error(&format!("read history of channel {:?}", self.channel), err)
        })?
        else {
            return Ok(None);
        };
        match decode_logged_message(&bytes) {
            Ok(row) => Ok(row.retrieval_hint),
            Err(err) => {
                tracing::warn!(
                    channel = self.channel,
                    message_id = id,
                    %err,
                    "overwriting an undecodable history row"
                );
                Ok(None)
            }
        }
    }

    /// Appends a message. Appending an id that is already logged replaces its row (moving it
    /// if its lamport changed); a stored retrieval hint is kept unless the new row has one.
    fn append(
        &mut self,
        batch: &mut WriteBatch,
        message: &LoggedMessage,
    ) -> Result<(), PersistenceError> {
        let id = message.message_id();
        let lamport = message.lamport();
        let mut hint = message.retrieval_hint.clone();
        if let Some(old_lamport) = self.lamport_of(id)? {
            if hint.is_none() {
                hint = self.hint_of(id, old_lamport)?;
            }
            if old_lamport != lamport {
                batch.delete(self.keys.history_key(old_lamport, id.as_bytes()));
            }
        }
        let encoded = if hint.is_some() && message.retrieval_hint.is_none() {
            let mut with_hint = message.clone();
            with_hint.retrieval_hint = hint.clone();
            encode_logged_message(&with_hint)
        } else {
            encode_logged_message(message)
        };
        batch.put(self.keys.history_key(lamport, id.as_bytes()), encoded);
        batch.put(self.keys.index_key(id.as_bytes()), encode_lamport(lamport));
        self.staged
            .insert(id.to_owned(), Some(StagedRow { lamport, hint }));
        Ok(())
    }

    /// Evicts a message by id; an id that is not logged is a no-op. One index lookup finds
    /// the history row: no scan.
    fn evict(&mut self, batch: &mut WriteBatch, id: &str) -> Result<(), PersistenceError> {
        if let Some(lamport) = self.lamport_of(id)? {
            batch.delete(self.keys.history_key(lamport, id.as_bytes()));
            batch.delete(self.keys.index_key(id.as_bytes()));
            self.staged.insert(id.to_owned(), None);
        }
        Ok(())
    }
}
