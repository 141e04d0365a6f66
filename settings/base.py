"""Settings shared by every environment.

Everything that differs between deployments comes from environment variables
(see ``.env.example``). With nothing set, embedded defaults apply: SQLite, a
process-local cache and Celery tasks run in-process, so ``manage.py migrate``
and ``manage.py runserver`` work on a machine with no services.
"""

from __future__ import annotations

import os

import django_stubs_ext

from regions.observability.logs import logging_config
from settings.env import BASE_DIR, Env
from settings.region import region_settings

env = Env(os.environ)
# Lets Django's generic classes be subscripted at runtime (ModelAdmin[Model], ...).
django_stubs_ext.monkeypatch()

# --- Region -------------------------------------------------------------------
# REGION, DATABASES, CACHES, hosts, cookies and broker: one function builds them
# from the environment, so the test harness can build another region's set.
# Production passes no default region (settings/production.py).
_region = region_settings(env, default_region="eu-west-1")
REGION = _region["REGION"]
REGION_REGISTRY = _region["REGION_REGISTRY"]
DATABASES = _region["DATABASES"]
DATABASE_REPLICAS = _region["DATABASE_REPLICAS"]
DATABASE_REPLICA_REGIONS = _region["DATABASE_REPLICA_REGIONS"]
CACHES = _region["CACHES"]
REDIS_URL = _region["REDIS_URL"]
ALLOWED_HOSTS = _region["ALLOWED_HOSTS"]
CSRF_TRUSTED_ORIGINS = _region["CSRF_TRUSTED_ORIGINS"]
SESSION_COOKIE_DOMAIN = _region["SESSION_COOKIE_DOMAIN"]
CSRF_COOKIE_DOMAIN = _region["CSRF_COOKIE_DOMAIN"]
SESSION_COOKIE_NAME = _region["SESSION_COOKIE_NAME"]
CSRF_COOKIE_NAME = _region["CSRF_COOKIE_NAME"]
CELERY_BROKER_URL = _region["CELERY_BROKER_URL"]
CELERY_TASK_ALWAYS_EAGER = _region["CELERY_TASK_ALWAYS_EAGER"]
CELERY_TASK_EAGER_PROPAGATES = _region["CELERY_TASK_EAGER_PROPAGATES"]
CELERY_BROKER_TRANSPORT_OPTIONS = _region["CELERY_BROKER_TRANSPORT_OPTIONS"]

# --- Core ---------------------------------------------------------------------
SECRET_KEY = env.str("SECRET_KEY", "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnop")
DEBUG = env.bool("DEBUG", default=True)
if DEBUG:
    # What Django allows by itself when ALLOWED_HOSTS is empty and DEBUG is on.
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "localhost", "127.0.0.1", "[::1]"]
ROOT_URLCONF = "saas.urls"
WSGI_APPLICATION = "saas.wsgi.application"
ASGI_APPLICATION = "saas.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# collectstatic's target, for images that pre-build static files; unset, whitenoise
# serves the apps' static files (the admin's) straight from their packages.
STATIC_ROOT = env.optional("STATIC_ROOT")
WHITENOISE_USE_FINDERS = True
CODE_VERSION = env.str("CODE_VERSION", "dev")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "regions",
    "residency",
    "saas",
]

# Order matters. Planned places for the project's own middleware (each issue
# inserts its line here):
#   1. request context: request id, structured log context, latency metrics (observability)
#   2. SecurityMiddleware
#   3. routing state reset + causal tokens (regions routing)
#   4. sessions, common
#   5. residency: wrong-region redirects (needs the URL subject and session user)
#   6. rate limits
#   7. CSRF, authentication, messages, clickjacking
MIDDLEWARE = [
    # Outermost, so every response says which region served it (docs/decisions/0008).
    "regions.routing.middleware.ServedByRegionMiddleware",
    "regions.observability.middleware.RequestContextMiddleware",
    # A forged Host: 400 problem before anything reads it (regions/hosts.py).
    "regions.hosts.AllowedHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from gunicorn (whitenoise, see STATIC_ROOT).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "regions.routing.middleware.RoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "residency.middleware.ResidencyMiddleware",
    "saas.ratelimit.RateLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The admin templates of saas (region banner) take precedence over django.contrib.admin's.
        "DIRS": [BASE_DIR / "saas" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "saas.User"
# Sessions live in the region's cache (Redis in a deployment): no session table.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
CSRF_FAILURE_VIEW = "regions.problems.csrf_failure"

# Data classes of models we do not own (see regions/placement.py).
THIRD_PARTY_DATA_CLASSES = {
    # The region's own operator log: staff user id, object ids and reprs. Every
    # model's __str__ renders ids or slugs only (tests/residency/test_placement.py),
    # so no personal data of a subject enters it.
    "admin.logentry": "operational",
    "auth.group": "operational",
    "auth.permission": "operational",
    "contenttypes.contenttype": "operational",
}

PROBLEM_TYPE_BASE = env.str("PROBLEM_TYPE_BASE", "https://saas.example.com/problems/")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security (production tightens these through the environment) ------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", default=False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^internal/"]
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)

