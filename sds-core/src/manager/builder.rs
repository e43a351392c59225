//! Configuring and creating a [`ReliabilityManager`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Inner, ReliabilityManager};
use crate::channel::Settings;
use crate::clock::{Clock, SystemClock};
use crate::config::ReliabilityConfig;
use crate::error::SdsError;
use crate::event::Events;
use crate::hints::RetrievalHintProvider;
use crate::persistence::Persistence;
use crate::persistence::memory::MemoryPersistence;

/// Configures a [`ReliabilityManager`]. Defaults: [`ReliabilityConfig::default`], the
/// in-memory backend (no durability), the system clock, no retrieval hints.
pub struct ManagerBuilder {
    participant_id: String,
    config: ReliabilityConfig,
    persistence: Option<Arc<dyn Persistence>>,
    clock: Option<Arc<dyn Clock>>,
    hints: Option<Arc<dyn RetrievalHintProvider>>,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("participant_id", &self.participant_id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    pub(super) fn new(participant_id: String) -> Self {
        ManagerBuilder {
            participant_id,
            config: ReliabilityConfig::default(),
            persistence: None,
            clock: None,
            hints: None,
        }
    }

    /// Protocol configuration.
    pub fn config(mut self, config: ReliabilityConfig) -> Self {
        self.config = config;
        self
    }

    /// Where channel state is persisted.
    pub fn persistence(mut self, persistence: Arc<dyn Persistence>) -> Self {
        self.persistence = Some(persistence);
        self
    }

    /// Where time comes from (inject a [`crate::ManualClock`] in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Who supplies retrieval hints for logged messages.
    pub fn retrieval_hint_provider(mut self, provider: Arc<dyn RetrievalHintProvider>) -> Self {
        self.hints = Some(provider);
        self
    }

    /// Validates the configuration and creates the manager with its event stream.
    pub fn build(self) -> Result<(ReliabilityManager, Events), SdsError> {
        self.config.validate()?;
        let (sender, events) = Events::channel();
        let inner = Inner {
            settings: Arc::new(Settings {
                participant_id: self.participant_id,
                config: self.config,
            }),
            persistence: self
                .persistence
                .unwrap_or_else(|| Arc::new(MemoryPersistence::new())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            hints: self.hints,
            channels: Mutex::new(HashMap::new()),
            events: sender,
        };
        Ok((
            ReliabilityManager {
                inner: Arc::new(inner),
            },
            events,
        ))
    }
}
