"""Directory lookups cached in process (L1) and in the region's Redis (L2).

The hot path never leaves the region: an L1 hit is a dict read; a miss reads
the region's Redis, then the region's database. Nothing here calls a peer.

Correctness rules:

- **Versions decide.** Redis holds ``home|version|origin``. Every write to it
  goes through one Lua script that keeps the newer of the stored and the
  offered value (the directory's own ordering: higher version, then the smaller
  origin region). A reader that read an old row cannot overwrite a newer value
  that a writer published after its commit.
- **Writers publish after commit.** ``directory_cache_publish`` (called by the
  directory services through ``transaction.on_commit``) stores the committed
  value in Redis and publishes the key on the region's invalidation channel.
- **Every process evicts.** A daemon thread per process subscribes to the
  channel and drops the key from L1. While it is not subscribed (start-up,
  Redis down) L1 is not used at all, and it is cleared when the subscription
  (re)starts, so no missed message leaves a stale entry behind. A generation
  counter stops a lookup that raced with an eviction from storing its value.
- **Uncommitted data is never cached.** A lookup made while the primary
  connection is inside an atomic block reads the database and caches nothing.
- **Embedded mode (no Redis):** L1 only, with its TTL as the bound for other
  processes; writes in this process evict at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, transaction
from django.dispatch import receiver

from regions.redis import region_redis

logger = logging.getLogger(__name__)

_MISSING = ""
"""How Redis and L1 record "no entry" (version 0), so unknown subjects are cached too."""

# KEYS[1]: entry key. ARGV: value, version, origin, ttl. Returns the value kept.
_KEEP_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local a = string.find(cur, '|', 1, true)
  local b = string.find(cur, '|', a + 1, true)
  local cv = tonumber(string.sub(cur, a + 1, b - 1))
  local co = string.sub(cur, b + 1)
  local v = tonumber(ARGV[2])
  if v < cv or (v == cv and ARGV[3] >= co) then
    return cur
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[4]))
return ARGV[1]
"""


@dataclass(frozen=True, slots=True)
class CachedEntry:
    home_region: str | None
    version: int
    origin_region: str

    def encode(self) -> str:
        return f"{self.home_region or _MISSING}|{self.version}|{self.origin_region}"

    @classmethod
    def decode(cls, raw: str | bytes) -> CachedEntry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        home, version, origin = text.split("|", 2)
        return cls(home or None, int(version), origin)


ABSENT = CachedEntry(None, 0, "")


def _ttl(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


NAMESPACE = "residency:dir:"
"""Redis keys ``<region>:residency:dir:...`` hold directory data (replicated everywhere by design)."""


class DirectoryCache:
    """The two cache levels of one region (one instance per region and Redis URL per process)."""

    def __init__(self, *, region: str, redis_url: str | None) -> None:
        self.region = region
        self.redis_url = redis_url
        self.prefix = f"{region}:{NAMESPACE}"
        self.channel = f"{region}:residency:dir:changed"
        self._local: dict[str, tuple[float, CachedEntry]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._redis_down_until = 0.0
        self._script: Any = None

    # --- keys -------------------------------------------------------------------
    @staticmethod
    def entry_id(kind: str, key: str) -> str:
        return f"{kind}:{key}"

    # --- L1 ---------------------------------------------------------------------
    def local_enabled(self) -> bool:
        if self.redis_url is None:
            return True
        self._ensure_subscriber()
        return self._subscribed.is_set()

    def local_get(self, entry_id: str) -> CachedEntry | None:
        found = self._local.get(entry_id)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def local_put(self, entry_id: str, entry: CachedEntry, *, generation: int) -> None:
        ttl = _ttl("RESIDENCY_DIRECTORY_LOCAL_TTL", 60.0)
        if ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return  # an eviction happened since the lookup began: its value may be stale
            if len(self._local) >= int(getattr(settings, "RESIDENCY_DIRECTORY_LOCAL_SIZE", 50_000)):
                self._local.clear()
            self._local[entry_id] = (time.monotonic() + ttl, entry)

    def evict(self, entry_id: str | None = None) -> None:
        """Drop one entry (or all) from L1."""
        with self._lock:
            self._generation += 1
            if entry_id is None:
                self._local.clear()
            else:
                self._local.pop(entry_id, None)

    @property
    def generation(self) -> int:
        return self._generation

    # --- L2 (Redis) ---------------------------------------------------------------
    def _client(self) -> redis.Redis | None:
        if self.redis_url is None or time.monotonic() < self._redis_down_until:
            return None
        return region_redis()

    def _redis_failed(self, exc: Exception) -> None:
        # Back off briefly: a down Redis must not add a connect timeout to every request.
        self._redis_down_until = time.monotonic() + _ttl("RESIDENCY_REDIS_BACKOFF_SECONDS", 5.0)
        logger.warning("residency: directory cache Redis unavailable (%s)", type(exc).__name__)

    def remote_get(self, entry_id: str) -> CachedEntry | None:
        client = self._client()
        if client is None:
            return None
        try:
            raw = client.get(self.prefix + entry_id)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return None
        return CachedEntry.decode(raw) if raw is not None else None

    def remote_keep_newer(self, entry_id: str, entry: CachedEntry) -> CachedEntry:
        """Offer ``entry`` to Redis; returns the value Redis keeps (``entry`` without Redis)."""
        client = self._client()
        if client is None:
            return entry
        try:
            kept = self._keep_newer(client, entry_id, entry)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return entry
        return CachedEntry.decode(kept)

    def _keep_newer(self, client: Any, entry_id: str, entry: CachedEntry) -> Any:
        """Run the keep-newer script on ``client`` (a Redis client or a pipeline)."""
        if entry.home_region is None:
            ttl = _ttl("RESIDENCY_DIRECTORY_MISSING_TTL", 60.0)
        else:
            ttl = _ttl("RESIDENCY_DIRECTORY_REDIS_TTL", 600.0)
        if self._script is None:
            self._script = client.register_script(_KEEP_NEWER)
        return self._script(
            keys=[self.prefix + entry_id],
            args=[entry.encode(), entry.version, entry.origin_region, max(1, int(ttl))],
            client=client,
        )

    def publish_many(self, entries: list[tuple[str, CachedEntry]]) -> None:
        """``remote_keep_newer`` + ``publish`` for many entries in one pipelined round trip."""
        client = self._client()
        if client is None or not entries:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for entry_id, entry in entries:
                self._keep_newer(pipe, entry_id, entry)
                pipe.publish(self.channel, entry_id)
            pipe.execute()
        except redis.RedisError as exc:
            self._redis_failed(exc)

    def publish(self, entry_id: str) -> None:
        client = self._client()
        if client is None:
            return
        try:
            client.publish(self.channel, entry_id)
        except redis.RedisError as exc:
            self._redis_failed(exc)

    # --- invalidation subscriber -------------------------------------------------
    def _ensure_subscriber(self) -> None:
        if self._pid != os.getpid():
            # Forked (gunicorn --preload): threads do not survive a fork; start afresh.
            self._pid = os.getpid()
            self._thread = None
            self._subscribed.clear()
            self.evict()
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._listen, name=f"residency-dir-invalidator-{self.region}", daemon=True
            )
            self._thread.start()

    def _listen(self) -> None:
        if self.redis_url is None:
            return
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = None
            try:
                client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=5
                )
                pubsub = cast(Any, client).pubsub(ignore_subscribe_messages=False)
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Anything cached before this point may have missed an eviction.
                        self.evict()
                        self._subscribed.set()
                        backoff = 0.1
                    elif message["type"] == "message":
                        data = message["data"]
                        self.evict(data.decode() if isinstance(data, bytes) else str(data))
            except Exception as exc:
                if self._subscribed.is_set():
                    logger.warning(
                        "residency: directory invalidation lost (%s: %s); L1 off", type(exc).__name__, exc
                    )
                self._subscribed.clear()
                self.evict()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: S110 - closing a broken connection
                        pass
        self._subscribed.clear()

    def stop(self) -> None:
        self._stop.set()
        self._subscribed.clear()


