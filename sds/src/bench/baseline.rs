//! Raw baselines: the same bytes written and read with the store's own client and nothing
//! of ours in between, on the same server (or disk) and with the same durability setting.
//!
//! | kind | commit | load | drop |
//! |---|---|---|---|
//! | memory | map inserts under one lock | clone the channel's rows | remove the channel |
//! | RocksDB | one `WriteBatch` (meta, row, index, deletes), same sync setting | one prefix iteration, values not decoded | `DeleteRange` of the prefixes, fsynced |
//! | PostgreSQL | one upsert statement (meta, rows and deletes in one CTE) | one `SELECT … ORDER BY` | one `DELETE` statement |
//! | Redis | one small `MULTI` (SET meta, HSET rows, HDEL evicted); one plain SET beside it | one `HGETALL` | one `DEL` |
//!
//! A baseline runs in a scratch area of its own (a sibling directory for RocksDB, rows keyed
//! by a run id in two `sds_bench_raw_*` tables for PostgreSQL, keys under
//! `sds-bench-raw:{run}` for Redis) and [`RawBaseline::cleanup`] removes what it wrote.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use super::BenchError;
use super::workloads::RawCommit;

/// One raw baseline, opened against the store a backend URL names.
pub struct RawBaseline {
    inner: Inner,
}

enum Inner {
    Memory(Mutex<HashMap<String, MemoryChannel>>),
    #[cfg(feature = "rocksdb")]
    RocksDb(rocks::RocksRaw),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PostgresRaw),
    #[cfg(feature = "redis")]
    Redis(redis_raw::RedisRaw),
}

/// A channel of the in-memory baseline: its snapshot bytes and rows by (lamport, id).
#[derive(Default)]
struct MemoryChannel {
    meta: Option<Vec<u8>>,
    rows: BTreeMap<(u64, String), Vec<u8>>,
}

/// The RocksDB durability a URL asks for: `rocksdb:///path?sync=true`.
pub(crate) fn rocksdb_sync(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| matches!(pair, "sync=true" | "sync=1" | "sync=on"))
    })
}

