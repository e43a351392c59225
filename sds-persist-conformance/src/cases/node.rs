//! A participant for the manager-level cases: a `ReliabilityManager` with a manual clock
//! over the backend under test, wrapped in the fault injector so cases can cause outages.

use std::sync::Arc;

use sds_codec::storage::ChannelData;
use sds_codec::wire::{HistoryEntry, SdsMessage, decode_message, encode_message};
use sds_core::persistence::Persistence;
use sds_core::persistence::fault::{FaultInjector, Operation};
use sds_core::{
    ChannelState, Event, Events, ManualClock, PersistenceErrorKind, ReliabilityConfig,
    ReliabilityManager, RetrievalHintProvider, SdsError, Unwrapped,
};

use super::fixtures::history_ids;
use crate::case::{CaseError, Context as _, brief};

/// 2023-11-14 in unix milliseconds, so Lamport timestamps look like real ones.
pub(crate) const START_MS: i64 = 1_700_000_000_000;

/// The channel most manager-level cases use.
pub(crate) const CH: &str = "room";

/// The defaults, with a small bloom filter so messages stay small.
pub(crate) fn config() -> ReliabilityConfig {
    ReliabilityConfig {
        bloom_capacity: 200,
        ..ReliabilityConfig::default()
    }
}

/// [`config`] with a local log of `max_message_history` entries.
pub(crate) fn small_history(max_message_history: usize) -> ReliabilityConfig {
    ReliabilityConfig {
        max_message_history,
        max_causal_history: max_message_history.min(10),
        ..config()
    }
}

pub(crate) struct Node<B: Persistence + 'static> {
    id: String,
    pub(crate) manager: ReliabilityManager,
    pub(crate) events: Events,
    pub(crate) clock: ManualClock,
    pub(crate) faults: Arc<FaultInjector<Arc<B>>>,
    pub(crate) config: ReliabilityConfig,
}

impl<B: Persistence + 'static> Node<B> {
    /// A participant at [`START_MS`] over `backend`.
    pub(crate) fn start(
        id: &str,
        backend: Arc<B>,
        config: ReliabilityConfig,
    ) -> Result<Self, CaseError> {
        Node::build(id, backend, config, ManualClock::new(START_MS), None)
    }

    /// A participant with every setting chosen.
    pub(crate) fn build(
        id: &str,
        backend: Arc<B>,
        config: ReliabilityConfig,
        clock: ManualClock,
        hints: Option<Arc<dyn RetrievalHintProvider>>,
    ) -> Result<Self, CaseError> {
        let faults = Arc::new(FaultInjector::new(backend));
        let mut builder = ReliabilityManager::builder(id)
            .config(config.clone())
            .persistence(faults.clone())
            .clock(Arc::new(clock.clone()));
        if let Some(hints) = hints {
            builder = builder.retrieval_hint_provider(hints);
        }
        let (manager, events) = builder.build().context("building the manager")?;
        Ok(Node {
            id: id.to_string(),
            manager,
            events,
            clock,
            faults,
            config,
        })
    }

    /// The same participant after a crash: this manager is dropped and a fresh one, with
    /// the same id, configuration and clock, runs over `backend` (a reopened instance).
    pub(crate) fn restart(self, backend: Arc<B>) -> Result<Self, CaseError> {
        self.restart_with(backend, None)
    }

    /// [`Node::restart`] with a retrieval hint provider.
    pub(crate) fn restart_with(
        self,
        backend: Arc<B>,
        hints: Option<Arc<dyn RetrievalHintProvider>>,
    ) -> Result<Self, CaseError> {
        let Node {
            id, clock, config, ..
        } = self;
        Node::build(&id, backend, config, clock, hints)
    }

    /// The backend under test, past the fault injector.
    pub(crate) fn backend(&self) -> &Arc<B> {
        self.faults.inner()
    }

    /// Every write fails from now on (reads still work).
    pub(crate) fn outage(&self) {
        for op in [
            Operation::Commit,
            Operation::SaveChannelMeta,
            Operation::UpdateHistory,
            Operation::SetRetrievalHint,
        ] {
            self.faults.fail_always(op);
        }
    }

    /// Ends an outage, and lets the manager's commit retry backoff pass (the clock moves
    /// on by `commit_retry_max_ms`), so the next operation writes what was queued.
    pub(crate) fn recover(&self) {
        self.faults.clear_all();
        self.pass_retry_backoff();
    }

    /// Moves the clock past the longest commit retry backoff.
    fn pass_retry_backoff(&self) {
        self.clock
            .advance(i64::try_from(self.config.commit_retry_max_ms).unwrap_or(i64::MAX));
    }

    /// Joins `channel` unless already joined: the manager accepts messages only for joined
    /// channels, and a case's participant takes part in every channel it touches.
    async fn join(&self, channel: &str) -> Result<(), CaseError> {
        if self.manager.is_joined(channel) {
            return Ok(());
        }
        self.manager
            .join_channel(channel)
            .await
            .context(format!("{} join_channel({channel:?})", self.id))
    }

    /// Commits issued by the manager so far.
    pub(crate) fn commits(&self) -> u64 {
        self.faults.calls(Operation::Commit)
    }

    /// Wraps `content of <id>` on `channel`.
    pub(crate) async fn send(&self, channel: &str, id: &str) -> Result<Vec<u8>, CaseError> {
        self.manager
            .wrap_outgoing(channel, id, format!("content of {id}").into_bytes())
            .await
            .context(format!("{} wrap_outgoing({channel:?}, {id:?})", self.id))
    }

    /// Receives as a participant of the message's channel (joining it first if needed).
    pub(crate) async fn receive(&self, bytes: &[u8]) -> Result<Unwrapped, CaseError> {
        if let Ok(message) = decode_message(bytes) {
            self.join(&message.channel_id).await?;
        }
        self.manager
            .unwrap_received(bytes)
            .await
            .context(format!("{} unwrap_received", self.id))
    }

    /// The manager's view of a channel it takes part in (joining it first if needed).
    pub(crate) async fn state(&self, channel: &str) -> Result<ChannelState, CaseError> {
        self.join(channel).await?;
        self.manager
            .channel_state(channel)
            .await
            .context(format!("{} channel_state({channel:?})", self.id))
    }

    pub(crate) async fn flush(&self, channel: &str) -> Result<(), CaseError> {
        // After a failed commit the manager waits for its retry backoff before writing.
        self.pass_retry_backoff();
        self.manager
            .mark_dependencies_met(channel, &[])
            .await
            .context(format!(
                "{} mark_dependencies_met({channel:?}, [])",
                self.id
            ))
    }

    /// What the backend holds for `channel`, read past the fault injector.
    pub(crate) async fn stored(&self, channel: &str) -> Result<ChannelData, CaseError> {
        self.backend()
            .load_channel(channel)
            .await
            .context(format!("load_channel({channel:?}) from the backend"))
    }

    pub(crate) async fn stored_ids(&self, channel: &str) -> Result<Vec<String>, CaseError> {
        Ok(history_ids(&self.stored(channel).await?))
    }

    /// Fails unless the backend's history of `channel` equals the manager's log.
    pub(crate) async fn expect_stored_equals_log(
        &self,
        channel: &str,
        when: &str,
    ) -> Result<(), CaseError> {
        let log = self.state(channel).await?.log;
        let stored = self.stored_ids(channel).await?;
        crate::ensure_eq(
            format!("stored history of {channel:?} (the manager's log) {when}"),
            &log,
            &stored,
        )
    }

    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        self.events.drain()
    }

    /// Ids delivered since the events were last drained, in order.
    pub(crate) fn delivered(&mut self) -> Vec<String> {
        self.take_events()
            .into_iter()
            .filter_map(|event| match event {
                Event::MessageReady { message_id, .. } => Some(message_id),
                _ => None,
            })
            .collect()
    }
}

