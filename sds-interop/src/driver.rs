//! The Node.js side: a `node js/driver.mjs` process running `@waku/sds` participants,
//! spoken to in JSON lines (see the protocol description at the top of `driver.mjs`).

use std::process::Stdio;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::install::{driver_script, ensure_installed, js_dir};
use crate::{InteropError, WAKU_SDS_VERSION, from_hex, to_hex};

/// Options of one `@waku/sds` participant (`MessageChannelOptions`); `None` keeps the
/// library's default.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JsOptions {
    /// `causalHistorySize` (library default 200). Beware: 0 means the whole history.
    pub causal_history_size: Option<usize>,
    /// `possibleAcksThreshold` (library default 2).
    pub possible_acks_threshold: Option<u32>,
    /// `timeoutForLostMessagesMs` (library default: none).
    pub timeout_for_lost_messages_ms: Option<u64>,
    /// `enableRepair` (library default true).
    pub enable_repair: Option<bool>,
    /// `repairConfig`.
    pub repair: Option<JsRepairOptions>,
}

/// `repairConfig` of a participant (library defaults: T_min 30 s, T_max 120 s, 1 response
/// group, buffers of 1000).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JsRepairOptions {
    /// `tMin`, in milliseconds.
    pub t_min_ms: Option<u64>,
    /// `tMax`, in milliseconds.
    pub t_max_ms: Option<u64>,
    /// `numResponseGroups`.
    pub response_groups: Option<u32>,
    /// `bufferSize` of both repair buffers.
    pub buffer_size: Option<usize>,
}

/// What kind of bytes a participant asks the network to broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastKind {
    /// A new content message.
    Content,
    /// A content message pushed again while still unacknowledged (the app's retry).
    Resend,
    /// A sync message.
    Sync,
    /// An ephemeral message.
    Ephemeral,
    /// An SDS-R rebroadcast answering a repair request.
    Repair,
}

/// A missing causal dependency reported by a participant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsMissingEntry {
    /// Id of the missing message.
    pub message_id: String,
    /// Its original sender, when the history entry named one.
    pub sender_id: Option<String>,
}