impl RawBaseline {
    /// Opens the baseline for the backend `url` names. `run` tells this run's scratch data
    /// apart from any other's.
    pub async fn open(url: &str, run: &str) -> Result<RawBaseline, BenchError> {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        let inner = match scheme {
            "memory" => Inner::Memory(Mutex::new(HashMap::new())),
            #[cfg(feature = "rocksdb")]
            "rocksdb" => Inner::RocksDb(rocks::RocksRaw::open(url, run)?),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                Inner::Postgres(postgres::PostgresRaw::open(url, run).await?)
            }
            #[cfg(feature = "redis")]
            "redis" | "rediss" | "redis+cluster" => {
                Inner::Redis(redis_raw::RedisRaw::open(url, run).await?)
            }
            other => {
                return Err(BenchError::Baseline(format!(
                    "no raw baseline for the {other:?} scheme in this build"
                )));
            }
        };
        let _ = run;
        Ok(RawBaseline { inner })
    }

    /// What the commit baseline does, for the report.
    pub fn commit_name(&self) -> String {
        match &self.inner {
            Inner::Memory(_) => "map inserts under one lock".to_string(),
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(raw) => format!(
                "one WriteBatch, sync {}",
                if raw.sync { "on" } else { "off" }
            ),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => "one upsert statement".to_string(),
            #[cfg(feature = "redis")]
            Inner::Redis(_) => "one MULTI (SET, HSET, HDEL)".to_string(),
        }
    }

    /// What the load baseline does, for the report.
    pub fn load_name(&self) -> &'static str {
        match &self.inner {
            Inner::Memory(_) => "clone the rows",
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(_) => "one prefix iteration",
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => "one SELECT … ORDER BY",
            #[cfg(feature = "redis")]
            Inner::Redis(_) => "one HGETALL",
        }
    }

    /// What the drop baseline does, for the report.
    pub fn drop_name(&self) -> &'static str {
        match &self.inner {
            Inner::Memory(_) => "remove the channel",
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(_) => "DeleteRange, fsynced",
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => "one DELETE statement",
            #[cfg(feature = "redis")]
            Inner::Redis(_) => "one DEL",
        }
    }

    /// The server's or library's version, when it has one to tell.
    pub async fn server_version(&self) -> Option<String> {
        match &self.inner {
            Inner::Memory(_) => None,
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(_) => Some(format!(
                "RocksDB (rust-rocksdb {})",
                rocks::CRATE_VERSION_HINT
            )),
            #[cfg(feature = "postgres")]
            Inner::Postgres(raw) => raw.server_version().await,
            #[cfg(feature = "redis")]
            Inner::Redis(raw) => raw.server_version().await,
        }
    }

    /// Writes one commit's bytes.
    pub async fn commit(&self, channel: &str, commit: &RawCommit) -> Result<(), BenchError> {
        match &self.inner {
            Inner::Memory(channels) => {
                let mut channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
                let stored = channels.entry(channel.to_string()).or_default();
                if let Some(meta) = &commit.meta {
                    stored.meta = Some(meta.clone());
                }
                for (id, lamport) in &commit.evict {
                    stored.rows.remove(&(*lamport, id.clone()));
                }
                for row in &commit.rows {
                    stored
                        .rows
                        .insert((row.lamport, row.id.clone()), row.bytes.clone());
                }
                Ok(())
            }
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(raw) => raw.commit(channel, commit),
            #[cfg(feature = "postgres")]
            Inner::Postgres(raw) => raw.commit(channel, commit).await,
            #[cfg(feature = "redis")]
            Inner::Redis(raw) => raw.commit(channel, commit).await,
        }
    }

    /// The store's cheapest write of the snapshot alone, where it differs from
    /// [`commit`](Self::commit) (Redis: one SET); `None` for the other stores.
    pub async fn single_write(&self, channel: &str, meta: &[u8]) -> Option<Result<(), BenchError>> {
        match &self.inner {
            #[cfg(feature = "redis")]
            Inner::Redis(raw) => Some(raw.set_meta(channel, meta).await),
            _ => {
                let _ = (channel, meta);
                None
            }
        }
    }

    /// Reads a channel's rows in one range read; returns how many it read.
    pub async fn load(&self, channel: &str) -> Result<usize, BenchError> {
        match &self.inner {
            Inner::Memory(channels) => {
                let channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
                let rows: Vec<Vec<u8>> = channels
                    .get(channel)
                    .map(|stored| stored.rows.values().cloned().collect())
                    .unwrap_or_default();
                Ok(rows.len())
            }
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(raw) => raw.load(channel),
            #[cfg(feature = "postgres")]
            Inner::Postgres(raw) => raw.load(channel).await,
            #[cfg(feature = "redis")]
            Inner::Redis(raw) => raw.load(channel).await,
        }
    }

    /// Deletes a channel's snapshot and rows.
    pub async fn drop_channel(&self, channel: &str) -> Result<(), BenchError> {
        match &self.inner {
            Inner::Memory(channels) => {
                channels
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(channel);
                Ok(())
            }
            #[cfg(feature = "rocksdb")]
            Inner::RocksDb(raw) => raw.drop_channel(channel),
            #[cfg(feature = "postgres")]
            Inner::Postgres(raw) => raw.drop_channel(channel).await,
            #[cfg(feature = "redis")]
            Inner::Redis(raw) => raw.drop_channel(channel).await,
        }
    }

    /// Removes everything this baseline wrote (a RocksDB scratch directory goes when the
    /// baseline is dropped).
    pub async fn cleanup(&self, channels: &[String]) -> Result<(), BenchError> {
        match &self.inner {
            #[cfg(feature = "postgres")]
            Inner::Postgres(raw) => raw.cleanup().await,
            _ => {
                for channel in channels {
                    self.drop_channel(channel).await?;
                }
                Ok(())
            }
        }
    }
}

/// A baseline error with what was being done.
#[cfg(any(feature = "rocksdb", feature = "postgres", feature = "redis"))]
fn raw_error(what: &str, err: impl std::fmt::Display) -> BenchError {
    BenchError::Baseline(format!("{what}: {err}"))
}

#[cfg(feature = "rocksdb")]
mod rocks {
    use rocksdb::{DB, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions};

    use super::{BenchError, RawCommit, raw_error, rocksdb_sync};

    /// The rust-rocksdb release the workspace pins (reported with the figures).
    pub(super) const CRATE_VERSION_HINT: &str = "0.25";

    pub(super) struct RocksRaw {
        db: DB,
        pub(super) sync: bool,
        // Removed with the baseline.
        _dir: tempfile::TempDir,
    }

