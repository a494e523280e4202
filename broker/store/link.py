"""A unit of work's hold on the database: one connection in one transaction, the
intake's statements run on the driver's own cursor, and an ORM session only when the
work asks for one.

Why not a Session for everything: at feed speed SQLAlchemy's execution path (execution
context, result object, event dispatch, a session's transaction bookkeeping) costs
several times the SQL itself; an ADT^A08 for a patient the broker does not hold is
three statements and a commit, and spent most of its time there (issue #17). The
statements are still written in SQLAlchemy Core, compiled once per dialect: the SQL
and the type conversions (dates on SQLite, enums, JSON columns) are SQLAlchemy's, only
the per-call machinery is left out.

The ORM session, when one is made, joins the connection's transaction and never ends
it: the link commits, rolls back and takes savepoints, so statements run on the
cursor and the session's flushes are always in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import BindParameter, Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None

#: A parameter the caller gives (not a constant of the statement, such as `value + 1`'s 1).
_GIVEN = object()


@dataclass(frozen=True)
class _Prepared:
    """A statement as the driver takes it: its SQL, where each parameter comes from (a
    value given by name, or a constant of the statement), which parameters and returned
    columns need a conversion, and at which position."""

    sql: str
    positional: bool
    names: tuple[str, ...]
    binds: tuple[tuple[int, Callable[[Any], Any]], ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: The parameters' values in order: each given by name, or the statement's constant.
    pick: Callable[[Mapping[str, Any]], Sequence[Any]]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        given = self.pick(values)
        if self.binds:
            given = list(given)
            for position, convert in self.binds:
                given[position] = convert(given[position])
        return given if self.positional else dict(zip(self.names, given, strict=True))

    def row(self, row: Sequence[Any]) -> Sequence[Any]:
        if not self.results:
            return row
        converted = list(row)
        for position, convert in self.results:
            converted[position] = convert(converted[position])
        return tuple(converted)


def _picker(names: Sequence[str], constants: Sequence[Any]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """`values[name]` for each parameter given by name, its constant for the others.
    Taken in C when two or more are given and none is a constant (most statements):
    this runs for every statement of every HL7 message, inside the writers' turn
    (issue #17)."""
    if len(names) > 1 and all(c is _GIVEN for c in constants):
        return itemgetter(*names)
    return lambda values: [values[n] if c is _GIVEN else c for n, c in zip(names, constants, strict=True)]


def _conversions(processors: Iterable[Processor]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """Only the positions that need one: most columns are text the driver gives as is."""
    return tuple((position, p) for position, p in enumerate(processors) if p is not None)


class Statement:
    """A Core statement compiled once for each dialect it runs on; every parameter is
    a named `bindparam`, given by name when the statement runs."""

    def __init__(self, clause: ClauseElement) -> None:
        self._clause = clause
        self._prepared: dict[str, _Prepared] = {}

    def prepared(self, dialect: Dialect) -> _Prepared:
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            prepared = self._prepared[dialect.name] = _prepare(self._clause, dialect)
        return prepared


def _prepare(clause: ClauseElement, dialect: Dialect) -> _Prepared:
    compiled = cast(SQLCompiler, clause.compile(dialect=dialect))
    names = compiled.positiontup if compiled.positional and compiled.positiontup is not None else list(compiled.binds)
    parameters: list[BindParameter[Any]] = [compiled.binds[name] for name in names]
    columns = getattr(clause, "exported_columns", ())
    constants = tuple(_GIVEN if p.required else p.value for p in parameters)
    return _Prepared(
        compiled.string,
        compiled.positional,
        tuple(names),
        _conversions(p.type.dialect_impl(dialect).bind_processor(dialect) for p in parameters),
        _conversions(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns),
        _picker(names, constants),
    )


class Link:
    """Opened per unit of work, never shared by threads; `close` gives the connection
    back (rolling back what was not committed)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._dialect = connection.dialect
        connection.begin()
        self._cursor = connection.connection.cursor()
        self._session: Session | None = None
        #: The engine's cursor listeners as the unit of work began (most often none); read
        #: off the engine, not the connection, whose joined view costs more to build than
        #: the BEGIN (no listener is ever put on the link's own connection).
        dispatch = connection.engine.dispatch
        self._before = tuple(dispatch.before_cursor_execute)
        self._after = tuple(dispatch.after_cursor_execute)

    @property
    def dialect(self) -> str:
        return self._dialect.name

    @property
    def session(self) -> Session:
        """The ORM's view of this transaction, made at the first ORM read or write."""
        if self._session is None:
            self._session = Session(
                bind=self._connection, join_transaction_mode="rollback_only", expire_on_commit=False
            )
        return self._session

    def rows(self, statement: Statement, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """What `statement` returns, converted; the session's pending changes written first."""
        prepared = self._run(statement, values)
        return [prepared.row(row) for row in self._cursor.fetchall()]

    def first(self, statement: Statement, values: Mapping[str, Any]) -> Sequence[Any] | None:
        rows = self.rows(statement, values)
        return rows[0] if rows else None

    def scalar(self, statement: Statement, values: Mapping[str, Any]) -> Any:
        """The one value a RETURNING or single-row statement gives."""
        (row,) = self.rows(statement, values)
        return row[0]

    def run(self, statement: Statement, values: Mapping[str, Any]) -> None:
        self._run(statement, values)

    def run_many(self, statement: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        prepared = statement.prepared(self._dialect)
        self.flush()
        self._execute(prepared.sql, [prepared.parameters(row) for row in rows], many=True)

    def _run(self, statement: Statement, values: Mapping[str, Any]) -> _Prepared:
        prepared = statement.prepared(self._dialect)
        self.flush()
        self._execute(prepared.sql, prepared.parameters(values), many=False)
        return prepared

    def _execute(self, sql: str, parameters: Any, *, many: bool) -> None:
        """On the cursor, with the engine's cursor events (SQLAlchemy's own execution
        sends them too): monitoring and fault injection attached there see these
        statements as well."""
        connection, cursor = self._connection, self._cursor
        for listener in self._before:
            sql, parameters = listener(connection, cursor, sql, parameters, None, many)
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        for listener in self._after:
            listener(connection, cursor, sql, parameters, None, many)

    def flush(self) -> None:
        """What the session holds, written, so that a statement on the cursor sees it."""
        if self._session is not None and (self._session.new or self._session.dirty or self._session.deleted):
            self._session.flush()

    def forget(self) -> None:
        """The session's copies dropped after the cursor changed rows: a later ORM read
        in this transaction loads them as they now are."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def savepoint(self) -> Savepoint:
        """A SAVEPOINT, after the session's pending changes (they belong before it).
        Written on the cursor, as the statements are: the same SQL on SQLite and
        PostgreSQL, and SQLAlchemy's own savepoint cost more than the piece of work
        it guarded (a patient update refused on one probe)."""
        self.flush()
        self.execute_text("SAVEPOINT piece")
        return Savepoint(self)

    def execute_text(self, sql: str) -> None:
        """A statement without parameters (transaction control)."""
        self._execute(sql, (), many=False)

    def commit(self) -> None:
        self.flush()
        self.forget()
        try:
            self._connection.commit()
        except BaseException:
            self._undo_failed_commit()
            raise

    def rollback(self) -> None:
        """Everything undone; the link is in a new transaction, as at the start."""
        self.forget()
        self._connection.rollback()
        self._connection.begin()

    def end(self) -> None:
        """What was not committed rolled back, the cursor closed: the last of the link
        that needs the writers' turn (an open SQLite write transaction holds the file's
        write lock). The connection itself is given back by `close`, after the turn."""
        try:
            self.forget()
            self._cursor.close()
        finally:
            if self._connection.in_transaction():
                self._connection.rollback()

    def close(self) -> None:
        """The connection given back to the pool (rolled back first if `end` was not
        reached or failed: SQLAlchemy does that as a connection closes)."""
        self._connection.close()

    def _undo_failed_commit(self) -> None:
        """SQLAlchemy forgets a transaction whose commit failed; the driver does not, and
        its connection would go back to the pool inside it (a pooled SQLite connection
        still in BEGIN IMMEDIATE fails its next BEGIN). Rolled back here; a connection
        that cannot even roll back is not pooled again."""
        try:
            self._connection.connection.rollback()
        except Exception:  # the pool opens a new connection rather than reuse this one
            self._connection.invalidate()


class Savepoint:
    """Part of a transaction that can be undone alone (group commit's pieces of work).
    One at a time: the pieces of a batch run one after the other."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def rollback(self) -> None:
        """This part undone, and the session's objects of it with it; the savepoint
        stays, so the part can go on (and store its refusal)."""
        self._link.forget()
        self._link.execute_text("ROLLBACK TO SAVEPOINT piece")

    def release(self) -> None:
        """This part kept; the next part reads rows, not this one's objects."""
        self._link.flush()
        self._link.forget()
        self._link.execute_text("RELEASE SAVEPOINT piece")
