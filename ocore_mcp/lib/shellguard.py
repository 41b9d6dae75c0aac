"""What the shell tools' code may not do with the database: end the call's transaction or open another one.

A shell call runs in the call's savepoint: the pipeline commits it when the code succeeds and rolls it
back when it fails. Code that commits by itself (``env.cr._cnx.commit()``, ``env.cr.connection.commit()``,
``env.cr.execute("COMMIT")``) or opens a connection of its own (``env.registry.cursor()``,
``odoo.sql_db.db_connect(...).cursor()``, ``psycopg2.connect(...)``) would leave writes committed when the
call fails. During the call (:func:`guard`):

* the Odoo cursor's ``commit``/``rollback``/``close`` and the connection's ``commit``, ``rollback``,
  ``close``, ``reset``, ``set_session``, ``set_isolation_level``, ``set_client_encoding`` and ``tpc_*``
  are refused;
* the statements of the cursor and of any cursor the connection opens are checked: transaction control
  that ends the transaction (``COMMIT``, ``END``, ``ROLLBACK`` without ``TO``, ``ABORT``,
  ``PREPARE TRANSACTION``, ``COMMIT/ROLLBACK PREPARED``) is refused, savepoints stay available;
* new Odoo cursors and new psycopg2 connections are refused in the calling thread / greenlet;
* on the server, a *fence* row whose deferred constraint trigger fails any COMMIT of the transaction
  while it exists catches the routes around the Python checks (a C-level ``connection.commit``);
  :func:`release_fence` deletes it when the call succeeds.

This is an administrator's Python, not a sandbox: threads the code starts, raw psycopg2 objects built
around the connection by hand, or deleting the fence row itself go around these checks (README).
"""

import contextlib
import contextvars
import functools
import re
import threading

import psycopg2
import psycopg2.extensions
from pglast import ast, parse_sql
from pglast.enums import TransactionStmtKind
from pglast.parser import ParseError

FENCE_TABLE = "ocore_mcp_shell_fence"
FENCE_DDL = [
    f"CREATE TABLE IF NOT EXISTS {FENCE_TABLE} (id bigserial PRIMARY KEY, created timestamp DEFAULT now())",
    f"""CREATE OR REPLACE FUNCTION {FENCE_TABLE}_check() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM {FENCE_TABLE} WHERE id = NEW.id) THEN
                RAISE EXCEPTION 'an MCP shell call is running in this transaction: the code cannot commit it (the '
                                'call commits when the code succeeds and rolls back when it fails)';
            END IF;
            RETURN NULL;
        END $$""",
    f"DROP TRIGGER IF EXISTS {FENCE_TABLE}_commit ON {FENCE_TABLE}",
    f"""CREATE CONSTRAINT TRIGGER {FENCE_TABLE}_commit AFTER INSERT ON {FENCE_TABLE}
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {FENCE_TABLE}_check()""",
]
FENCE_DROP = [f"DROP TABLE IF EXISTS {FENCE_TABLE}", f"DROP FUNCTION IF EXISTS {FENCE_TABLE}_check()"]

CONNECTION_METHODS = ("commit", "rollback", "close", "reset", "set_session", "set_isolation_level",
                      "set_client_encoding", "tpc_begin", "tpc_prepare", "tpc_commit", "tpc_rollback")
CURSOR_METHODS = ("commit", "rollback", "close")
ENDING = {
    TransactionStmtKind.TRANS_STMT_COMMIT, TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_PREPARE, TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED,
}
# cheap pre-check before parsing: only a statement holding one of these words can end a transaction
_WORDS = re.compile(rb"(?i)\b(commit|rollback|abort|end|prepared?)\b")

MESSAGE = ("{what} is not available in MCP shell tools: the call's changes are committed when the code succeeds "
           "and rolled back when it fails")

_active = contextvars.ContextVar("ocore_mcp_shell_guard", default=False)
_install_lock = threading.Lock()
_installed = []


class ShellRefused(psycopg2.ProgrammingError):
    """A database operation the shell tools' code may not do (a psycopg2 error: code that handles
    database errors handles this one too)."""


def _ends_transaction(cursor, query, params):
    text = query if isinstance(query, bytes) else str(query).encode()
    if not _WORDS.search(text):
        return False
    try:
        sql = cursor.mogrify(query, params) if params is not None else text
        statements = parse_sql(sql.decode("utf-8", errors="replace"))
    except (ParseError, psycopg2.Error, ValueError, TypeError, IndexError, KeyError):
        return False  # PostgreSQL refuses it too, or the fence catches a COMMIT
    return any(isinstance(raw.stmt, ast.TransactionStmt) and raw.stmt.kind in ENDING for raw in statements)


