//! Writes: the op-end commit, dropping a channel, retrieval hints. Each is one statement.

use std::collections::{HashMap, HashSet};

use sds_codec::storage::{ChannelMeta, HistoryUpdate, LoggedMessage, encode_logged_message};
use sds_core::persistence::PersistenceError;
use sds_core::persistence::order::lamport_to_i64;

use crate::PostgresPersistence;
use crate::fence;

/// One commit reduced to what the statement applies: no id in two lists, none twice in
/// one (a statement may not change one row twice), and the outcome the contract gives the
/// batch applied in order (evictions, then appends).
#[derive(Debug, Default)]
pub(crate) struct PlannedCommit {
    /// The enveloped snapshot, if the commit saves one.
    pub(crate) meta: Option<Vec<u8>>,
    /// Evicted ids that no append of the batch brings back.
    pub(crate) delete_ids: Vec<Vec<u8>>,
    /// The rows to upsert, one per appended id: the last append of the id wins.
    pub(crate) ids: Vec<Vec<u8>>,
    pub(crate) lamports: Vec<i64>,
    /// Enveloped `LoggedMessage`s, stored without their hint (it has its own column).
    pub(crate) messages: Vec<Vec<u8>>,
    /// The hint each row ends with, as far as the batch knows; `None` keeps the stored one
    /// unless the id is in `forget_hint_ids`.
    pub(crate) hints: Vec<Option<Vec<u8>>>,
    /// Appended ids the batch evicted first: their stored hint is gone.
    pub(crate) forget_hint_ids: Vec<Vec<u8>>,
}

/// Reduces a commit to its statement's parameters; `None` when there is nothing to write.
///
/// A re-append within the batch keeps the hint an earlier append of the same id carried,
/// unless it carries one itself, exactly as if the appends were applied one by one.
pub(crate) fn plan(
    channel: &str,
    meta: Option<&ChannelMeta>,
    history: Option<&HistoryUpdate>,
) -> Result<Option<PlannedCommit>, PersistenceError> {
    let history = history.filter(|update| !update.is_empty());
    if meta.is_none() && history.is_none() {
        return Ok(None);
    }
    let mut planned = PlannedCommit {
        meta: meta.map(sds_codec::storage::encode_channel_meta),
        ..PlannedCommit::default()
    };
    let Some(history) = history else {
        return Ok(Some(planned));
    };
    let mut row_of: HashMap<&str, usize> = HashMap::new();
    for entry in &history.append {
        let Some(message) = &entry.message else {
            return Err(PersistenceError::other(format!(
                "commit of channel {channel:?}: a history entry holds no message"
            )));
        };
        let id = message.message_id.as_str();
        let encoded = encode_logged_message(&LoggedMessage {
            message: Some(message.clone()),
            retrieval_hint: None,
        });
        let lamport = lamport_to_i64(entry.lamport());
        match row_of.get(id) {
            Some(&row) => {
                planned.lamports[row] = lamport;
                planned.messages[row] = encoded;
                if entry.retrieval_hint.is_some() {
                    planned.hints[row] = entry.retrieval_hint.clone();
                }
            }
            None => {
                row_of.insert(id, planned.ids.len());
                planned.ids.push(id.as_bytes().to_vec());
                planned.lamports.push(lamport);
                planned.messages.push(encoded);
                planned.hints.push(entry.retrieval_hint.clone());
            }
        }
    }
    let mut evicted = HashSet::new();
    for id in &history.evict {
        if !evicted.insert(id.as_str()) {
            continue;
        }
        if row_of.contains_key(id.as_str()) {
            planned.forget_hint_ids.push(id.as_bytes().to_vec());
        } else {
            planned.delete_ids.push(id.as_bytes().to_vec());
        }
    }
    Ok(Some(planned))
}

