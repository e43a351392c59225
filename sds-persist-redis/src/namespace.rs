//! A namespace as a whole: the channels stored in it, and every namespace of the server
//! for operators.
//!
//! Each namespace keeps a sorted set of its channel ids (score 0, so `ZRANGE … BYLEX`
//! returns them sorted by bytes). On a standalone server the write scripts maintain it in
//! the same atomic step as the write, so it is exact. In Cluster it lives on the
//! namespace's slot, which a channel's script cannot touch: a channel is added before the
//! first write of a handle to it and removed after a drop, so the set may hold a channel
//! that is not stored (a crash between the two steps, or a history whose last entry was
//! evicted), never miss one that is; the listing therefore checks each member with
//! `EXISTS` and reports only stored channels.

use std::collections::{BTreeMap, BTreeSet};

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncCommands, Value};
use sds_core::persistence::PersistenceError;

use crate::RedisPersistence;
use crate::connection::Conn;
use crate::db::lock;
use crate::keys::{KIND_META, KIND_ORDER, decode_channel_key, scan_pattern};

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 1_000;

fn utf8(what: &str, bytes: Vec<u8>) -> Result<String, PersistenceError> {
    String::from_utf8(bytes).map_err(|err| {
        PersistenceError::corrupt(format!(
            "a stored {what} is not UTF-8: {:x?}",
            err.as_bytes()
        ))
    })
}

/// The channels of the handle's namespace that hold a snapshot or a history entry, sorted
/// by bytes, each once.
pub(crate) async fn list_channels(
    this: &RedisPersistence,
) -> Result<Vec<String>, PersistenceError> {
    let set = this.namespace_keys().channels.clone();
    let context = format!("list the channels of namespace {:?}", this.namespace());
    let members: Vec<Vec<u8>> = this
        .connector()
        .run(&context, |mut conn| async move {
            redis::cmd("ZRANGE")
                .arg(set)
                .arg("-")
                .arg("+")
                .arg("BYLEX")
                .query_async(&mut conn)
                .await
        })
        .await?;
    let members = if !this.namespace_in_scripts() {
        stored_only(this, members).await?
    } else {
        members
    };
    members
        .into_iter()
        .map(|channel| utf8("channel id", channel))
        .collect()
}