class GuardedCursorMixin:
    """Refuses the statements that would end the call's transaction."""

    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's signature
        if _ends_transaction(self, query, vars):
            raise ShellRefused(MESSAGE.format(what="COMMIT/ROLLBACK"))
        return super().execute(query, vars)

    def executemany(self, query, vars_list):
        if _ends_transaction(self, query, None):
            raise ShellRefused(MESSAGE.format(what="COMMIT/ROLLBACK"))
        return super().executemany(query, vars_list)


class GuardedCursor(GuardedCursorMixin, psycopg2.extensions.cursor):
    pass


@functools.cache
def _guarded_factory(factory):
    if factory is None or factory is psycopg2.extensions.cursor:
        return GuardedCursor
    if issubclass(factory, GuardedCursorMixin):
        return factory
    return type(f"Guarded{factory.__name__}", (GuardedCursorMixin, factory), {})


def _refuse(what, *_args, **_kwargs):
    raise ShellRefused(MESSAGE.format(what=what))


def _install():
    """Wrap, once per process, the two doors to a new connection: odoo.sql_db.Connection.cursor (registry
    cursors, db_connect) and psycopg2.connect. They refuse while a shell call runs in the context."""
    with _install_lock:
        if _installed:
            return
        import odoo.sql_db

        original_cursor = odoo.sql_db.Connection.cursor

        @functools.wraps(original_cursor)
        def cursor(self, *args, **kwargs):
            if _active.get():
                _refuse("a new database cursor (env.registry.cursor(), db_connect().cursor())")
            return original_cursor(self, *args, **kwargs)

        odoo.sql_db.Connection.cursor = cursor
        original_connect = psycopg2.connect

        @functools.wraps(original_connect)
        def connect(*args, **kwargs):
            if _active.get():
                _refuse("a new database connection (psycopg2.connect)")
            return original_connect(*args, **kwargs)

        psycopg2.connect = connect
        # the C function psycopg2.connect calls, under both its names
        from psycopg2 import _psycopg

        original_c_connect = _psycopg._connect

        @functools.wraps(original_c_connect)
        def c_connect(*args, **kwargs):
            if _active.get():
                _refuse("a new database connection (psycopg2._connect)")
            return original_c_connect(*args, **kwargs)

        psycopg2._connect = _psycopg._connect = c_connect
        _installed.append(True)


@contextlib.contextmanager
def guard(cr):
    """Apply the checks above to the Odoo cursor ``cr`` (and its connection) while the block runs."""
    _install()
    cnx = cr._cnx
    saved_cursor = {name: vars(cr)[name] for name in CURSOR_METHODS if name in vars(cr)}
    saved_cnx = {name: vars(cnx)[name] for name in (*CONNECTION_METHODS, "cursor") if name in vars(cnx)}
    original_obj = cr._obj
    real_cursor = cnx.cursor
    for name in CURSOR_METHODS:
        setattr(cr, name, functools.partial(_refuse, f"env.cr.{name}()"))
    for name in CONNECTION_METHODS:
        setattr(cnx, name, functools.partial(_refuse, f"connection.{name}()"))

    def cursor(*args, cursor_factory=None, **kwargs):
        return real_cursor(*args, cursor_factory=_guarded_factory(cursor_factory), **kwargs)

    cnx.cursor = cursor
    cr._obj = real_cursor(cursor_factory=GuardedCursor)  # the same connection, so the same transaction
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)
        guarded, cr._obj = cr._obj, original_obj
        with contextlib.suppress(psycopg2.Error):
            psycopg2.extensions.cursor.close(guarded)
        for target, saved, names in ((cr, saved_cursor, CURSOR_METHODS),
                                     (cnx, saved_cnx, (*CONNECTION_METHODS, "cursor"))):
            for name in names:
                if name in saved:
                    setattr(target, name, saved[name])
                else:
                    vars(target).pop(name, None)


def ensure_fence(cr):
    """Create the fence table and its trigger when missing (install, upgrade, or a first call)."""
    cr.execute("SELECT to_regclass(%s) IS NOT NULL", (FENCE_TABLE,))
    if not cr.fetchone()[0]:
        for statement in FENCE_DDL:
            cr.execute(statement)


def set_fence(cr):
    """Insert the fence row of a shell call; return its id."""
    ensure_fence(cr)
    cr.execute("INSERT INTO ocore_mcp_shell_fence DEFAULT VALUES RETURNING id")
    return cr.fetchone()[0]


def fence_intact(cr, fence_id):
    """Whether the call's transaction still holds its fence row (not committed, not rolled back). Asked
    through a cursor of its own: the code's cursor keeps its results for the next command."""
    with psycopg2.extensions.connection.cursor(cr._cnx) as own:
        own.execute("SELECT 1 FROM ocore_mcp_shell_fence WHERE id = %s", (fence_id,))
        return own.fetchone() is not None


def release_fence(cr, fence_id):
    """Delete the fence row: the call's transaction may be committed again."""
    cr.execute("DELETE FROM ocore_mcp_shell_fence WHERE id = %s", (fence_id,))
