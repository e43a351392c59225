//! Protocol throughput workloads (issue 15, item 3): two managers, alice and bob, talking on
//! a channel over a backend, and the same conversation on `@waku/sds` under Node.js.
//!
//! One [`Conversation`] step moves two messages: alice wraps one and bob unwraps it, then
//! bob wraps one and alice unwraps it, which acknowledges alice's (it names it in its causal
//! history). Both outgoing buffers stay short and both logs fill to their bound, so every
//! step after the first thousand costs what a steady conversation costs, eviction included.
//! Payloads are 100 bytes and message ids their hex SHA-256, as @waku/sds makes them; the
//! id is computed inside the timed wrap, as @waku/sds computes it inside its own.
//!
//! [`drive_parallel`] runs K conversations on K channels of the same two managers at once
//! on a multi-threaded runtime: what the manager serialises across channels shows as lost
//! throughput. [`waku_sds`] runs the workload of `benches/js/waku_sds_protocol.mjs` on the
//! pinned @waku/sds that `sds-interop` installs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sds::simulation::payload_message_id;
use sds_core::{Events, Persistence, ReliabilityConfig, ReliabilityManager, SdsError};
use tokio::task::JoinHandle;

/// Bytes of content per message.
pub const CONTENT_BYTES: usize = 100;

/// Which part of a [`Conversation::step`] is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// The two wraps.
    Wrap,
    /// The two unwraps.
    Unwrap,
    /// Everything: two wraps and two unwraps.
    RoundTrip,
}

impl Timed {
    /// Every part, in report order.
    pub const ALL: [Timed; 3] = [Timed::Wrap, Timed::Unwrap, Timed::RoundTrip];

    /// The benchmark id of the part.
    pub fn name(self) -> &'static str {
        match self {
            Timed::Wrap => "wrap",
            Timed::Unwrap => "unwrap",
            Timed::RoundTrip => "wrap_then_unwrap",
        }
    }
}

/// The 100-byte payload number `n` of `sender`: a readable prefix, then filler.
pub fn payload(sender: &str, n: u64) -> Vec<u8> {
    let mut bytes = format!("{sender} message {n:08} ").into_bytes();
    bytes.resize(CONTENT_BYTES, 0x5a);
    bytes
}

/// The two managers of a conversation, with their event streams drained in the
/// background as an application would read them.
#[derive(Debug)]
pub struct Managers {
    /// The first participant.
    pub alice: ReliabilityManager,
    /// The second participant.
    pub bob: ReliabilityManager,
    drainers: Vec<JoinHandle<()>>,
}

fn drain_in_background(mut events: Events) -> JoinHandle<()> {
    tokio::spawn(async move { while events.recv().await.is_some() {} })
}

impl Managers {
    /// Two managers with the default configuration over `alice_store` and `bob_store`
    /// (two namespaces of one backend). Must be called inside a tokio runtime.
    pub fn new(
        alice_store: Arc<dyn Persistence>,
        bob_store: Arc<dyn Persistence>,
    ) -> Result<Self, SdsError> {
        let build = |id: &str, store: Arc<dyn Persistence>| {
            ReliabilityManager::builder(id)
                .config(ReliabilityConfig::default())
                .persistence(store)
                .build()
        };
        let (alice, alice_events) = build("alice", alice_store)?;
        let (bob, bob_events) = build("bob", bob_store)?;
        Ok(Managers {
            alice,
            bob,
            drainers: vec![
                drain_in_background(alice_events),
                drain_in_background(bob_events),
            ],
        })
    }

