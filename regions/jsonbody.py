"""JSON request bodies parsed so that hostile input is bad input, never a crash.

``json.loads`` raises ``RecursionError`` (not ``ValueError``) for a body
nested deeper than the interpreter's recursion limit: 100,000 ``[`` fit in a
100 kB body, well under the size limit, and would otherwise end as a 500.
Every place that parses a request body uses ``json_loads`` (or the API's
``saas.api.parsers.JSONParser``) and treats ``ValueError`` as malformed input.
"""

from __future__ import annotations

import json
from typing import Any


class JSONTooDeep(ValueError):
    """The body nests arrays or objects deeper than we parse."""


def json_loads(raw: bytes | str) -> Any:
    """``json.loads`` that raises ``ValueError`` for every bad body, too-deep nesting included."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise JSONTooDeep("The JSON body is nested too deeply.") from None