# --- Celery -------------------------------------------------------------------
# Broker and eager mode come from region_settings(); the rest is fixed policy.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic tasks: each package adds its entries in its own section below.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

# --- Logging ------------------------------------------------------------------
# JSON lines on stderr with region, request id, route and task context
# (regions/observability/logs.py); LOG_FORMAT=plain for reading at a terminal.
LOG_LEVEL = env.str("LOG_LEVEL", "INFO")
LOG_FORMAT = env.str("LOG_FORMAT", "json")
LOGGING = logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)

# --- API: DRF, OpenAPI, idempotency, rate limits (saas) ----------------------------
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "regions.problems.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "saas.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: other content types get 415, and no HTML (browsable API) is ever rendered.
    "DEFAULT_PARSER_CLASSES": ["saas.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": [],  # rate limits: saas.ratelimit.RateLimitMiddleware
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Multi-region SaaS API",
    "VERSION": "1.0.0",
    # DESCRIPTION: set by saas.api.schema.add_common_responses (API_DESCRIPTION).
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["saas.api.schema.public_endpoints_only"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "saas.api.schema.add_common_responses",
    ],
}
# Idempotency-Key (saas/idempotency.py). A claim's lease outlives the longest request.
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", 60)
IDEMPOTENCY_RETENTION_HOURS = env.int("IDEMPOTENCY_RETENTION_HOURS", 24)
IDEMPOTENCY_RETRY_AFTER_SECONDS = 1
# Rate limits (saas/ratelimit.py): "<requests>/<seconds>" per tier; GCRA in the region's Redis.
RATE_LIMIT_TIERS = {
    "anonymous": env.str("RATE_LIMIT_ANONYMOUS", "300/60"),
    "free": env.str("RATE_LIMIT_FREE", "600/60"),
    "standard": env.str("RATE_LIMIT_STANDARD", "1200/60"),
    "critical": env.str("RATE_LIMIT_CRITICAL", "6000/60"),
}
RATE_LIMIT_FAIL_OPEN_TIERS = env.list("RATE_LIMIT_FAIL_OPEN_TIERS", ["critical"])
RATE_LIMIT_SESSION_TIER = "standard"
RATE_LIMIT_PATH_PREFIXES = ["/api/"]
RATE_LIMIT_UNAVAILABLE_RETRY_AFTER = 5
# CIDRs of our own proxies/load balancers: X-Forwarded-For is believed only through them.
RATE_LIMIT_TRUSTED_PROXIES = env.list("RATE_LIMIT_TRUSTED_PROXIES")
ADMIN_LOGIN_RATE_PER_CLIENT = env.str("ADMIN_LOGIN_RATE_PER_CLIENT", "20/600")
ADMIN_LOGIN_RATE_PER_ACCOUNT = env.str("ADMIN_LOGIN_RATE_PER_ACCOUNT", "5/600")
CELERY_BEAT_SCHEDULE["saas.idempotency_records_purge"] = {
    "task": "saas.idempotency_records_purge",
    "schedule": 3600.0,
}

