"""Catch-up after a partition: us-east-1 unreachable while eu-west-1 keeps writing at 200 events/s.

Two real regions on loopback, with eu-west-1's real Celery worker and beat
(sweep every 5 s, peer health every 5 s). us-east-1's gunicorn is stopped for
the partition (60 s; 15 s with --quick) while this process writes directory
entries at 200/s; eu-west-1's breaker for us-east-1 opens. Then gunicorn comes
back and we time how long until every entry is applied in us-east-1, split
into the wait for the breaker's probe and the drain of the backlog. The
baseline runs the same partition with a drainer that sends one event per
request.

    .venv/bin/python -m bench.replication_partition            # 60 s partition (twice)
    .venv/bin/python -m bench.replication_partition --quick    # 15 s partition (twice)
"""

from __future__ import annotations

import sys
import time

from bench.common import Row, cli
from bench.replication_stack import EU, US, applied_at, two_regions, wait_applied, write_at_rate

NAME = "replication_partition"


BASELINE_ENV = {"REPLICATION_BATCH_SIZE": "1", "REPLICATION_SHARDS_PER_CLAIM": "1"}


def _catch_up(
    partition: int, worker_env: dict[str, str], *, timeout: float = 600
) -> dict[str, float | int | str]:
    """Catch-up after ``partition`` seconds; when it takes longer than ``timeout``, a lower bound.

    ``complete`` is 0 then, and ``applied`` says how many entries had arrived.
    """
    with two_regions() as stack:
        harness = stack.harness
        web = stack.web(US)
        stack.worker(EU, concurrency=2, **worker_env)
        stack.beat(EU)
        web.stop()
        print(f"partition: {US} down for {partition} s while {EU} writes", file=sys.stderr)
        keys = list(write_at_rate(rate=200, seconds=partition, prefix="part"))
        from regions.replication.breaker import breaker_state
        from regions.replication.models import OutboxEvent

        backlog = OutboxEvent.objects.filter(target_region=US).count()
        state = breaker_state(peer=US).name.lower()
        stack.web(US)
        back = time.time()
        complete = 1
        try:
            applied = wait_applied(harness, keys, timeout=timeout)
        except TimeoutError:
            complete = 0
            applied = applied_at(harness, keys)
            applied[""] = time.time()  # still draining: the wait so far is a lower bound
    first, done = min(applied.values(), default=back), max(applied.values(), default=back)
    result: dict[str, float | int | str] = {
        "events": len(keys),
        "backlog": backlog,
        "breaker": state,
        "catch_up": done - back,
        "probe_wait": max(first - back, 0.0),
        "drain": done - first,
        "complete": complete,
        "applied": len(applied) - (0 if complete else 1),
    }
    print(f"  {result}", file=sys.stderr)
    return result


def run(quick: bool) -> list[Row]:
    partition = 15 if quick else 60
    batched = _catch_up(partition, {})
    # The baseline is slow (minutes on a loaded machine): past this wait it is reported as a lower bound.
    single = _catch_up(partition, BASELINE_ENV, timeout=120 if quick else 300)
    baseline_label = "same partition, one event per request"
    if not single["complete"]:
        baseline_label += (
            f" (not done after {float(single['catch_up']):.0f} s: {single['applied']:,} of "
            f"{single['events']:,} applied; a lower bound)"
        )
    return [
        Row(
            benchmark=NAME,
            figure=f"catch-up after a {partition} s partition ({batched['events']:,} events at 200/s)",
            value=float(batched["catch_up"]),
            unit="s",
            baseline=float(single["catch_up"]),
            baseline_label=baseline_label,
            target="(recorded)",
            passed=None if batched["complete"] else False,
            notes=f"breaker {batched['breaker']} during the partition; first apply "
            f"{float(batched['probe_wait']):.1f} s after the peer answered again; backlog of "
            f"{batched['backlog']:,} drained in {float(batched['drain']):.1f} s "
            f"(baseline: {float(single['drain']):.1f} s)",
        ),
    ]


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
