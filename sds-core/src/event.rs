//! What the manager tells the application, delivered as an async stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use sds_codec::wire::HistoryEntry;
use tokio::sync::mpsc;

/// Why a received message was dropped instead of buffered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The channel's incoming buffer already holds `max_incoming_buffer` messages.
    IncomingBufferFull,
    /// The message is missing more than `max_missing_dependencies` dependencies.
    TooManyMissingDependencies(usize),
}

/// Something the application needs to know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A content message is delivered, in causal order.
    MessageReady {
        /// Channel of the message.
        channel: String,
        /// Id of the message.
        message_id: String,
        /// Participant that sent it.
        sender_id: String,
        /// Its Lamport timestamp.
        lamport: u64,
        /// The application payload.
        content: Vec<u8>,
    },
    /// One of our messages is acknowledged by a peer (causal history or bloom threshold).
    MessageAcknowledged {
        /// Channel of the message.
        channel: String,
        /// Id of our message.
        message_id: String,
    },
    /// A peer's bloom filter contained one of our messages, below the threshold.
    MessagePossiblyAcknowledged {
        /// Channel of the message.
        channel: String,
        /// Id of our message.
        message_id: String,
        /// Bloom hits so far.
        count: u32,
    },
    /// Messages are missing that the application may fetch out of band (then call
    /// `mark_dependencies_met`): the dependencies of a buffered message, or entries a
    /// peer's sync message named that we never received.
    MissingDependencies {
        /// Channel of the message.
        channel: String,
        /// Id of the buffered message, or of the sync message that revealed the loss.
        message_id: String,
        /// Its missing dependencies, with retrieval hints where the sender gave them.
        missing: Vec<HistoryEntry>,
    },
    /// A buffered message waited past the lost-dependency timeout and was delivered
    /// without these dependencies.
    DependenciesLost {
        /// Channel of the message.
        channel: String,
        /// Id of the message delivered anyway.
        message_id: String,
        /// Ids of the dependencies given up on.
        lost: Vec<String>,
    },
    /// A received message was dropped because a buffer bound was reached.
    MessageDropped {
        /// Channel of the message.
        channel: String,
        /// Id of the dropped message.
        message_id: String,
        /// Which bound.
        reason: DropReason,
    },
    /// SDS-R: rebroadcast these bytes, a peer asked for the message.
    RepairReady {
        /// Channel of the message.
        channel: String,
        /// Id of the repaired message.
        message_id: String,
        /// The encoded message to broadcast.
        bytes: Vec<u8>,
    },
    /// An unacknowledged message is due for a resend: broadcast these bytes again.
    Resend {
        /// Channel of the message.
        channel: String,
        /// Id of the message.
        message_id: String,
        /// The encoded message: the first send's id, clock, causal history and content,
        /// with the sender's current bloom filter.
        bytes: Vec<u8>,
        /// Which resend this is (1 for the first).
        attempt: u32,
    },
    /// A message was resent `max_resend_attempts` times without acknowledgement; given up.
    MessageSendFailed {
        /// Channel of the message.
        channel: String,
        /// Id of the message.
        message_id: String,
    },
    /// Time to send a sync message on this channel (see `build_sync_message`).
    SyncDue {
        /// The channel.
        channel: String,
    },
    /// A commit failed; state is kept in memory and retried by the next operation.
    PersistenceDegraded {
        /// The channel.
        channel: String,
        /// The backend's error, as text.
        error: String,
    },
    /// A commit succeeded again after a failure; everything queued has been written.
    PersistenceRecovered {
        /// The channel.
        channel: String,
    },
}

/// The stream of [`Event`]s of one manager.
///
/// Events are queued without bound so none is ever lost; the application should keep
/// draining it. The stream ends when the manager and all its clones are dropped.
#[derive(Debug)]
pub struct Events {
    receiver: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    pub(crate) fn channel() -> (mpsc::UnboundedSender<Event>, Events) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (sender, Events { receiver })
    }

    /// Waits for the next event; `None` once the manager is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }

    /// Every event queued right now, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(event) = self.receiver.try_recv() {
            events.push(event);
        }
        events
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.receiver.poll_recv(cx)
    }
}
