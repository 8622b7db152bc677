"""The Lua scripts of the Redis backend: snapshot reads and the validating commit.

Every script runs atomically inside Redis (nothing else runs while one does). ``ARGV[1]`` is always the
store's key prefix ``P``; the data structures under it are described in :mod:`strongroom.storage.redis`:

* ``P..'idx'``  sorted set, every score 0: the keys, ordered byte-wise by ``ZRANGEBYLEX`` (live keys plus
  tombstones of deleted keys that still have history);
* ``P..'val'``  hash key -> current value (live keys only);
* ``P..'h:'..key``  sorted set, score and member = the version of each recent commit that changed the key
  (small members keep these sets in Redis's compact listpack encoding);
* ``P..'hv'``  hash ``key..':'..version`` -> the value the key had before that commit; no field if it
  was absent then (the field name is only ever built from a known key and version, never parsed);
* ``P..'lw'``  hash key -> version of the key's latest write; present exactly while ``h:key`` is not empty;
* ``P..'gc'``  sorted set key -> version of the oldest entry of ``h:key`` (pruning queue);
* ``P..'meta'``  hash: ``seq`` (latest commit version), ``hz`` (history horizon: entries with a version
  ``<= hz`` may be pruned, so snapshots older than ``hz`` are refused);
* ``P..'ct'``  sorted set version -> commit time in ms (Redis ``TIME``), to move ``hz`` by age;
* ``P..'tok'``  sorted set commit token -> commit time: makes a retried commit idempotent.

The value of ``key`` at snapshot ``S`` is its current value unless ``lw[key] > S``; then it is the
previous value recorded for the first version in ``h:key`` above ``S``. Pruning removes only
entries ``<= hz``, and snapshots below ``hz`` are refused, so that entry always exists.

Scripts run under a ``#!lua`` shebang (Redis >= 7.0): the commit script is refused before it starts when
Redis is out of memory (so it never stops halfway through its writes), and the read scripts are flagged
``no-writes``. Scripts name data keys that are not passed as ``KEYS``: fine on a standalone Redis, not
usable on Redis Cluster.
"""

from __future__ import annotations

__all__ = ["COMMIT", "RANGE", "READ", "Script"]


class Script:
    """One Lua script and its SHA1 once Redis told it (``SCRIPT LOAD``)."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha: bytes | None = None


# Shared by every script. Lua's unpack() is limited by the C stack (~8000 values), so HMGET runs over
# chunks. Versions are integers below 2^53 held in Lua numbers; concatenating one prints its digits.
_PRELUDE = r"""
local P = ARGV[1]
local IDX, VAL, LW, META, HV = P .. 'idx', P .. 'val', P .. 'lw', P .. 'meta', P .. 'hv'

local function hmget(h, list, i, j)
  local out, n = {}, 0
  while i <= j do
    local e = math.min(i + 999, j)
    local r = redis.call('HMGET', h, unpack(list, i, e))
    for x = 1, #r do n = n + 1; out[n] = r[x] end
    i = e + 1
  end
  return out
end

local function state()
  local m = redis.call('HMGET', META, 'seq', 'hz')
  return tonumber(m[1]) or 0, tonumber(m[2]) or 0
end

