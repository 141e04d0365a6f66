"""Replication drain throughput (batched vs one event per request) and end-to-end lag at 200 events/s.

Two real regions on loopback (PostgreSQL, Redis, gunicorn for us-east-1, a
Celery worker for eu-west-1). Two measurements:

1. Throughput of one drainer: N directory events preloaded in eu-west-1's
   outbox for us-east-1, drained by ``drain_peer`` in this process (exactly
   what a worker's task runs), signed HTTP to us-east-1's gunicorn, applied
   there. Batched (500 per request) vs the baseline of one event per request.
2. Lag: this process writes directory entries at 200/s, each in its own
   transaction; eu-west-1's real worker drains after each commit; the lag of
   an entry is its apply time in us-east-1 minus its commit time in eu-west-1.

    .venv/bin/python -m bench.replication_drain            # 20,000 events, 30 s of writes
    .venv/bin/python -m bench.replication_drain --quick    # 4,000 events, 8 s of writes
"""

from __future__ import annotations

import sys
import time

from bench.common import Row, cli
from bench.replication_stack import EU, US, applied_at, percentile, two_regions, wait_applied, write_at_rate

NAME = "replication_drain"


def _preload(count: int, prefix: str) -> list[str]:
    from django.utils import timezone

    from regions.replication.events import DIRECTORY_ENTRY, payload_from
    from regions.replication.models import OutboxEvent
    from residency.models import DirectoryEntry

    keys = [f"{prefix}-{i}" for i in range(count)]
    now = timezone.now()
    rows = []
    for key in keys:
        entry = DirectoryEntry(kind="org", key=key, home_region=EU, version=1, origin_region=EU)
        payload = payload_from(DIRECTORY_ENTRY, entry)
        rows.append(
            OutboxEvent(
                event_type=DIRECTORY_ENTRY.name,
                shard_key=DIRECTORY_ENTRY.shard_key(payload),
                object_key=DIRECTORY_ENTRY.object_key(payload),
                target_region=US,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
        )
    OutboxEvent.objects.bulk_create(rows, batch_size=2000)
    return keys


def _drain_rate(harness, *, count: int, prefix: str, batch: int, shards: int) -> float:
    from django.test.utils import override_settings

    from regions.replication.drain import drain_peer
    from regions.replication.models import OutboxEvent

    keys = _preload(count, prefix)
    with override_settings(REPLICATION_BATCH_SIZE=batch, REPLICATION_SHARDS_PER_CLAIM=shards):
        started = time.perf_counter()
        while OutboxEvent.objects.filter(target_region=US).exists():
            drain_peer(peer=US, budget=600)
        elapsed = time.perf_counter() - started
    applied = applied_at(harness, keys)
    assert len(applied) == count, f"only {len(applied)}/{count} applied"
    rate = count / elapsed
    print(f"  drained {count} events in {elapsed:.2f}s: {rate:,.0f}/s (batch {batch})", file=sys.stderr)
    return rate


def run(quick: bool) -> list[Row]:
    batched_n, single_n = (4_000, 300) if quick else (20_000, 2_000)
    write_seconds = 8 if quick else 30
    with two_regions() as stack:
        harness = stack.harness
        stack.web(US)
        batched = _drain_rate(harness, count=batched_n, prefix="bulk", batch=500, shards=64)
        single = _drain_rate(harness, count=single_n, prefix="one", batch=1, shards=1)

        from regions.redis import region_redis

        client = region_redis()
        assert client is not None
        client.delete(
            *client.keys("replication:drain-*")
        )  # the helpers asked for above are gone with the queue
        stack.worker(EU, concurrency=2)
        stack.beat(EU)
        committed = write_at_rate(rate=200, seconds=write_seconds, prefix="lag")
        applied = wait_applied(harness, list(committed), timeout=120)
        lags = [max(applied[key] - committed[key], 0.0) * 1000 for key in committed]
    p50, p99 = percentile(lags, 0.50), percentile(lags, 0.99)
    print(f"  lag p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(lags):.0f} ms", file=sys.stderr)
    return [
        Row(
            benchmark=NAME,
            figure=f"events drained per second, one drainer, {batched_n:,} events, 500 per batch",
            value=batched,
            unit="events/s",
            baseline=single,
            baseline_label="one event per request",
            target=">= 2,000 events/s",
            passed=batched >= 2000,
        ),
        Row(
            benchmark=NAME,
            figure=f"lag p50, commit in {EU} to apply in {US}, 200 events/s for {write_seconds} s",
            value=p50,
            unit="ms",
            baseline=None,
            baseline_label="—",
            target="(p99 is the target)",
            passed=None,
        ),
        Row(
            benchmark=NAME,
            figure=f"lag p99, commit in {EU} to apply in {US}, 200 events/s for {write_seconds} s",
            value=p99,
            unit="ms",
            baseline=None,
            baseline_label="—",
            target="<= 1,000 ms",
            passed=p99 <= 1000,
            notes=f"max {max(lags):.0f} ms over {len(lags)} events",
        ),
    ]


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
