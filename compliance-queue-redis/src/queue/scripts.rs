//! The queue's Lua scripts: every change that touches more than one key runs as one script, so
//! a crash or a concurrent worker never sees half of it.
//!
//! Every script gets the same keys and the same first two arguments:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `KEYS[1]` stream | stream | ready and leased entries (`job`, `t` = ready since, ms) |
//! | `KEYS[2]` jobs | hash | job → `deliveries|entry id|token`: every queued job's state |
//! | `KEYS[3]` delayed | sorted set | job → due time (ms) |
//! | `KEYS[4]` leases | sorted set | job → lease end (ms) |
//! | `KEYS[5]` dead | stream | dead letters (`job`, `reason`, `deliveries`, `at`) |
//! | `KEYS[6]` dead index | hash | job → its dead-letter entry id |
//! | `KEYS[7]` epoch | string | a random id of this data set, set on first reserve |
//!
//! A job's state has an empty entry id while it waits in `delayed` (or is leased again after
//! a data loss, see `EXTEND`), and an empty token unless it is leased. Tokens read
//! `<random>.<epoch>:<consumer>`. Packing it into one hash field keeps each script to a handful of commands.
//!
//! `ARGV[1]` is the consumer group, `ARGV[2]` the caller's clock in milliseconds.
//!
//! A stream or group that vanished (FLUSHDB, a restart without persistence, an operator's
//! `DEL`) is recreated where it is found missing; states that point at vanished stream entries
//! are dropped, and the sweeper re-enqueues those jobs from the store.

use redis::Script;

const PRELUDE: &str = r"
local stream, jobs, delayed, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead, dead_index, epoch_key = KEYS[5], KEYS[6], KEYS[7]
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

-- A job's state: deliveries, entry id ('' while delayed), token ('' unless leased); nil when
-- the job is not queued.
local function load(job)
  local packed = redis.call('HGET', jobs, job)
  if not packed then
    return nil
  end
  local n, entry, token = string.match(packed, '^(%d+)|([^|]*)|(.*)$')
  if not n then
    return nil
  end
  return tonumber(n), entry, token
end

-- The epoch: the id of the data set the queue's keys belong to. It is set once and vanishes
-- with the rest when Redis loses its data, so a token minted under another epoch proves the
-- loss.
local function current_epoch(candidate)
  redis.call('SET', epoch_key, candidate, 'NX')
  return redis.call('GET', epoch_key)
end

local function store(job, n, entry, token)
  redis.call('HSET', jobs, job, ms(n) .. '|' .. entry .. '|' .. token)
end

local function drop_entry(entry)
  if entry ~= '' then
    redis.pcall('XACK', stream, group, entry)
    redis.pcall('XDEL', stream, entry)
  end
end

-- Appends a ready entry for a job that has been handed out `n` times. A stream created here
-- has no group yet; the first read creates it (NOGROUP) from id 0, so nothing is skipped.
local function push(job, n, ready_since)
  local id = redis.call('XADD', stream, '*', 'job', job, 't', ms(ready_since))
  store(job, n, id, '')
end

-- Whether the job waits in the queue or is leased; drops a state whose entry vanished.
local function is_live(job)
  local n, entry, token = load(job)
  if not n then
    return false
  end
  if entry == '' then
    if redis.call('ZSCORE', delayed, job) then
      return true
    end
    if token ~= '' and redis.call('ZSCORE', leases, job) then
      return true
    end
  elseif entry_exists(stream, entry) then
    return true
  end
  redis.call('HDEL', jobs, job)
  redis.call('ZREM', leases, job)
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

-- The id of the last entry the group handed out and the group's pending count, or nil when
-- the group is missing.
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
    local job = due[i]
    redis.call('ZREM', delayed, job)
    push(job, load(job) or 0, tonumber(due[i + 1]))
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
  store(job, 0, '', '')
  redis.call('ZADD', delayed, now + delay, job)
else
  push(job, 0, now)
end
return 1
";

/// `ARGV[3]` consumer, `ARGV[4]` lease (ms), `ARGV[5]` a fresh random id (hex).
/// Returns `{job, deliveries, token, lease_until}` or nil.
const RESERVE: &str = r"
local consumer, lease, random = ARGV[3], tonumber(ARGV[4]), ARGV[5]

