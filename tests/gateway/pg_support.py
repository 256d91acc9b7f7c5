"""PostgreSQL for tests: a database created for the test session and dropped after it.

PostgreSQL is expected on 127.0.0.1:5432 as user root (``MM7GW_TEST_PG`` overrides the
admin URL). When it is not reachable the PostgreSQL tests skip with the reason, except
under CI (``CI=1``, set by ``.ci/run``), where they fail: CI must exercise that backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("MM7GW_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")


def url_of(database: str) -> str:
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{database}"


def require_postgres() -> None:
    """Skip (or, under CI, fail) when the server is not reachable."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {ADMIN_URL}: {str(exc).strip()[:200]}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI=1: the PostgreSQL backend must be tested)")
        pytest.skip(reason)


def create_database() -> str:
    name = f"mm7gw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def truncate_all(url: str) -> None:
    """Empty every table but ``schema_migrations``: each test starts from a clean store."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migrations'"
            ).fetchall()
        ]
        if names:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in names)
                )
            )


def session_database() -> Iterator[str]:
    """Body of a session fixture: yields the URL of a fresh database, drops it after."""
    require_postgres()
    name = create_database()
    try:
        yield url_of(name)
    finally:
        drop_database(name)
