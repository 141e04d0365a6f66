"""``regions.devstack.netfault.Link``: a relay that passes, loses answers, or loses everything."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from regions.devstack.netfault import Link


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b"pong"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def link() -> Iterator[Link]:
    _Counting.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relay = Link(upstream_port=int(server.server_address[1])).start()
    try:
        yield relay
    finally:
        relay.stop()
        server.shutdown()
        server.server_close()


def test_passes_both_ways(link: Link) -> None:
    answer = httpx.get(f"{link.url}/ping", timeout=5)
    assert answer.status_code == 200 and answer.text == "pong"
    assert _Counting.hits == ["/ping"] and link.dropped_chunks == 0


def test_drop_answers_lets_the_request_through_and_loses_the_answer(link: Link) -> None:
    link.mode = "drop_answers"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{link.url}/work", timeout=0.5)
    assert _Counting.hits == ["/work"] and link.dropped_chunks > 0


def test_blackhole_loses_the_request_too(link: Link) -> None:
    link.mode = "blackhole"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{link.url}/lost", timeout=0.5)
    assert _Counting.hits == []


def test_a_new_mode_applies_to_an_open_keep_alive_connection(link: Link) -> None:
    with httpx.Client(base_url=link.url, timeout=0.5) as client:
        assert client.get("/first").status_code == 200
        link.mode = "drop_answers"
        with pytest.raises(httpx.ReadTimeout):
            client.get("/second")
    assert _Counting.hits == ["/first", "/second"]


def test_an_upstream_that_is_down_ends_the_connection_at_once(link: Link) -> None:
    link.upstream_port = 1  # nothing listens there
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{link.url}/down", timeout=5)
