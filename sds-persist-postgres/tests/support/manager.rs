//! A reliability manager over a backend under test, with a manual clock.

use std::sync::Arc;

use sds_core::persistence::Persistence;
use sds_core::{Event, Events, ManualClock, ReliabilityConfig, ReliabilityManager};

/// 2023-11-14 in unix milliseconds.
pub const START_MS: i64 = 1_700_000_000_000;

pub struct Node {
    pub manager: ReliabilityManager,
    pub events: Events,
    pub clock: ManualClock,
    pub config: ReliabilityConfig,
}

impl Node {
    pub async fn start(backend: Arc<dyn Persistence>, config: ReliabilityConfig) -> Node {
        let clock = ManualClock::new(START_MS);
        let (manager, events) = ReliabilityManager::builder("alice")
            .config(config.clone())
            .persistence(backend)
            .clock(Arc::new(clock.clone()))
            .start()
            .await
            .expect("the manager starts");
        Node {
            manager,
            events,
            clock,
            config,
        }
    }

    /// Wraps a message; the caller never sees a persistence failure.
    pub async fn send(&self, channel: &str, id: &str) {
        self.manager
            .wrap_outgoing(channel, id, format!("content of {id}").into_bytes())
            .await
            .unwrap_or_else(|err| panic!("wrap_outgoing({id}) failed for the caller: {err}"));
    }

    /// Lets the commit retry backoff pass, then runs an operation that writes what is
    /// queued.
    pub async fn flush(&self, channel: &str) {
        let backoff = i64::try_from(self.config.commit_retry_max_ms).unwrap_or(i64::MAX);
        self.clock.advance(backoff);
        self.manager
            .mark_dependencies_met(channel, &[])
            .await
            .expect("flush");
    }

    /// The persistence events since the last call: (degraded, recovered).
    pub fn persistence_events(&mut self) -> (usize, usize) {
        let (mut degraded, mut recovered) = (0, 0);
        for event in self.events.drain() {
            match event {
                Event::PersistenceDegraded { .. } => degraded += 1,
                Event::PersistenceRecovered { .. } => recovered += 1,
                _ => {}
            }
        }
        (degraded, recovered)
    }

    /// Fails unless the backend holds exactly the manager's state of `channel`: its log,
    /// in order, and its Lamport clock.
    pub async fn assert_stored_equals_memory(&self, backend: &dyn Persistence, channel: &str) {
        let state = self
            .manager
            .channel_state(channel)
            .await
            .expect("channel state");
        let stored = backend.load_channel(channel).await.expect("load");
        let stored_ids: Vec<String> = stored
            .history
            .iter()
            .map(|entry| entry.message_id().to_owned())
            .collect();
        assert_eq!(
            stored_ids, state.log,
            "stored history against the manager's log"
        );
        assert_eq!(
            stored.meta.as_ref().map(|meta| meta.lamport),
            Some(state.lamport),
            "stored snapshot's Lamport clock against the manager's"
        );
        assert!(
            state.pending_history == 0,
            "history still queued: {state:?}"
        );
    }
}
