//! Reading a node's stored channel for operators: snapshot and history in plain text.

use std::fmt::Write as _;

use sds_codec::storage::{ChannelData, encode_channel_meta};
use sds_codec::wire::SdsMessage;
use sds_core::PersistenceError;

use crate::Backend;

/// Loads `channel` of `namespace` and renders it for reading.
pub async fn inspect_channel(
    backend: &Backend,
    namespace: &str,
    channel: &str,
) -> Result<String, PersistenceError> {
    let data = backend.namespace(namespace).load_channel(channel).await?;
    Ok(render(namespace, channel, &data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn describe(message: Option<&SdsMessage>) -> String {
    match message {
        None => "<missing message>".to_string(),
        Some(message) => format!(
            "{:?} from {:?} at lamport {} ({} bytes of content, {} dependencies)",
            message.message_id,
            message.sender_id,
            message.lamport_timestamp.unwrap_or(0),
            message.content.as_ref().map_or(0, Vec::len),
            message.causal_history.len()
        ),
    }
}

/// Renders loaded channel data: one section per buffer, then the history oldest first.
pub fn render(namespace: &str, channel: &str, data: &ChannelData) -> String {
    let mut out = String::new();
    let meta = data.meta.clone().unwrap_or_default();
    let _ = writeln!(out, "namespace {namespace:?}, channel {channel:?}");
    let _ = writeln!(
        out,
        "schema version {}, lamport {}, snapshot {} bytes",
        meta.schema_version,
        meta.lamport,
        encode_channel_meta(&meta).len()
    );
    let _ = writeln!(out, "outgoing (unacknowledged): {}", meta.outgoing.len());
    for entry in &meta.outgoing {
        let _ = writeln!(
            out,
            "  {} sent at {} ms, {} resends, {} possible acks",
            describe(entry.message.as_ref()),
            entry.sent_at_ms,
            entry.resend_attempts,
            entry.possible_acks
        );
    }
    let _ = writeln!(
        out,
        "incoming (waiting for dependencies): {}",
        meta.incoming.len()
    );
    for entry in &meta.incoming {
        let _ = writeln!(
            out,
            "  {} received at {} ms, missing {:?}",
            describe(entry.message.as_ref()),
            entry.received_at_ms,
            entry.missing_dependencies
        );
    }
    let _ = writeln!(
        out,
        "repair requests to send: {}",
        meta.outgoing_repairs.len()
    );
    for repair in &meta.outgoing_repairs {
        let id = repair.entry.as_ref().map_or("", |e| e.message_id.as_str());
        let _ = writeln!(out, "  {id:?} due at {} ms", repair.request_at_ms);
    }
    let _ = writeln!(out, "repairs to answer: {}", meta.incoming_repairs.len());
    for repair in &meta.incoming_repairs {
        let id = repair.entry.as_ref().map_or("", |e| e.message_id.as_str());
        let _ = writeln!(
            out,
            "  {id:?} due at {} ms ({} bytes)",
            repair.respond_at_ms,
            repair.message.len()
        );
    }
    let _ = writeln!(out, "history (oldest first): {}", data.history.len());
    for logged in &data.history {
        let hint = logged
            .retrieval_hint
            .as_deref()
            .map_or_else(|| "none".to_string(), hex);
        let _ = writeln!(out, "  {} hint {hint}", describe(logged.message.as_ref()));
    }
    out
}