-- vals[x] holds the current value of keys[x]; replace those written after snapshot S by their value at S.
local function at_snapshot(keys, vals, S, seq)
  if S >= seq then return end
  local lw = hmget(LW, keys, 1, #keys)
  for x = 1, #keys do
    local w = lw[x]
    if w and tonumber(w) > S then
      local v = redis.call('ZRANGEBYSCORE', P .. 'h:' .. keys[x], '(' .. S, '+inf', 'LIMIT', 0, 1)[1]
      vals[x] = redis.call('HGET', HV, keys[x] .. ':' .. v)
    end
  end
end

-- The snapshot a read uses: ARGV[2] (empty: the latest commit). nil when history no longer reaches it.
local function snapshot(seq, hz)
  local S = seq
  if ARGV[2] ~= '' then S = tonumber(ARGV[2]) end
  if S < hz or S > seq then return nil end
  return S
end
"""

READ = Script(
    "read",
    "#!lua flags=no-writes\n"
    + _PRELUDE
    + r"""
-- ARGV: P, snapshot, key... -> {snapshot, value or nil...}, or {-1} if the snapshot is too old.
local seq, hz = state()
local S = snapshot(seq, hz)
if not S then return {-1} end
local keys = {}
for i = 3, #ARGV do keys[i - 2] = ARGV[i] end
local vals = hmget(VAL, keys, 1, #keys)
at_snapshot(keys, vals, S, seq)
local out = {S}
for x = 1, #keys do out[x + 1] = vals[x] end
return out
""",
)

RANGE = Script(
    "range",
    "#!lua flags=no-writes\n"
    + _PRELUDE
    + r"""
-- ARGV: P, snapshot, begin, end, limit (0: none), reverse ('1'/'0')
-- -> {snapshot, key1, value1, ...} in the requested order, or {-1} if the snapshot is too old.
local seq, hz = state()
local S = snapshot(seq, hz)
if not S then return {-1} end
local lo, hi = '[' .. ARGV[3], '(' .. ARGV[4]
local limit = tonumber(ARGV[5])
local rev = ARGV[6] == '1'
local out, n, got = {S}, 1, 0
while true do
  local keys
  local want = limit - got
  if limit == 0 then
    if rev then keys = redis.call('ZREVRANGEBYLEX', IDX, hi, lo)
    else keys = redis.call('ZRANGEBYLEX', IDX, lo, hi) end
  else
    if rev then keys = redis.call('ZREVRANGEBYLEX', IDX, hi, lo, 'LIMIT', 0, want)
    else keys = redis.call('ZRANGEBYLEX', IDX, lo, hi, 'LIMIT', 0, want) end
  end
  local count = #keys
  if count == 0 then break end
  local vals = hmget(VAL, keys, 1, count)
  at_snapshot(keys, vals, S, seq)
  for x = 1, count do
    -- Tombstones (and keys created after S) have no value at S: skipped, so a limit may need more keys.
    if vals[x] then
      out[n + 1] = keys[x]; out[n + 2] = vals[x]; n = n + 2; got = got + 1
    end
  end
  if limit == 0 or got >= limit or count < want then break end
  if rev then hi = '(' .. keys[count] else lo = '(' .. keys[count] end
end
return out
""",
)

COMMIT = Script(
    "commit",
    "#!lua\n"
    + _PRELUDE
    + r"""
-- ARGV: P, token, snapshot ('' if nothing was read), window_ms, prune_max, token_keep_ms,
--       n_keys, n_ranges, n_clears, n_sets, n_dels, then: read keys, read ranges (begin, end),
--       cleared ranges (begin, end), sets (key, value), deleted keys.
-- -> 1 committed, 2 committed earlier by the same token (a retry), 0 conflict (nothing written).
local TOK, CT, GC = P .. 'tok', P .. 'ct', P .. 'gc'
if redis.call('ZSCORE', TOK, ARGV[2]) then return 2 end
local seq, hz = state()
local nk, nr, nc = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local ns, nd = tonumber(ARGV[10]), tonumber(ARGV[11])
local pos = 12

-- Validation: nothing the transaction read was written after its snapshot S. lw holds each recently
-- written key's latest version; keys without lw were last written at or before hz <= S.
if ARGV[3] ~= '' then
  local S = tonumber(ARGV[3])
  if S < hz or S > seq then return 0 end
  if S < seq then
    if nk > 0 then
      local lw = hmget(LW, ARGV, pos, pos + nk - 1)
      for x = 1, nk do
        if lw[x] and tonumber(lw[x]) > S then return 0 end
      end
    end
    for r = 0, nr - 1 do
      local b, e = ARGV[pos + nk + 2 * r], ARGV[pos + nk + 2 * r + 1]
      -- The index still lists keys deleted since S (tombstones keep their history), so inserts,
      -- updates and deletes inside the range all show up here.
      local keys = redis.call('ZRANGEBYLEX', IDX, '[' .. b, '(' .. e)
      if #keys > 0 then
        local lw = hmget(LW, keys, 1, #keys)
        for x = 1, #keys do
          if lw[x] and tonumber(lw[x]) > S then return 0 end
        end
      end
    end
  end
end
pos = pos + nk + 2 * nr

local V = seq + 1
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seen = {}
-- Record the value a key had before this commit (only the first change of a key in a commit counts).
local function record(k, old)
  if seen[k] then return end
  seen[k] = true
  redis.call('ZADD', P .. 'h:' .. k, V, V)
  if old then redis.call('HSET', HV, k .. ':' .. V, old) end
  if redis.call('HSET', LW, k, V) == 1 then redis.call('ZADD', GC, V, k) end
end

-- Cleared ranges first, then sets and deletes: the order the write buffer's invariant asks for.
for r = 0, nc - 1 do
  local keys = redis.call('ZRANGEBYLEX', IDX, '[' .. ARGV[pos + 2 * r], '(' .. ARGV[pos + 2 * r + 1])
  if #keys > 0 then
    local vals = hmget(VAL, keys, 1, #keys)
    for x = 1, #keys do
      if vals[x] then
        record(keys[x], vals[x])
        redis.call('HDEL', VAL, keys[x])
      end
    end
  end
end
pos = pos + 2 * nc
for x = 0, ns - 1 do
  local k = ARGV[pos + 2 * x]
  local old = redis.call('HGET', VAL, k)
  record(k, old)
  redis.call('HSET', VAL, k, ARGV[pos + 2 * x + 1])
  if not old then redis.call('ZADD', IDX, 0, k) end
end
pos = pos + 2 * ns
for x = 0, nd - 1 do
  local k = ARGV[pos + x]
  local old = redis.call('HGET', VAL, k)
  if old then
    record(k, old)
    redis.call('HDEL', VAL, k)
  end
end

redis.call('HSET', META, 'seq', V)
redis.call('ZADD', TOK, now, ARGV[2])
redis.call('ZADD', CT, now, V)

-- Pruning. hz moves to the newest commit older than the window: a snapshot older than that commit was
-- taken more than window_ms ago. Then at most prune_max keys lose their history entries <= hz; a key
-- left without history leaves lw and gc, and leaves the index too if it is a tombstone.
local cutoff = now - tonumber(ARGV[4])
local newest_old = redis.call('ZREVRANGEBYSCORE', CT, '(' .. cutoff, '-inf', 'LIMIT', 0, 1)[1]
if newest_old then
  redis.call('ZREMRANGEBYSCORE', CT, '-inf', '(' .. cutoff)
  local h = tonumber(newest_old)
  if h > hz then
    hz = h
    redis.call('HSET', META, 'hz', h)
  end
end
redis.call('ZREMRANGEBYSCORE', TOK, '-inf', '(' .. (now - tonumber(ARGV[6])))
if hz > 0 then
  local ks = redis.call('ZRANGEBYSCORE', GC, '-inf', hz, 'LIMIT', 0, tonumber(ARGV[5]))
  for x = 1, #ks do
    local k = ks[x]
    local hk = P .. 'h:' .. k
    local dead = redis.call('ZRANGEBYSCORE', hk, '-inf', hz)
    for y = 1, #dead do dead[y] = k .. ':' .. dead[y] end
    for y = 1, #dead, 1000 do redis.call('HDEL', HV, unpack(dead, y, math.min(y + 999, #dead))) end
    redis.call('ZREMRANGEBYSCORE', hk, '-inf', hz)
    local first = redis.call('ZRANGE', hk, 0, 0, 'WITHSCORES')
    if first[1] then
      redis.call('ZADD', GC, first[2], k)
    else
      redis.call('HDEL', LW, k)
      redis.call('ZREM', GC, k)
      if redis.call('HEXISTS', VAL, k) == 0 then redis.call('ZREM', IDX, k) end
    end
  end
end
return 1
""",
)
