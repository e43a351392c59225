//! Configuring and creating a [`ReliabilityManager`].

use std::sync::{Arc, Mutex};

use super::admission::Registry;
use super::fence::Fence;
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

    /// Validates the configuration, creates the manager with its event stream, and claims
    /// the manager's persistence namespace (the writer fence, see
    /// [`ReliabilityManager::claim_writer`]) at once. From then on the writes of managers
    /// that claimed the namespace before are refused, and this manager's writes land until
    /// a manager started later claims it. Fails on an invalid configuration or when the
    /// backend cannot be reached for the claim.
    ///
    /// Prefer it to [`Self::build`], which claims only at the manager's first backend
    /// call: a stale manager that stays idle meanwhile would then claim after a newer one
    /// and fence it.
    pub async fn start(self) -> Result<(ReliabilityManager, Events), SdsError> {
        let (manager, events) = self.build()?;
        manager.claim_writer().await?;
        Ok((manager, events))
    }

    /// Validates the configuration and creates the manager with its event stream.
    ///
    /// The manager claims its persistence namespace (the writer fence) at its first backend
    /// call, not here; [`Self::start`] claims at once.
    pub fn build(self) -> Result<(ReliabilityManager, Events), SdsError> {
        self.config.validate()?;
        let (sender, events) = Events::channel(self.config.event_queue_capacity);
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
            registry: Mutex::new(Registry::default()),
            events: sender,
            fence: Fence::default(),
            lifecycle: Default::default(),
        };
        // What the backend promises (atomic commit, durability on acknowledge, listing)
        // decides what a crash can cost: say it once, where operators look.
        tracing::info!(
            participant = %inner.settings.participant_id,
            capabilities = %inner.persistence.capabilities(),
            "persistence backend capabilities"
        );
        Ok((
            ReliabilityManager {
                inner: Arc::new(inner),
            },
            events,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::ReliabilityManager;

    /// The builder's Debug output names the participant and the configuration (the
    /// backend, clock and hint provider are trait objects and are left out).
    #[test]
    fn debug_shows_the_participant_and_the_configuration() {
        let shown = format!("{:?}", ReliabilityManager::builder("alice"));
        assert!(shown.starts_with("ManagerBuilder {"), "{shown}");
        assert!(shown.contains("participant_id: \"alice\""), "{shown}");
        assert!(shown.contains("max_channels: 1000"), "{shown}");
        assert!(shown.ends_with(", .. }"), "{shown}");
    }
}
