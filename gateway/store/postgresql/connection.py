"""A pooled psycopg connection dressed as the DB-API connection the SQL modules use.

The SQL of ``gateway/store/sqlite/`` is written in the subset SQLite and PostgreSQL
share, with ``?`` placeholders; this adapter turns them into psycopg's ``%s`` and binds
on the client (``psycopg.ClientCursor``), so that untyped parameters (``? IS NULL``,
``'%' || ? || '%'``) mean what they mean in SQLite instead of failing PostgreSQL's
parameter type inference. Everything else a module does with a connection is
``execute``/``executemany`` and, on the cursor, ``fetchone``/``fetchall``/iteration/
``rowcount``, which psycopg's cursors have (``tests/gateway/test_store_contract.py``
runs every operation on both backends).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeAlias, cast

import psycopg

#: A pooled connection (tuple rows, client-side binding).
RawConn: TypeAlias = psycopg.Connection[tuple[Any, ...]]


@lru_cache(maxsize=1024)
def translate(statement: str) -> str:
    """``?`` placeholders to ``%s`` (and a literal ``%`` to ``%%``)."""
    return statement.replace("%", "%%").replace("?", "%s")


def _params(params: Sequence[Any]) -> list[Any]:
    # The schemas keep flags as integers (as SQLite does): a Python bool would be a
    # PostgreSQL boolean, which an integer column refuses.
    return [int(p) if isinstance(p, bool) else p for p in params]


class PgConnection:
    """``execute``/``executemany`` with ``?`` placeholders over one psycopg connection."""

    __slots__ = ("raw",)

    def __init__(self, raw: RawConn) -> None:
        self.raw = raw

    def execute(self, statement: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cur = psycopg.ClientCursor(self.raw)
        if params:
            cur.execute(translate(statement), _params(params))
        else:
            cur.execute(statement)  # no parameters: psycopg leaves a lone % alone
        return cur

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = psycopg.ClientCursor(self.raw)
        batch = [_params(row) for row in rows]
        if batch:
            cur.executemany(translate(statement), batch)
        return cur

    def as_sql_connection(self) -> sqlite3.Connection:
        """This adapter, typed as what the shared SQL modules are annotated with (they
        use only the calls above; see the module docstring)."""
        return cast("sqlite3.Connection", self)


def lock(conn: sqlite3.Connection, key: str) -> None:
    """A transaction-scoped advisory lock on ``key`` (released at commit or rollback)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