/// What a participant emitted (its `MessageChannelEvent`s, renamed) or asks to broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JsEvent {
    /// Broadcast these bytes to the other participants.
    Broadcast {
        /// Why.
        kind: BroadcastKind,
        /// Id of the message.
        message_id: String,
        /// The encoded SDS message.
        #[serde(deserialize_with = "hex_bytes")]
        bytes: Vec<u8>,
    },
    /// `sds:in:message-delivered` (0.0.8 also emits it for copies of delivered messages).
    Delivered {
        /// Id of the message.
        message_id: String,
        /// Its sender.
        sender_id: Option<String>,
        /// Its Lamport timestamp.
        lamport: Option<u64>,
        /// Its payload.
        #[serde(deserialize_with = "hex_bytes")]
        content: Vec<u8>,
        /// Ids of its causal history.
        deps: Vec<String>,
    },
    /// `sds:in:message-received`: a content message was processed.
    Received {
        /// Id of the message.
        message_id: String,
    },
    /// `sds:in:sync-received`.
    SyncReceived {
        /// Id of the sync message.
        message_id: String,
        /// Its sender.
        sender_id: String,
    },
    /// An ephemeral message arrived (reported by the driver: 0.0.8 emits nothing for it).
    Ephemeral {
        /// Id of the message.
        message_id: String,
        /// Its sender.
        sender_id: String,
        /// Its payload.
        #[serde(deserialize_with = "hex_bytes")]
        content: Vec<u8>,
    },
    /// `sds:out:message-sent`.
    Sent {
        /// Id of the message.
        message_id: String,
    },
    /// `sds:out:sync-sent`.
    SyncSent {
        /// Id of the sync message.
        message_id: String,
    },
    /// `sds:out:message-acknowledged`.
    Acknowledged {
        /// Id of our message.
        message_id: String,
    },
    /// `sds:out:message-possibly-acknowledged`.
    PossiblyAcknowledged {
        /// Id of our message.
        message_id: String,
        /// Bloom filter hits so far.
        count: u32,
    },
    /// `sds:in:message-missing` (empty reports are left out).
    Missing {
        /// The missing dependencies.
        entries: Vec<JsMissingEntry>,
    },
    /// `sds:in:message-irretrievably-lost`.
    Lost {
        /// Ids of the lost dependencies.
        message_ids: Vec<String>,
    },
    /// `sds:repair:request-queued`.
    RepairRequestQueued {
        /// The missing message.
        message_id: String,
        /// When the request becomes due.
        t_req: i64,
    },
    /// `sds:repair:request-sent`.
    RepairRequestSent {
        /// The requested messages.
        message_ids: Vec<String>,
        /// The message carrying the requests.
        carrier_id: String,
    },
    /// `sds:repair:request-received`.
    RepairRequestReceived {
        /// The requested messages.
        message_ids: Vec<String>,
        /// Who asked.
        from: String,
    },
    /// `sds:repair:response-queued`.
    RepairResponseQueued {
        /// The message to rebroadcast.
        message_id: String,
        /// When the rebroadcast becomes due.
        t_resp: i64,
    },
    /// `sds:repair:response-sent`.
    RepairResponseSent {
        /// The rebroadcast message.
        message_id: String,
    },
    /// `sds:error-task`: a queued send or receive threw.
    TaskError {
        /// The command (`send`, `receive`, `sendEphemeral`).
        command: String,
        /// The error.
        error: String,
    },
    /// Received bytes did not decode as an SDS message.
    Undecodable,
    /// The driver failed to describe an event.
    DriverError {
        /// The error.
        error: String,
    },
    /// An event type this build does not know.
    #[serde(other)]
    Other,
}

/// An outgoing repair request of a participant (`repairManager.outgoingBuffer`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsStateOutgoingRepair {
    /// The missing message.
    pub message_id: String,
    /// When the request is due.
    pub t_req: i64,
    /// Whether it was already sent (0.0.8 sends each request once).
    pub requested: bool,
}

/// A repair a participant will answer (`repairManager.incomingBuffer`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsStateIncomingRepair {
    /// The requested message.
    pub message_id: String,
    /// When the rebroadcast is due.
    pub t_resp: i64,
}

/// A participant's channel state, read from its (TypeScript-private) fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JsState {
    /// The Lamport clock.
    pub lamport: u64,
    /// Ids of the local history, in its (lamport, id) order.
    pub local_history: Vec<String>,
    /// Ids of unacknowledged sent messages.
    pub outgoing: Vec<String>,
    /// Ids of received messages waiting for dependencies.
    pub incoming: Vec<String>,
    /// SDS-R requests it will send.
    pub outgoing_repairs: Vec<JsStateOutgoingRepair>,
    /// SDS-R answers it will send.
    pub incoming_repairs: Vec<JsStateIncomingRepair>,
}

/// The driver's answer to one command.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JsReply {
    ok: bool,
    error: Option<String>,
    /// What the addressed participant emitted while the command ran, in order.
    #[serde(default)]
    pub events: Vec<JsEvent>,
    /// `send`, `send_ephemeral`, `receive`: the message id.
    pub message_id: Option<String>,
    /// `send`: whether the payload was still unacknowledged (a retry of the same message).
    pub resend: Option<bool>,
    /// `send_sync`: whether a sync message went out (0.0.8 sends none with an empty history
    /// and no repair request).
    pub sent: Option<bool>,
    /// `receive`: whether the bytes decoded.
    pub decoded: Option<bool>,
    /// `sweep_incoming`: ids still missing.
    #[serde(default)]
    pub missing: Vec<String>,
    /// `sweep_outgoing`: unacknowledged ids.
    #[serde(default)]
    pub unacknowledged: Vec<String>,
    /// `sweep_outgoing`: ids with some bloom filter hits.
    #[serde(default)]
    pub possibly_acknowledged: Vec<String>,
    /// `sweep_repairs`: ids rebroadcast.
    #[serde(default)]
    pub repaired: Vec<String>,
    /// `state`.
    pub state: Option<JsState>,
    /// `hello`: the installed @waku/sds version.
    pub sds_version: Option<String>,
    /// `hello`: the Node.js version.
    pub node_version: Option<String>,
}

