"""Choose the store backend from the configuration's plain values (``app.py`` and
``cli/migrate.py`` call this, so neither names a backend's internals): SQLite under
``data_dir`` by default, PostgreSQL when a URL is given. The PostgreSQL backend also
keeps the media, because every instance must read what any of them stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.store.interface import Store
from gateway.store.postgresql import PostgresStore
from gateway.store.postgresql.media import PostgresMediaStore
from gateway.store.sqlite import SqliteStore


@dataclass(frozen=True, slots=True)
class Backend:
    store: Store
    #: Media kept by the store itself; None: the caller keeps media in files.
    media: PostgresMediaStore | None
    #: For logs: ``sqlite`` or ``postgresql``.
    kind: str
    #: The schema version once the store is open (migrations run in ``open``).
    schema_version: int = 0


def build_backend(
    url: str | None,
    *,
    sqlite_path: Path,
    pool_size: int = 10,
    instance_id: str = "gateway",
    lease_seconds: float = 30.0,
) -> Backend:
    """The store for ``url`` (None: SQLite at ``sqlite_path``); opened later by its owner."""
    if url is None:
        return Backend(SqliteStore(sqlite_path), None, "sqlite")
    store = PostgresStore(
        url, pool_size=pool_size, instance_id=instance_id, lease_seconds=lease_seconds
    )
    return Backend(store, store.media(), "postgresql")
