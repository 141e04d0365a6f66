"""Read/write routing state, causal tokens, replica health. See regions/README.md.

Public API for other packages:

- ``primary()``: a context manager/decorator that sends the body's reads to the primary.
- ``note_write()``: record a write made with raw SQL (the ORM's writes are seen by the router).
- ``unit_of_work(kind)``: run code as one unit of work (management commands, scripts, tests).
- ``regions.routing.selectors.replica_statuses()``: the probe's view of each replica.
"""

from regions.routing.state import note_write, primary, unit_of_work

__all__ = ["note_write", "primary", "unit_of_work"]