    impl RocksRaw {
        /// A scratch database beside the backend's directory (same disk), with the URL's
        /// sync setting.
        pub(super) fn open(url: &str, run: &str) -> Result<RocksRaw, BenchError> {
            let path = url
                .split_once("://")
                .map_or("", |(_, rest)| rest)
                .split('?')
                .next()
                .unwrap_or("");
            let path = std::path::Path::new(path);
            let parent = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let dir = tempfile::Builder::new()
                .prefix(&format!(".sds-bench-raw-{run}-"))
                .tempdir_in(parent)
                .map_err(|err| {
                    raw_error(
                        &format!("create the baseline directory in {}", parent.display()),
                        err,
                    )
                })?;
            let mut options = Options::default();
            options.create_if_missing(true);
            let db = DB::open(&options, dir.path())
                .map_err(|err| raw_error("open the baseline database", err))?;
            Ok(RocksRaw {
                db,
                sync: rocksdb_sync(url),
                _dir: dir,
            })
        }

        fn key(tag: u8, channel: &str, rest: &[u8]) -> Vec<u8> {
            let mut key = Vec::with_capacity(2 + channel.len() + rest.len());
            key.push(tag);
            key.extend_from_slice(channel.as_bytes());
            key.push(0);
            key.extend_from_slice(rest);
            key
        }

        fn row_key(channel: &str, lamport: u64, id: &str) -> Vec<u8> {
            let mut rest = lamport.to_be_bytes().to_vec();
            rest.extend_from_slice(id.as_bytes());
            Self::key(b'H', channel, &rest)
        }

        fn options(sync: bool) -> WriteOptions {
            let mut options = WriteOptions::default();
            options.set_sync(sync);
            options
        }

        pub(super) fn commit(&self, channel: &str, commit: &RawCommit) -> Result<(), BenchError> {
            let mut batch = WriteBatch::default();
            if let Some(meta) = &commit.meta {
                batch.put(Self::key(b'M', channel, b""), meta);
            }
            for (id, lamport) in &commit.evict {
                batch.delete(Self::row_key(channel, *lamport, id));
                batch.delete(Self::key(b'I', channel, id.as_bytes()));
            }
            for row in &commit.rows {
                batch.put(Self::row_key(channel, row.lamport, &row.id), &row.bytes);
                batch.put(
                    Self::key(b'I', channel, row.id.as_bytes()),
                    row.lamport.to_be_bytes(),
                );
            }
            self.db
                .write_opt(batch, &Self::options(self.sync))
                .map_err(|err| raw_error("raw write batch", err))
        }

        pub(super) fn load(&self, channel: &str) -> Result<usize, BenchError> {
            let prefix = Self::key(b'H', channel, b"");
            let mut end = prefix.clone();
            // The separator byte 0 becomes 1: the end of the prefix range.
            if let Some(last) = end.last_mut() {
                *last = 1;
            }
            let mut options = ReadOptions::default();
            options.set_iterate_lower_bound(prefix);
            options.set_iterate_upper_bound(end);
            let mut rows = Vec::new();
            for item in self.db.iterator_opt(IteratorMode::Start, options) {
                let (_, value) = item.map_err(|err| raw_error("raw range read", err))?;
                rows.push(value);
            }
            Ok(rows.len())
        }

