"""gunicorn's own refusals as RFC 9457 problems, and without the client's IP in the log.

A request that is not valid HTTP/1.1 (a control character in a header, a
header field over 8190 bytes, a malformed request line) never reaches Django:
gunicorn's worker refuses it itself, with an HTML page and the log line
"Invalid request from ip=<client IP>: ...". ``install()``, called by
``gunicorn.conf.py`` in the master before it forks, makes both match the rest
of the product:

- the answer is ``application/problem+json`` with gunicorn's status (400, 414,
  431, ...) and a stable ``code``; it does not echo the offending bytes;
- the log line keeps the reason and drops the IP address (personal data;
  the access line, written by ``regions.observability``, never names it).

gunicorn calls ``gunicorn.util.write_error(sock, status, reason, message)``
from ``Worker.handle_error`` for every worker class (sync and gthread alike),
so replacing that one function covers them all.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from gunicorn import util

CODES = {
    400: "malformed_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}
DETAILS = {
    400: "The request is not valid HTTP/1.1 (request line, header name or value, chunked body).",
    414: "The request line is longer than the server accepts.",
    431: "A header field, or the header section, is larger than the server accepts.",
    501: "The transfer coding is not supported.",
}

_CLIENT_ADDRESS = re.compile(r"Invalid request from ip=\S*?: ")


def problem_bytes(status: int, reason: str) -> bytes:
    """The whole HTTP/1.1 response: status line, headers and the problem body."""
    from regions.problems import PROBLEM_CONTENT_TYPE, problem_body  # needs settings: the app is loaded

    code = CODES.get(status, "malformed_request" if 400 <= status < 500 else "internal_error")
    body = problem_body(status=status, code=code, title=reason or None, detail=DETAILS.get(status))
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + payload


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error``'s replacement (``mesg``, which may echo the request, is dropped)."""
    util.write_nonblock(sock, problem_bytes(int(status_int), reason))


class ClientAddressFilter(logging.Filter):
    """Drops the client's IP address from gunicorn's "Invalid request from ip=..." lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Invalid request from ip=" in message:
            record.msg, record.args = _CLIENT_ADDRESS.sub("Invalid request: ", message), None
        return True


def install() -> None:
    util.write_error = write_problem
