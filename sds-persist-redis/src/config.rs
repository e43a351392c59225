//! Configuration of a Redis backend: where the server is, namespace, timeouts, durability.

use std::time::Duration;

use crate::RedisPersistence;
use crate::error::RedisBackendError;

/// The namespace used when the builder is not given one.
pub const DEFAULT_NAMESPACE: &str = "default";
/// How long connecting may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may wait for its answer by default: generous, because one call may
/// carry a whole batch of [`MAX_HISTORY_BATCH`](sds_core::persistence::MAX_HISTORY_BATCH)
/// entries or load a whole channel, on a server that may be busy; the manager's own
/// `commit_timeout_ms` (30 s by default) still bounds what it waits for.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which keys share a Redis Cluster slot (one server has no slots: there both behave
/// alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotScope {
    /// Every key of a namespace shares one slot (the default): a namespace, one node's
    /// data, lives on one primary (nodes, that is namespaces, still spread over the
    /// Cluster), and every script checks the writer fence and keeps the channel list
    /// atomically, as on one server. The default because the fence is what keeps two
    /// managers misconfigured onto one namespace from overwriting each other.
    #[default]
    Namespace,
    /// Each channel's keys share a slot of their own: a namespace's channels spread over
    /// the Cluster's primaries, for a namespace too busy for one primary. The namespace's
    /// epoch and channel set live on yet another slot, which a channel's script cannot
    /// touch, so there is no writer fence and the channel list is kept beside the writes
    /// (see the crate docs).
    Channel,
}

/// Which Redis deployment the backend talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server (`redis://…`, `rediss://…`, `redis+unix://…`).
    Standalone(String),
    /// A Redis Cluster, reached through any of these nodes (`redis://host:port` each).
    Cluster(Vec<String>),
}

impl Target {
    /// The target as a URL, for messages and `describe` (credentials removed).
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Standalone(url) => redact(url),
            Target::Cluster(nodes) => {
                let hosts: Vec<String> = nodes
                    .iter()
                    .map(|node| {
                        let shown = redact(node);
                        shown.strip_prefix("redis://").unwrap_or(&shown).to_owned()
                    })
                    .collect();
                format!("redis+cluster://{}", hosts.join(","))
            }
        }
    }
}

/// `url` without the password of its user-info part.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Builds a [`RedisPersistence`]; start from [`RedisPersistence::builder`] or
/// [`RedisPersistence::cluster_builder`].
///
/// # Durability
///
/// What an acknowledged write survives depends on the server's persistence settings, not on
/// this backend: every write is one script whose reply comes after Redis applied it in
/// memory and, with AOF on, after it wrote (and with `appendfsync always`, fsynced) the
/// append-only file.
///
/// | server setting             | survives a client crash | a `redis-server` crash or restart | a machine crash             |
/// |----------------------------|-------------------------|-----------------------------------|-----------------------------|
/// | no persistence             | yes                     | no: everything is lost            | no                          |
/// | RDB snapshots only         | yes                     | up to the last snapshot only       | up to the last snapshot     |
/// | AOF, `appendfsync everysec`| yes                     | yes (written before the reply)    | all but the last ~1 s       |
/// | AOF, `appendfsync always`  | yes                     | yes                               | yes (fsynced before the reply) |
///
/// The declaration follows: [`persistent`](sds_core::persistence::BackendCapabilities::persistent)
/// is always declared (the data outlives this process, which is what it means; a server
/// without persistence keeps it until the server stops), and
/// [`durable_on_ack`](sds_core::persistence::BackendCapabilities::durable_on_ack) only for
/// AOF with `appendfsync always`. By default a standalone backend asks the server at
/// connect (`CONFIG GET appendonly appendfsync`) and declares `durable_on_ack` when both say
/// so; when `CONFIG` is not allowed (managed services often rename it), and in Cluster (each
/// primary has its own setting), it declares it only when told with
/// [`durable_on_ack`](Self::durable_on_ack). Replication does not change this: Redis
/// replicates asynchronously, so an acknowledged write can be lost in a failover.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisBuilder {
    pub(crate) target: Target,
    pub(crate) namespace: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) durable_on_ack: Option<bool>,
    pub(crate) key_prefix: String,
    pub(crate) slot_scope: SlotScope,
}

impl RedisBuilder {
    pub(crate) fn new(target: Target) -> Self {
        RedisBuilder {
            target,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            durable_on_ack: None,
            key_prefix: crate::keys::DEFAULT_KEY_PREFIX.to_owned(),
            slot_scope: SlotScope::default(),
        }
    }

    /// Which keys share a Cluster slot (default [`SlotScope::Namespace`]; also
    /// `?sds_slot=channel` or `?sds_slot=namespace` in the URL). The layout differs between
    /// the two, so every instance on one store must use the same scope. No effect on one
    /// server beyond that.
    pub fn slot_scope(mut self, scope: SlotScope) -> Self {
        self.slot_scope = scope;
        self
    }

    /// What every key starts with (default `sds:`; also `?sds_prefix=…` in the URL). Two
    /// prefixes are two separate stores on one server, as two databases would be, but also
    /// in Cluster (which has only database 0). It may not hold `{` or `}`, which would
    /// change the keys' hash tag.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The namespace the instance serves (default [`DEFAULT_NAMESPACE`]). Any string is
    /// allowed, the empty one included; instances with different namespaces share the
    /// server without seeing each other's channels.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long establishing a connection may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one call may wait for the server's answer (default
    /// [`DEFAULT_RESPONSE_TIMEOUT`]). Every operation fails as `Unavailable` within
    /// connect timeout + response timeout when the server does not answer.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Declares whether an acknowledged write survives a machine crash (AOF with
    /// `appendfsync always` on every primary), instead of asking the server. See
    /// [the durability table](Self#durability).
    pub fn durable_on_ack(mut self, durable: bool) -> Self {
        self.durable_on_ack = Some(durable);
        self
    }

