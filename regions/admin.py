"""Admin of the regions package (each topic registers its own models)."""

from regions.replication import admin as replication_admin  # noqa: F401
