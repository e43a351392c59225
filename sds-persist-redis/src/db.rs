//! The backend handle and its [`Persistence`] impl.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sds_codec::storage::{ChannelData, ChannelMeta, HistoryUpdate, encode_logged_message};
use sds_core::persistence::{BackendCapabilities, Persistence, PersistenceError, WriterEpoch};

use crate::config::{RedisBuilder, SlotScope, Target, parse_url};
use crate::connection::{Conn, Connector};
use crate::error::RedisBackendError;
use crate::keys::{ChannelKeys, NamespaceKeys};
use crate::scripts::{self, Status};
use crate::write_order::WriteOrder;
use crate::{fence, load, namespace};

/// The claim of an instance that never claimed (epochs start at 1).
pub(crate) const UNCLAIMED: u64 = 0;

/// What every handle on one connection shares.
struct Shared {
    connector: Connector,
    write_order: WriteOrder,
    declared_durable: Option<bool>,
    key_prefix: Vec<u8>,
    slot_scope: SlotScope,
}

/// A [`Persistence`] backend on Redis (one server or a Cluster), serving one namespace.
///
/// Cheap to clone: clones share the connection and the writer claim. Siblings made with
/// [`with_namespace`](Self::with_namespace) share the connection and serve another
/// namespace. See the [crate documentation](crate) for the layout, the scripts and what is
/// atomic where.
#[derive(Clone)]
pub struct RedisPersistence {
    shared: Arc<Shared>,
    namespace: Arc<str>,
    namespace_keys: Arc<NamespaceKeys>,
    /// The writer epoch this handle claimed ([`UNCLAIMED`] before its first claim).
    claimed: Arc<AtomicU64>,
    /// Test hook: the next commit with both parts aborts after staging its snapshot.
    abort_next_commit: Arc<AtomicBool>,
    /// Cluster only: the channels this handle has added to the namespace's channel set.
    registered: Arc<Mutex<HashSet<String>>>,
}

impl fmt::Debug for RedisPersistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPersistence")
            .field("target", &self.shared.connector.target().describe())
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// The arguments of one write script.
pub(crate) struct ScriptCall {
    pub(crate) script: &'static redis::Script,
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) args: Vec<Vec<u8>>,
}

impl RedisPersistence {
    /// Starts configuring a backend for the server or Cluster `url` names: `redis://…`,
    /// `rediss://…`, `redis+unix://…` for one server, or
    /// `redis+cluster://[user:password@]host:port[,host:port…]` for a Cluster.
    ///
    /// Query parameters `sds_prefix=…` and `sds_slot=channel|namespace` set the
    /// [key prefix](RedisBuilder::key_prefix) and the [slot scope](RedisBuilder::slot_scope).
    pub fn builder(url: &str) -> Result<RedisBuilder, RedisBackendError> {
        parse_url(url)
    }

