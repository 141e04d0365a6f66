"""Read/write routing state, causal tokens, replica health. See regions/README.md.

Public API for other packages:

- ``primary()``: a context manager/decorator that sends the body's reads to the primary.
- ``note_write()``: record a write made with raw SQL (the ORM's writes are seen by the router).
- ``unit_of_work(kind)``: run code as one unit of work (management commands, scripts, tests).
- ``best_effort_write(what)``: a bookkeeping write that is skipped, not fatal, while the primary
  cannot be reached (``regions.routing.failures``).
- ``regions.routing.selectors.replica_statuses()``: the probe's view of each replica.
"""

from regions.routing.failures import best_effort_write
from regions.routing.state import note_write, primary, unit_of_work

__all__ = ["best_effort_write", "note_write", "primary", "unit_of_work"]