# --- Read/write routing (regions) ---------------------------------------------------
# How reads are routed: regions/README.md ("Read/write routing").
DATABASE_ROUTERS = ["regions.router.ReadWriteRouter"]
# A replica serves reads only while its replay lag is within both limits. The
# readiness check reports against the same limits.
ROUTING_MAX_REPLICA_LAG_BYTES = env.int("ROUTING_MAX_REPLICA_LAG_BYTES", 16 * 1024 * 1024)
ROUTING_MAX_REPLICA_LAG_SECONDS = env.float("ROUTING_MAX_REPLICA_LAG_SECONDS", 10.0)
# Background replica probe per process: mean interval (randomized by +-50 %,
# 0 = no background thread), and the connect/statement timeout of its queries.
ROUTING_PROBE_INTERVAL_SECONDS = env.float("ROUTING_PROBE_INTERVAL_SECONDS", 1.0)
ROUTING_PROBE_TIMEOUT_SECONDS = env.float("ROUTING_PROBE_TIMEOUT_SECONDS", 0.5)
ROUTING_PROBE_FIRST_WAIT_SECONDS = 1.0
# How long a replica's replay LSN read for a causal token is reused, process-wide.
ROUTING_REPLAY_LSN_CACHE_SECONDS = env.float("ROUTING_REPLAY_LSN_CACHE_SECONDS", 0.005)
# Requests per process the primary serves in place of unavailable replicas, and
# how long a request waits for a slot before it gets 503 read_capacity_exhausted.
ROUTING_DEGRADED_MAX_CONCURRENCY = env.int("ROUTING_DEGRADED_MAX_CONCURRENCY", 8)
ROUTING_DEGRADED_WAIT_SECONDS = env.float("ROUTING_DEGRADED_WAIT_SECONDS", 0.25)
# Retry-After (seconds) of the 503 primary_unavailable answered while the primary cannot be reached.
PRIMARY_UNAVAILABLE_RETRY_AFTER = env.int("PRIMARY_UNAVAILABLE_RETRY_AFTER", 2)

# --- Residency (residency) -------------------------------------------------------------
# Key of the pseudonymous login keys (HMAC of the normalized email). Shared by
# every region of the fleet; never logged.
DIRECTORY_SECRET = env.str("DIRECTORY_SECRET", "dev-directory-secret-change-me")
# Directory cache: in-process entries live this long at most (invalidation evicts
# them sooner); Redis keeps entries, and "no such subject", this long.
RESIDENCY_DIRECTORY_LOCAL_TTL = env.float("RESIDENCY_DIRECTORY_LOCAL_TTL", 60.0)
RESIDENCY_DIRECTORY_REDIS_TTL = env.float("RESIDENCY_DIRECTORY_REDIS_TTL", 600.0)
RESIDENCY_DIRECTORY_MISSING_TTL = env.float("RESIDENCY_DIRECTORY_MISSING_TTL", 60.0)
# Seconds a process keeps a peer's health (from the peer health cache) before asking Redis again.
RESIDENCY_PEER_HEALTH_LOCAL_TTL = env.float("RESIDENCY_PEER_HEALTH_LOCAL_TTL", 2.0)
# Retry-After (seconds) of the 503 answered when a subject's home region is down.
RESIDENCY_RETRY_AFTER_SECONDS = env.int("RESIDENCY_RETRY_AFTER_SECONDS", 30)
# Violation events older than this are deleted daily (keep longer than the audit period).
RESIDENCY_VIOLATION_RETENTION_DAYS = env.int("RESIDENCY_VIOLATION_RETENTION_DAYS", 400)
CELERY_BEAT_SCHEDULE["residency.violation_events_prune"] = {
    "task": "residency.violation_events_prune",
    "schedule": 24 * 3600.0,
}
# Paths the residency middleware never redirects (probes, signed inter-region calls, the admin).
RESIDENCY_EXEMPT_PATH_PREFIXES = ("/health/", "/internal/", "/admin/", "/static/")
# Endpoints whose subject is the login key of the posted email.
RESIDENCY_LOGIN_PATHS = ("/api/v1/auth/login", "/api/v1/auth/token")

