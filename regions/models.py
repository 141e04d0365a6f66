"""Models of the regions package (each topic keeps its own module)."""

from regions.replication.models import DeadLetter, InboxEvent, OutboxEvent

__all__ = ["DeadLetter", "InboxEvent", "OutboxEvent"]
