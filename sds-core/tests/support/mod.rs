//! Shared test scaffolding: participants with a manual clock over the in-memory backend
//! wrapped in the fault injector, so tests drive time and persistence explicitly.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sds_core::persistence::fault::{FaultInjector, Operation};
use sds_core::persistence::memory::MemoryPersistence;
use sds_core::{Event, Events, ManualClock, ReliabilityConfig, ReliabilityManager};

/// 2023-11-14, so Lamport timestamps (which follow the clock) look like real ones.
pub const START_MS: i64 = 1_700_000_000_000;

/// The defaults, with a small bloom filter so messages stay small in debug builds.
pub fn test_config() -> ReliabilityConfig {
    ReliabilityConfig {
        bloom_capacity: 200,
        ..ReliabilityConfig::default()
    }
}

pub type Store = Arc<FaultInjector<MemoryPersistence>>;

pub fn new_store() -> Store {
    Arc::new(FaultInjector::new(MemoryPersistence::new()))
}

pub struct Peer {
    pub id: String,
    pub manager: ReliabilityManager,
    pub events: Events,
    pub clock: ManualClock,
    pub store: Store,
    pub config: ReliabilityConfig,
    /// [`Peer::receive`] joins the message's channel first (true by default: the peer
    /// takes part in every channel it hears, as most suites assume). Set it to false to
    /// receive like an application that takes part only in the channels it joined (with
    /// `join_channel`, or by sending), e.g. to show hostile traffic for other channels is
    /// dropped.
    pub joins_on_receive: bool,
}

impl Peer {
    pub fn new(id: &str) -> Peer {
        Peer::with(id, test_config(), new_store(), ManualClock::new(START_MS))
    }

    pub fn with_config(id: &str, config: ReliabilityConfig) -> Peer {
        Peer::with(id, config, new_store(), ManualClock::new(START_MS))
    }

    pub fn with(id: &str, config: ReliabilityConfig, store: Store, clock: ManualClock) -> Peer {
        let (manager, events) = ReliabilityManager::builder(id)
            .config(config.clone())
            .persistence(store.clone())
            .clock(Arc::new(clock.clone()))
            .build()
            .expect("valid test config");
        Peer {
            id: id.to_string(),
            manager,
            events,
            clock,
            store,
            config,
            joins_on_receive: true,
        }
    }

    /// The same participant after a crash: a fresh manager over the same store and clock.
    /// It has joined nothing yet (the joined set lives in memory): the helpers that
    /// receive or read join as they go, as an application joins again after a restart.
    pub fn restart(self) -> Peer {
        let Peer {
            id,
            store,
            clock,
            config,
            joins_on_receive,
            ..
        } = self;
        Peer {
            joins_on_receive,
            ..Peer::with(&id, config, store, clock)
        }
    }

    pub async fn send(&self, channel: &str, message_id: &str) -> Vec<u8> {
        self.manager
            .wrap_outgoing(
                channel,
                message_id,
                format!("content of {message_id}").into_bytes(),
            )
            .await
            .expect("wrap succeeds")
    }

    /// Receives the bytes; with [`Peer::joins_on_receive`] joins the message's channel
    /// first if needed (bytes that do not decode go straight to `unwrap_received`).
    pub async fn receive(&self, bytes: &[u8]) -> sds_core::Unwrapped {
        if self.joins_on_receive
            && let Ok(message) = decode_message(bytes)
        {
            self.join(&message.channel_id).await;
        }
        self.manager
            .unwrap_received(bytes)
            .await
            .expect("unwrap succeeds")
    }

    /// Joins `channel` unless already joined (joining loads it, so this keeps tests that
    /// count backend calls unaffected by repeated joins).
    pub async fn join(&self, channel: &str) {
        if !self.manager.is_joined(channel) {
            self.manager
                .join_channel(channel)
                .await
                .expect("channel joins");
        }
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain()
    }

    /// Ids of the messages delivered since the last drain, in delivery order.
    pub fn delivered(&mut self) -> Vec<String> {
        self.take_events()
            .into_iter()
            .filter_map(|event| match event {
                Event::MessageReady { message_id, .. } => Some(message_id),
                _ => None,
            })
            .collect()
    }

    pub fn commits(&self) -> u64 {
        self.store.calls(Operation::Commit)
    }

    /// The log of a channel the application joined (joins it first if needed, as an
    /// application does after a restart).
    pub async fn log(&self, channel: &str) -> Vec<String> {
        self.join(channel).await;
        self.manager.log_ids(channel).await.expect("channel loads")
    }
}

// ---- Additions for the persistence and concurrency suites. ----

use sds_core::codec::storage::{ChannelData, ChannelMeta};
use sds_core::codec::wire::{HistoryEntry, SdsMessage, decode_message, encode_message};
use sds_core::{ChannelState, RetrievalHintProvider};

