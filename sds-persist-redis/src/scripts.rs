//! The Lua scripts: every write is one script, so it is atomic and one round trip.
//!
//! Redis runs a script alone (no other command interleaves) but does not roll back one that
//! fails half-way, so each write script first checks the fence, validates its arguments
//! and every stored value it will read, keeps what it will write in Lua locals, and only
//! then writes: an error or a refusal happens before the first write. The `#!lua` shebang
//! makes Redis (7.0+) check `maxmemory` once, when the script starts, instead of failing
//! a write in the middle.
//!
//! `KEYS[1..4]` are the channel's keys (meta, bodies, order, hints; see `keys`). In
//! standalone mode `KEYS[5]` is the namespace's epoch and `KEYS[6]` its channel set, so the
//! fence check and the channel listing are part of the same atomic step; in Cluster those
//! live on another slot, which a script may not touch, and the scripts get four keys.
//!
//! Every write script returns `{status, detail}`: see [`Status`].

use std::sync::LazyLock;

use redis::Script;

/// What a write script answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Written.
    Ok = 0,
    /// Refused by the fence; the detail is the namespace's current epoch.
    Fenced = 1,
    /// The arguments were malformed; the detail says how. Nothing was written.
    Invalid = 2,
    /// A stored value the script needed is malformed; the detail names it. Nothing was
    /// written.
    Corrupt = 3,
    /// The test hook aborted the commit after staging its snapshot. Nothing was written.
    Aborted = 4,
}

impl Status {
    pub(crate) fn from_code(code: i64) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::Fenced,
            2 => Status::Invalid,
            3 => Status::Corrupt,
            4 => Status::Aborted,
            _ => return None,
        })
    }
}

/// The fence check every write script starts with (`ARGV[1]`: the epoch held, `"0"` for an
/// instance that never claimed).
const FENCE_CHECK: &str = r"
if #KEYS >= 6 and ARGV[1] ~= '0' then
  local current = redis.call('GET', KEYS[5]) or '0'
  if current ~= ARGV[1] then return {1, current} end
end
";

/// Keeps the channel set exact (standalone): a channel is listed while it has a snapshot or
/// a history entry. `ARGV[2]` is the channel id.
const LISTING: &str = r"
if #KEYS >= 6 then
  if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('ZADD', KEYS[6], 0, ARGV[2])
  else
    redis.call('ZREM', KEYS[6], ARGV[2])
  end
end
";

/// `ARGV`: 1 epoch held, 2 channel id, 3 `"1"` if a snapshot is given, 4 the snapshot,
/// 5 `"1"` to abort after staging the snapshot (test hook), 6 evictions count,
/// 7 appends count, then the evicted ids, then per append: id, lamport (8 bytes BE),
/// encoded row (without hint), `"1"` if it carries a hint, the hint.
const COMMIT_BODY: &str = r"
local n_evict, n_append = tonumber(ARGV[6]), tonumber(ARGV[7])
if n_evict == nil or n_append == nil or #ARGV ~= 7 + n_evict + 5 * n_append then
  return {2, 'argument count does not match the counts given'}
end
local bodies, order, hints = KEYS[2], KEYS[3], KEYS[4]
-- Validate everything before the first write.
local first_append = 8 + n_evict
for k = 0, n_append - 1 do
  if #ARGV[first_append + 5 * k + 1] ~= 8 then
    return {2, 'lamport of append ' .. k .. ' is not 8 bytes'}
  end
end
for i = 8, #ARGV do
  local is_id = i < first_append or (i - first_append) % 5 == 0
  if is_id then
    local stored = redis.call('HGET', bodies, ARGV[i])
    if stored and #stored < 8 then return {3, ARGV[i]} end
  end
end
local meta_given, meta = ARGV[3] == '1', ARGV[4]
if ARGV[5] == '1' and meta_given and n_evict + n_append > 0 then
  return {4, 'commit aborted after staging the snapshot'}
end
-- Evictions first, then appends.
for i = 8, first_append - 1 do
  local id = ARGV[i]
  local stored = redis.call('HGET', bodies, id)
  if stored then
    redis.call('ZREM', order, string.sub(stored, 1, 8) .. id)
    redis.call('HDEL', bodies, id)
  end
  redis.call('HDEL', hints, id)
end
for k = 0, n_append - 1 do
  local at = first_append + 5 * k
  local id, lamport, row = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local stored = redis.call('HGET', bodies, id)
  if stored and string.sub(stored, 1, 8) ~= lamport then
    redis.call('ZREM', order, string.sub(stored, 1, 8) .. id)
  end
  redis.call('HSET', bodies, id, lamport .. row)
  redis.call('ZADD', order, 0, lamport .. id)
  if ARGV[at + 3] == '1' then redis.call('HSET', hints, id, ARGV[at + 4]) end
end
if meta_given then redis.call('SET', KEYS[1], meta) end
";

/// `ARGV`: 1 epoch held, 2 channel id. Four `UNLINK`s: constant work on the server's main
/// thread whatever the channel's size (Redis frees values of more than 64 elements on a
/// background thread).
const DROP_BODY: &str = r"
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
";

/// `ARGV`: 1 epoch held, 2 channel id, 3 message id, 4 hint.
const HINT_BODY: &str = r"
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
end
";

fn write_script(body: &str) -> Script {
    Script::new(&format!(
        "#!lua\n{FENCE_CHECK}{body}{LISTING}return {{0, ''}}\n"
    ))
}

/// The op-end commit.
pub(crate) static COMMIT: LazyLock<Script> = LazyLock::new(|| write_script(COMMIT_BODY));
/// Dropping a channel.
pub(crate) static DROP: LazyLock<Script> = LazyLock::new(|| write_script(DROP_BODY));
/// Setting a retrieval hint.
pub(crate) static HINT: LazyLock<Script> = LazyLock::new(|| write_script(HINT_BODY));

/// Reads a whole channel atomically: `{meta or nil, order members, bodies (flat hash),
/// hints (flat hash)}`.
pub(crate) static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "#!lua flags=no-writes\n\
         return {redis.call('GET', KEYS[1]), \
         redis.call('ZRANGE', KEYS[3], '-', '+', 'BYLEX'), \
         redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[4])}\n",
    )
});
