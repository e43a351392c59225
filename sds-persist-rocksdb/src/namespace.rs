//! One namespace as a whole: the channels stored in it.
//!
//! Everything here blocks and runs on the blocking thread pool.

use std::collections::BTreeSet;

use sds_core::persistence::PersistenceError;

use crate::RocksDbPersistence;
use crate::error::storage_error;
use crate::keys::{TAG_HISTORY, TAG_META, decode_channel_key, namespace_prefix, prefix_end};

/// The channels of this handle's namespace that hold a snapshot or a history row, sorted by
/// their bytes, each once, read from one snapshot of the database.
///
/// A channel with a thousand history rows costs one seek, not a thousand steps: after the
/// first key of a channel the scan seeks past the channel's prefix.
pub(crate) fn list_channels(this: &RocksDbPersistence) -> Result<Vec<String>, PersistenceError> {
    let snapshot = this.db().snapshot();
    let mut channels = BTreeSet::new();
    for tag in [TAG_META, TAG_HISTORY] {
        let prefix = namespace_prefix(tag, this.namespace().as_bytes());
        let mut rows = snapshot.raw_iterator();
        rows.seek(&prefix);
        while rows.valid() {
            let Some(key) = rows.key() else { break };
            if !key.starts_with(&prefix) {
                break;
            }
            // `tag lp(namespace)` is a prefix code: a key behind it is this namespace's.
            let Some((_, _, channel, rest)) = decode_channel_key(key) else {
                return Err(PersistenceError::corrupt(format!(
                    "malformed key in namespace {:?}: {key:x?}",
                    this.namespace()
                )));
            };
            let channel = String::from_utf8(channel.to_vec()).map_err(|err| {
                PersistenceError::corrupt(format!(
                    "a channel id stored in namespace {:?} is not UTF-8: {:x?}",
                    this.namespace(),
                    err.as_bytes()
                ))
            })?;
            channels.insert(channel);
            match prefix_end(&key[..key.len() - rest.len()]) {
                Some(next) => rows.seek(next),
                None => break,
            }
        }
        rows.status()
            .map_err(|err| storage_error("listing the stored channels", err))?;
    }
    Ok(channels.into_iter().collect())
}
