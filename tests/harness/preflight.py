"""Check that the machine has what ``make test`` needs, and say exactly what to install.

``python -m tests.harness.preflight`` exits 0 when PostgreSQL server binaries
and redis-server are present. With ``--install`` on Debian as root it installs
the missing packages with apt-get first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from regions.devstack.postgres import pg_bin_dir


def missing_packages() -> dict[str, str]:
    """Debian package name -> why it is needed, for each missing piece."""
    missing: dict[str, str] = {}
    try:
        pg_bin_dir()
    except RuntimeError:
        missing["postgresql"] = "initdb, postgres and pg_basebackup (primaries and streaming replicas)"
    if shutil.which("redis-server") is None:
        missing["redis-server"] = "redis-server (cache, rate limits, Celery broker)"
    return missing


def main(argv: list[str]) -> int:
    missing = missing_packages()
    if missing and "--install" in argv and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"preflight: installing {', '.join(missing)} with apt-get", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=False, env=env)
        missing = missing_packages()
    if not missing:
        return 0
    print("make test needs these server binaries, which this machine lacks:", file=sys.stderr)
    for why in missing.values():
        print(f"  - {why}", file=sys.stderr)
    print(f"Install them with:  sudo apt-get install -y {' '.join(missing)}", file=sys.stderr)
    print("(or set PG_BIN to the directory holding initdb/postgres/pg_basebackup)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
