//! What the manager tells the application, delivered as an async stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use sds_codec::wire::HistoryEntry;

/// Why a received message was dropped instead of buffered or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The channel's incoming buffer already holds `max_incoming_buffer` messages.
    IncomingBufferFull,
    /// The message is missing more than `max_missing_dependencies` dependencies.
    TooManyMissingDependencies(usize),
    /// A buffered message was evicted to keep the incoming buffer within its byte budgets
    /// (`max_incoming_buffer_bytes`, `max_incoming_bytes_per_sender`): its sender's oldest.
    EvictedForSpace,
    /// The message is for a channel the application did not join (and
    /// `accept_any_channel` is off).
    ChannelNotJoined,
    /// The message would open a channel past `max_channels`.
    TooManyChannels,
    /// Its Lamport timestamp runs further ahead of our wall clock than
    /// `max_lamport_skew_ms` allows.
    LamportTooFarAhead {
        /// The received timestamp.
        lamport: u64,
        /// The highest timestamp accepted at the time.
        limit: u64,
    },
    /// Its id is already held for a different message (another sender or other content):
    /// ids are first-come, and a later claim never replaces what we hold.
    ConflictingId,
}

/// A bound that was reached, reported with [`Event::LimitReached`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// `max_outgoing_buffer` / `max_outgoing_buffer_bytes`: the oldest unacknowledged
    /// messages were given up.
    OutgoingBuffer,
    /// `max_outgoing_repairs`: missing ids were not requested.
    OutgoingRepairs,
    /// `max_incoming_repairs`, `max_repair_answers_per_message` or
    /// `max_repair_answers_per_sender`: peer repair requests were not answered.
    RepairAnswers,
    /// `max_pending_history`: the R2 queue was dropped; the whole history is rewritten
    /// once the backend is back.
    PendingHistory,
    /// A received bloom filter had more bits set than its capacity allows, so it was not
    /// trusted for acknowledgements.
    UntrustedBloomFilter,
    /// `max_mark_met_ids`: a `mark_dependencies_met` call named too many ids.
    MarkMetIds,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Limit::OutgoingBuffer => "outgoing buffer",
            Limit::OutgoingRepairs => "outgoing repair requests",
            Limit::RepairAnswers => "repair answers",
            Limit::PendingHistory => "pending history (R2 queue)",
            Limit::UntrustedBloomFilter => "untrusted bloom filter",
            Limit::MarkMetIds => "ids per mark_dependencies_met",
        };
        f.write_str(name)
    }
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
    /// A newer manager claimed this manager's persistence namespace (the writer fence):
    /// the backend refused a write as [`crate::PersistenceErrorKind::Fenced`]. Emitted
    /// once; from then on this manager writes nothing to the backend (no retry) and keeps
    /// its state in memory only, so the newer manager's stored state is never overwritten.
    /// Stop this process, or point it at its own namespace: restarting it on the same one
    /// claims the namespace back and fences the other.
    WriterFenced {
        /// The channel whose write was refused first.
        channel: String,
        /// The backend's error, as text.
        error: String,
    },
    /// A bound was reached and something was not kept (see [`Limit`] for what).
    LimitReached {
        /// The channel.
        channel: String,
        /// Which bound.
        limit: Limit,
        /// How many items were refused or dropped this time.
        dropped: usize,
    },
    /// The application read too slowly: this many events were dropped (oldest first) to
    /// keep the queue within `event_queue_capacity`.
    Lagged {
        /// Events dropped since the last `Lagged`.
        missed: u64,
    },
}

/// The stream of [`Event`]s of one manager.
///
/// The queue is bounded by `event_queue_capacity`. An application that stops reading
/// loses the oldest events, never the newest, and never blocks the manager: when the queue
/// is full, the oldest queued event is dropped for each new one, and the next read yields
/// [`Event::Lagged`] with the number dropped before the events that were kept. Memory held
/// by a reader that never reads is at most the capacity's worth of events.
///
/// The stream ends (`None`) once the manager and all its clones are dropped and every
/// queued event was read.
#[derive(Debug)]
pub struct Events {
    shared: Arc<Shared>,
}

