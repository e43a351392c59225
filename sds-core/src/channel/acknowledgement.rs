//! Acknowledgements: how received messages retire our unacknowledged ones.
//!
//! An outgoing message is acknowledged when a received causal history names it, or when the
//! bloom filters of `possible_acks_threshold` distinct senders contain it. Two rules keep a
//! filter from acknowledging what was never received:
//! - a filter with more bits set than one at its capacity can honestly have
//!   ([`BloomFilter::is_overfilled`]) is ignored, with an [`Event::LimitReached`]
//!   ([`Limit::UntrustedBloomFilter`], `dropped: 1`) for each received message whose filter
//!   was ignored while we had messages awaiting acknowledgement; its causal history still
//!   counts. An all-ones filter would otherwise "acknowledge" everything, and so would a
//!   peer whose filter never rolls (as @waku/sds's does not) once it has seen about 150% of
//!   its capacity;
//! - a sender counts once per message: one peer repeating its filter in every message (or
//!   a sync every interval) is one possible acknowledgement, not many. Sender ids are not
//!   authenticated in SDS, so this stops repetition, not a peer forging several identities.
//!
//! The senders that counted are kept in memory with each outgoing entry; the snapshot keeps
//! their count. After a restart a sender that counted before may count once more.

use std::collections::HashSet;

use sds_codec::wire::SdsMessage;
use tracing::debug;

use super::Channel;
use crate::bloom::BloomFilter;
use crate::event::{Event, Limit};

impl Channel {
    /// Updates the acknowledgement state of our unacknowledged messages from a received
    /// message; returns whether anything changed (an entry acknowledged, or a sender counted
    /// for one).
    pub(super) fn review_acks(&mut self, message: &SdsMessage) -> bool {
        if self.outgoing.is_empty() {
            return false;
        }
        let acked: HashSet<&str> = message
            .causal_history
            .iter()
            .map(|entry| entry.message_id.as_str())
            .collect();
        let bloom = self.trusted_bloom(message);
        let threshold = self.settings.config.possible_acks_threshold;
        let sender = message.sender_id.as_str();
        let mut changed = false;
        let outgoing = std::mem::take(&mut self.outgoing);
        for mut entry in outgoing {
            let id = entry.message.message_id.clone();
            let acknowledged = if acked.contains(id.as_str()) {
                true
            } else if bloom.as_ref().is_some_and(|bloom| bloom.contains(&id))
                && entry.possible_ack_senders.insert(sender.to_owned())
            {
                changed = true;
                entry.possible_acks = entry.possible_acks.saturating_add(1);
                if entry.possible_acks < threshold {
                    self.events.push(Event::MessagePossiblyAcknowledged {
                        channel: self.id.clone(),
                        message_id: id.clone(),
                        count: entry.possible_acks,
                    });
                }
                entry.possible_acks >= threshold
            } else {
                false
            };
            if acknowledged {
                changed = true;
                self.events.push(Event::MessageAcknowledged {
                    channel: self.id.clone(),
                    message_id: id,
                });
            } else {
                self.outgoing.push(entry);
            }
        }
        changed
    }

