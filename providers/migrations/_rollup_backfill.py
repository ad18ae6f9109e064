"""A frozen copy of the roll-up rebuild, for migrations 0009 and 0011 only.

Those migrations count the existing request log into the roll-up tables they create. They
used to call the live service (usage.services.rollup_rebuild), which counts into every
roll-up table of *today's* code: run on a database whose migrations stop short of a later
table, or after a later column change, it would break `migrate`. This copy reads and writes
through the historical models (apps.get_model) and knows only the tables each migration
names. Do not change it to follow the live code: a later change brings its own migration.
"""

from bisect import bisect_right
from datetime import UTC, timedelta

# As the service had them when these migrations were written (issue 5).
LATENCY_BOUNDS = tuple(round(1.25**i, 4) for i in range(60))
PERIODS = {"h": timedelta(hours=1), "d": timedelta(days=1)}
TOTALS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost")
# model name -> (the record's fields that make a row, after period and start; a histogram?)
TABLES = {
    "UsageRollup": (("provider", "model", "token_name"), False),
    "ModelRollup": (("provider", "model"), False),
    "TokenRollup": (("token_name",), False),
    "LatencyRollup": (("provider", "model", "token_name"), True),
    "ModelLatencyRollup": (("provider", "model"), True),
}
FIELDS = ("at", "provider", "model", "token_name", "ok", "latency_ms", "prompt_tokens",
          "completion_tokens", "cost")  # fmt: skip


def _start(at, period):
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if period == "d" else at


def _value(record, name):
    return record[name] or ("in-process" if name == "token_name" else "")


def rebuild(apps, names):
    """Recount the roll-up tables `names` (model names of the providers app, as of the
    calling migration) from the request log."""
    RequestLog = apps.get_model("providers", "RequestLog")
    if not RequestLog.objects.exists():
        return
    rows = {name: {} for name in names}
    for values in RequestLog.objects.order_by().values_list(*FIELDS).iterator(20_000):
        r = dict(zip(FIELDS, values, strict=True))
        bucket = bisect_right(LATENCY_BOUNDS, max(r["latency_ms"], 0.0)) if r["ok"] else None
        for period in PERIODS:
            at = (period, _start(r["at"], period))
            for name in names:
                keys, latency = TABLES[name]
                key = (*at, *(_value(r, k) for k in keys))
                found = rows[name]
                if latency:
                    if bucket is not None:
                        found[(*key, bucket)] = found.get((*key, bucket), 0) + 1
                    continue
                row = found.setdefault(key, [0, 0, 0, 0, None])
                row[0] += 1
                row[1] += 0 if r["ok"] else 1
                row[2] += r["prompt_tokens"] or 0
                row[3] += r["completion_tokens"] or 0
                if r["cost"] is not None:
                    row[4] = (row[4] or 0.0) + r["cost"]
    for name in names:
        model = apps.get_model("providers", name)
        keys, latency = TABLES[name]
        columns = ("period", "start", *keys, *(("bucket",) if latency else ()))
        model.objects.all().delete()
        objs = []
        for key, added in rows[name].items():
            fields = dict(zip(columns, key, strict=True))
            fields.update({"count": added} if latency else dict(zip(TOTALS, added, strict=True)))
            objs.append(model(**fields))
        model.objects.bulk_create(objs, batch_size=5_000)
