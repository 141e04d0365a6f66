"""``python -m regions.devstack.skewed SECONDS MODULE``: the module runs with its wall clock off."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.stack import REPO_ROOT


@pytest.mark.parametrize("skew", [120, -120])
def test_the_module_sees_the_skewed_wall_clock_and_its_arguments(tmp_path: Path, skew: int) -> None:
    (tmp_path / "clock_probe.py").write_text(
        "import sys, time\nprint(time.time(), time.time_ns() / 1e9, time.monotonic(), *sys.argv[1:])\n"
    )
    before = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "regions.devstack.skewed", str(skew), "clock_probe", "--flag", "x"],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    after = time.time()
    seen, seen_ns, monotonic = float(out[0]), float(out[1]), float(out[2])
    assert before + skew - 1 <= seen <= after + skew + 1
    assert abs(seen_ns - seen) < 1
    assert abs(monotonic - time.monotonic()) < 30  # the monotonic clock is left alone
    assert out[3:] == ["--flag", "x"]