    /// Starts configuring a backend for a Redis Cluster reached through any of `nodes`
    /// (`redis://host:port` each).
    pub fn cluster_builder(nodes: impl IntoIterator<Item = impl Into<String>>) -> RedisBuilder {
        RedisBuilder::new(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    pub(crate) fn from_builder(builder: RedisBuilder) -> Result<Self, RedisBackendError> {
        let RedisBuilder {
            target,
            namespace,
            connect_timeout,
            response_timeout,
            durable_on_ack,
            key_prefix,
            slot_scope,
        } = builder;
        if !crate::keys::valid_prefix(&key_prefix) {
            return Err(RedisBackendError::InvalidPrefix(key_prefix));
        }
        let connector = Connector::new(target, connect_timeout, response_timeout)?;
        let shared = Arc::new(Shared {
            connector,
            write_order: WriteOrder::default(),
            declared_durable: durable_on_ack,
            key_prefix: key_prefix.into_bytes(),
            slot_scope,
        });
        Ok(RedisPersistence::on(shared, namespace))
    }

    fn on(shared: Arc<Shared>, namespace: String) -> Self {
        RedisPersistence {
            namespace_keys: Arc::new(NamespaceKeys::new(&shared.key_prefix, namespace.as_bytes())),
            shared,
            namespace: Arc::from(namespace),
            claimed: Arc::new(AtomicU64::new(UNCLAIMED)),
            abort_next_commit: Arc::new(AtomicBool::new(false)),
            registered: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// A handle on the same connection serving another namespace (unclaimed).
    pub fn with_namespace(&self, namespace: impl Into<String>) -> Self {
        RedisPersistence::on(Arc::clone(&self.shared), namespace.into())
    }

    /// The namespace this handle serves.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether this handle talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.shared.connector.is_cluster()
    }

    /// The server or Cluster, as a URL without credentials.
    pub fn describe(&self) -> String {
        self.shared.connector.target().describe()
    }

    pub(crate) async fn connection(&self) -> Result<Conn, PersistenceError> {
        self.shared.connector.get().await
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.shared.connector
    }

    pub(crate) fn namespace_keys(&self) -> &NamespaceKeys {
        &self.namespace_keys
    }

    pub(crate) fn keys(&self, channel: &str) -> ChannelKeys {
        ChannelKeys::in_scope(
            &self.shared.key_prefix,
            self.shared.slot_scope,
            self.namespace.as_bytes(),
            channel.as_bytes(),
        )
    }

    /// Whether the namespace's epoch and channel set share the slot of its channels' keys
    /// (one server, or [`SlotScope::Namespace`]): then every script checks the fence and
    /// keeps the channel list in the same atomic step.
    pub(crate) fn namespace_in_scripts(&self) -> bool {
        !self.is_cluster() || self.shared.slot_scope == SlotScope::Namespace
    }

    /// What every key of this handle starts with.
    pub(crate) fn key_prefix(&self) -> &[u8] {
        &self.shared.key_prefix
    }

    pub(crate) fn claimed_epoch(&self) -> &AtomicU64 {
        &self.claimed
    }

    pub(crate) fn arm_abort_next_commit(&self) {
        self.abort_next_commit.store(true, Ordering::SeqCst);
    }

    /// `KEYS` of a write script: the channel's four keys and, standalone, the namespace's
    /// epoch and channel set (see `scripts`).
    pub(crate) fn script_keys(&self, keys: &ChannelKeys) -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = keys.all().iter().map(|key| key.to_vec()).collect();
        if self.namespace_in_scripts() {
            all.push(self.namespace_keys.epoch.clone());
            all.push(self.namespace_keys.channels.clone());
        }
        all
    }

    /// The first two `ARGV` of every write script: the epoch held and the channel id.
    fn script_head(&self, channel: &str) -> Vec<Vec<u8>> {
        vec![
            self.claimed.load(Ordering::SeqCst).to_string().into_bytes(),
            channel.as_bytes().to_vec(),
        ]
    }

    /// Runs a write script for `channel` on a task of its own holding the channel's turn
    /// (see `write_order`), and maps its answer.
    async fn write(
        &self,
        channel: &str,
        what: &'static str,
        call: ScriptCall,
    ) -> Result<(), PersistenceError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(PersistenceError::other(
                "the Redis backend runs on Tokio: call it from inside a Tokio runtime",
            ));
        };
        let turn = self.shared.write_order.turn(&self.namespace, channel).await;
        let this = self.clone();
        let channel = channel.to_owned();
        let task = runtime.spawn(async move {
            // Held until the write is done, whether or not anyone still waits.
            let _turn = turn;
            this.write_now(&channel, what, call).await
        });
        task.await
            .map_err(|join| PersistenceError::other_from(format!("{what}: task failed"), join))?
    }

