-- The tables of one schema; the migration runs with search_path set to that schema, so no
-- name here is qualified and the same text (and checksum) serves every schema.
--
-- Ids, namespaces and channels are bytea: byte-exact (NUL allowed, which text refuses) and
-- ordered by their bytes whatever the database collation. Lamport timestamps are bigint
-- holding the u64 with its top bit flipped (sds_core::persistence::order::lamport_to_i64),
-- so the column's order is the u64 order.

-- One snapshot per channel: the storage codec's enveloped ChannelMeta, replaced whole.
CREATE TABLE channel_meta (
    namespace bytea NOT NULL,
    channel bytea NOT NULL,
    meta bytea NOT NULL,
    PRIMARY KEY (namespace, channel)
);

-- One row per logged message: the enveloped LoggedMessage (stored without its hint) and
-- the retrieval hint beside it, so a hint is set or kept without rewriting the message.
-- The primary key serves evictions, hints and re-appends by id.
CREATE TABLE history (
    namespace bytea NOT NULL,
    channel bytea NOT NULL,
    message_id bytea NOT NULL,
    lamport bigint NOT NULL,
    message bytea NOT NULL,
    hint bytea,
    PRIMARY KEY (namespace, channel, message_id)
);

-- The ordered load: oldest first, by (lamport, message id).
CREATE INDEX history_load_order ON history (namespace, channel, lamport, message_id);

-- The writer fence: each namespace's epoch, raised by every claim.
CREATE TABLE writer_fence (
    namespace bytea PRIMARY KEY,
    epoch bigint NOT NULL CHECK (epoch > 0)
);
