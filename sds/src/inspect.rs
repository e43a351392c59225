//! Reading what a backend stores, for operators: the namespaces and channels it holds, and
//! one channel's snapshot and history in plain text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sds_codec::CodecError;
use sds_codec::storage::{ChannelData, encode_channel_meta};
use sds_codec::wire::SdsMessage;
use sds_core::PersistenceError;
use thiserror::Error;

use crate::Backend;

/// Why a channel could not be shown.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Nothing is stored under that namespace and channel: no snapshot, no history entry.
    /// (Loading it would yield an empty channel, which would look like a stored one.)
    #[error("channel {channel:?} is not stored in namespace {namespace:?} of {backend}; {}", stored_hint(.stored))]
    NotStored {
        /// The backend, as a URL.
        backend: String,
        /// The namespace asked for.
        namespace: String,
        /// The channel asked for.
        channel: String,
        /// The channels the namespace does hold (empty when it holds none).
        stored: Vec<String>,
    },
    /// The backend could not list or load (unreachable, corrupt, …).
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
}

fn stored_hint(stored: &[String]) -> String {
    if stored.is_empty() {
        "the namespace holds no channel".to_string()
    } else {
        format!("it holds {}", quoted(stored))
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads `channel` of `namespace` and renders it for reading; a channel that is not stored
/// is [`InspectError::NotStored`], never shown as an empty channel.
pub async fn inspect_channel(
    backend: &Backend,
    namespace: &str,
    channel: &str,
) -> Result<String, InspectError> {
    let stored = backend
        .stored_namespaces()
        .await?
        .remove(namespace)
        .unwrap_or_default();
    if !stored.iter().any(|name| name == channel) {
        return Err(InspectError::NotStored {
            backend: backend.describe(),
            namespace: namespace.to_string(),
            channel: channel.to_string(),
            stored,
        });
    }
    let data = backend.namespace(namespace).load_channel(channel).await?;
    Ok(render(namespace, channel, &data))
}

/// Lists the namespaces holding stored channels, with their channels (only `namespace`'s
/// when given), and how to inspect one.
pub async fn list_channels(
    backend: &Backend,
    namespace: Option<&str>,
) -> Result<String, PersistenceError> {
    let url = backend.describe();
    if !backend.is_persistent() {
        return Ok(format!(
            "{url} has nothing to list: an in-memory store lives only inside the process that \
             writes it, and this one was opened empty. Inspect a persistent backend, e.g. \
             --backend rocksdb:///path/to/dir."
        ));
    }
    let mut namespaces = backend.stored_namespaces().await?;
    if let Some(wanted) = namespace {
        namespaces.retain(|name, _| name == wanted);
        if namespaces.is_empty() {
            return Ok(format!(
                "namespace {wanted:?} of {url} holds no channel (run without --namespace to \
                 list every namespace)"
            ));
        }
    }
    Ok(render_listing(&url, &namespaces))
}

/// Renders a listing: a summary line, one line per namespace and one per channel, then
/// the command that shows a channel.
pub fn render_listing(url: &str, namespaces: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    let channels: usize = namespaces.values().map(Vec::len).sum();
    if namespaces.is_empty() {
        let _ = writeln!(out, "{url} holds no stored channel");
        return out;
    }
    let _ = writeln!(
        out,
        "{url}: {} namespace{}, {channels} stored channel{}",
        namespaces.len(),
        plural(namespaces.len()),
        plural(channels)
    );
    for (namespace, channels) in namespaces {
        let _ = writeln!(
            out,
            "namespace {namespace:?}: {} channel{}",
            channels.len(),
            plural(channels.len())
        );
        for channel in channels {
            let _ = writeln!(out, "  {channel:?}");
        }
    }
    let _ = writeln!(
        out,
        "show one with: sds inspect --backend {url} --namespace NAMESPACE --channel CHANNEL"
    );
    out
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
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

/// A buffered entry's message, decoded from its stored bytes.
fn describe_buffered(decoded: Result<SdsMessage, CodecError>) -> String {
    match decoded {
        Ok(message) => describe(Some(&message)),
        Err(err) => format!("<unreadable message: {err}>"),
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
            describe_buffered(entry.decode_message()),
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
            describe_buffered(entry.decode_message()),
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
