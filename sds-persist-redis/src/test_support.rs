//! Hooks for test suites: fault injection and raw writes. Hidden from the docs; not part of
//! the supported API.

use redis::AsyncCommands;
use sds_core::persistence::PersistenceError;

use crate::RedisPersistence;
use crate::keys::order_member;

impl RedisPersistence {
    /// Test hook: the next [`commit`](sds_core::persistence::Persistence::commit) carrying
    /// both a snapshot and a history batch aborts inside its script after staging the
    /// snapshot and before staging the history (both are staged in Lua locals and written
    /// only once all is validated), failing as `Unavailable` with nothing written.
    /// Affects this handle and its clones, not siblings made with `with_namespace`.
    #[doc(hidden)]
    pub fn abort_next_commit_after_meta(&self) {
        self.arm_abort_next_commit();
    }

    /// Test hook: writes `bytes` as the raw stored snapshot of `channel` (and lists it).
    #[doc(hidden)]
    pub async fn write_raw_meta(
        &self,
        channel: &str,
        bytes: &[u8],
    ) -> Result<(), PersistenceError> {
        let keys = self.keys(channel);
        let set = self.namespace_keys().channels.clone();
        let bytes = bytes.to_vec();
        let member = channel.as_bytes().to_vec();
        let cluster = !self.namespace_in_scripts();
        self.connector()
            .run("raw snapshot write", |mut conn| async move {
                if cluster {
                    conn.zadd::<_, _, _, ()>(set.clone(), member.clone(), 0)
                        .await?;
                }
                let mut pipe = redis::pipe();
                pipe.set(keys.meta, bytes).ignore();
                if !cluster {
                    pipe.zadd(set, member, 0).ignore();
                }
                pipe.query_async::<()>(&mut conn).await
            })
            .await
    }

    /// Test hook: writes `bytes` as the raw history row of `message_id` at `lamport` (and
    /// indexes it), whatever the bytes decode to.
    #[doc(hidden)]
    pub async fn write_raw_history_row(
        &self,
        channel: &str,
        lamport: u64,
        message_id: &str,
        bytes: &[u8],
    ) -> Result<(), PersistenceError> {
        let keys = self.keys(channel);
        let mut value = lamport.to_be_bytes().to_vec();
        value.extend_from_slice(bytes);
        let member = order_member(lamport, message_id.as_bytes());
        let id = message_id.as_bytes().to_vec();
        self.connector()
            .run("raw history write", |mut conn| async move {
                redis::pipe()
                    .hset(keys.bodies, id, value)
                    .ignore()
                    .zadd(keys.order, member, 0)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
    }
}
