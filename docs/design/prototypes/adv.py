import multiprocessing as mp, time, zlib, psycopg, sys
KEY = zlib.crc32(b"routing:health-check")  # < 2**32, fits PostgreSQL bigint
def job(i):
    with psycopg.connect(sys.argv[1], autocommit=True) as c:
        got = c.execute("select pg_try_advisory_lock(%s)", (KEY,)).fetchone()[0]
        if got:
            time.sleep(1.0)   # the work
            c.execute("select pg_advisory_unlock(%s)", (KEY,))
        return got
if __name__ == "__main__":
    with mp.Pool(4) as p: print("ran:", p.map(job, range(4)))
