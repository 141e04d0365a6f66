"""Health probes: ``/health/live``, ``/health/ready``, ``/health/startup`` (see regions/README.md)."""