/// The writing end of [`Events`], held by the manager. Dropping it ends the stream.
#[derive(Debug)]
pub(crate) struct EventSender {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    capacity: usize,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    // Dropped since the last `Lagged` was handed out.
    missed: u64,
    closed: bool,
    waker: Option<Waker>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every update below leaves the queue whole, so a poisoned lock holds valid data.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventSender {
    /// Queues an event, dropping the oldest queued one if the queue is full.
    pub(crate) fn send(&self, event: Event) {
        let waker = {
            let mut queue = self.shared.queue();
            if queue.events.len() >= self.shared.capacity {
                queue.events.pop_front();
                queue.missed = queue.missed.saturating_add(1);
            }
            queue.events.push_back(event);
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let waker = {
            let mut queue = self.shared.queue();
            queue.closed = true;
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Events {
    /// A queue holding at most `capacity` events (at least one).
    pub(crate) fn channel(capacity: usize) -> (EventSender, Events) {
        let shared = Arc::new(Shared {
            capacity: capacity.max(1),
            queue: Mutex::new(Queue::default()),
        });
        (
            EventSender {
                shared: shared.clone(),
            },
            Events { shared },
        )
    }

    /// Waits for the next event; `None` once the manager is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(Some(cx))).await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        match self.poll_event(None) {
            Poll::Ready(event) => event,
            Poll::Pending => None,
        }
    }

    /// Every event queued right now, without waiting (led by [`Event::Lagged`] if events
    /// were dropped since the last read).
    pub fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.try_recv() {
            events.push(event);
        }
        events
    }

    /// How many events are queued (not counting a pending [`Event::Lagged`]); never more
    /// than `event_queue_capacity`.
    pub fn len(&self) -> usize {
        self.shared.queue().events.len()
    }

    /// True when no event is queued and none was dropped since the last read.
    pub fn is_empty(&self) -> bool {
        let queue = self.shared.queue();
        queue.events.is_empty() && queue.missed == 0
    }

    fn poll_event(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Option<Event>> {
        let mut queue = self.shared.queue();
        if queue.missed > 0 {
            let missed = std::mem::take(&mut queue.missed);
            return Poll::Ready(Some(Event::Lagged { missed }));
        }
        if let Some(event) = queue.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if queue.closed {
            return Poll::Ready(None);
        }
        if let Some(cx) = cx {
            queue.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(Some(cx))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn due(n: usize) -> Event {
        Event::SyncDue {
            channel: format!("c{n}"),
        }
    }

    #[test]
    fn overflow_drops_the_oldest_and_reports_the_lag_first() {
        let (sender, mut events) = Events::channel(3);
        for n in 0..10 {
            sender.send(due(n));
        }
        assert_eq!(events.len(), 3);
        assert_eq!(
            events.drain(),
            vec![Event::Lagged { missed: 7 }, due(7), due(8), due(9)]
        );
        assert!(events.is_empty());
        sender.send(due(10));
        assert!(!events.is_empty());
        assert_eq!(events.try_recv(), Some(due(10)));
        assert_eq!(events.try_recv(), None);
    }

    #[test]
    fn a_reported_lag_alone_keeps_the_stream_non_empty() {
        let (sender, mut events) = Events::channel(1);
        sender.send(due(0));
        sender.send(due(1));
        assert_eq!(events.try_recv(), Some(Event::Lagged { missed: 1 }));
        assert!(!events.is_empty());
        assert_eq!(events.try_recv(), Some(due(1)));
        assert!(events.is_empty());
        // Overflowing again: a lag waits to be reported before the newest event.
        sender.send(due(2));
        sender.send(due(3));
        sender.send(due(4));
        assert_eq!(events.len(), 1);
        assert!(!events.is_empty());
    }

    #[test]
    fn limits_read_as_what_they_bound() {
        let names: Vec<String> = [
            Limit::OutgoingBuffer,
            Limit::OutgoingRepairs,
            Limit::RepairAnswers,
            Limit::PendingHistory,
            Limit::UntrustedBloomFilter,
            Limit::MarkMetIds,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "outgoing buffer",
                "outgoing repair requests",
                "repair answers",
                "pending history (R2 queue)",
                "untrusted bloom filter",
                "ids per mark_dependencies_met",
            ]
        );
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_and_the_stream_ends_with_the_sender() {
        let (sender, mut events) = Events::channel(8);
        let reader = tokio::spawn(async move {
            let first = events.recv().await;
            let rest: Vec<Event> = events.collect().await;
            (first, rest)
        });
        tokio::task::yield_now().await;
        sender.send(due(0));
        sender.send(due(1));
        drop(sender);
        let (first, rest) = reader.await.unwrap();
        assert_eq!(first, Some(due(0)));
        assert_eq!(rest, vec![due(1)]);
    }
}