/// Runs the commit statement (one round trip).
pub(crate) async fn commit(
    this: &PostgresPersistence,
    channel: &str,
    planned: PlannedCommit,
) -> Result<(), PersistenceError> {
    let what = format!("commit of channel {channel:?}");
    let row = this
        .attempt(&what, || {
            sqlx::query(&this.statements().commit)
                .bind(this.namespace_bytes())
                .bind(channel.as_bytes())
                .bind(this.held_epoch())
                .bind(planned.meta.as_deref())
                .bind(&planned.delete_ids)
                .bind(&planned.ids)
                .bind(&planned.lamports)
                .bind(&planned.messages)
                .bind(&planned.hints)
                .bind(&planned.forget_hint_ids)
                .fetch_one(this.pool())
        })
        .await?;
    fence::check_outcome(this, channel, &row)
}

/// Deletes the channel's snapshot and history (one statement, so one transaction).
pub(crate) async fn drop_channel(
    this: &PostgresPersistence,
    channel: &str,
) -> Result<(), PersistenceError> {
    let what = format!("drop of channel {channel:?}");
    let row = this
        .attempt(&what, || {
            sqlx::query(&this.statements().drop_channel)
                .bind(this.namespace_bytes())
                .bind(channel.as_bytes())
                .bind(this.held_epoch())
                .fetch_one(this.pool())
        })
        .await?;
    fence::check_outcome(this, channel, &row)
}

/// Sets the hint column of a logged message; a message not in the history is ignored.
pub(crate) async fn set_retrieval_hint(
    this: &PostgresPersistence,
    channel: &str,
    message_id: Vec<u8>,
    hint: Vec<u8>,
) -> Result<(), PersistenceError> {
    let what = format!("retrieval hint in channel {channel:?}");
    let row = this
        .attempt(&what, || {
            sqlx::query(&this.statements().set_hint)
                .bind(this.namespace_bytes())
                .bind(channel.as_bytes())
                .bind(this.held_epoch())
                .bind(&message_id)
                .bind(&hint)
                .fetch_one(this.pool())
        })
        .await?;
    fence::check_outcome(this, channel, &row)
}

#[cfg(test)]
mod tests {
    use sds_codec::wire::SdsMessage;

    use super::*;

    fn logged(id: &str, lamport: u64, hint: Option<&[u8]>) -> LoggedMessage {
        LoggedMessage {
            message: Some(SdsMessage {
                message_id: id.into(),
                lamport_timestamp: Some(lamport),
                ..Default::default()
            }),
            retrieval_hint: hint.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn nothing_to_write_plans_nothing() {
        assert!(plan("c", None, None).unwrap().is_none());
        assert!(
            plan("c", None, Some(&HistoryUpdate::default()))
                .unwrap()
                .is_none()
        );
        let planned = plan("c", Some(&ChannelMeta::empty()), None)
            .unwrap()
            .unwrap();
        assert!(planned.meta.is_some() && planned.ids.is_empty());
    }

    #[test]
    fn a_batch_is_reduced_to_one_change_per_id() {
        let update = HistoryUpdate {
            append: vec![
                logged("a", 1, Some(b"h1")),
                logged("b", 2, None),
                logged("a", 3, None),
                logged("c", 4, None),
            ],
            evict: vec!["c".into(), "d".into(), "d".into()],
        };
        let planned = plan("ch", None, Some(&update)).unwrap().unwrap();
        assert_eq!(planned.ids, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(
            planned.lamports,
            [lamport_to_i64(3), lamport_to_i64(2), lamport_to_i64(4)]
        );
        // The re-append of "a" carries no hint: the earlier append's hint stays.
        assert_eq!(planned.hints, [Some(b"h1".to_vec()), None, None]);
        assert_eq!(planned.delete_ids, [b"d".to_vec()]);
        assert_eq!(planned.forget_hint_ids, [b"c".to_vec()]);
        let stored = sds_codec::storage::decode_logged_message(&planned.messages[0]).unwrap();
        assert_eq!(stored.lamport(), 3);
        assert_eq!(stored.retrieval_hint, None);
    }

    #[test]
    fn an_entry_without_a_message_is_refused() {
        let update = HistoryUpdate {
            append: vec![LoggedMessage::default()],
            evict: vec![],
        };
        let err = plan("ch", None, Some(&update)).unwrap_err();
        assert!(err.to_string().contains("holds no message"), "{err}");
    }
}