_caches: dict[tuple[str, str | None], DirectoryCache] = {}
_caches_lock = threading.Lock()


def directory_cache() -> DirectoryCache:
    """The cache of this process's current region."""
    region: str = settings.REGION
    redis_url: str | None = settings.REDIS_URL
    found = _caches.get((region, redis_url))
    if found is not None:
        return found
    with _caches_lock:
        found = _caches.get((region, redis_url))
        if found is None:
            found = _caches[(region, redis_url)] = DirectoryCache(region=region, redis_url=redis_url)
        return found


def _in_unit_of_work() -> bool:
    """Whether the primary connection is inside an atomic block (values may be uncommitted)."""
    return bool(transaction.get_connection(DEFAULT_DB_ALIAS).in_atomic_block)


def cached_lookup(*, kind: str, key: str, load: Any) -> str | None:
    """The home region of ``(kind, key)``: L1, then Redis, then ``load()`` (the database).

    ``load`` returns a ``CachedEntry`` read from the region's database.
    """
    if _in_unit_of_work():
        entry: CachedEntry = load()
        return entry.home_region
    cache = directory_cache()
    entry_id = cache.entry_id(kind, key)
    use_local = cache.local_enabled()
    if use_local:
        hit = cache.local_get(entry_id)
        if hit is not None:
            return hit.home_region
    generation = cache.generation
    found = cache.remote_get(entry_id)
    if found is None:
        found = cache.remote_keep_newer(entry_id, load())
    if use_local:
        cache.local_put(entry_id, found, generation=generation)
    return found.home_region


def directory_cache_publish(*, kind: str, key: str, entry: CachedEntry) -> None:
    """After a directory write commits: store the new value in Redis and evict it everywhere."""
    cache = directory_cache()
    entry_id = cache.entry_id(kind, key)
    cache.remote_keep_newer(entry_id, entry)
    cache.evict(entry_id)
    cache.publish(entry_id)


def directory_cache_publish_many(*, entries: list[tuple[str, str, CachedEntry]]) -> None:
    """``directory_cache_publish`` for a batch of ``(kind, key, entry)`` (replication applies batches)."""
    cache = directory_cache()
    ids = [(cache.entry_id(kind, key), entry) for kind, key, entry in entries]
    cache.publish_many(ids)
    for entry_id, _ in ids:
        cache.evict(entry_id)


def directory_cache_clear() -> None:
    """Forget every cached lookup of this process's region, in L1 and in Redis (operators, tests)."""
    cache = directory_cache()
    cache.evict()
    client = cache._client()
    if client is None:
        return
    try:
        for name in client.scan_iter(match=f"{cache.prefix}*", count=1000):
            client.delete(name)
    except redis.RedisError as exc:
        cache._redis_failed(exc)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    # Tests act as other regions; TTL changes apply to new entries only, so start clean.
    if setting.startswith("RESIDENCY_DIRECTORY"):
        for cache in list(_caches.values()):
            cache.evict()
