"""The REST API under ``/api/v1/`` (DRF): views parse, call a service or selector, respond."""