local function lease_to(job, n, entry)
  local token = random .. '.' .. current_epoch(random) .. ':' .. consumer
  local lease_until = now + lease
  redis.call('ZADD', leases, lease_until, job)
  store(job, n + 1, entry, token)
  return {job, n + 1, token, lease_until}
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
  local n, entry = load(job)
  redis.call('ZREM', leases, job)
  if n and entry == '' then
    -- Leased again after a data loss, without an entry: ready again from its lease end.
    push(job, n, tonumber(expired[2]))
  elseif n then
    local claimed = redis.pcall('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
    if is_nogroup(claimed) then
      ensure_group()
    elseif not failed(claimed) and #claimed > 0 then
      return lease_to(job, n, entry)
    end
    -- Not pending any more: either the group was recreated and the entry will be read
    -- afresh, or the entry itself is gone.
    if entry_exists(stream, entry) then
      store(job, n, entry, '')
    else
      redis.call('HDEL', jobs, job)
    end
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
  local record = read[1][2][1]
  local id, fields, job = record[1], record[2], nil
  for i = 1, #fields, 2 do
    if fields[i] == 'job' then
      job = fields[i + 1]
    end
  end
  local n, entry = nil, nil
  if job then
    n, entry = load(job)
  end
  if n and entry == id then
    return lease_to(job, n, entry)
  end
  -- An orphan (its job was acked or re-added under a newer entry): discard it.
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
return false
";

/// `ARGV[3]` job, `ARGV[4]` token, `ARGV[5]` lease (ms), `ARGV[6]` a fresh random id (hex).
/// Returns the new lease end, or nil when the token no longer holds the lease.
///
/// A job Redis forgot while it was leased (restart without persistence, `FLUSHDB`) is leased
/// to the caller again: the token's epoch differs from the current one, so the loss happened
/// after the lease was granted, and no one else can have taken the job from the queue since
/// (only the sweeper puts jobs back, and only jobs the store holds as `QUEUED`, which a
/// running job is not). Without this the worker would abandon a job the store holds as
/// running, and nothing would ever run it again.
const EXTEND: &str = r"
local job, token, lease, fresh = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local n, entry, held = load(job)
local lease_until = now + lease
if not n then
  local granted_in = string.match(token, '^[^.:]*%.([^:]*):')
  if not granted_in or redis.call('GET', epoch_key) == granted_in or is_dead(job) then
    return false
  end
  current_epoch(fresh)
  store(job, 1, '', token)
  redis.call('ZADD', leases, lease_until, job)
  return lease_until
end
if held ~= token then
  return false
end
redis.call('ZADD', leases, lease_until, job)
-- Tokens read '<random>.<epoch>:<consumer>'.
local consumer = string.match(token, '^[^:]*:(.*)$')
if entry ~= '' and consumer then
  -- Resets the entry's idle time, so XPENDING and XAUTOCLAIM-based tooling agree with us.
  redis.pcall('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
end
return lease_until
";

/// `ARGV[3]` job, `ARGV[4]` token. Returns 1, or 0 when the lease is lost.
const ACK: &str = r"
local job, token = ARGV[3], ARGV[4]
local n, entry, held = load(job)
if not n or held ~= token then
  return 0
end
drop_entry(entry)
redis.call('HDEL', jobs, job)
redis.call('ZREM', leases, job)
return 1
";

/// `ARGV[3]` job, `ARGV[4]` token, `ARGV[5]` delay (ms). Returns 1, or 0 when the lease is
/// lost. The job keeps its delivery count.
const RETRY: &str = r"
local job, token, delay = ARGV[3], ARGV[4], tonumber(ARGV[5])
local n, entry, held = load(job)
if not n or held ~= token then
  return 0
end
drop_entry(entry)
redis.call('ZREM', leases, job)
if delay > 0 then
  store(job, n, '', '')
  redis.call('ZADD', delayed, now + delay, job)
else
  promote_due(100)
  push(job, n, now)
end
return 1
";

/// `ARGV[3]` job, `ARGV[4]` token, `ARGV[5]` reason. Returns 1, or 0 when the lease is lost.
const DEAD_LETTER: &str = r"
local job, token, reason = ARGV[3], ARGV[4], ARGV[5]
local n, entry, held = load(job)
if not n or held ~= token then
  return 0
end
drop_entry(entry)
redis.call('HDEL', jobs, job)
redis.call('ZREM', leases, job)
local previous = redis.call('HGET', dead_index, job)
if previous then
  redis.call('XDEL', dead, previous)
end
local id = redis.call('XADD', dead, '*', 'job', job, 'reason', reason, 'deliveries', ms(n),
  'at', ms(now))
redis.call('HSET', dead_index, job, id)
return 1
";

/// `ARGV[3]` job. Returns 1 when a dead letter was moved back, 0 when there was none. A
/// redriven job counts its deliveries from zero again.
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
  promote_due(100)
  push(job, 0, now)
end
return 1
";

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
