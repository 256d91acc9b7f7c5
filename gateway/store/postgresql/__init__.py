"""The PostgreSQL backend: ``PostgresStore`` (and its media store) and the SQL it runs."""

from gateway.store.postgresql.media import PostgresMediaStore
from gateway.store.postgresql.store import PostgresStore

__all__ = ["PostgresMediaStore", "PostgresStore"]