/// Cluster: the members whose channel holds a snapshot or a history entry.
async fn stored_only(
    this: &RedisPersistence,
    members: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, PersistenceError> {
    let mut stored = Vec::with_capacity(members.len());
    for member in members {
        let keys =
            crate::keys::ChannelKeys::new(this.key_prefix(), this.namespace().as_bytes(), &member);
        let exists: usize = this
            .connector()
            .run("check a listed channel", |mut conn| async move {
                conn.exists(&[keys.meta, keys.order]).await
            })
            .await?;
        if exists > 0 {
            stored.push(member);
        }
    }
    Ok(stored)
}

/// Cluster: adds `channel` to the namespace's set before this handle first writes it.
pub(crate) async fn register_in_cluster(
    this: &RedisPersistence,
    channel: &str,
) -> Result<(), PersistenceError> {
    if lock(this.registered()).contains(channel) {
        return Ok(());
    }
    let set = this.namespace_keys().channels.clone();
    let member = channel.as_bytes().to_vec();
    this.connector()
        .run("register a channel", |mut conn| async move {
            conn.zadd::<_, _, _, ()>(set, member, 0).await
        })
        .await?;
    lock(this.registered()).insert(channel.to_owned());
    Ok(())
}

/// Cluster: removes a dropped channel from the namespace's set.
pub(crate) async fn unregister_in_cluster(
    this: &RedisPersistence,
    channel: &str,
) -> Result<(), PersistenceError> {
    lock(this.registered()).remove(channel);
    let set = this.namespace_keys().channels.clone();
    let member = channel.as_bytes().to_vec();
    this.connector()
        .run("unregister a dropped channel", |mut conn| async move {
            conn.zrem::<_, _, ()>(set, member).await
        })
        .await
}

impl RedisPersistence {
    /// Every namespace on the server (every primary of a Cluster) with the channels stored
    /// in it (a snapshot or a history entry), whatever namespace this handle serves;
    /// namespaces and channels each sorted by their bytes, each once. Meant for operators
    /// and tools (`sds inspect`); a node lists its own channels with
    /// [`Persistence::list_channels`](sds_core::persistence::Persistence::list_channels).
    ///
    /// It walks the keyspace with `SCAN` (`MATCH` on this backend's snapshot and order-index
    /// keys), a step of about a thousand keys per round trip: it never blocks the server,
    /// and it costs in proportion to the whole keyspace.
    pub async fn stored_namespaces(
        &self,
    ) -> Result<BTreeMap<String, Vec<String>>, PersistenceError> {
        let conn = self.connection().await?;
        let nodes = match &conn {
            Conn::Single(_) => vec![None],
            Conn::Cluster(_) => primaries(self).await?.into_iter().map(Some).collect(),
        };
        let mut found: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
        for node in nodes {
            for kind in [KIND_META, KIND_ORDER] {
                let mut cursor = 0u64;
                loop {
                    let (next, keys) = scan_step(self, node.as_ref(), kind, cursor).await?;
                    for key in keys {
                        let Some((_, namespace, channel)) =
                            decode_channel_key(self.key_prefix(), &key)
                        else {
                            continue;
                        };
                        found
                            .entry(namespace.to_vec())
                            .or_default()
                            .insert(channel.to_vec());
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
        }
        let mut namespaces = BTreeMap::new();
        for (namespace, channels) in found {
            let channels = channels
                .into_iter()
                .map(|channel| utf8("channel id", channel))
                .collect::<Result<Vec<_>, _>>()?;
            namespaces.insert(utf8("namespace", namespace)?, channels);
        }
        Ok(namespaces)
    }
}

/// One `SCAN` step on the server, or on the Cluster node at `node` (host, port).
async fn scan_step(
    this: &RedisPersistence,
    node: Option<&(String, u16)>,
    kind: u8,
    cursor: u64,
) -> Result<(u64, Vec<Vec<u8>>), PersistenceError> {
    let mut scan = redis::cmd("SCAN");
    scan.arg(cursor)
        .arg("MATCH")
        .arg(scan_pattern(this.key_prefix(), kind))
        .arg("COUNT")
        .arg(SCAN_COUNT);
    let node = node.cloned();
    this.connector()
        .run("scan the stored channels", |conn| async move {
            match (conn, node) {
                (Conn::Cluster(mut cluster), Some((host, port))) => {
                    let routing =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    let value = cluster.route_command(scan, routing).await?;
                    redis::from_redis_value(value).map_err(Into::into)
                }
                (mut conn, _) => scan.query_async(&mut conn).await,
            }
        })
        .await
}

/// The Cluster's primaries, as (host, port), from `CLUSTER SLOTS`.
async fn primaries(this: &RedisPersistence) -> Result<BTreeSet<(String, u16)>, PersistenceError> {
    let slots: Vec<Value> = this
        .connector()
        .run("list the Cluster's primaries", |mut conn| async move {
            redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
        })
        .await?;
    let mut found = BTreeSet::new();
    for range in slots {
        let Value::Array(range) = range else { continue };
        let Some(Value::Array(primary)) = range.get(2) else {
            continue;
        };
        let host: Option<String> = primary
            .first()
            .and_then(|v| redis::from_redis_value_ref(v).ok());
        let port: Option<u16> = primary
            .get(1)
            .and_then(|v| redis::from_redis_value_ref(v).ok());
        if let (Some(host), Some(port)) = (host, port) {
            found.insert((host, port));
        }
    }
    if found.is_empty() {
        return Err(PersistenceError::unavailable(
            "the Cluster reported no primary serving a slot",
        ));
    }
    Ok(found)
}

impl RedisPersistence {
    /// Deletes everything this handle's namespace stores: every listed channel (one drop
    /// each, see [`Persistence::drop_channel`](sds_core::persistence::Persistence::drop_channel)),
    /// then the namespace's channel set and writer epoch. For operators and tests; a
    /// writer that claimed the namespace is fenced by nothing afterwards (the epoch starts
    /// again at 1).
    pub async fn delete_namespace(&self) -> Result<(), PersistenceError> {
        use sds_core::persistence::Persistence as _;

        // An unclaimed handle, which no fence refuses.
        let unclaimed = self.with_namespace(self.namespace());
        for channel in unclaimed.list_channels().await? {
            unclaimed.drop_channel(&channel).await?;
        }
        let keys = self.namespace_keys().clone();
        self.connector()
            .run("delete a namespace", |mut conn| async move {
                conn.del::<_, ()>(keys.epoch).await?;
                conn.del::<_, ()>(keys.channels).await
            })
            .await
    }
}
