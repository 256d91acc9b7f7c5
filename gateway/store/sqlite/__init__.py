"""The embedded SQLite backend: ``SqliteStore`` and the SQL it runs."""

from gateway.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
