//! Converting a channel to and from its stored form.

use std::collections::BTreeMap;
use std::sync::Arc;

use sds_codec::storage::{
    ChannelData, ChannelMeta, IncomingEntry, IncomingRepairEntry, OutgoingEntry,
    OutgoingRepairEntry, SCHEMA_VERSION,
};

use super::{Channel, Incoming, IncomingRepair, Outgoing, OutgoingRepair, Settings};
use crate::error::SdsError;
use crate::persistence::PersistenceError;

impl Channel {
    /// The channel's snapshot: everything but the history and the bloom filter.
    pub(crate) fn to_meta(&self) -> ChannelMeta {
        ChannelMeta {
            schema_version: SCHEMA_VERSION,
            lamport: self.lamport,
            outgoing: self
                .outgoing
                .iter()
                .map(|entry| OutgoingEntry {
                    message: Some(entry.message.clone()),
                    sent_at_ms: entry.sent_at,
                    resend_attempts: entry.resend_attempts,
                    possible_acks: entry.possible_acks,
                })
                .collect(),
            incoming: self
                .incoming
                .iter()
                .map(|entry| IncomingEntry {
                    message: Some(entry.message.clone()),
                    missing_dependencies: entry.missing.iter().cloned().collect(),
                    received_at_ms: entry.received_at,
                })
                .collect(),
            outgoing_repairs: self
                .outgoing_repairs
                .values()
                .map(|repair| OutgoingRepairEntry {
                    entry: Some(repair.entry.clone()),
                    request_at_ms: repair.request_at,
                })
                .collect(),
            incoming_repairs: self
                .incoming_repairs
                .values()
                .map(|repair| IncomingRepairEntry {
                    entry: Some(repair.entry.clone()),
                    message: repair.bytes.clone(),
                    respond_at_ms: repair.respond_at,
                })
                .collect(),
        }
    }

    /// Rebuilds a channel from what a backend loaded: buffers from the snapshot, log and
    /// bloom filter from the history.
    ///
    /// Refuses data that would bootstrap a wrong channel: an unknown schema version, a
    /// history that is not oldest-first, or entries without their message.
    pub(crate) fn restore(
        id: &str,
        settings: Arc<Settings>,
        data: ChannelData,
    ) -> Result<Self, SdsError> {
        let corrupt = |detail: String| {
            SdsError::Persistence(PersistenceError::corrupt(format!(
                "channel {id:?}: {detail}"
            )))
        };
        let meta = data.meta.unwrap_or_else(ChannelMeta::empty);
        if meta.schema_version != SCHEMA_VERSION {
            return Err(SdsError::Persistence(PersistenceError::UnsupportedSchema {
                found: meta.schema_version,
                supported: SCHEMA_VERSION,
            }));
        }
        let mut channel = Channel::new(id, settings)?;
        let capacity = channel.config().max_message_history;

        let mut previous: Option<(u64, String)> = None;
        for (position, logged) in data.history.into_iter().enumerate() {
            let Some(message) = logged.message else {
                return Err(corrupt(format!("history entry {position} has no message")));
            };
            let key = (
                message.lamport_timestamp.unwrap_or(0),
                message.message_id.clone(),
            );
            if let Some(previous) = previous.as_ref().filter(|previous| **previous >= key) {
                return Err(corrupt(format!(
                    "history is not oldest-first: entry {position} {key:?} follows {previous:?}"
                )));
            }
            previous = Some(key);
            channel.bloom.insert(&message.message_id);
            // A history longer than the configured cap (the cap was lowered) is trimmed
            // and the trim is written back with the next commit.
            for evicted in channel.log.insert(message, logged.retrieval_hint, capacity) {
                channel.pending.queue_evict(&evicted);
            }
        }

        for entry in meta.outgoing {
            let message = entry
                .message
                .ok_or_else(|| corrupt("outgoing entry has no message".into()))?;
            channel.bloom.insert(&message.message_id);
            channel.outgoing.push(Outgoing {
                message,
                sent_at: entry.sent_at_ms,
                resend_attempts: entry.resend_attempts,
                possible_acks: entry.possible_acks,
            });
        }
        for entry in meta.incoming {
            let message = entry
                .message
                .ok_or_else(|| corrupt("incoming entry has no message".into()))?;
            channel.bloom.insert(&message.message_id);
            channel.incoming.push(Incoming {
                message,
                missing: entry.missing_dependencies.into_iter().collect(),
                received_at: entry.received_at_ms,
            });
        }
        let mut outgoing_repairs = BTreeMap::new();
        for repair in meta.outgoing_repairs {
            let entry = repair
                .entry
                .ok_or_else(|| corrupt("outgoing repair has no entry".into()))?;
            outgoing_repairs.insert(
                entry.message_id.clone(),
                OutgoingRepair {
                    entry,
                    request_at: repair.request_at_ms,
                    requests_sent: 0,
                },
            );
        }
        let mut incoming_repairs = BTreeMap::new();
        for repair in meta.incoming_repairs {
            let entry = repair
                .entry
                .ok_or_else(|| corrupt("incoming repair has no entry".into()))?;
            incoming_repairs.insert(
                entry.message_id.clone(),
                IncomingRepair {
                    entry,
                    bytes: repair.message,
                    respond_at: repair.respond_at_ms,
                },
            );
        }
        channel.outgoing_repairs = outgoing_repairs;
        channel.incoming_repairs = incoming_repairs;
        channel.lamport = meta.lamport.max(channel.log.max_lamport());
        Ok(channel)
    }
}
