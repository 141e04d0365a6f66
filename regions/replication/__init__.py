"""Cross-region replication: transactional outbox, signed apply endpoint, drain on Celery.

See ``regions/README.md`` ("Replication") for the data flow.
"""
