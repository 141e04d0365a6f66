"""Capture the lines the process's log formatter writes, formatted at emit time (context included)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from regions.observability.logs import JsonFormatter


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def json_lines() -> Iterator[list[dict[str, Any]]]:
    """``with json_lines() as lines:`` collects every root log record as the JSON object written."""
    handler = _Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    parsed: list[dict[str, Any]] = []
    try:
        yield parsed
    finally:
        root.removeHandler(handler)
        parsed.extend(json.loads(line) for line in handler.lines)
