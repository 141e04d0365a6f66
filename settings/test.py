"""Settings for the test process: the base settings pointed at the harness.

The harness (tests/harness) starts PostgreSQL primaries with streaming replicas
and Redis on free loopback ports, then points these connections at them (see
``tests.harness.acting``). Until it does, the aliases name an unreachable
placeholder, so a test that forgets the ``db`` fixture fails loudly. Child
processes of the harness (Celery workers, gunicorn) use ``settings.base`` with
their region's environment, exactly as a deployment does.
"""

from __future__ import annotations

from settings.base import *  # noqa: F403
from settings.base import REGION
from settings.env import BASE_DIR, Env, databases_from_env

_PLACEHOLDER = "postgres://postgres@harness-not-started.invalid:1/saas"

DATABASES = databases_from_env(
    Env({"DATABASE_URL": _PLACEHOLDER, "REPLICA_DATABASE_URLS": f"{_PLACEHOLDER},{_PLACEHOLDER}"}),
    region=REGION,
    default_sqlite=BASE_DIR / "unused.sqlite3",
)
DATABASE_REPLICAS = [alias for alias in DATABASES if alias != "default"]

# Tests drive the replica probe themselves (regions.routing.probe.probe_once);
# Celery workers and gunicorn started by tests run the background probe.
ROUTING_PROBE_INTERVAL_SECONDS = 0.0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASE_REPLICA_REGIONS = {alias: REGION for alias in DATABASE_REPLICAS}

# The test process uses the secrets the harness gives every region's processes,
# as all regions of a fleet share them: login keys, signed inter-region requests
# and audit report signatures computed here match the servers'.
from tests.harness.stack import TEST_SECRETS  # noqa: E402

SECRET_KEY = TEST_SECRETS["SECRET_KEY"]
DIRECTORY_SECRET = TEST_SECRETS["DIRECTORY_SECRET"]
AUDIT_SIGNING_KEYS = TEST_SECRETS["AUDIT_SIGNING_KEYS"]
REPLICATION_SIGNING_KEYS = TEST_SECRETS["REPLICATION_SIGNING_KEYS"].split(",")
