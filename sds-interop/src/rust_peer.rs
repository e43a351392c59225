//! A Rust participant: a [`ReliabilityManager`] on a shared manual clock.

use std::sync::Arc;

use sds_core::{Event, Events, ManualClock, ReliabilityConfig, ReliabilityManager, Unwrapped};

use crate::{InteropError, message_id};

/// One Rust participant with the in-memory backend and a [`ManualClock`] shared with the
/// rest of the test (clones of a `ManualClock` share the time).
#[derive(Debug)]
pub struct RustPeer {
    /// Participant id (SDS-R needs it non-empty).
    pub id: String,
    /// The protocol driver.
    pub manager: ReliabilityManager,
    /// Its event stream.
    pub events: Events,
    /// The clock it reads.
    pub clock: ManualClock,
}

impl RustPeer {
    /// A participant with this configuration, reading `clock`.
    pub fn new(
        id: &str,
        config: ReliabilityConfig,
        clock: &ManualClock,
    ) -> Result<Self, InteropError> {
        let (manager, events) = ReliabilityManager::builder(id)
            .config(config)
            .clock(Arc::new(clock.clone()))
            .build()?;
        Ok(RustPeer {
            id: id.to_string(),
            manager,
            events,
            clock: clock.clone(),
        })
    }

    /// Wraps `payload` with the @waku/sds id convention (hex SHA-256 of the payload);
    /// returns the id and the bytes to broadcast.
    pub async fn send(
        &self,
        channel: &str,
        payload: &[u8],
    ) -> Result<(String, Vec<u8>), InteropError> {
        let id = message_id(payload);
        let bytes = self
            .manager
            .wrap_outgoing(channel, id.clone(), payload.to_vec())
            .await?;
        Ok((id, bytes))
    }

    /// Processes received bytes, as a participant of the message's channel: joins it first
    /// if needed (the manager drops messages for channels it has not joined).
    pub async fn receive(&self, bytes: &[u8]) -> Result<Unwrapped, InteropError> {
        if let Ok(message) = sds_core::codec::wire::decode_message(bytes)
            && !self.manager.is_joined(&message.channel_id)
        {
            self.manager.join_channel(&message.channel_id).await?;
        }
        Ok(self.manager.unwrap_received(bytes).await?)
    }

    /// Every event queued since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain()
    }
}

/// Ids of the [`Event::MessageReady`] among `events`, in delivery order.
pub fn delivered_ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageReady { message_id, .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}
