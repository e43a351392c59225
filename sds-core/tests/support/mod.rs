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
        }
    }

    /// The same participant after a crash: a fresh manager over the same store and clock.
    pub fn restart(self) -> Peer {
        let Peer {
            id,
            store,
            clock,
            config,
            ..
        } = self;
        Peer::with(&id, config, store, clock)
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

    pub async fn receive(&self, bytes: &[u8]) -> sds_core::Unwrapped {
        self.manager
            .unwrap_received(bytes)
            .await
            .expect("unwrap succeeds")
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

    pub async fn log(&self, channel: &str) -> Vec<String> {
        self.manager.log_ids(channel).await.expect("channel loads")
    }
}