    async fn write_now(
        &self,
        channel: &str,
        what: &'static str,
        call: ScriptCall,
    ) -> Result<(), PersistenceError> {
        let context = format!("{what} of channel {channel:?}");
        if !self.namespace_in_scripts() && what != "drop" {
            namespace::register_in_cluster(self, channel).await?;
        }
        let ScriptCall { script, keys, args } = call;
        let (code, detail): (i64, Vec<u8>) = self
            .shared
            .connector
            .run(&context, |mut conn| async move {
                let mut invocation = script.prepare_invoke();
                for key in &keys {
                    invocation.key(key.as_slice());
                }
                for arg in &args {
                    invocation.arg(arg.as_slice());
                }
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let detail = String::from_utf8_lossy(&detail).into_owned();
        match Status::from_code(code) {
            Some(Status::Ok) => Ok(()),
            Some(Status::Fenced) => {
                let held = self.claimed.load(Ordering::SeqCst);
                let current = detail.parse::<u64>().map_err(|_| {
                    PersistenceError::corrupt(format!(
                        "the writer epoch of namespace {:?} is not a number: {detail:?}",
                        self.namespace
                    ))
                })?;
                tracing::debug!(
                    namespace = &*self.namespace,
                    channel,
                    held,
                    current,
                    "write of a fenced writer refused"
                );
                Err(PersistenceError::fenced(
                    WriterEpoch::new(held),
                    WriterEpoch::new(current),
                ))
            }
            Some(Status::Corrupt) => Err(PersistenceError::corrupt(format!(
                "{context}: the stored history row of message {detail:?} is malformed; \
                 nothing was written"
            ))),
            Some(Status::Aborted) => Err(PersistenceError::unavailable(format!(
                "injected failure: {context} aborted after staging the snapshot; nothing was \
                 written"
            ))),
            Some(Status::Invalid) => Err(PersistenceError::other(format!(
                "{context}: refused by the script ({detail}); nothing was written"
            ))),
            None => Err(PersistenceError::other(format!(
                "{context}: unexpected script status {code}"
            ))),
        }
    }

    /// The arguments of the commit script.
    fn commit_call(
        &self,
        channel: &str,
        meta: Option<Vec<u8>>,
        history: Option<&HistoryUpdate>,
    ) -> ScriptCall {
        let abort = meta.is_some()
            && history.is_some()
            && self.abort_next_commit.swap(false, Ordering::SeqCst);
        let mut args = self.script_head(channel);
        args.push(if meta.is_some() {
            b"1".to_vec()
        } else {
            b"0".to_vec()
        });
        args.push(meta.unwrap_or_default());
        args.push(if abort { b"1".to_vec() } else { b"0".to_vec() });
        let (evict, append) = history.map_or((&[][..], &[][..]), |update| {
            (update.evict.as_slice(), update.append.as_slice())
        });
        args.push(evict.len().to_string().into_bytes());
        args.push(append.len().to_string().into_bytes());
        args.reserve(evict.len() + 5 * append.len());
        for id in evict {
            args.push(id.as_bytes().to_vec());
        }
        for message in append {
            // Hints live in their own hash, so the script can keep a stored one without
            // decoding the row: the row goes without it.
            let hint = message.retrieval_hint.clone();
            let row = if hint.is_some() {
                let mut bare = message.clone();
                bare.retrieval_hint = None;
                encode_logged_message(&bare)
            } else {
                encode_logged_message(message)
            };
            args.push(message.message_id().as_bytes().to_vec());
            args.push(message.lamport().to_be_bytes().to_vec());
            args.push(row);
            args.push(if hint.is_some() {
                b"1".to_vec()
            } else {
                b"0".to_vec()
            });
            args.push(hint.unwrap_or_default());
        }
        ScriptCall {
            script: &scripts::COMMIT,
            keys: self.script_keys(&self.keys(channel)),
            args,
        }
    }
}

#[async_trait]
impl Persistence for RedisPersistence {
    async fn save_channel_meta(
        &self,
        channel: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.commit(channel, Some(meta), None).await
    }

    async fn update_history(
        &self,
        channel: &str,
        update: &HistoryUpdate,
    ) -> Result<(), PersistenceError> {
        self.commit(channel, None, Some(update)).await
    }

    async fn load_channel(&self, channel: &str) -> Result<ChannelData, PersistenceError> {
        let keys = self.keys(channel);
        let context = format!("load of channel {channel:?}");
        let raw: load::RawChannel = self
            .shared
            .connector
            .run(&context, |mut conn| async move {
                let mut invocation = scripts::LOAD.prepare_invoke();
                for key in keys.all() {
                    invocation.key(key);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        load::decode(channel, raw)
    }

    /// One script: four `UNLINK`s, whose cost on the server's main thread does not grow
    /// with the channel (values of more than 64 elements are freed in the background).
    async fn drop_channel(&self, channel: &str) -> Result<(), PersistenceError> {
        let call = ScriptCall {
            script: &scripts::DROP,
            keys: self.script_keys(&self.keys(channel)),
            args: self.script_head(channel),
        };
        self.write(channel, "drop", call).await?;
        if !self.namespace_in_scripts() {
            namespace::unregister_in_cluster(self, channel).await?;
        }
        Ok(())
    }

    async fn set_retrieval_hint(
        &self,
        channel: &str,
        message_id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        let mut args = self.script_head(channel);
        args.push(message_id.as_bytes().to_vec());
        args.push(hint.to_vec());
        let call = ScriptCall {
            script: &scripts::HINT,
            keys: self.script_keys(&self.keys(channel)),
            args,
        };
        self.write(channel, "retrieval hint", call).await
    }

    /// One script: fence check, validation, then the snapshot and the history batch, so
    /// both land or neither does.
    async fn commit(
        &self,
        channel: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        let history = history.filter(|update| !update.is_empty());
        if meta.is_none() && history.is_none() {
            return Ok(());
        }
        let meta = meta.map(sds_codec::storage::encode_channel_meta);
        let call = self.commit_call(channel, meta, history);
        self.write(channel, "commit", call).await
    }

    /// Atomic commit, persistence and listing always; fencing on one server and in Cluster
    /// with [`SlotScope::Namespace`] (with per-channel slots the namespace's epoch lives on
    /// another slot than the channel's keys, where a script cannot check it); durable on acknowledge per the
    /// [durability table](RedisBuilder#durability).
    fn capabilities(&self) -> BackendCapabilities {
        let durable = self
            .shared
            .declared_durable
            .or_else(|| self.shared.connector.fsync_always())
            .unwrap_or(false);
        BackendCapabilities::CONSERVATIVE
            .with_atomic_commit(true)
            .with_durable_on_ack(durable)
            .with_persistent(true)
            .with_list_channels(true)
            .with_fencing(self.namespace_in_scripts())
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        namespace::list_channels(self).await
    }

    /// `INCR` of the namespace's epoch key; `None` in Cluster with per-channel slots, which
    /// keeps no fence (see [`capabilities`](Self::capabilities)).
    async fn claim_writer(&self) -> Result<Option<WriterEpoch>, PersistenceError> {
        if !self.namespace_in_scripts() {
            return Ok(None);
        }
        fence::claim(self).await.map(Some)
    }
}

/// Locks a mutex guarding plain data: a poisoned one is as good as a healthy one.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisPersistence {
    pub(crate) fn registered(&self) -> &Mutex<HashSet<String>> {
        &self.registered
    }
}