    /// The server or Cluster this builder connects to, as a URL without its password.
    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// Connects now (within the connect timeout), so a wrong address or a server that is
    /// down is reported here rather than by the first operation.
    pub async fn connect(self) -> Result<RedisPersistence, RedisBackendError> {
        let target = self.target.describe();
        let backend = self.connect_lazy()?;
        backend
            .connection()
            .await
            .map_err(|source| RedisBackendError::Connect { target, source })?;
        Ok(backend)
    }

    /// Builds the backend without connecting: the first operation connects, and every
    /// operation reconnects if the connection was lost. Fails only on a malformed URL.
    pub fn connect_lazy(self) -> Result<RedisPersistence, RedisBackendError> {
        RedisPersistence::from_builder(self)
    }
}

/// Parses a backend URL: `redis://…`, `rediss://…` and `redis+unix://…` name one server;
/// `redis+cluster://[user:password@]host:port[,host:port…]` names Cluster nodes to start
/// from (any subset of the cluster's nodes will do). Query parameters starting with `sds_`
/// are this backend's (`sds_prefix=…`, `sds_slot=channel|namespace`), taken out of the URL
/// the client sees and applied to the builder.
pub(crate) fn parse_url(url: &str) -> Result<RedisBuilder, RedisBackendError> {
    let (client_url, options) = take_sds_parameters(url);
    let mut builder = RedisBuilder::new(parse_target(&client_url)?);
    for (name, value) in options {
        builder = match (name.as_str(), value.as_str()) {
            ("sds_prefix", prefix) => builder.key_prefix(prefix),
            ("sds_slot", "channel") => builder.slot_scope(SlotScope::Channel),
            ("sds_slot", "namespace") => builder.slot_scope(SlotScope::Namespace),
            _ => {
                return Err(RedisBackendError::InvalidUrl {
                    url: redact(url),
                    reason: format!(
                        "unknown parameter {name}={value} (expected sds_prefix=… or \
                         sds_slot=channel|namespace)"
                    ),
                });
            }
        };
    }
    Ok(builder)
}

/// Splits the `sds_*` query parameters off `url`.
fn take_sds_parameters(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), Vec::new());
    };
    let mut options = Vec::new();
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            if pair.starts_with("sds_") {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                options.push((name.to_owned(), value.to_owned()));
                false
            } else {
                !pair.is_empty()
            }
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), options)
    } else {
        (format!("{base}?{}", kept.join("&")), options)
    }
}

fn parse_target(url: &str) -> Result<Target, RedisBackendError> {
    let invalid = |reason: &str| RedisBackendError::InvalidUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(
            "expected redis://host:port or redis+cluster://host:port,…",
        ));
    };
    match scheme {
        "redis" | "rediss" | "redis+unix" | "unix" => Ok(Target::Standalone(url.to_owned())),
        "redis+cluster" | "rediss+cluster" => {
            let node_scheme = scheme.trim_end_matches("+cluster");
            let (userinfo, hosts) = match rest.rsplit_once('@') {
                Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
                None => (String::new(), rest),
            };
            let hosts = hosts.trim_end_matches('/');
            let nodes: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(|host| format!("{node_scheme}://{userinfo}{host}"))
                .collect();
            if nodes.is_empty() {
                return Err(invalid("no cluster node given"));
            }
            if hosts.contains('/') {
                return Err(invalid(
                    "a Cluster has only database 0: remove the path after the nodes",
                ));
            }
            Ok(Target::Cluster(nodes))
        }
        _ => Err(invalid("unknown scheme")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_targets() {
        assert_eq!(
            parse_target("redis://127.0.0.1:6379/2").ok(),
            Some(Target::Standalone("redis://127.0.0.1:6379/2".into()))
        );
        assert_eq!(
            parse_target("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001").ok(),
            Some(Target::Cluster(vec![
                "redis://u:p@10.0.0.1:7000".into(),
                "redis://u:p@10.0.0.2:7001".into()
            ]))
        );
        assert!(parse_target("redis+cluster://").is_err());
        assert!(parse_target("redis+cluster://a:1/3").is_err());
        assert!(parse_target("memcached://x").is_err());
        assert!(parse_target("no scheme").is_err());
        let builder = parse_url("redis://h:1/0?sds_prefix=run-7:&x=1").unwrap();
        assert_eq!(
            builder.target,
            Target::Standalone("redis://h:1/0?x=1".into())
        );
        assert_eq!(builder.key_prefix, "run-7:");
        let builder =
            parse_url("redis+cluster://a:1,b:2?sds_prefix=p:&sds_slot=namespace").unwrap();
        assert_eq!(
            builder.target,
            Target::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert_eq!(builder.key_prefix, "p:");
        assert_eq!(builder.slot_scope, SlotScope::Namespace);
        assert!(parse_url("redis://h:1?sds_slot=everything").is_err());
        assert!(parse_url("redis://h:1?sds_nope=1").is_err());
        let shown = Target::Cluster(vec!["redis://u:secret@a:1".into()]).describe();
        assert_eq!(shown, "redis+cluster://u:***@a:1");
        assert!(
            !Target::Standalone("redis://:pw@h:1".into())
                .describe()
                .contains("pw")
        );
    }
}
