"""Exact cross-process limiter primitives and their per-call cost (127.0.0.1 only)."""
import fcntl, mmap, os, sqlite3, struct, sys, time, uuid
import redis, psycopg
from redis.backoff import NoBackoff
from redis.retry import Retry

# ---- Redis: sliding-window log (exact "N in any 60 s"), several keys at once, all-or-nothing
SLIDING = """
local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1]); local member = ARGV[2]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {0, i, tonumber(oldest[2]) + window - now}      -- refused: which key, ms until a slot frees
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member); redis.call('PEXPIRE', key, window)
end
return {1, 0, 0}
"""
# ---- Redis: fixed window counter (tpm / budget style), INCRBY + expiry on first write
FIXED = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {n, redis.call('PTTL', KEYS[1])}
"""
# ---- Redis: concurrency leases (a crashed worker's slot frees itself at lease expiry)
ACQUIRE = """
local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

def bench(label, fn, n=3000):
    for _ in range(50): fn()
    t0 = time.perf_counter()
    for _ in range(n): fn()
    print(f"{label:55s} {(time.perf_counter() - t0) / n * 1e6:8.1f} us/call", flush=True)

def main(redis_url, pg_url):
    r = redis.Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25,
                             retry=Retry(NoBackoff(), 0), health_check_interval=0)
    sliding, fixed, acquire = r.register_script(SLIDING), r.register_script(FIXED), r.register_script(ACQUIRE)
    bench("redis PING (round trip floor)", r.ping)
    bench("redis sliding log, 2 keys (token+team), limit 1e9",
          lambda: sliding(keys=["rl:{t1}:rpm", "rl:{team1}:rpm"], args=[60000, uuid.uuid4().hex, 10**9, 10**9]))
    r.delete("rl:{t1}:rpm", "rl:{team1}:rpm")
    bench("redis fixed window INCRBY", lambda: fixed(keys=["tpm:{t1}:w"], args=[123, 60000]))
    def conc():
        lid = uuid.uuid4().hex
        acquire(keys=["conc:{t1}"], args=[10**6, 900000, lid]); r.zrem("conc:{t1}", lid)
    bench("redis concurrency acquire+release (2 round trips)", conc)
    # exactness under contention is shown by exact.py; here only cost

    pg = psycopg.connect(pg_url, autocommit=True)
    pg.execute("create table if not exists rl_counter (key text, window_start bigint, n bigint not null, primary key (key, window_start))")
    q = ("insert into rl_counter as c (key, window_start, n) values (%s, %s, 1) "
         "on conflict (key, window_start) do update set n = c.n + 1 where c.n < %s returning n")
    bench("postgres upsert ... where n < limit returning n", lambda: pg.execute(q, ("t1", 0, 10**12)).fetchone(), 2000)
    bench("postgres pg_try_advisory_xact_lock in a transaction",
          lambda: pg.execute("select pg_try_advisory_xact_lock(42)").fetchone(), 2000)

    path = "/tmp/bench1516/counters.sqlite3"
    for s in ("", "-wal", "-shm"):
        if os.path.exists(path + s): os.remove(path + s)
    lite = sqlite3.connect(path, isolation_level=None, timeout=5)
    lite.execute("pragma journal_mode=wal"); lite.execute("pragma synchronous=normal")
    lite.execute("create table rl_counter (key text, window_start int, n int not null, primary key (key, window_start))")
    lq = q.replace("%s", "?")
    def lite_inc():
        lite.execute("begin immediate"); lite.execute(lq, ("t1", 0, 10**12)).fetchone(); lite.execute("commit")
    bench("sqlite (WAL, synchronous=NORMAL) upsert returning", lite_inc)

    fd = os.open("/dev/shm/bench1516.counters", os.O_RDWR | os.O_CREAT, 0o600); os.ftruncate(fd, 4096)
    mm = mmap.mmap(fd, 4096)
    def shm_inc():
        fcntl.lockf(fd, fcntl.LOCK_EX, 8, 0)      # lock just this slot's 8 bytes
        n = struct.unpack_from("q", mm, 0)[0] + 1; struct.pack_into("q", mm, 0, n)
        fcntl.lockf(fd, fcntl.LOCK_UN, 8, 0)
        return n
    bench("mmap file in /dev/shm + fcntl.lockf slot lock", shm_inc, 20000)
    os.unlink("/dev/shm/bench1516.counters")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
