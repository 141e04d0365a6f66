"""The Prometheus endpoint (``/internal/metrics``): access guard and collection.

Access: every configured guard must pass.

- ``METRICS_ALLOWED_NETWORKS`` (CIDRs, default loopback only): the peer address
  (``REMOTE_ADDR``, never a forwarded header) must be inside one of them.
  ``0.0.0.0/0,::/0`` turns the allowlist off.
- ``METRICS_TOKEN`` (optional, 32+ characters): ``Authorization: Bearer <token>``
  must match, compared in constant time.

Collection: in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, see
``regions.observability.multiprocess``) the samples of every gunicorn worker or
Celery child are merged from their files; otherwise this process's registry
(with the process and GC collectors) is read. Either way every sample that
lacks a ``region`` label gets this region's, so every series has one.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from regions.observability import multiprocess as mp

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
METRICS_PATH = "/internal/metrics"


@lru_cache(maxsize=16)
def parse_networks(raw: tuple[str, ...]) -> tuple[Network, ...]:
    """CIDRs of ``METRICS_ALLOWED_NETWORKS``; raises ``ValueError`` on a malformed one."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in raw)


def access_allowed(*, remote_addr: str, authorization: str | None) -> bool:
    """Whether a scrape from ``remote_addr`` with this ``Authorization`` header may read metrics."""
    networks = parse_networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    token: str | None = settings.METRICS_TOKEN
    if not networks and not token:
        return False  # nothing configured: closed (system check regions.W070 says so)
    if networks:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return False
        if not any(address in network for network in networks):
            return False
    if token:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            return False
    return True


class RegionLabelled(Collector):
    """Adds ``region`` to every sample of ``inner`` that has none (process, GC, library metrics)."""

    def __init__(self, inner: Collector, *, region: str) -> None:
        self._inner = inner
        self._region = region

    def collect(self) -> Iterator[Metric]:
        for family in self._inner.collect():
            family.samples = [
                sample
                if "region" in sample.labels
                else sample._replace(labels={**sample.labels, "region": self._region})
                for sample in family.samples
            ]
            yield family


def exposition() -> bytes:
    """The metrics of this process (or of every process sharing the multiprocess directory), as text."""
    registry = CollectorRegistry(auto_describe=False)
    if mp.enabled():
        source = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        registry.register(RegionLabelled(source, region=settings.REGION))
    else:
        registry.register(RegionLabelled(REGISTRY, region=settings.REGION))
    return generate_latest(registry)


def wsgi_metrics_app(environ: dict[str, object], start_response: StartResponse) -> Iterable[bytes]:
    """The same endpoint for processes without Django's URLconf (the Celery worker's parent)."""
    if environ.get("PATH_INFO") != METRICS_PATH:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    authorization = environ.get("HTTP_AUTHORIZATION")
    if not access_allowed(
        remote_addr=str(environ.get("REMOTE_ADDR", "")),
        authorization=authorization if isinstance(authorization, str) else None,
    ):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"forbidden\n"]
    body = exposition()
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
    return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log line with the scraper's address."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_metrics(*, addr: str, port: int) -> WSGIServer:
    """Serve ``/internal/metrics`` from a daemon thread (the Celery worker's parent process)."""
    server = make_server(
        addr, port, wsgi_metrics_app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