impl Peer {
    /// Like [`Peer::with`], with a retrieval hint provider. [`Peer::restart`] does not keep
    /// the provider: rebuild with this constructor to restart with one.
    pub fn with_hints(
        id: &str,
        config: ReliabilityConfig,
        store: Store,
        clock: ManualClock,
        provider: Arc<dyn RetrievalHintProvider>,
    ) -> Peer {
        let (manager, events) = ReliabilityManager::builder(id)
            .config(config.clone())
            .persistence(store.clone())
            .clock(Arc::new(clock.clone()))
            .retrieval_hint_provider(provider)
            .build()
            .expect("valid test config");
        Peer {
            id: id.to_string(),
            manager,
            events,
            clock,
            store,
            config,
            joins_on_receive: true,
        }
    }

    /// The in-memory view of a channel the application joined (joins it first if needed).
    pub async fn state(&self, channel: &str) -> ChannelState {
        self.join(channel).await;
        self.manager
            .channel_state(channel)
            .await
            .expect("channel loads")
    }

    /// Ids of the history stored in the backend for `channel`, oldest first (read past the
    /// fault injector, so no fault fires and no call is counted).
    pub async fn stored_history(&self, channel: &str) -> Vec<String> {
        stored_history(&self.store, channel).await
    }

    /// The snapshot stored in the backend for `channel` (`None` if the backend holds
    /// nothing for it: the memory backend loads an absent channel as an empty snapshot).
    pub async fn stored_meta(&self, channel: &str) -> Option<ChannelMeta> {
        let present = self
            .store
            .inner()
            .channels()
            .expect("store readable")
            .iter()
            .any(|name| name == channel);
        if present {
            stored_data(&self.store, channel).await.meta
        } else {
            None
        }
    }
}

/// What the backend behind the fault injector holds for `channel`.
pub async fn stored_data(store: &Store, channel: &str) -> ChannelData {
    use sds_core::Persistence as _;
    store
        .inner()
        .load_channel(channel)
        .await
        .expect("store loads")
}

/// Ids of the history the backend holds for `channel`, oldest first.
pub async fn stored_history(store: &Store, channel: &str) -> Vec<String> {
    stored_data(store, channel)
        .await
        .history
        .iter()
        .map(|logged| logged.message_id().to_string())
        .collect()
}

/// A content message from `sender`, built by hand so tests choose its Lamport timestamp
/// and its causal history (`deps`, all attributed to `sender`).
pub fn crafted_message(
    sender: &str,
    channel: &str,
    id: &str,
    lamport: u64,
    deps: &[&str],
) -> SdsMessage {
    SdsMessage {
        sender_id: sender.into(),
        message_id: id.into(),
        channel_id: channel.into(),
        lamport_timestamp: Some(lamport),
        causal_history: deps
            .iter()
            .map(|dep| HistoryEntry {
                message_id: (*dep).into(),
                retrieval_hint: None,
                sender_id: Some(sender.into()),
            })
            .collect(),
        bloom_filter: None,
        repair_request: vec![],
        content: Some(format!("content of {id}").into_bytes()),
    }
}

/// [`crafted_message`], encoded.
pub fn crafted(sender: &str, channel: &str, id: &str, lamport: u64, deps: &[&str]) -> Vec<u8> {
    encode_message(&crafted_message(sender, channel, id, lamport, deps)).expect("encodes")
}

/// A sync message (no content) from `sender` with this Lamport timestamp.
pub fn crafted_sync(sender: &str, channel: &str, id: &str, lamport: u64) -> Vec<u8> {
    let message = SdsMessage {
        content: None,
        ..crafted_message(sender, channel, id, lamport, &[])
    };
    encode_message(&message).expect("encodes")
}

/// The Lamport timestamp carried by encoded message bytes.
pub fn lamport_of(bytes: &[u8]) -> u64 {
    decode_message(bytes)
        .expect("decodes")
        .lamport_timestamp
        .expect("has a lamport timestamp")
}

/// The persistence events among `events`, as ("degraded" | "recovered", channel).
pub fn persistence_events(events: &[Event]) -> Vec<(&'static str, String)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::PersistenceDegraded { channel, .. } => Some(("degraded", channel.clone())),
            Event::PersistenceRecovered { channel } => Some(("recovered", channel.clone())),
            _ => None,
        })
        .collect()
}

/// Ids of the messages `events` delivered, in delivery order.
pub fn delivered_ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageReady { message_id, .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}

/// The repair answers among `events`, as (message id, bytes to rebroadcast).
pub fn repair_answers(events: &[Event]) -> Vec<(String, Vec<u8>)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::RepairReady {
                message_id, bytes, ..
            } => Some((message_id.clone(), bytes.clone())),
            _ => None,
        })
        .collect()
}