    /// The message's bloom filter if it decodes under our parameters and is not overfilled.
    fn trusted_bloom(&mut self, message: &SdsMessage) -> Option<BloomFilter> {
        let bytes = message.bloom_filter.as_deref()?;
        let config = &self.settings.config;
        let bloom = BloomFilter::from_bytes(config.bloom_capacity, config.bloom_error_rate, bytes)
            .map_err(|err| {
                debug!(channel = %self.id, sender = %message.sender_id, %err,
                    "ignoring unusable bloom filter");
            })
            .ok()?;
        if bloom.is_overfilled() {
            debug!(channel = %self.id, sender = %message.sender_id,
                bits_set = bloom.bits_set(), max_trusted = bloom.max_trusted_bits(),
                "ignoring overfilled bloom filter for acknowledgements");
            self.events.push(Event::LimitReached {
                channel: self.id.clone(),
                limit: Limit::UntrustedBloomFilter,
                dropped: 1,
            });
            return None;
        }
        Some(bloom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use sds_codec::wire::{HistoryEntry, SdsMessage};

    use super::super::{Channel, Settings, UnwrapStatus};
    use crate::bloom::BloomFilter;
    use crate::clock::UnixMillis;
    use crate::config::ReliabilityConfig;

    const NOW: UnixMillis = 1_700_000_000_000;

    fn channel(participant: &str) -> Channel {
        let config = ReliabilityConfig {
            bloom_capacity: 200,
            ..ReliabilityConfig::default()
        };
        let settings = Arc::new(Settings {
            participant_id: participant.into(),
            config,
        });
        Channel::new("room", settings).unwrap()
    }

    fn message(sender: &str, id: &str, lamport: u64, content: Option<&str>) -> SdsMessage {
        SdsMessage {
            sender_id: sender.into(),
            message_id: id.into(),
            channel_id: "room".into(),
            lamport_timestamp: Some(lamport),
            causal_history: vec![],
            bloom_filter: None,
            repair_request: vec![],
            content: content.map(|text| text.as_bytes().to_vec()),
        }
    }

    fn filter_with(ids: &[&str]) -> Vec<u8> {
        let mut filter = BloomFilter::new(200, 0.001).unwrap();
        for id in ids {
            filter.insert(id);
        }
        filter.to_bytes()
    }

    /// A duplicate, a sync that tells nothing new (clock behind, no acks, no requests) and a
    /// repeated filter from the same sender leave the snapshot clean; a new possible
    /// acknowledgement and an acknowledgement dirty it.
    #[test]
    fn only_changes_dirty_the_snapshot() {
        let mut bob = channel("bob");
        bob.wrap(NOW, "b1".into(), b"hello".to_vec(), None).unwrap();
        let delivered = message("alice", "a1", 10, Some("hi"));
        assert_eq!(
            bob.unwrap(NOW, delivered.clone()).status,
            UnwrapStatus::Delivered
        );
        bob.set_meta_dirty(false);

        assert_eq!(bob.unwrap(NOW, delivered).status, UnwrapStatus::Duplicate);
        assert!(!bob.is_meta_dirty(), "duplicate");
        let quiet = message("alice", "s1", 5, None);
        assert_eq!(bob.unwrap(NOW, quiet).status, UnwrapStatus::SyncProcessed);
        assert!(!bob.is_meta_dirty(), "no-op sync");
        // A clock move that stays within wall time needs no save either.
        let within_wall = message("alice", "s2", NOW as u64 + 5_000, None);
        bob.unwrap(NOW + 10_000, within_wall);
        assert_eq!(bob.lamport(), NOW as u64 + 5_000);
        assert!(!bob.is_meta_dirty(), "clock within wall time");

        let mut possible = message("alice", "s3", 5, None);
        possible.bloom_filter = Some(filter_with(&["b1"]));
        bob.unwrap(NOW, possible.clone());
        assert!(bob.is_meta_dirty(), "first possible ack");
        bob.set_meta_dirty(false);
        possible.message_id = "s4".into();
        bob.unwrap(NOW, possible);
        assert!(!bob.is_meta_dirty(), "same sender again");
        assert_eq!(bob.outgoing_ids(), vec!["b1"]);

        let mut acking = message("carol", "s5", 5, None);
        acking.causal_history = vec![HistoryEntry {
            message_id: "b1".into(),
            retrieval_hint: None,
            sender_id: Some("bob".into()),
        }];
        bob.unwrap(NOW, acking);
        assert!(bob.is_meta_dirty(), "acknowledgement");
        assert!(bob.outgoing_ids().is_empty());
    }

    /// A clock move past wall time is saved.
    #[test]
    fn clock_ahead_of_wall_time_dirties() {
        let mut bob = channel("bob");
        bob.unwrap(NOW, message("alice", "s1", NOW as u64 + 5_000, None));
        assert_eq!(bob.lamport(), NOW as u64 + 5_000);
        assert!(bob.is_meta_dirty());
    }
}
