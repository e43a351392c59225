//! The statements, one per operation, built once per pool with the (validated) schema name,
//! the only identifier ever put into SQL text: every value travels as a parameter.
//!
//! Every write is one statement, so one implicit transaction and one round trip. A write of
//! an instance that claimed its namespace passes the claimed epoch (`$3`, NULL when it never
//! claimed); the statement reads the namespace's fence row `FOR SHARE` and gates every
//! change on it, then returns whether it was allowed and the epoch it found. `FOR SHARE`
//! waits for a claim in progress (which updates the row) and a claim waits for the writes
//! holding it, so "the epoch is still mine" and the write are one atomic step.

/// The SQL of one schema.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) commit: String,
    pub(crate) load: String,
    pub(crate) drop_channel: String,
    pub(crate) set_hint: String,
    pub(crate) claim: String,
    pub(crate) list_channels: String,
    pub(crate) stored_namespaces: String,
}

/// The fence check every write starts with: `fence` holds the namespace's epoch (locked
/// against claims until the transaction ends), `allowed.ok` says whether the write may
/// apply. `$1` is the namespace, `$3` the claimed epoch or NULL.
fn fence_ctes(s: &str) -> String {
    format!(
        "fence AS (
            SELECT epoch FROM \"{s}\".writer_fence
            WHERE namespace = $1 AND $3::bigint IS NOT NULL
            FOR SHARE
        ), allowed AS (
            SELECT $3::bigint IS NULL OR EXISTS (SELECT 1 FROM fence WHERE epoch = $3) AS ok
        )"
    )
}

/// What every write returns: whether it applied, and the namespace's epoch.
const FENCE_OUTCOME: &str =
    "SELECT (SELECT ok FROM allowed) AS ok, (SELECT epoch FROM fence) AS epoch";

impl Statements {
    pub(crate) fn new(schema: &str) -> Self {
        let s = schema;
        let fence = fence_ctes(s);
        Statements {
            // $1 namespace, $2 channel, $3 claimed epoch, $4 snapshot (NULL: none),
            // $5 ids to delete, $6..$9 the rows to upsert (id, lamport, message, hint),
            // $10 ids evicted earlier in the same batch (their stored hint is forgotten).
            // The caller reduces the batch so no id is in two lists or twice in one.
            commit: format!(
                "WITH {fence}, saved_meta AS (
                    INSERT INTO \"{s}\".channel_meta AS stored (namespace, channel, meta)
                    SELECT $1, $2, $4::bytea
                    WHERE $4::bytea IS NOT NULL AND (SELECT ok FROM allowed)
                    ON CONFLICT (namespace, channel) DO UPDATE SET meta = EXCLUDED.meta
                ), evicted AS (
                    DELETE FROM \"{s}\".history
                    WHERE namespace = $1 AND channel = $2 AND message_id = ANY($5::bytea[])
                      AND (SELECT ok FROM allowed)
                ), appended AS (
                    INSERT INTO \"{s}\".history AS stored
                        (namespace, channel, message_id, lamport, message, hint)
                    SELECT $1, $2, batch.message_id, batch.lamport, batch.message, batch.hint
                    FROM unnest($6::bytea[], $7::bigint[], $8::bytea[], $9::bytea[])
                        AS batch(message_id, lamport, message, hint)
                    WHERE (SELECT ok FROM allowed)
                    ON CONFLICT (namespace, channel, message_id) DO UPDATE SET
                        lamport = EXCLUDED.lamport,
                        message = EXCLUDED.message,
                        hint = CASE
                            WHEN EXCLUDED.hint IS NULL
                                 AND NOT (EXCLUDED.message_id = ANY($10::bytea[]))
                            THEN stored.hint
                            ELSE EXCLUDED.hint
                        END
                ) {FENCE_OUTCOME}"
            ),
            // Snapshot and history in one statement, so from one snapshot of the database:
            // the snapshot row first (part 0), then the history in load order.
            load: format!(
                "SELECT 0 AS part, NULL::bytea AS message_id, NULL::bigint AS lamport,
                        meta AS bytes, NULL::bytea AS hint
                 FROM \"{s}\".channel_meta WHERE namespace = $1 AND channel = $2
                 UNION ALL
                 SELECT 1, message_id, lamport, message, hint
                 FROM \"{s}\".history WHERE namespace = $1 AND channel = $2
                 ORDER BY part, lamport, message_id"
            ),
            drop_channel: format!(
                "WITH {fence}, dropped_meta AS (
                    DELETE FROM \"{s}\".channel_meta
                    WHERE namespace = $1 AND channel = $2 AND (SELECT ok FROM allowed)
                ), dropped_history AS (
                    DELETE FROM \"{s}\".history
                    WHERE namespace = $1 AND channel = $2 AND (SELECT ok FROM allowed)
                ) {FENCE_OUTCOME}"
            ),
            // $4 message id, $5 hint. A message not in the history updates nothing.
            set_hint: format!(
                "WITH {fence}, hinted AS (
                    UPDATE \"{s}\".history SET hint = $5
                    WHERE namespace = $1 AND channel = $2 AND message_id = $4
                      AND (SELECT ok FROM allowed)
                ) {FENCE_OUTCOME}"
            ),
            claim: format!(
                "INSERT INTO \"{s}\".writer_fence AS stored (namespace, epoch) VALUES ($1, 1)
                 ON CONFLICT (namespace) DO UPDATE SET epoch = stored.epoch + 1
                 RETURNING epoch"
            ),
            // Channels with history are found by a skip scan of the history's primary key:
            // one index probe per channel, however many rows each holds.
            list_channels: format!(
                "WITH RECURSIVE history_channel(channel) AS (
                    (SELECT channel FROM \"{s}\".history WHERE namespace = $1
                     ORDER BY channel LIMIT 1)
                    UNION ALL
                    SELECT (SELECT h.channel FROM \"{s}\".history h
                            WHERE h.namespace = $1 AND h.channel > c.channel
                            ORDER BY h.channel LIMIT 1)
                    FROM history_channel c WHERE c.channel IS NOT NULL
                 )
                 SELECT channel FROM history_channel WHERE channel IS NOT NULL
                 UNION
                 SELECT channel FROM \"{s}\".channel_meta WHERE namespace = $1
                 ORDER BY channel"
            ),
            stored_namespaces: format!(
                "SELECT namespace, channel FROM \"{s}\".channel_meta
                 UNION
                 SELECT DISTINCT namespace, channel FROM \"{s}\".history
                 ORDER BY namespace, channel"
            ),
        }
    }
}
