//! Listing what is stored: one namespace's channels, and every namespace for tools.

use std::collections::BTreeMap;

use sds_core::persistence::PersistenceError;
use sqlx::Row;

use crate::PostgresPersistence;

/// The channels of this handle's namespace holding a snapshot or a history row, sorted by
/// their bytes, each once (one statement; one index probe per channel with history).
pub(crate) async fn list_channels(
    this: &PostgresPersistence,
) -> Result<Vec<String>, PersistenceError> {
    let what = format!("listing the channels of namespace {:?}", this.namespace());
    let channels: Vec<Vec<u8>> = this
        .attempt(&what, || {
            sqlx::query_scalar(&this.statements().list_channels)
                .bind(this.namespace_bytes())
                .fetch_all(this.pool())
        })
        .await?;
    channels
        .into_iter()
        .map(|channel| utf8("channel id", channel))
        .collect()
}

impl PostgresPersistence {
    /// Every namespace of the schema with the channels stored in it (a snapshot or a
    /// history entry), whatever namespace this handle serves; namespaces and channels each
    /// sorted by their bytes, each once. Meant for operators and tools (`sds inspect`): it
    /// reads every row's key, where a node lists its own channels with
    /// [`Persistence::list_channels`](sds_core::persistence::Persistence::list_channels).
    pub async fn stored_namespaces(
        &self,
    ) -> Result<BTreeMap<String, Vec<String>>, PersistenceError> {
        let rows = self
            .attempt("listing the stored namespaces", || {
                sqlx::query(&self.statements().stored_namespaces).fetch_all(self.pool())
            })
            .await?;
        let mut namespaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let column = |err: sqlx::Error| {
                PersistenceError::other_from("listing the stored namespaces", err)
            };
            let namespace: Vec<u8> = row.try_get("namespace").map_err(column)?;
            let channel: Vec<u8> = row.try_get("channel").map_err(column)?;
            // Rows come sorted by bytes, and byte order is str order: pushing keeps it.
            namespaces
                .entry(utf8("namespace", namespace)?)
                .or_default()
                .push(utf8("channel id", channel)?);
        }
        Ok(namespaces)
    }
}

fn utf8(what: &str, bytes: Vec<u8>) -> Result<String, PersistenceError> {
    String::from_utf8(bytes).map_err(|err| {
        PersistenceError::corrupt(format!(
            "a stored {what} is not UTF-8: {:x?}",
            err.as_bytes()
        ))
    })
}
