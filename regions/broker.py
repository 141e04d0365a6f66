"""The Celery worker survives the loss of its Redis broker with tasks in flight.

kombu 5.7's Redis transport crashes the worker when the broker goes away
while the worker holds unacknowledged messages (our tasks are ``acks_late``,
so it nearly always does): the consumer closes the connection, the
connection closes its channel, and the channel's QoS tries to put the
unacknowledged messages back on the broker through a client it can no longer
build, because the transport has already forgotten its connection
(``AttributeError: 'NoneType' object has no attribute 'hostname'`` in
``Channel._connparams``). Celery logs "Unrecoverable error" and the worker
process exits, instead of reconnecting when the broker returns
(``docs/reliability.md``, ``broker_stopped``).

``install()`` guards that one path: when the channel has lost its connection,
the restore is skipped and logged. Nothing is lost by skipping it: the
messages stay in the broker's unacked index, and the transport's
``restore_visible`` gives them back after ``visibility_timeout``; should the
broker itself have lost them (a restart without persistence), the outbox rows
are the durable record and the beat sweep asks for a drain again within 5 s.
Every other restore runs unchanged.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from kombu.transport import redis as kombu_redis

logger = logging.getLogger(__name__)


def install() -> None:
    """Guard ``kombu.transport.redis.QoS.restore_unacked`` (idempotent)."""
    qos: Any = kombu_redis.QoS
    original = qos.restore_unacked
    if getattr(original, "_regions_guarded", False):
        return

    @functools.wraps(original)
    def restore_unacked(self: Any, client: Any = None) -> Any:
        transport = getattr(self.channel, "connection", None)
        if client is None and getattr(transport, "client", None) is None:
            logger.warning(
                "broker connection lost with %d unacknowledged message(s): left for the "
                "visibility timeout to restore",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return original(self, client)

    restore_unacked._regions_guarded = True  # type: ignore[attr-defined]
    qos.restore_unacked = restore_unacked
