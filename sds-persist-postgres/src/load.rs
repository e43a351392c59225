//! Reads: loading a channel for bootstrap in one statement.

use sds_codec::storage::{ChannelData, ChannelMeta, decode_channel_meta, decode_logged_message};
use sds_core::persistence::PersistenceError;
use sds_core::persistence::order::lamport_from_i64;
use sqlx::Row;

use crate::PostgresPersistence;

/// Loads a channel's snapshot and history (oldest first, by (lamport, message id)) with one
/// statement, so both come from one snapshot of the database: a concurrent commit is seen
/// whole or not at all.
pub(crate) async fn load_channel(
    this: &PostgresPersistence,
    channel: &str,
) -> Result<ChannelData, PersistenceError> {
    let what = format!("load of channel {channel:?}");
    let rows = this
        .attempt(&what, || {
            sqlx::query(&this.statements().load)
                .bind(this.namespace_bytes())
                .bind(channel.as_bytes())
                .fetch_all(this.pool())
        })
        .await?;
    let column = |err: sqlx::Error| PersistenceError::other_from(format!("{what}: {err}"), err);
    let mut meta = None;
    let mut history = Vec::with_capacity(rows.len());
    for row in rows {
        let part: i32 = row.try_get("part").map_err(column)?;
        let bytes: Vec<u8> = row.try_get("bytes").map_err(column)?;
        if part == 0 {
            meta =
                Some(decode_channel_meta(&bytes).map_err(|err| {
                    match PersistenceError::from(err) {
                        PersistenceError::Corrupt { message } => PersistenceError::corrupt(
                            format!("snapshot of channel {channel:?}: {message}"),
                        ),
                        other => other,
                    }
                })?);
            continue;
        }
        let id: Vec<u8> = row.try_get("message_id").map_err(column)?;
        let lamport = lamport_from_i64(row.try_get("lamport").map_err(column)?);
        let hint: Option<Vec<u8>> = row.try_get("hint").map_err(column)?;
        let mut logged = decode_logged_message(&bytes).map_err(|err| {
            PersistenceError::corrupt(format!(
                "history row {:?} (lamport {lamport}) of channel {channel:?}: {err}",
                String::from_utf8_lossy(&id)
            ))
        })?;
        if logged.message_id().as_bytes() != id || logged.lamport() != lamport {
            return Err(PersistenceError::corrupt(format!(
                "history row {:?} (lamport {lamport}) of channel {channel:?} holds message {:?} \
                 (lamport {})",
                String::from_utf8_lossy(&id),
                logged.message_id(),
                logged.lamport()
            )));
        }
        // The hint lives in its own column; a row written by an older layout may carry it
        // inside the message instead.
        if hint.is_some() {
            logged.retrieval_hint = hint;
        }
        history.push(logged);
    }
    Ok(ChannelData {
        meta: Some(meta.unwrap_or_else(ChannelMeta::empty)),
        history,
    })
}