        pub(super) fn drop_channel(&self, channel: &str) -> Result<(), BenchError> {
            let mut batch = WriteBatch::default();
            batch.delete(Self::key(b'M', channel, b""));
            for tag in [b'H', b'I'] {
                let start = Self::key(tag, channel, b"");
                let mut end = start.clone();
                if let Some(last) = end.last_mut() {
                    *last = 1;
                }
                batch.delete_range(start, end);
            }
            self.db
                .write_opt(batch, &Self::options(true))
                .map_err(|err| raw_error("raw delete range", err))
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::postgres::{PgPool, PgPoolOptions};

    use super::{BenchError, RawCommit, raw_error};

    /// Creating the tables takes this advisory lock, so parallel runs do not race on it.
    const SCHEMA_LOCK: i64 = 0x5d5_bec4;

    pub(super) struct PostgresRaw {
        pool: PgPool,
        run: String,
    }

    fn lamport(value: u64) -> i64 {
        // Bench lamports are near 1.7e12: far inside i64.
        i64::try_from(value).unwrap_or(i64::MAX)
    }

    impl PostgresRaw {
        pub(super) async fn open(url: &str, run: &str) -> Result<PostgresRaw, BenchError> {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .map_err(|err| raw_error("connect the PostgreSQL baseline", err))?;
            let mut tx = pool
                .begin()
                .await
                .map_err(|err| raw_error("create the baseline tables", err))?;
            for statement in [
                "SELECT pg_advisory_xact_lock($1)",
                "CREATE TABLE IF NOT EXISTS sds_bench_raw_meta (run text NOT NULL, \
                 channel text NOT NULL, snapshot bytea NOT NULL, PRIMARY KEY (run, channel))",
                "CREATE TABLE IF NOT EXISTS sds_bench_raw_rows (run text NOT NULL, \
                 channel text NOT NULL, lamport bigint NOT NULL, id bytea NOT NULL, \
                 row bytea NOT NULL, PRIMARY KEY (run, channel, lamport, id))",
            ] {
                let query = sqlx::query(statement);
                let query = if statement.contains("$1") {
                    query.bind(SCHEMA_LOCK)
                } else {
                    query
                };
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| raw_error("create the baseline tables", err))?;
            }
            tx.commit()
                .await
                .map_err(|err| raw_error("create the baseline tables", err))?;
            Ok(PostgresRaw {
                pool,
                run: run.to_string(),
            })
        }

        pub(super) async fn server_version(&self) -> Option<String> {
            let version: Result<(String,), _> = sqlx::query_as("SHOW server_version")
                .fetch_one(&self.pool)
                .await;
            version
                .ok()
                .map(|(version,)| format!("PostgreSQL {version}"))
        }

        pub(super) async fn commit(
            &self,
            channel: &str,
            commit: &RawCommit,
        ) -> Result<(), BenchError> {
            let (evict_lamports, evict_ids): (Vec<i64>, Vec<Vec<u8>>) = commit
                .evict
                .iter()
                .map(|(id, at)| (lamport(*at), id.as_bytes().to_vec()))
                .unzip();
            let lamports: Vec<i64> = commit.rows.iter().map(|row| lamport(row.lamport)).collect();
            let ids: Vec<Vec<u8>> = commit
                .rows
                .iter()
                .map(|row| row.id.as_bytes().to_vec())
                .collect();
            let rows: Vec<Vec<u8>> = commit.rows.iter().map(|row| row.bytes.clone()).collect();
            sqlx::query(
                "WITH meta AS (INSERT INTO sds_bench_raw_meta (run, channel, snapshot) \
                   SELECT $1, $2, $3 WHERE $3::bytea IS NOT NULL \
                   ON CONFLICT (run, channel) DO UPDATE SET snapshot = excluded.snapshot), \
                 evicted AS (DELETE FROM sds_bench_raw_rows \
                   WHERE run = $1 AND channel = $2 \
                   AND lamport = ANY($4::bigint[]) AND id = ANY($5::bytea[])) \
                 INSERT INTO sds_bench_raw_rows (run, channel, lamport, id, row) \
                 SELECT $1, $2, l, i, r FROM unnest($6::bigint[], $7::bytea[], $8::bytea[]) \
                   AS t(l, i, r) \
                 ON CONFLICT (run, channel, lamport, id) DO UPDATE SET row = excluded.row",
            )
            .bind(&self.run)
            .bind(channel)
            .bind(commit.meta.as_deref())
            .bind(evict_lamports)
            .bind(evict_ids)
            .bind(lamports)
            .bind(ids)
            .bind(rows)
            .execute(&self.pool)
            .await
            .map_err(|err| raw_error("raw upsert", err))?;
            Ok(())
        }

        pub(super) async fn load(&self, channel: &str) -> Result<usize, BenchError> {
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
                "SELECT row FROM sds_bench_raw_rows WHERE run = $1 AND channel = $2 \
                 ORDER BY lamport, id",
            )
            .bind(&self.run)
            .bind(channel)
            .fetch_all(&self.pool)
            .await
            .map_err(|err| raw_error("raw range read", err))?;
            Ok(rows.len())
        }

        pub(super) async fn drop_channel(&self, channel: &str) -> Result<(), BenchError> {
            sqlx::query(
                "WITH meta AS (DELETE FROM sds_bench_raw_meta WHERE run = $1 AND channel = $2) \
                 DELETE FROM sds_bench_raw_rows WHERE run = $1 AND channel = $2",
            )
            .bind(&self.run)
            .bind(channel)
            .execute(&self.pool)
            .await
            .map_err(|err| raw_error("raw delete", err))?;
            Ok(())
        }

        pub(super) async fn cleanup(&self) -> Result<(), BenchError> {
            sqlx::query(
                "WITH meta AS (DELETE FROM sds_bench_raw_meta WHERE run = $1) \
                 DELETE FROM sds_bench_raw_rows WHERE run = $1",
            )
            .bind(&self.run)
            .execute(&self.pool)
            .await
            .map_err(|err| raw_error("remove the baseline rows", err))?;
            self.pool.close().await;
            Ok(())
        }
    }
}

