"""A loopback TCP relay in front of one upstream, with a switch that cuts the link: for chaos drills.

Point a region's view of a peer (its registry's ``internal_url``) at the
relay's port and flip :attr:`Link.mode`:

- ``pass``: bytes flow both ways;
- ``drop_answers``: requests still reach the upstream, its answers are thrown
  away and the client waits until its own timeout (an asymmetric partition:
  the peer may have done the work, the caller cannot know);
- ``blackhole``: connections are accepted and nothing is forwarded either way.

A new mode applies to open connections too (the next chunk of bytes), so
keep-alive connections are cut as well. Stopping the upstream itself (e.g. its
web server) is the other fault: the relay then closes each client connection
at once, as a refused connection would end the request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["pass", "drop_answers", "blackhole"]


@dataclass
class Link:
    upstream_port: int
    host: str = "127.0.0.1"
    mode: Mode = "pass"
    port: int = 0
    """The relay's port; chosen by the kernel when 0."""
    dropped_chunks: int = 0
    """Chunks of answers thrown away in ``drop_answers`` mode."""
    _listener: socket.socket | None = field(default=None, repr=False)
    _sockets: set[socket.socket] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Link:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept, name=f"link-{self.port}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            _close(sock)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.mode == "blackhole":
            self._pump(client, None, forward=lambda: False)
            return
        try:
            upstream = socket.create_connection((self.host, self.upstream_port), timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        threading.Thread(
            target=self._pump,
            args=(upstream, client),
            # An upstream that closes after a lost answer must not tell the client either.
            kwargs={"forward": self._answers_flow, "close_sink": lambda: self.mode == "pass"},
            daemon=True,
        ).start()
        self._pump(client, upstream, forward=lambda: self.mode != "blackhole")

    def _answers_flow(self) -> bool:
        if self.mode == "pass":
            return True
        self.dropped_chunks += 1
        return False

    @staticmethod
    def _pump(
        source: socket.socket,
        sink: socket.socket | None,
        *,
        forward: Callable[[], bool],
        close_sink: Callable[[], bool] = lambda: True,
    ) -> None:
        """Copy ``source`` to ``sink`` while ``forward()`` says so, discard otherwise; at EOF close
        ``source``, and ``sink`` unless ``close_sink()`` says to leave it waiting."""
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if sink is not None and forward():
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(source)
            if sink is not None and close_sink():
                _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
