//! The connection: one auto-reconnecting multiplexed connection (standalone) or one Cluster
//! connection, established on first use, and the deadline every call runs under.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use sds_core::persistence::PersistenceError;
use tokio::sync::OnceCell;

use crate::config::Target;
use crate::error::{RedisBackendError, redis_error, timed_out};

/// A live connection, cheap to clone (clones share it).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Everything needed to (re)connect, and the connection once made.
pub(crate) struct Connector {
    target: Target,
    connect_timeout: Duration,
    response_timeout: Duration,
    conn: OnceCell<Conn>,
    /// Whether the server runs AOF with `appendfsync always`, as it said when asked
    /// (standalone only; `None` when not asked or not allowed to ask).
    fsync_always: OnceCell<Option<bool>>,
}

impl Connector {
    pub(crate) fn new(
        target: Target,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, RedisBackendError> {
        // Parse every URL now, so a malformed one fails the builder, not the first call.
        let urls = match &target {
            Target::Standalone(url) => std::slice::from_ref(url),
            Target::Cluster(nodes) => nodes.as_slice(),
        };
        for url in urls {
            redis::Client::open(url.as_str()).map_err(|err| RedisBackendError::InvalidUrl {
                url: target.describe(),
                reason: err.to_string(),
            })?;
        }
        Ok(Connector {
            target,
            connect_timeout,
            response_timeout,
            conn: OnceCell::new(),
            fsync_always: OnceCell::new(),
        })
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The longest any single operation may take: connecting plus one answer.
    pub(crate) fn deadline(&self) -> Duration {
        self.connect_timeout + self.response_timeout
    }

    /// What the server said about `appendfsync always`, if it was asked.
    pub(crate) fn fsync_always(&self) -> Option<bool> {
        self.fsync_always.get().copied().flatten()
    }

    /// The connection, connecting first if there is none yet (a failed attempt is retried
    /// by the next call). Bounded by the connect timeout.
    pub(crate) async fn get(&self) -> Result<Conn, PersistenceError> {
        let connect = self.conn.get_or_try_init(|| self.connect());
        match tokio::time::timeout(self.deadline(), connect).await {
            Ok(result) => result.cloned(),
            Err(_) => Err(timed_out("connect", self.deadline())),
        }
    }

    async fn connect(&self) -> Result<Conn, PersistenceError> {
        let what = format!("connect to {}", self.target.describe());
        match &self.target {
            Target::Standalone(url) => {
                let client =
                    redis::Client::open(url.as_str()).map_err(|err| redis_error(&what, err))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.response_timeout))
                    // Reconnection is retried by the next call; each call keeps its deadline.
                    .set_number_of_retries(1)
                    .set_max_delay(self.connect_timeout);
                let manager = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(|err| redis_error(&what, err))?;
                let mut conn = Conn::Single(manager);
                let fsync = ask_fsync_always(&mut conn).await;
                let _ = self.fsync_always.set(fsync);
                Ok(conn)
            }
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(self.connect_timeout)
                    .response_timeout(self.response_timeout)
                    .retries(2)
                    .build()
                    .map_err(|err| redis_error(&what, err))?;
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(|err| redis_error(&what, err))?;
                Ok(Conn::Cluster(conn))
            }
        }
    }

    /// Runs `call` on the connection, failing as `Unavailable` past the deadline.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, call: F) -> Result<T, PersistenceError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.get().await?;
        match tokio::time::timeout(self.deadline(), call(conn)).await {
            Ok(result) => result.map_err(|err| redis_error(what, err)),
            Err(_) => Err(timed_out(what, self.deadline())),
        }
    }
}

/// Asks a standalone server whether it fsyncs its AOF on every write; `None` if `CONFIG`
/// is not allowed or answers something unexpected.
async fn ask_fsync_always(conn: &mut Conn) -> Option<bool> {
    let answer: redis::RedisResult<std::collections::HashMap<String, String>> =
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .arg("appendfsync")
            .query_async(conn)
            .await;
    let pairs = match answer {
        Ok(pairs) => pairs,
        Err(err) => {
            tracing::debug!(%err, "CONFIG GET not allowed: durability taken as not on ack");
            return None;
        }
    };
    let value = |name: &str| pairs.get(name).map(String::as_str);
    Some(value("appendonly")? == "yes" && value("appendfsync")? == "always")
}
