//! Reads: a whole channel from one atomic script, checked and decoded.

use std::collections::HashMap;

use redis::Value;
use sds_codec::storage::{ChannelData, ChannelMeta, decode_channel_meta, decode_logged_message};
use sds_core::persistence::PersistenceError;

use crate::keys::split_lamport;

/// What the load script returns: the snapshot, the order index, the history hash and the
/// hints hash, read at one instant.
pub(crate) type RawChannel = (Option<Vec<u8>>, Vec<Vec<u8>>, Vec<Value>, Vec<Value>);

/// A flat `HGETALL` reply as a map.
fn flat_hash(
    channel: &str,
    what: &str,
    flat: Vec<Value>,
) -> Result<HashMap<Vec<u8>, Vec<u8>>, PersistenceError> {
    let mut map = HashMap::with_capacity(flat.len() / 2);
    let mut items = flat.into_iter();
    while let Some(field) = items.next() {
        let (Value::BulkString(field), Some(Value::BulkString(value))) = (field, items.next())
        else {
            return Err(PersistenceError::corrupt(format!(
                "the {what} of channel {channel:?} came back malformed"
            )));
        };
        map.insert(field, value);
    }
    Ok(map)
}

/// Checks and decodes what the load script read. History comes in the order index's order,
/// (lamport, id) by bytes; every index entry must have its row, every row its index entry,
/// and the row must hold the message and timestamp it is filed under.
pub(crate) fn decode(channel: &str, raw: RawChannel) -> Result<ChannelData, PersistenceError> {
    let (meta, order, bodies, hints) = raw;
    let meta = match meta {
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
    let mut bodies = flat_hash(channel, "history", bodies)?;
    let hints = flat_hash(channel, "hints", hints)?;
    let mut history = Vec::with_capacity(order.len());
    for member in order {
        let Some((lamport, id)) = split_lamport(&member) else {
            return Err(PersistenceError::corrupt(format!(
                "malformed order entry in channel {channel:?}: {member:x?}"
            )));
        };
        let shown = String::from_utf8_lossy(id).into_owned();
        let Some(value) = bodies.remove(id) else {
            return Err(PersistenceError::corrupt(format!(
                "history entry {shown:?} (lamport {lamport}) of channel {channel:?} has no row"
            )));
        };
        let Some((stored_lamport, row)) = split_lamport(&value).filter(|(l, _)| *l == lamport)
        else {
            return Err(PersistenceError::corrupt(format!(
                "history row {shown:?} of channel {channel:?} is not filed at lamport {lamport}"
            )));
        };
        let mut message = decode_logged_message(row).map_err(|err| {
            PersistenceError::corrupt(format!(
                "history row {shown:?} (lamport {lamport}) of channel {channel:?}: {err}"
            ))
        })?;
        if message.message_id().as_bytes() != id || message.lamport() != stored_lamport {
            return Err(PersistenceError::corrupt(format!(
                "history row {shown:?} (lamport {lamport}) of channel {channel:?} holds message \
                 {:?} (lamport {})",
                message.message_id(),
                message.lamport()
            )));
        }
        if let Some(hint) = hints.get(id) {
            message.retrieval_hint = Some(hint.clone());
        }
        history.push(message);
    }
    if let Some(id) = bodies.keys().next() {
        return Err(PersistenceError::corrupt(format!(
            "history row {:?} of channel {channel:?} is missing from the order index",
            String::from_utf8_lossy(id)
        )));
    }
    Ok(ChannelData {
        meta: Some(meta),
        history,
    })
}
