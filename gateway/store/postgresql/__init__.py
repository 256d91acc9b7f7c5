"""The PostgreSQL backend: ``PostgresStore``, shared by every instance of a gateway."""

from gateway.store.postgresql.store import PostgresStore

__all__ = ["PostgresStore"]
