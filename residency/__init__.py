"""Residency: zone policy, the global directory, redirects, the write guard and the audit."""