# --- Residency audit (residency.audit) ---------------------------------------------
# Report signing keys (key_id:secret, first signs, all verify; the same in every
# region so fleet reports verify), log files the audit scans for personal data,
# and the bound on keys scanned in Redis.
AUDIT_SIGNING_KEYS = env.str("AUDIT_SIGNING_KEYS", "dev:dev-audit-signing-key-change-me")
AUDIT_LOG_PATHS = env.list("AUDIT_LOG_PATHS")
AUDIT_REDIS_SCAN_LIMIT = env.int("AUDIT_REDIS_SCAN_LIMIT", 200_000)
# Terraform configuration RES-08 reads when no plan is given (default: the repository's terraform/).
AUDIT_TERRAFORM_DIR = env.optional("AUDIT_TERRAFORM_DIR")

# --- Replication, inter-region calls, peer health (regions) ------------------------
# See regions/README.md, "Replication". Signing keys: the first signs, every one
# verifies (rotation: add the new key everywhere, then move it first, then drop
# the old one). Shared by every region of the fleet; never logged.
REPLICATION_SIGNING_KEYS = env.list("REPLICATION_SIGNING_KEYS", ["dev-replication-key-change-me"])
REPLICATION_SIGNATURE_MAX_AGE = env.int("REPLICATION_SIGNATURE_MAX_AGE", 60)
REPLICATION_BATCH_SIZE = env.int("REPLICATION_BATCH_SIZE", 500)
REPLICATION_SHARDS_PER_CLAIM = env.int("REPLICATION_SHARDS_PER_CLAIM", 16)
REPLICATION_MAX_ATTEMPTS = env.int("REPLICATION_MAX_ATTEMPTS", 8)
REPLICATION_BACKOFF_BASE = env.float("REPLICATION_BACKOFF_BASE", 0.5)
REPLICATION_BACKOFF_CAP = env.float("REPLICATION_BACKOFF_CAP", 60.0)
REPLICATION_BREAKER_THRESHOLD = env.int("REPLICATION_BREAKER_THRESHOLD", 5)
REPLICATION_BREAKER_OPEN_BASE = env.float("REPLICATION_BREAKER_OPEN_BASE", 1.0)
REPLICATION_BREAKER_OPEN_CAP = env.float("REPLICATION_BREAKER_OPEN_CAP", 30.0)
REPLICATION_HTTP_TIMEOUT = env.float("REPLICATION_HTTP_TIMEOUT", 10.0)
REPLICATION_DRAIN_BUDGET = env.float("REPLICATION_DRAIN_BUDGET", 20.0)
REPLICATION_INBOX_RETENTION_DAYS = env.int("REPLICATION_INBOX_RETENTION_DAYS", 14)
# Peers are polled on their readiness probe (docs: README, "Health, metrics and logs");
# a peer is healthy when it answers 200 (degraded included).
PEER_HEALTH_PATH = env.str("PEER_HEALTH_PATH", "/health/ready")
PEER_HEALTH_TIMEOUT = env.float("PEER_HEALTH_TIMEOUT", 5.0)
PEER_HEALTH_POLL_SECONDS = env.float("PEER_HEALTH_POLL_SECONDS", 10.0)
# Replication runs on its own queue: workers consume it with `-Q celery,replication`.
CELERY_TASK_ROUTES = {"replication.*": {"queue": "replication"}}
CELERY_BEAT_SCHEDULE |= {
    "replication-sweep": {"task": "replication.sweep", "schedule": 5.0},
    "replication-peer-health": {"task": "replication.poll_peer_health", "schedule": PEER_HEALTH_POLL_SECONDS},
    "replication-metrics": {"task": "replication.report_metrics", "schedule": 15.0},
    "replication-prune-inbox": {"task": "replication.prune_inbox", "schedule": 3600.0},
}

# --- Health, metrics, logs (regions) ---------------------------------------------------
# Budget of each readiness/startup check (connect + query); checks run concurrently.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", 2.0)
# A broker slower than this to connect makes readiness "degraded".
HEALTH_BROKER_SLOW_SECONDS = env.float("HEALTH_BROKER_SLOW_SECONDS", 0.5)
# /internal/metrics: every configured guard must pass (regions/observability/exposition.py).
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
METRICS_TOKEN = env.optional("METRICS_TOKEN")
# Celery workers serve the same endpoint from the parent process when a port is set.
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", 0)
CELERY_METRICS_ADDR = env.str("CELERY_METRICS_ADDR", "0.0.0.0")  # noqa: S104 - guarded by the allowlist/token
