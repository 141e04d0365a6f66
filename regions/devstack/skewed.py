"""Run a Python module with its wall clock off by some seconds: a region whose host clock drifted.

    python -m regions.devstack.skewed 120 celery -A saas worker ...   # 2 minutes fast
    python -m regions.devstack.skewed -120 celery -A saas worker ...  # 2 minutes slow

``time.time`` and ``time.time_ns`` are shifted before the module starts, so
everything that reads the wall clock through them (the inter-region request
signatures among others; forked children inherit it) sees the skewed time.
Monotonic clocks are left alone, as NTP leaves them. For chaos drills; no
library for it (libfaketime) is needed on the machine.
"""

from __future__ import annotations

import runpy
import sys
import time


def skew_clock(seconds: float) -> None:
    real_time, real_time_ns = time.time, time.time_ns
    offset_ns = int(seconds * 1_000_000_000)

    def skewed_time() -> float:
        return real_time() + seconds

    def skewed_time_ns() -> int:
        return real_time_ns() + offset_ns

    time.time = skewed_time
    time.time_ns = skewed_time_ns


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m regions.devstack.skewed SECONDS MODULE [ARGS...]")
    skew_clock(float(argv[0]))
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
