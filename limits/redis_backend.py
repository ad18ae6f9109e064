"""Limits counted in Redis: one Lua script before a call, one after, each atomic across
every worker on every machine, timed by Redis' own clock.

Per token or team (`{token:ci}`: one hash slot, should it ever run on a cluster):
- `:rpm`   a sorted set, one member per call of the last minute (score: when);
- `:tpm`   a sorted set, one member per call's tokens (`<id>:<tokens>`), and `:tpm:sum`
           their running total, kept as members leave the window (no sum over the set);
- `:slots` a sorted set of the calls in flight, scored by when their lease ends;
- `:spend:<period>:<start>` billionths of a dollar spent in that budget period, seeded
           from the database's ledger (limits.ledger) when missing, so Redis is never the
           only record of what was spent.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

# Loopback or a LAN answers in well under a millisecond; a loaded machine can stall a few
# hundred. Longer would hold every limited call that long while Redis hangs.
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_CONNECTIONS = 16  # per worker process (per event loop)
PREFIX = "routing-admin:"
# Readings per subject that BEFORE returns: spent, calls, calls' reset (ms), tokens,
# tokens' reset (ms), slots busy. -1: that limit is not set.
READINGS = 6

# KEYS: per subject (rpm, tpm, tpm:sum, slots, spend). ARGV: window ms, call id, lease id,
# lease ms, then per subject: rpm, tpm, slots (0: none), budget in nanodollars (-1: none).
# Returns {state, subject, kind, readings...}: state 0 counted; 1 refused by subject's kind
# (1 budget, 2 rpm, 3 tpm, 4 slots); 2 that subject's spend key is missing: seed it.
BEFORE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[4])
local out = {0, 0, 0}
local function reset_of(key, default)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then return tonumber(oldest[2]) + window - now end
  return default
end
for s = 0, #KEYS / 5 - 1 do
  local rpm_k, tpm_k, sum_k = KEYS[5*s+1], KEYS[5*s+2], KEYS[5*s+3]
  local slot_k, spend_k = KEYS[5*s+4], KEYS[5*s+5]
  local rpm, tpm = tonumber(ARGV[5+4*s]), tonumber(ARGV[6+4*s])
  local slots, budget = tonumber(ARGV[7+4*s]), tonumber(ARGV[8+4*s])
  local spent, calls, calls_reset, used, used_reset, busy = -1, -1, 0, -1, 0, -1
  local function refuse(kind)
    if out[1] == 0 then out[1], out[2], out[3] = 1, s + 1, kind end
  end
  if budget >= 0 then
    local v = redis.call('GET', spend_k)
    if not v then return {2, s + 1, 0} end
    spent = tonumber(v)
    if spent >= budget then refuse(1) end
  end
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', rpm_k, '-inf', now - window)
    calls = redis.call('ZCARD', rpm_k)
    calls_reset = reset_of(rpm_k, window)
    if calls >= rpm then refuse(2) end
  end
  if tpm > 0 then
    local gone = redis.call('ZRANGEBYSCORE', tpm_k, '-inf', now - window)
    if #gone > 0 then
      local drop = 0
      for _, m in ipairs(gone) do drop = drop + tonumber(string.match(m, ':(%d+)$')) end
      redis.call('DECRBY', sum_k, drop)
      redis.call('ZREMRANGEBYSCORE', tpm_k, '-inf', now - window)
    end
    if redis.call('ZCARD', tpm_k) == 0 then
      used = 0
      redis.call('DEL', sum_k)
    else
      used = tonumber(redis.call('GET', sum_k) or '0')
    end
    used_reset = reset_of(tpm_k, 0)
    if used >= tpm then
      refuse(3)
      -- Over: when enough of it leaves the window for the next call to pass.
      local left = used
      local entries = redis.call('ZRANGE', tpm_k, 0, -1, 'WITHSCORES')
      for i = 1, #entries, 2 do
        left = left - tonumber(string.match(entries[i], ':(%d+)$'))
        if left < tpm then
          used_reset = tonumber(entries[i + 1]) + window - now
          break
        end
      end
    end
  end
  if slots > 0 then
    redis.call('ZREMRANGEBYSCORE', slot_k, '-inf', now)
    busy = redis.call('ZCARD', slot_k)
    if busy >= slots then refuse(4) end
  end
  for _, v in ipairs({spent, calls, calls_reset, used, used_reset, busy}) do
    table.insert(out, v)
  end
end
if out[1] ~= 0 then return out end
for s = 0, #KEYS / 5 - 1 do
  if tonumber(ARGV[5+4*s]) > 0 then
    redis.call('ZADD', KEYS[5*s+1], now, ARGV[2])
    redis.call('PEXPIRE', KEYS[5*s+1], window)
  end
  if tonumber(ARGV[7+4*s]) > 0 then
    redis.call('ZADD', KEYS[5*s+4], now + lease_ms, ARGV[3])
    redis.call('PEXPIRE', KEYS[5*s+4], lease_ms)
  end
end
return out
"""

