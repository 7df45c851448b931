//! The queue's Lua scripts: every change that touches more than one key runs as one script, so
//! a crash or a concurrent worker never sees half of it.
//!
//! Every script gets the same keys and the same first two arguments:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `KEYS[1]` stream | stream | ready and leased entries (`job`, `t` = ready since, ms) |
//! | `KEYS[2]` entries | hash | job → its stream entry id: the "is it queued" index |
//! | `KEYS[3]` delayed | sorted set | job → due time (ms) |
//! | `KEYS[4]` leases | sorted set | job → lease end (ms) |
//! | `KEYS[5]` tokens | hash | job → token of the reservation that holds the lease |
//! | `KEYS[6]` deliveries | hash | job → times handed out |
//! | `KEYS[7]` dead | stream | dead letters (`job`, `reason`, `deliveries`, `at`) |
//! | `KEYS[8]` dead index | hash | job → its dead-letter entry id |
//!
//! `ARGV[1]` is the consumer group, `ARGV[2]` the caller's clock in milliseconds.
//!
//! A stream or group that vanished (FLUSHDB, a restart without persistence, an operator's
//! `DEL`) is recreated where it is found missing; index entries that point at vanished stream
//! entries are dropped, and the sweeper re-enqueues those jobs from the store.

use redis::Script;

const PRELUDE: &str = r"
local stream, entries, delayed, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tokens, deliveries, dead, dead_index = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local group = ARGV[1]
local now = tonumber(ARGV[2])

local function ms(n)
  return string.format('%d', n)
end

local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

local function is_nogroup(reply)
  return failed(reply) and string.find(reply.err, 'NOGROUP', 1, true) ~= nil
end

-- Creates the group (and the stream) when missing. Starting at id 0 hands out every entry
-- already in a stream whose group was lost.
local function ensure_group()
  redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
end

local function entry_exists(key, id)
  local found = redis.pcall('XRANGE', key, id, id)
  return not failed(found) and #found > 0
end

-- Removes a job's live entry and lease; its delivery count and dead letter stay.
local function forget(job)
  local id = redis.call('HGET', entries, job)
  if id then
    redis.pcall('XACK', stream, group, id)
    redis.pcall('XDEL', stream, id)
    redis.call('HDEL', entries, job)
  end
  redis.call('ZREM', delayed, job)
  redis.call('ZREM', leases, job)
  redis.call('HDEL', tokens, job)
end

-- Appends a ready entry for a job.
local function push(job, ready_since)
  if redis.call('EXISTS', stream) == 0 then
    ensure_group()
  end
  local id = redis.call('XADD', stream, '*', 'job', job, 't', ms(ready_since))
  redis.call('HSET', entries, job, id)
  return id
end

-- Whether the job waits in the queue or is leased; drops an index entry whose stream entry
-- vanished.
local function is_live(job)
  if redis.call('ZSCORE', delayed, job) then
    return true
  end
  local id = redis.call('HGET', entries, job)
  if not id then
    return false
  end
  if entry_exists(stream, id) then
    return true
  end
  forget(job)
  return false
end

local function is_dead(job)
  local id = redis.call('HGET', dead_index, job)
  if not id then
    return false
  end
  if entry_exists(dead, id) then
    return true
  end
  redis.call('HDEL', dead_index, job)
  return false
end

-- The id of the last entry the group handed out, or nil when the group is missing.
local function last_delivered()
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if failed(groups) then
    return nil
  end
  for _, g in ipairs(groups) do
    local info = {}
    for i = 1, #g, 2 do
      info[g[i]] = g[i + 1]
    end
    if info['name'] == group then
      return info['last-delivered-id'], tonumber(info['pending'])
    end
  end
  return nil
end

