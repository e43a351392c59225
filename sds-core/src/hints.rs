//! Retrieval hints: how the application tells peers where a message can be fetched.

/// Supplies retrieval hints (e.g. a Waku message hash) for messages in the local log.
///
/// The manager asks once per message, when the message is first referenced in a causal
/// history, stores the answer with the log entry and persists it, so after a restart the
/// stored hint is used instead of asking again.
pub trait RetrievalHintProvider: Send + Sync {
    /// The hint for `message_id` in `channel`, if the application knows one yet.
    fn retrieval_hint(&self, channel: &str, message_id: &str) -> Option<Vec<u8>>;
}

impl<F> RetrievalHintProvider for F
where
    F: Fn(&str, &str) -> Option<Vec<u8>> + Send + Sync,
{
    fn retrieval_hint(&self, channel: &str, message_id: &str) -> Option<Vec<u8>> {
        self(channel, message_id)
    }
}