# KEYS: per subject (tpm, tpm:sum, slots, spend). ARGV: window ms, call id, lease id,
# tokens, nanodollars, then per subject three flags (tpm, slots, budget: 1 set, 0 not).
# Returns per subject: tokens in the window now and spent (-1: not counted here).
AFTER = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window, tokens, cost = tonumber(ARGV[1]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
for s = 0, #KEYS / 4 - 1 do
  local tpm_k, sum_k, slot_k, spend_k = KEYS[4*s+1], KEYS[4*s+2], KEYS[4*s+3], KEYS[4*s+4]
  local used, spent = -1, -1
  if ARGV[6+3*s] == '1' then
    if tokens > 0 then
      redis.call('ZADD', tpm_k, now, ARGV[2] .. ':' .. tokens)
      redis.call('INCRBY', sum_k, tokens)
      redis.call('PEXPIRE', tpm_k, window)
      redis.call('PEXPIRE', sum_k, window)
    end
    used = tonumber(redis.call('GET', sum_k) or '0')
  end
  if ARGV[7+3*s] == '1' then redis.call('ZREM', slot_k, ARGV[3]) end
  -- A missing spend key is left missing: the next call seeds it from the ledger, which
  -- will hold this call too.
  if ARGV[8+3*s] == '1' and redis.call('EXISTS', spend_k) == 1 then
    spent = cost > 0 and redis.call('INCRBY', spend_k, cost) or tonumber(redis.call('GET', spend_k))
  end
  table.insert(out, used)
  table.insert(out, spent)
end
return out
"""

# KEYS[1]: a spend key. ARGV: nanodollars from the ledger, when the key expires (unix ms,
# 0: never). Another worker may have seeded it first: then it is left as it is.
SEED = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
"""

# KEYS: slot sets; ARGV: lease ms, then one lease id per key. Only leases still held.
RENEW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease_ms = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + lease_ms, ARGV[i + 1]) == 1 then
    redis.call('PEXPIRE', key, lease_ms)
  end
end
return 1
"""


def subject_base(key: str) -> str:
    return f"{PREFIX}{{{key}}}"


@dataclass
class _Scripts:
    url: str
    client: object
    before: object
    after: object
    seed: object


_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pool_kwargs() -> dict:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 0),
    }


def scripts() -> _Scripts:
    """This event loop's client and scripts: asyncio connections belong to one loop."""
    loop = asyncio.get_running_loop()
    url = settings.ROUTING_REDIS_URL
    found = _clients.get(loop)
    if found is None or found.url != url:
        from redis.asyncio import BlockingConnectionPool, Redis

        # A few connections, which a burst queues for, rather than one per call in flight:
        # opening sixty at once takes longer than the timeout on a busy machine.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_TIMEOUT_SECONDS * 2,
            **_pool_kwargs(),
        )
        client = Redis(connection_pool=pool)
        found = _Scripts(
            url,
            client,
            client.register_script(BEFORE),
            client.register_script(AFTER),
            client.register_script(SEED),
        )
        _clients[loop] = found
    return found


async def ping() -> None:
    await scripts().client.ping()


async def before(keys: Sequence[str], args: Sequence) -> list[int]:
    return [int(v) for v in await scripts().before(keys=keys, args=args)]


async def after(keys: Sequence[str], args: Sequence) -> list[int]:
    return [int(v) for v in await scripts().after(keys=keys, args=args)]


async def seed(key: str, nanousd: int, expires_ms: int) -> None:
    await scripts().seed(keys=[key], args=[nanousd, expires_ms])


# --- the lease keeper's side: a plain client, from its own thread -------------------------

_sync_lock = threading.Lock()
_sync: dict[str, tuple[object, object]] = {}


def _sync_client(url: str):
    with _sync_lock:
        found = _sync.get(url)
        if found is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),
            )
            found = _sync[url] = (client, client.register_script(RENEW))
        return found


def renew(url: str, held: Sequence[tuple[str, str]], lease_ms: int) -> None:
    """Push back the end of the leases (slot key, lease id) this process still holds."""
    _, script = _sync_client(url)
    script(keys=[key for key, _ in held], args=[lease_ms, *(lease for _, lease in held)])


def release(url: str, held: Sequence[tuple[str, str]]) -> None:
    client, _ = _sync_client(url)
    pipe = client.pipeline(transaction=False)
    for key, lease in held:
        pipe.zrem(key, lease)
    pipe.execute()