-- When the oldest entry not yet handed out became ready (ms), or nil.
local function first_undelivered_since()
  local first = redis.call('XRANGE', stream, '(' .. (last_delivered() or '0-0'), '+', 'COUNT', 1)
  if #first == 0 then
    return nil
  end
  local fields = first[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' then
      return tonumber(fields[i + 1])
    end
  end
  return nil
end

-- Moves due delayed entries into the stream, earliest due first.
local function promote_due(limit)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #due, 2 do
    redis.call('ZREM', delayed, due[i])
    push(due[i], tonumber(due[i + 1]))
  end
end
";

/// `ARGV[3]` job, `ARGV[4]` delay (ms). Returns 1 when added, 0 when already queued, leased
/// or dead-lettered (a dead letter stays dead until redriven).
const ENQUEUE: &str = r"
local job, delay = ARGV[3], tonumber(ARGV[4])
if is_live(job) or is_dead(job) then
  return 0
end
-- Entries that fell due before this one go first.
promote_due(100)
if delay > 0 then
  redis.call('ZADD', delayed, now + delay, job)
else
  push(job, now)
end
return 1
";

/// `ARGV[3]` consumer, `ARGV[4]` lease (ms), `ARGV[5]` new token.
/// Returns `{job, deliveries, token, lease_until}` or nil.
const RESERVE: &str = r"
local consumer, lease, token = ARGV[3], tonumber(ARGV[4]), ARGV[5]

local function lease_to(job)
  local n = redis.call('HINCRBY', deliveries, job, 1)
  local lease_until = now + lease
  redis.call('ZADD', leases, lease_until, job)
  redis.call('HSET', tokens, job, token)
  return {job, n, token, lease_until}
end

promote_due(100)

-- An expired lease became ready when it expired: it goes first unless a fresh entry has
-- waited longer.
for _ = 1, 16 do
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
  if #expired == 0 then
    break
  end
  local fresh_since = first_undelivered_since()
  if fresh_since and fresh_since <= tonumber(expired[2]) then
    break
  end
  local job = expired[1]
  local id = redis.call('HGET', entries, job)
  if id then
    local claimed = redis.pcall('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
    if is_nogroup(claimed) then
      ensure_group()
    elseif not failed(claimed) and #claimed > 0 then
      return lease_to(job)
    end
  end
  -- Not pending any more: either the group was recreated and the entry will be read afresh,
  -- or the entry itself is gone.
  redis.call('ZREM', leases, job)
  redis.call('HDEL', tokens, job)
  if not (id and entry_exists(stream, id)) then
    forget(job)
  end
end

for _ = 1, 16 do
  local read = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1,
    'STREAMS', stream, '>')
  if is_nogroup(read) then
    ensure_group()
    read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
  elseif failed(read) then
    return read
  end
  if not read or #read == 0 or #read[1][2] == 0 then
    return false
  end
  local entry = read[1][2][1]
  local id, fields, job = entry[1], entry[2], nil
  for i = 1, #fields, 2 do
    if fields[i] == 'job' then
      job = fields[i + 1]
    end
  end
  if job and redis.call('HGET', entries, job) == id then
    return lease_to(job)
  end
  -- An orphan (its job was acked or re-added under a newer entry): discard it.
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
return false
";

/// `ARGV[3]` job, `ARGV[4]` token, `ARGV[5]` lease (ms).
/// Returns the new lease end, or nil when the token no longer holds the lease.
const EXTEND: &str = r"
local job, token, lease = ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HGET', tokens, job) ~= token then
  return false
end
local lease_until = now + lease
redis.call('ZADD', leases, lease_until, job)
local id = redis.call('HGET', entries, job)
-- Tokens read '<random>:<consumer>'.
local consumer = string.match(token, '^[^:]*:(.*)$')
if id and consumer then
  -- Resets the entry's idle time, so XPENDING and XAUTOCLAIM-based tooling agree with us.
  redis.pcall('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
end
return lease_until
";

/// `ARGV[3]` job, `ARGV[4]` token. Returns 1, or 0 when the lease is lost.
const ACK: &str = r"
local job, token = ARGV[3], ARGV[4]
if redis.call('HGET', tokens, job) ~= token then
  return 0
end
forget(job)
redis.call('HDEL', deliveries, job)
return 1
";

/// `ARGV[3]` job, `ARGV[4]` token, `ARGV[5]` delay (ms). Returns 1, or 0 when the lease is
/// lost.
const RETRY: &str = r"
local job, token, delay = ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HGET', tokens, job) ~= token then
  return 0
end
forget(job)
if delay > 0 then
  redis.call('ZADD', delayed, now + delay, job)
else
  promote_due(100)
  push(job, now)
end
return 1
";

/// `ARGV[3]` job, `ARGV[4]` token, `ARGV[5]` reason. Returns 1, or 0 when the lease is lost.
const DEAD_LETTER: &str = r"
local job, token, reason = ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', tokens, job) ~= token then
  return 0
end
local n = redis.call('HGET', deliveries, job) or '0'
forget(job)
redis.call('HDEL', deliveries, job)
local previous = redis.call('HGET', dead_index, job)
if previous then
  redis.call('XDEL', dead, previous)
end
local id = redis.call('XADD', dead, '*', 'job', job, 'reason', reason, 'deliveries', n,
  'at', ms(now))
redis.call('HSET', dead_index, job, id)
return 1
";

/// `ARGV[3]` job. Returns 1 when a dead letter was moved back, 0 when there was none.
const REDRIVE: &str = r"
local job = ARGV[3]
local id = redis.call('HGET', dead_index, job)
if not id then
  return 0
end
redis.call('HDEL', dead_index, job)
if not entry_exists(dead, id) then
  return 0
end
redis.call('XDEL', dead, id)
if not is_live(job) then
  redis.call('HDEL', deliveries, job)
  promote_due(100)
  push(job, now)
end
return 1
";

/// Returns `{ready, delayed, leased, dead, oldest_ready_since or -1}`. Due delayed entries and
/// expired leases count as ready: a reserve would hand them out now.
const STATS: &str = r"
local length = redis.call('XLEN', stream)
local _, pending = last_delivered()
pending = pending or 0

local expired = redis.call('ZCOUNT', leases, '-inf', now)
local due = redis.call('ZCOUNT', delayed, '-inf', now)
local ready = math.max(length - pending, 0) + expired + due
local leased = redis.call('ZCARD', leases) - expired
local waiting = redis.call('ZCARD', delayed) - due
local dead_count = redis.call('XLEN', dead)

local oldest = -1
local function consider(since)
  if since and (oldest < 0 or since < oldest) then
    oldest = since
  end
end
consider(first_undelivered_since())
local lease = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #lease > 0 then
  consider(tonumber(lease[2]))
end
local delay = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #delay > 0 then
  consider(tonumber(delay[2]))
end
return {ready, waiting, leased, dead_count, oldest}
";

/// Returns `{ready now (0/1), ms until a delay or lease ends or -1, last delivered id}` for
/// `wait_for_work`.
const PROBE: &str = r"
local last_id = last_delivered() or '0-0'
local next_due = -1
for _, key in ipairs({delayed, leases}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local at = tonumber(first[2])
    if next_due < 0 or at < next_due then
      next_due = at
    end
  end
end
if next_due >= 0 and next_due <= now then
  return {1, 0, last_id}
end
local wait = -1
if next_due >= 0 then
  wait = next_due - now
end
return {0, wait, last_id}
";

/// The compiled scripts (each is sent once, then called by its SHA1).
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) reserve: Script,
    pub(crate) extend: Script,
    pub(crate) ack: Script,
    pub(crate) retry: Script,
    pub(crate) dead_letter: Script,
    pub(crate) redrive: Script,
    pub(crate) stats: Script,
    pub(crate) probe: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            enqueue: with_prelude(ENQUEUE),
            reserve: with_prelude(RESERVE),
            extend: with_prelude(EXTEND),
            ack: with_prelude(ACK),
            retry: with_prelude(RETRY),
            dead_letter: with_prelude(DEAD_LETTER),
            redrive: with_prelude(REDRIVE),
            stats: with_prelude(STATS),
            probe: with_prelude(PROBE),
        }
    }
}
