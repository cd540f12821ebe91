"""The few statements a sync job runs on every run, made cheap to repeat.

A stock job after a hundred product changes spends about as long in Django building and compiling
its handful of queries, and in PostgreSQL planning them, as in running them.
:class:`PreparedQuery` keeps a query written with the ORM (so its rules stay in one place) but
compiles it once, with stand-in values: each call finds the stand-ins' positions in the compiled
parameters and puts the real values there. :func:`prepared_cursor` runs such statements as
server-side prepared statements, planned once per connection; :func:`execute_ctes` runs a job's
named data-modifying CTEs as one statement.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Model


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A cursor whose statements PostgreSQL parses and plans once per connection.

    Django's PostgreSQL cursors bind parameters on the client, so the server plans every statement
    afresh; for the per-job statements here that costs as much as running them. This cursor binds
    on the server and prepares what it runs. It is still Django's cursor wrapper (transactions,
    query logging, ``execute_wrapper`` hooks), and only these cursors prepare: Django's own
    client-side cursors never do. Elsewhere, or with ``DATABASE_PREPARED_STATEMENTS`` off, it is a
    plain Django cursor.
    """
    if connection.vendor != "postgresql" or not getattr(settings, "DATABASE_PREPARED_STATEMENTS", False):
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    raw.prepare_threshold = 0  # prepare on first use; client-side cursors ignore it
    with connection.make_cursor(psycopg.Cursor(raw)) as cursor:
        yield _LoggedCursor(cursor)


class _LoggedCursor:
    """Adds what Django's debug cursor would: the statement in ``connection.queries`` (its own
    reading of a prepared statement's text comes back empty)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Any = None) -> Any:
        started = time.monotonic()
        try:
            return self._cursor.execute(sql, params)
        finally:
            if connection.queries_logged:
                connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class PreparedQuery:
    """A queryset built by ``build(**standins)``, compiled on first use, re-run with new values.

    Stand-ins must be values no real call passes and that the compiled parameters show unchanged
    (a list for ``= ANY``) or, for UUIDs, in the database's own form (PostgreSQL keeps the UUID,
    SQLite stores its hex). Values whose count changes the SQL text (an ``__in`` list) cannot be
    stand-ins: use an array with ``= ANY`` instead.
    """

    def __init__(self, build: Callable[..., Any], **standins: Any) -> None:
        self._build = build
        self._standins = standins
        self._compiled: dict[str, tuple[str, tuple[Any, ...], list[tuple[int, str, bool]], Any]] = {}
        self._lock = threading.Lock()

    def _statement(self, **values: Any) -> tuple[str, list[Any], Any]:
        vendor = connection.vendor
        compiled = self._compiled.get(vendor)
        if compiled is None:
            with self._lock:
                compiled = self._compile()
                self._compiled[vendor] = compiled
        sql, template, slots, compiler = compiled
        params = list(template)
        for index, name, as_hex in slots:
            value = values[name]
            params[index] = uuid.UUID(str(value)).hex if as_hex else value
        return sql, params, compiler

    def _compile(self) -> tuple[str, tuple[Any, ...], list[tuple[int, str, bool]], Any]:
        compiler = self._build(**self._standins).query.get_compiler(connection.alias)
        sql, params = compiler.as_sql()
        slots: list[tuple[int, str, bool]] = []
        for name, standin in self._standins.items():
            found = False
            for index, param in enumerate(params):
                if param == standin:
                    slots.append((index, name, False))
                    found = True
                elif isinstance(standin, uuid.UUID) and param == standin.hex:
                    slots.append((index, name, True))
                    found = True
            if not found:
                raise RuntimeError(f"The stand-in for {name!r} did not survive compilation.")
        return sql, tuple(params), slots, compiler

    def rows(self, **values: Any) -> list[tuple[Any, ...]]:
        """The raw rows (no field converters: meant for ids, numbers, text and dates)."""
        sql, params, _compiler = self._statement(**values)
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def instances(self, model: type[Model], **values: Any) -> list[Any]:
        """Model instances of a plain ``model.objects.filter(…)`` query, built the way Django's own
        iterator builds them (the fields' converters, decryption included, then ``from_db``)."""
        sql, params, compiler = self._statement(**values)
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        columns = [column for column, _sql, _alias in compiler.select]
        converters = compiler.get_converters(columns)
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        names = [column.target.attname for column in columns]
        return [model.from_db(connection.alias, names, row) for row in rows]


def execute_ctes(writes: list[tuple[str, list[Any]]]) -> None:
    """Run named data-modifying CTEs (``("name AS (UPDATE …)", params)``) as one statement."""
    if not writes:
        return
    with prepared_cursor() as cursor:
        cursor.execute(
            "WITH " + ", ".join(cte for cte, _params in writes) + " SELECT 1",
            [param for _cte, params in writes for param in params],
        )
