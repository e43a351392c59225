//! Reads: loading a channel for bootstrap from one consistent snapshot of the database.

use rocksdb::{IteratorMode, ReadOptions};
use sds_codec::storage::{ChannelData, ChannelMeta, decode_channel_meta, decode_logged_message};
use sds_core::persistence::PersistenceError;

use crate::RocksDbPersistence;
use crate::error::storage_error;
use crate::keys::prefix_end;

/// Loads a channel's snapshot and history (oldest first, by (lamport, message id)). Both are
/// read from one RocksDB snapshot, so a concurrent commit is seen whole or not at all.
pub(crate) fn load_channel(
    this: &RocksDbPersistence,
    channel: &str,
) -> Result<ChannelData, PersistenceError> {
    let keys = this.keys(channel);
    let read_error = |err| storage_error(&format!("load of channel {channel:?}"), err);
    let snapshot = this.db().snapshot();

    let meta = match snapshot.get(keys.meta()).map_err(read_error)? {
        Some(bytes) => {
            decode_channel_meta(&bytes).map_err(|err| match PersistenceError::from(err) {
                PersistenceError::Corrupt { message } => {
                    PersistenceError::corrupt(format!("snapshot of channel {channel:?}: {message}"))
                }
                other => other,
            })?
        }
        None => ChannelMeta::empty(),
    };

    let prefix = keys.history_prefix();
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(prefix.to_vec());
    if let Some(end) = prefix_end(prefix) {
        options.set_iterate_upper_bound(end);
    }
    let mut history = Vec::new();
    for item in snapshot.iterator_opt(IteratorMode::Start, options) {
        let (key, value) = item.map_err(read_error)?;
        let Some((lamport, id)) = keys.parse_history_key(&key) else {
            return Err(PersistenceError::corrupt(format!(
                "malformed history key in channel {channel:?}: {key:x?}"
            )));
        };
        let row = decode_logged_message(&value).map_err(|err| {
            PersistenceError::corrupt(format!(
                "history row {:?} (lamport {lamport}) of channel {channel:?}: {err}",
                String::from_utf8_lossy(id)
            ))
        })?;
        if row.message_id().as_bytes() != id || row.lamport() != lamport {
            return Err(PersistenceError::corrupt(format!(
                "history row {:?} (lamport {lamport}) of channel {channel:?} holds message {:?} \
                 (lamport {})",
                String::from_utf8_lossy(id),
                row.message_id(),
                row.lamport()
            )));
        }
        history.push(row);
    }

    Ok(ChannelData {
        meta: Some(meta),
        history,
    })
}
