//! What the whole database holds: every namespace and its stored channels, for operators.

use std::collections::BTreeMap;

use sds_core::persistence::PersistenceError;

use crate::RocksDbPersistence;
use crate::error::storage_error;
use crate::keys::{TAG_HISTORY, TAG_META, decode_channel_key, prefix_end};

impl RocksDbPersistence {
    /// Every namespace of the database with the channels stored in it (a snapshot or a
    /// history entry), whatever namespace this handle serves; namespaces and channels each
    /// sorted by their bytes, each once. Meant for operators and tools (`sds inspect`); a
    /// node lists its own channels with
    /// [`Persistence::list_channels`](sds_core::persistence::Persistence::list_channels).
    ///
    /// The scan costs one seek per stored channel, not one step per history row.
    pub async fn stored_namespaces(
        &self,
    ) -> Result<BTreeMap<String, Vec<String>>, PersistenceError> {
        self.run_blocking("stored_namespaces", scan).await
    }
}

fn scan(this: &RocksDbPersistence) -> Result<BTreeMap<String, Vec<String>>, PersistenceError> {
    let snapshot = this.db().snapshot();
    let mut found: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for tag in [TAG_META, TAG_HISTORY] {
        let mut rows = snapshot.raw_iterator();
        rows.seek([tag]);
        while rows.valid() {
            let Some(key) = rows.key() else { break };
            if key.first() != Some(&tag) {
                break;
            }
            let Some((_, namespace, channel, rest)) = decode_channel_key(key) else {
                return Err(PersistenceError::corrupt(format!(
                    "malformed key in the database: {key:x?}"
                )));
            };
            // Skip the channel's other rows: seek past its prefix (the key up to and
            // including its channel component).
            let next = prefix_end(&key[..key.len() - rest.len()]);
            found
                .entry(namespace.to_vec())
                .or_default()
                .push(channel.to_vec());
            match next {
                Some(next) => rows.seek(next),
                None => break,
            }
        }
        rows.status()
            .map_err(|err| storage_error("listing the stored channels", err))?;
    }
    let mut namespaces = BTreeMap::new();
    for (namespace, mut channels) in found {
        channels.sort();
        channels.dedup();
        let channels = channels
            .into_iter()
            .map(|channel| utf8("channel id", channel))
            .collect::<Result<Vec<_>, _>>()?;
        namespaces.insert(utf8("namespace", namespace)?, channels);
    }
    Ok(namespaces)
}

fn utf8(what: &str, bytes: Vec<u8>) -> Result<String, PersistenceError> {
    String::from_utf8(bytes).map_err(|err| {
        PersistenceError::corrupt(format!(
            "a stored {what} is not UTF-8: {:x?}",
            err.as_bytes()
        ))
    })
}
