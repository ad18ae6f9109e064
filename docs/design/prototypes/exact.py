import multiprocessing as mp, os, sqlite3, sys, time, uuid, fcntl, mmap, struct
import redis, psycopg
from redis.backoff import NoBackoff
from redis.retry import Retry
from limits import SLIDING, bench
LIMIT, PER_PROC, PROCS = 1000, 600, 4
R, PG = sys.argv[1], sys.argv[2]
def w_redis(_):
    r = redis.Redis.from_url(R, socket_timeout=0.25, retry=Retry(NoBackoff(), 0)); s = r.register_script(SLIDING)
    return sum(s(keys=["ex:{tok}"], args=[60000, uuid.uuid4().hex, LIMIT])[0] for _ in range(PER_PROC))
def w_pg(_):
    c = psycopg.connect(PG, autocommit=True); c.execute("set synchronous_commit = off")
    q = ("insert into ex_counter as c (key, n) values ('tok', 1) on conflict (key) do update set n = c.n + 1 "
         "where c.n < %s returning n")
    return sum(1 for _ in range(PER_PROC) if c.execute(q, (LIMIT,)).fetchone())
def w_lite(_):
    c = sqlite3.connect("/tmp/bench1516/ex.sqlite3", isolation_level=None, timeout=10)
    q = ("insert into ex_counter as c (key, n) values ('tok', 1) on conflict (key) do update set n = c.n + 1 "
         "where c.n < ? returning n")
    ok = 0
    for _ in range(PER_PROC):
        c.execute("begin immediate"); ok += c.execute(q, (LIMIT,)).fetchone() is not None; c.execute("commit")
    return ok
def w_shm(_):
    fd = os.open("/dev/shm/ex1516", os.O_RDWR); mm = mmap.mmap(fd, 4096); ok = 0
    for _ in range(PER_PROC):
        fcntl.lockf(fd, fcntl.LOCK_EX, 8, 0)
        n = struct.unpack_from("q", mm, 0)[0]
        if n < LIMIT: struct.pack_into("q", mm, 0, n + 1); ok += 1
        fcntl.lockf(fd, fcntl.LOCK_UN, 8, 0)
    return ok
if __name__ == "__main__":
    redis.Redis.from_url(R).delete("ex:{tok}")
    pg = psycopg.connect(PG, autocommit=True); pg.execute("drop table if exists ex_counter")
    pg.execute("create unlogged table ex_counter (key text primary key, n bigint not null)")
    for p in ("/tmp/bench1516/ex.sqlite3",):
        if os.path.exists(p): os.remove(p)
    l = sqlite3.connect("/tmp/bench1516/ex.sqlite3"); l.execute("pragma journal_mode=wal")
    l.execute("create table ex_counter (key text primary key, n int not null)"); l.commit(); l.close()
    fd = os.open("/dev/shm/ex1516", os.O_RDWR | os.O_CREAT, 0o600); os.ftruncate(fd, 4096); os.close(fd)
    for name, fn in [("redis lua", w_redis), ("postgres upsert", w_pg), ("sqlite upsert", w_lite), ("shm+fcntl", w_shm)]:
        t0 = time.perf_counter()
        with mp.Pool(PROCS) as pool: got = sum(pool.map(fn, range(PROCS)))
        dt = time.perf_counter() - t0
        print(f"{name:16s} {PROCS} procs x {PER_PROC} tries, limit {LIMIT}: granted {got}  "
              f"({dt / (PROCS * PER_PROC) * 1e6:.0f} us per try incl. contention)")
    os.unlink("/dev/shm/ex1516")
    pg.execute("set synchronous_commit = off")
    bench("postgres upsert, unlogged + synchronous_commit=off",
          lambda: pg.execute("insert into ex_counter as c (key, n) values ('b', 1) on conflict (key) do update set n = c.n + 1 returning n").fetchone(), 2000)