/// A content message from `sender` with a chosen Lamport timestamp and causal history.
pub(crate) fn crafted_message(
    sender: &str,
    channel: &str,
    id: &str,
    lamport: u64,
    deps: &[&str],
) -> SdsMessage {
    SdsMessage {
        sender_id: sender.to_string(),
        message_id: id.to_string(),
        channel_id: channel.to_string(),
        lamport_timestamp: Some(lamport),
        causal_history: deps
            .iter()
            .map(|dep| HistoryEntry {
                message_id: (*dep).to_string(),
                retrieval_hint: None,
                sender_id: Some(sender.to_string()),
            })
            .collect(),
        bloom_filter: None,
        repair_request: Vec::new(),
        content: Some(format!("content of {id}").into_bytes()),
    }
}

pub(crate) fn encoded(message: &SdsMessage) -> Result<Vec<u8>, CaseError> {
    encode_message(message).context("encoding a crafted message")
}

/// [`crafted_message`], encoded.
pub(crate) fn crafted(
    sender: &str,
    channel: &str,
    id: &str,
    lamport: u64,
    deps: &[&str],
) -> Result<Vec<u8>, CaseError> {
    encoded(&crafted_message(sender, channel, id, lamport, deps))
}

/// A sync message (no content) from `sender`.
pub(crate) fn crafted_sync(
    sender: &str,
    channel: &str,
    id: &str,
    lamport: u64,
) -> Result<Vec<u8>, CaseError> {
    encoded(&SdsMessage {
        content: None,
        ..crafted_message(sender, channel, id, lamport, &[])
    })
}

pub(crate) fn decoded(bytes: &[u8]) -> Result<SdsMessage, CaseError> {
    decode_message(bytes).context("decoding a message the manager produced")
}

pub(crate) fn lamport_of(bytes: &[u8]) -> Result<u64, CaseError> {
    decoded(bytes)?
        .lamport_timestamp
        .ok_or_else(|| CaseError::failed("a wrapped message has no Lamport timestamp"))
}

/// Fails unless `result` is a persistence error of `kind`.
pub(crate) fn expect_persistence_error<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, SdsError>,
    kind: PersistenceErrorKind,
) -> Result<(), CaseError> {
    match result {
        Err(SdsError::Persistence(err)) if err.kind() == kind => Ok(()),
        Err(SdsError::Persistence(err)) => Err(CaseError::failed(format!(
            "{what}: expected a {kind:?} persistence error, found {:?}: {}",
            err.kind(),
            crate::chain(&err)
        ))),
        Err(other) => Err(CaseError::failed(format!(
            "{what}: expected a {kind:?} persistence error, found another error: {}",
            crate::chain(&other)
        ))),
        Ok(value) => Err(CaseError::failed(format!(
            "{what}: expected a {kind:?} persistence error, but it succeeded with {}",
            brief(&value)
        ))),
    }
}