    /// A conversation on `channel` between the two (both join it).
    pub async fn conversation(&self, channel: &str) -> Result<Conversation, SdsError> {
        self.alice.join_channel(channel).await?;
        self.bob.join_channel(channel).await?;
        Ok(Conversation {
            alice: self.alice.clone(),
            bob: self.bob.clone(),
            channel: channel.to_string(),
            next: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Drops the conversations' channels from the backend (servers are shared between
    /// runs) and shuts both managers down.
    pub async fn close(self, channels: &[String]) -> Result<(), SdsError> {
        for channel in channels {
            self.alice.remove_channel(channel).await?;
            self.bob.remove_channel(channel).await?;
        }
        self.alice.shutdown().await?;
        self.bob.shutdown().await?;
        for drainer in self.drainers {
            drainer.abort();
        }
        Ok(())
    }
}

/// Alice and bob on one channel. Clones continue the same conversation (they share the
/// message counter), so a clone moved into a task never repeats a message id.
#[derive(Debug, Clone)]
pub struct Conversation {
    alice: ReliabilityManager,
    bob: ReliabilityManager,
    channel: String,
    next: Arc<AtomicU64>,
}

impl Conversation {
    async fn wrap(
        manager: &ReliabilityManager,
        channel: &str,
        sender: &str,
        n: u64,
    ) -> Result<Vec<u8>, SdsError> {
        let content = payload(sender, n);
        let id = payload_message_id(&content);
        manager.wrap_outgoing(channel, id, content).await
    }

    /// One step (two messages, one each way); returns the time spent in the `timed` part.
    pub async fn step(&self, timed: Timed) -> Result<Duration, SdsError> {
        let (wraps, unwraps) = self.step_timings().await?;
        Ok(match timed {
            Timed::Wrap => wraps,
            Timed::Unwrap => unwraps,
            Timed::RoundTrip => wraps + unwraps,
        })
    }

    /// One step (two messages, one each way); returns the time spent in the two wraps and
    /// in the two unwraps.
    pub async fn step_timings(&self) -> Result<(Duration, Duration), SdsError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let from_alice = Self::wrap(&self.alice, &self.channel, "alice", n).await?;
        let wrapped = Instant::now();
        self.bob.unwrap_received(&from_alice).await?;
        let unwrapped = Instant::now();
        let from_bob = Self::wrap(&self.bob, &self.channel, "bob", n).await?;
        let wrapped_back = Instant::now();
        self.alice.unwrap_received(&from_bob).await?;
        let done = Instant::now();
        Ok((
            (wrapped - started) + (wrapped_back - unwrapped),
            (unwrapped - wrapped) + (done - wrapped_back),
        ))
    }

    /// `steps` steps; the time spent in the `timed` part.
    pub async fn steps(&self, steps: u64, timed: Timed) -> Result<Duration, SdsError> {
        let mut total = Duration::ZERO;
        for _ in 0..steps {
            total += self.step(timed).await?;
        }
        Ok(total)
    }
}

/// Runs `steps` steps on each conversation, all at once (one task each), and returns the
/// wall time until the last one finished.
pub async fn drive_parallel(
    conversations: &[Conversation],
    steps: u64,
) -> Result<Duration, SdsError> {
    let started = Instant::now();
    let tasks: Vec<JoinHandle<Result<(), SdsError>>> = conversations
        .iter()
        .cloned()
        .map(|conversation| {
            tokio::spawn(async move {
                conversation.steps(steps, Timed::RoundTrip).await?;
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|err| {
            SdsError::InvalidInput(format!("a conversation task failed: {err}"))
        })??;
    }
    Ok(started.elapsed())
}

/// A backend the protocol benches run on.
pub struct ProtocolBackend {
    /// Short name for benchmark ids and the report.
    pub name: &'static str,
    /// The opened backend; alice and bob get a namespace each.
    pub backend: sds::Backend,
    // A RocksDB database lives in a temporary directory that goes with it.
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for ProtocolBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl ProtocolBackend {
    /// Alice and bob over two fresh namespaces of this backend, named after `prefix` and
    /// this process, so runs sharing a server stay apart.
    pub fn managers(&self, prefix: &str) -> Result<Managers, SdsError> {
        let process = std::process::id();
        Managers::new(
            self.backend
                .namespace(&format!("protocol-{process}-{prefix}-alice")),
            self.backend
                .namespace(&format!("protocol-{process}-{prefix}-bob")),
        )
    }
}

fn server_url(variables: &[&str], default: &str) -> String {
    variables
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .unwrap_or_else(|| default.to_string())
}

/// Every backend that opens: memory, RocksDB (in a temporary directory, no fsync), and
/// PostgreSQL and Redis when their backend has landed and their server answers
/// (`SDS_BENCH_POSTGRES_URL` / `SDS_BENCH_REDIS_URL`, else the test variables, else the
/// local defaults). One that does not open is left out with a note on stderr.
pub async fn backends() -> Vec<ProtocolBackend> {
    let mut candidates: Vec<(&'static str, String, Option<tempfile::TempDir>)> =
        vec![("memory", "memory://".to_string(), None)];
    match tempfile::tempdir() {
        Ok(dir) => {
            let url = format!("rocksdb://{}/db", dir.path().display());
            candidates.push(("rocksdb", url, Some(dir)));
        }
        Err(err) => eprintln!("protocol bench: rocksdb left out, no temporary directory: {err}"),
    }
    candidates.push((
        "postgres",
        server_url(
            &["SDS_BENCH_POSTGRES_URL", "SDS_TEST_POSTGRES_URL"],
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        None,
    ));
    candidates.push((
        "redis",
        server_url(
            &["SDS_BENCH_REDIS_URL", "SDS_TEST_REDIS_URL"],
            "redis://127.0.0.1:6379",
        ),
        None,
    ));
    let mut opened = Vec::new();
    for (name, url, dir) in candidates {
        match sds::Backend::open(&url).await {
            Ok(backend) => opened.push(ProtocolBackend {
                name,
                backend,
                _dir: dir,
            }),
            Err(err) => eprintln!("protocol bench: {name} left out: {err}"),
        }
    }
    opened
}

/// What the @waku/sds run measured, per message.
#[derive(Debug, Clone, PartialEq)]
pub struct WakuSdsResult {
    /// The @waku/sds version that ran.
    pub version: String,
    /// The Node.js version that ran it.
    pub node: String,
    /// Causal history entries per message it was configured with.
    pub causal_history: u64,
    /// Nanoseconds per wrap.
    pub wrap_ns: f64,
    /// Nanoseconds per unwrap.
    pub unwrap_ns: f64,
    /// Nanoseconds per message, wrap and unwrap.
    pub round_trip_ns: f64,
}

impl WakuSdsResult {
    /// The nanoseconds of one part.
    pub fn ns(&self, timed: Timed) -> f64 {
        match timed {
            Timed::Wrap => self.wrap_ns,
            Timed::Unwrap => self.unwrap_ns,
            Timed::RoundTrip => self.round_trip_ns,
        }
    }
}

/// The workload script, `benches/js/waku_sds_protocol.mjs`.
pub fn waku_sds_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js/waku_sds_protocol.mjs")
}

/// Runs the workload on @waku/sds 0.0.8 (installed by `sds-interop` into its git-ignored
/// `js/node_modules` if needed): `warmup` untimed steps, then the median of `rounds` rounds
/// of `steps` steps, with `causal_history` entries per message.
pub fn waku_sds(
    warmup: u64,
    steps: u64,
    rounds: u64,
    causal_history: u64,
) -> Result<WakuSdsResult, String> {
    sds_interop::install::ensure_installed().map_err(|err| err.to_string())?;
    let node_modules = sds_interop::install::js_dir().join("node_modules");
    let output = Command::new("node")
        .arg(waku_sds_script())
        .arg(&node_modules)
        .args([warmup, steps, causal_history, rounds].map(|n| n.to_string()))
        .output()
        .map_err(|err| format!("cannot run node: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "the @waku/sds workload failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|err| format!("unreadable @waku/sds result {stdout:?}: {err}"))?;
    let number = |field: &str| {
        json.get(field)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("the @waku/sds result has no {field}: {stdout}"))
    };
    let text = |field: &str| {
        json.get(field)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    Ok(WakuSdsResult {
        version: text("sds_version"),
        node: text("node_version"),
        causal_history: json
            .get("causal_history_size")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(causal_history),
        wrap_ns: number("wrap_ns")?,
        unwrap_ns: number("unwrap_ns")?,
        round_trip_ns: number("round_trip_ns")?,
    })
}

/// The directory the benchmark report reads extra sections from:
/// `<target>/bench-report`, with `<target>` from `CARGO_TARGET_DIR` or the workspace's.
pub fn report_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("bench-report")
}

/// Writes a report section, `{"title", "markdown"}`, to `<report_dir>/<name>.json`.
pub fn write_report_section(name: &str, title: &str, markdown: &str) -> std::io::Result<PathBuf> {
    let dir = report_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    let json = serde_json::json!({ "title": title, "markdown": markdown });
    std::fs::write(&path, json.to_string())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sds_core::persistence::memory::MemoryStore;

    #[test]
    fn payloads_are_unique_and_sized() {
        assert_eq!(payload("alice", 1).len(), CONTENT_BYTES);
        assert_ne!(payload("alice", 1), payload("alice", 2));
        assert_ne!(payload("alice", 1), payload("bob", 1));
    }

    #[test]
    fn a_conversation_delivers_and_acknowledges() -> Result<(), SdsError> {
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|err| SdsError::InvalidInput(format!("no runtime: {err}")))?;
        runtime.block_on(async {
            let store = MemoryStore::new();
            let managers = Managers::new(
                Arc::new(store.namespace("alice")),
                Arc::new(store.namespace("bob")),
            )?;
            let conversation = managers.conversation("c").await?;
            conversation.steps(3, Timed::RoundTrip).await?;
            let parallel = vec![conversation.clone(), managers.conversation("d").await?];
            drive_parallel(&parallel, 2).await?;
            // Every message reached both logs; bob answered each of alice's (acknowledging
            // it), while bob's last one waits for alice's next message.
            let alice = managers.alice.channel_state("c").await?;
            let bob = managers.bob.channel_state("c").await?;
            assert_eq!(alice.log.len(), 10);
            assert_eq!(bob.log, alice.log);
            assert!(alice.outgoing.is_empty(), "{:?}", alice.outgoing);
            assert_eq!(bob.outgoing.len(), 1);
            assert_eq!(managers.alice.channel_state("d").await?.log.len(), 4);
            managers.close(&["c".to_string(), "d".to_string()]).await
        })
    }
}