impl JsReply {
    /// The bytes to broadcast, in order.
    pub fn broadcasts(&self) -> Vec<&[u8]> {
        self.events
            .iter()
            .filter_map(|event| match event {
                JsEvent::Broadcast { bytes, .. } => Some(bytes.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// The single broadcast of this reply, or an error naming what came instead.
    pub fn single_broadcast(&self) -> Result<Vec<u8>, InteropError> {
        match self.broadcasts().as_slice() {
            [bytes] => Ok(bytes.to_vec()),
            other => Err(InteropError::Protocol(format!(
                "expected one broadcast, got {}: {:?}",
                other.len(),
                self.events
            ))),
        }
    }
}

fn hex_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    from_hex(&text).ok_or_else(|| serde::de::Error::custom("invalid hex"))
}

/// One Node.js process running any number of `@waku/sds` participants.
///
/// Participants share the process's virtual clock ([`Self::set_time`]). Dropping the
/// value kills the process; [`Self::shutdown`] ends it cleanly.
#[derive(Debug)]
pub struct JsNetwork {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    now_ms: Option<i64>,
    sds_version: String,
}

impl JsNetwork {
    /// Installs `@waku/sds` if needed, starts the driver and checks it runs the pinned
    /// version.
    pub async fn spawn() -> Result<Self, InteropError> {
        ensure_installed()?;
        let mut child = Command::new("node")
            .arg(driver_script())
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| InteropError::ToolMissing {
                program: "node".into(),
                detail: err.to_string(),
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(InteropError::Protocol("no pipes to the driver".into()));
        };
        let mut network = JsNetwork {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            now_ms: None,
            sds_version: String::new(),
        };
        let hello = network.call(json!({ "cmd": "hello" })).await?;
        let version = hello.sds_version.unwrap_or_default();
        if version != WAKU_SDS_VERSION {
            return Err(InteropError::Protocol(format!(
                "the driver loaded @waku/sds {version:?}, expected {WAKU_SDS_VERSION}"
            )));
        }
        network.sds_version = version;
        Ok(network)
    }

    /// The `@waku/sds` version the driver loaded.
    pub fn sds_version(&self) -> &str {
        &self.sds_version
    }

    /// Sends one command and reads its reply; a `{"ok": false}` reply is an error.
    pub async fn call(&mut self, command: Value) -> Result<JsReply, InteropError> {
        let name = command
            .get("cmd")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let mut line = serde_json::to_string(&command)
            .map_err(|err| InteropError::Protocol(format!("encoding `{name}`: {err}")))?;
        line.push('\n');
        let io = |err| InteropError::io(format!("talking to the driver (`{name}`)"), err);
        self.stdin.write_all(line.as_bytes()).await.map_err(io)?;
        self.stdin.flush().await.map_err(io)?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer).await.map_err(io)? == 0 {
            let status = self.child.try_wait().ok().flatten();
            return Err(InteropError::Protocol(format!(
                "the driver exited during `{name}` (status {status:?}); see its stderr above"
            )));
        }
        let reply: JsReply = serde_json::from_str(&answer).map_err(|err| {
            let start: String = answer.chars().take(300).collect();
            InteropError::Protocol(format!("bad reply to `{name}`: {err}: {start}"))
        })?;
        if !reply.ok {
            return Err(InteropError::Driver {
                command: name,
                message: reply.error.unwrap_or_default(),
            });
        }
        Ok(reply)
    }

    /// Sets the virtual time every participant's `Date.now()` returns (skipped when
    /// unchanged).
    pub async fn set_time(&mut self, now_ms: i64) -> Result<(), InteropError> {
        if self.now_ms != Some(now_ms) {
            self.call(json!({ "cmd": "set_time", "now": now_ms }))
                .await?;
            self.now_ms = Some(now_ms);
        }
        Ok(())
    }

    /// Seeds the generator that replaces `Math.random()` (sync message ids).
    pub async fn seed(&mut self, seed: u32) -> Result<(), InteropError> {
        self.call(json!({ "cmd": "seed", "seed": seed })).await?;
        Ok(())
    }

    /// Creates participant `peer` in `channel`; its Lamport clock starts at the current
    /// virtual time.
    pub async fn create(
        &mut self,
        peer: &str,
        channel: &str,
        options: &JsOptions,
    ) -> Result<(), InteropError> {
        self.call(json!({ "cmd": "create", "peer": peer, "channel": channel, "options": options }))
            .await?;
        Ok(())
    }

    /// `pushOutgoingMessage(payload)` and `processTasks()`: wraps and broadcasts content
    /// (id = hex SHA-256 of the payload). Pushing a payload that is still unacknowledged is
    /// how a @waku/sds application retries it.
    pub async fn send(&mut self, peer: &str, payload: &[u8]) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "send", "peer": peer, "payload": to_hex(payload) }))
            .await
    }

    /// `pushOutgoingEphemeralMessage(payload)` and `processTasks()`.
    pub async fn send_ephemeral(
        &mut self,
        peer: &str,
        payload: &[u8],
    ) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "send_ephemeral", "peer": peer, "payload": to_hex(payload) }))
            .await
    }

    /// `pushOutgoingSyncMessage()`.
    pub async fn send_sync(&mut self, peer: &str) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "send_sync", "peer": peer })).await
    }

    /// `Message.decode(bytes)`, `pushIncomingMessage(message, hint)` and `processTasks()`;
    /// the retrieval hint is the SHA-256 of the bytes (standing in for a Waku hash).
    pub async fn receive(&mut self, peer: &str, bytes: &[u8]) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "receive", "peer": peer, "bytes": to_hex(bytes) }))
            .await
    }

    /// `sweepIncomingBuffer()`: delivers buffered messages whose dependencies are met.
    pub async fn sweep_incoming(&mut self, peer: &str) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "sweep_incoming", "peer": peer }))
            .await
    }

    /// `sweepOutgoingBuffer()`: lists unacknowledged messages (changes nothing in 0.0.8).
    pub async fn sweep_outgoing(&mut self, peer: &str) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "sweep_outgoing", "peer": peer }))
            .await
    }

    /// `sweepRepairIncomingBuffer(callback)`: broadcasts the SDS-R answers that are due.
    pub async fn sweep_repairs(&mut self, peer: &str) -> Result<JsReply, InteropError> {
        self.call(json!({ "cmd": "sweep_repairs", "peer": peer }))
            .await
    }

    /// The participant's channel state.
    pub async fn state(&mut self, peer: &str) -> Result<JsState, InteropError> {
        self.call(json!({ "cmd": "state", "peer": peer }))
            .await?
            .state
            .ok_or_else(|| InteropError::Protocol("`state` reply without a state".into()))
    }

    /// Asks the driver to exit and waits for it.
    pub async fn shutdown(self) -> Result<(), InteropError> {
        let JsNetwork {
            mut child,
            mut stdin,
            ..
        } = self;
        let io = |err| InteropError::io("stopping the driver", err);
        stdin
            .write_all(b"{\"cmd\":\"shutdown\"}\n")
            .await
            .map_err(io)?;
        stdin.flush().await.map_err(io)?;
        drop(stdin);
        let status = child.wait().await.map_err(io)?;
        if status.success() {
            Ok(())
        } else {
            Err(InteropError::Protocol(format!(
                "the driver exited with {status}"
            )))
        }
    }
}