#[cfg(feature = "redis")]
mod redis_raw {
    use redis::aio::MultiplexedConnection;
    use redis::cluster_async::ClusterConnection;

    use super::{BenchError, RawCommit, raw_error};

    /// A standalone server or a cluster: the same commands either way (every key of one
    /// channel shares a hash tag, so a MULTI stays on one slot).
    #[derive(Clone)]
    enum Connection {
        Single(MultiplexedConnection),
        Cluster(ClusterConnection),
    }

    pub(super) struct RedisRaw {
        connection: Connection,
        run: String,
    }

    macro_rules! on_connection {
        ($self:expr, $conn:ident => $body:expr) => {
            match $self.connection.clone() {
                Connection::Single(mut $conn) => $body,
                Connection::Cluster(mut $conn) => $body,
            }
        };
    }

    impl RedisRaw {
        pub(super) async fn open(url: &str, run: &str) -> Result<RedisRaw, BenchError> {
            let connect = |err| raw_error("connect the Redis baseline", err);
            let connection = if let Some(rest) = url.strip_prefix("redis+cluster://") {
                let nodes: Vec<String> = rest
                    .split(',')
                    .map(|node| format!("redis://{}", node.trim_end_matches('/')))
                    .collect();
                let client = redis::cluster::ClusterClient::new(nodes).map_err(connect)?;
                Connection::Cluster(client.get_async_connection().await.map_err(connect)?)
            } else {
                let client = redis::Client::open(url).map_err(connect)?;
                Connection::Single(
                    client
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(connect)?,
                )
            };
            Ok(RedisRaw {
                connection,
                run: run.to_string(),
            })
        }

        fn keys(&self, channel: &str) -> (String, String) {
            let tag = format!("{{sds-bench-raw:{}:{channel}}}", self.run);
            (format!("{tag}:meta"), format!("{tag}:rows"))
        }

        pub(super) async fn server_version(&self) -> Option<String> {
            let info: Result<String, _> = on_connection!(self, conn => redis::cmd("INFO").arg("server").query_async(&mut conn).await);
            let info = info.ok()?;
            info.lines()
                .find_map(|line| line.strip_prefix("redis_version:"))
                .map(|version| format!("Redis {}", version.trim()))
        }

        pub(super) async fn commit(
            &self,
            channel: &str,
            commit: &RawCommit,
        ) -> Result<(), BenchError> {
            let (meta_key, rows_key) = self.keys(channel);
            let mut pipe = redis::pipe();
            pipe.atomic();
            if let Some(meta) = &commit.meta {
                pipe.cmd("SET").arg(&meta_key).arg(meta.as_slice()).ignore();
            }
            if !commit.rows.is_empty() {
                let command = pipe.cmd("HSET").arg(&rows_key);
                for row in &commit.rows {
                    command.arg(row.id.as_str()).arg(row.bytes.as_slice());
                }
                command.ignore();
            }
            if !commit.evict.is_empty() {
                let command = pipe.cmd("HDEL").arg(&rows_key);
                for (id, _) in &commit.evict {
                    command.arg(id.as_str());
                }
                command.ignore();
            }
            let done: Result<(), _> =
                on_connection!(self, conn => pipe.query_async(&mut conn).await);
            done.map_err(|err| raw_error("raw MULTI", err))
        }

        pub(super) async fn set_meta(&self, channel: &str, meta: &[u8]) -> Result<(), BenchError> {
            let (meta_key, _) = self.keys(channel);
            let done: Result<(), _> = on_connection!(self, conn =>
                redis::cmd("SET").arg(&meta_key).arg(meta).query_async(&mut conn).await);
            done.map_err(|err| raw_error("raw SET", err))
        }

        pub(super) async fn load(&self, channel: &str) -> Result<usize, BenchError> {
            let (_, rows_key) = self.keys(channel);
            let rows: Result<Vec<Vec<u8>>, _> = on_connection!(self, conn =>
                redis::cmd("HGETALL").arg(&rows_key).query_async(&mut conn).await);
            // HGETALL answers field, value, field, value…
            rows.map(|rows| rows.len() / 2)
                .map_err(|err| raw_error("raw HGETALL", err))
        }

        pub(super) async fn drop_channel(&self, channel: &str) -> Result<(), BenchError> {
            let (meta_key, rows_key) = self.keys(channel);
            let done: Result<(), _> = on_connection!(self, conn =>
                redis::cmd("DEL").arg(&meta_key).arg(&rows_key).query_async(&mut conn).await);
            done.map_err(|err| raw_error("raw DEL", err))
        }
    }
}
