"""A pooled psycopg connection dressed as the DB-API connection the SQL modules use.

The SQL of ``gateway/store/sqlite/`` is written in the subset SQLite and PostgreSQL
share, with ``?`` placeholders; this adapter turns them into psycopg's ``%s``. Parameters
are bound on the server (prepared after a few uses on a connection: the server parses
and plans each statement once, and the client does not quote values), except in the few
statements whose parameters PostgreSQL cannot type (``? IS NULL``, ``'%' || ? || '%'``):
those are bound on the client (``psycopg.ClientCursor``), so they mean what they mean in
SQLite. Everything else a module does with a connection is
``execute``/``executemany`` and, on the cursor, ``fetchone``/``fetchall``/iteration/
``rowcount``, which psycopg's cursors have (``tests/gateway/test_store_contract.py``
runs every operation on both backends).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeAlias, cast

import psycopg

#: A pooled connection (tuple rows, client-side binding).
RawConn: TypeAlias = psycopg.Connection[tuple[Any, ...]]


#: A parameter whose type only its value tells (see the module docstring).
_UNTYPED = re.compile(r"\?\s+IS\s+NULL|\|\|\s*\?|\?\s*\|\|", re.IGNORECASE)


@lru_cache(maxsize=1024)
def translate(statement: str) -> str:
    """``?`` placeholders to ``%s`` (and a literal ``%`` to ``%%``)."""
    return statement.replace("%", "%%").replace("?", "%s")


@lru_cache(maxsize=1024)
def binds_on_client(statement: str) -> bool:
    """Whether ``statement`` has a parameter the server could not type."""
    return _UNTYPED.search(statement) is not None


def _params(params: Sequence[Any]) -> list[Any]:
    # The schemas keep flags as integers (as SQLite does): a Python bool would be a
    # PostgreSQL boolean, which an integer column refuses.
    return [int(p) if isinstance(p, bool) else p for p in params]


class PgConnection:
    """``execute``/``executemany`` with ``?`` placeholders over one psycopg connection."""

    __slots__ = ("raw",)

    def __init__(self, raw: RawConn) -> None:
        self.raw = raw

    def _cursor(self, statement: str) -> psycopg.Cursor[Any]:
        if binds_on_client(statement):
            return psycopg.ClientCursor(self.raw)
        return self.raw.cursor()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cur = self._cursor(statement)
        if params:
            cur.execute(translate(statement), _params(params))
        else:
            cur.execute(statement)  # no parameters: psycopg leaves a lone % alone
        return cur

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self._cursor(statement)
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
