"""SQL guard of the ``sql`` tools, built on a real PostgreSQL parser (pglast / libpg_query).

Nothing here matches text with regular expressions: a query is parsed into
PostgreSQL's own parse tree, so comments, string and dollar quoting, quoted
and unicode-escaped identifiers (``U&"\\0070g_read_file"``) and
schema-qualified names are resolved exactly as the server would resolve them.

* :func:`analyze` splits a script into statements, classifies each one
  (``select``, ``dml``, ``transaction``; ``ddl`` and ``utility`` are refused)
  and walks *every* node of the tree (FROM-clause function calls, CTEs,
  subqueries, LATERAL, RETURNING, VALUES, ...) for blocked functions, and
  for writes to system catalogs (``UPDATE pg_settings`` is ``set_config()``
  in disguise: it would lift the statement timeout).
* Each accepted statement carries ``sql``: the statement re-serialised from
  the checked tree (what runs is exactly what was checked, one statement at a
  time, never a multi-statement string).
* :func:`add_limit` gives a top-level SELECT without LIMIT a LIMIT by changing
  the tree, not the text.

Pure Python, no Odoo import: unit-testable on its own.
"""

import re
from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast.enums import LimitOption, TransactionStmtKind
from pglast.parser import ParseError
from pglast.stream import RawStream

DEFAULT_LIMIT = 1000

# -- blocked functions ---------------------------------------------------------------
# Matched on the last name component, lower-cased, whatever the schema (also a
# user schema: a look-alike wrapper is refused too). Exact names, then prefixes.
BLOCKED_FUNCTIONS = {
    # server filesystem
    "pg_read_file": "server filesystem access",
    "pg_read_binary_file": "server filesystem access",
    "pg_stat_file": "server filesystem access",
    "pg_logdir_ls": "server filesystem access",
    "pg_current_logfile": "server filesystem access",
    # large objects: lo_import / lo_export read and write server files
    "loread": "large object access",
    "lowrite": "large object access",
    # server administration
    "pg_terminate_backend": "server administration",
    "pg_cancel_backend": "server administration",
    "pg_signal_backend": "server administration",
    "pg_reload_conf": "server administration",
    "pg_rotate_logfile": "server administration",
    "pg_rotate_logfile_old": "server administration",
    "pg_promote": "server administration",
    "pg_switch_wal": "server administration",
    "pg_switch_xlog": "server administration",
    "pg_create_restore_point": "server administration",
    "pg_start_backup": "server administration",
    "pg_stop_backup": "server administration",
    "pg_backup_start": "server administration",
    "pg_backup_stop": "server administration",
    "pg_log_backend_memory_contexts": "server administration",
    "pg_import_system_collations": "server administration",
    "pg_nextoid": "server administration",
    "pg_notify": "asynchronous notification",
    # configuration: set_config('role' | 'session_authorization' | 'transaction_read_only' |
    # 'statement_timeout' | 'search_path', ...) would undo the guard's own settings
    "set_config": "configuration change",
    # SQL given as a string and executed by the server
    "ts_stat": "dynamic SQL execution",
    "ts_rewrite": "dynamic SQL execution",
}
BLOCKED_PREFIXES = (
    ("pg_ls_", "server filesystem access"),  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, pg_ls_tmpdir ...
    ("pg_file_", "server filesystem access"),  # adminpack: pg_file_write, pg_file_rename, pg_file_unlink
    ("lo_", "large object access"),  # lo_import, lo_export, lo_open, lo_get, lo_put, lo_unlink ...
    ("dblink", "remote database connection"),  # dblink, dblink_exec, dblink_connect ...
    ("postgres_fdw_", "remote database connection"),
    ("query_to_xml", "dynamic SQL execution"),  # query_to_xml, query_to_xmlschema, query_to_xml_and_xmlschema
    ("cursor_to_xml", "dynamic SQL execution"),
    ("table_to_xml", "dynamic SQL execution"),
    ("schema_to_xml", "dynamic SQL execution"),
    ("database_to_xml", "dynamic SQL execution"),
    ("pg_advisory", "session-level lock"),  # session locks would outlive the call on a pooled connection
    ("pg_try_advisory", "session-level lock"),
    ("pg_create_", "replication control"),  # replication slots
    ("pg_drop_replication", "replication control"),
    ("pg_copy_", "replication control"),
    ("pg_replication_", "replication control"),
    ("pg_logical_", "replication control"),
    ("pg_wal_replay_", "replication control"),
    ("pg_stat_reset", "server administration"),
    ("pg_stat_statements_reset", "server administration"),
    ("binary_upgrade_", "server administration"),
)

# -- statement classes ------------------------------------------------------------------
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
DML_NODES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
DDL_PREFIXES = (
    "Create", "Alter", "Drop", "Define", "Rename", "Grant", "Comment", "SecLabel", "Truncate",
    "Reindex", "Cluster", "Vacuum", "RefreshMatView", "ReassignOwned", "ImportForeignSchema",
    "Index", "View", "Rule", "CompositeType", "AlterSystem",
)
COMMAND_NAMES = {
    "IndexStmt": "CREATE INDEX",
    "ViewStmt": "CREATE VIEW",
    "RuleStmt": "CREATE RULE",
    "CreateTrigStmt": "CREATE TRIGGER",
    "CreateStmt": "CREATE TABLE",
    "CreateTableAsStmt": "CREATE TABLE AS",
    "CreateFunctionStmt": "CREATE FUNCTION",
    "CompositeTypeStmt": "CREATE TYPE",
    "DefineStmt": "CREATE",
    "DropStmt": "DROP",
    "GrantStmt": "GRANT/REVOKE",
    "GrantRoleStmt": "GRANT/REVOKE role",
    "CommentStmt": "COMMENT",
    "VacuumStmt": "VACUUM/ANALYZE",
    "VariableSetStmt": "SET",
    "VariableShowStmt": "SHOW",
    "DoStmt": "DO",
    "CallStmt": "CALL",
    "CopyStmt": "COPY",
    "PrepareStmt": "PREPARE",
    "ExecuteStmt": "EXECUTE",
    "DeallocateStmt": "DEALLOCATE",
    "ListenStmt": "LISTEN",
    "UnlistenStmt": "UNLISTEN",
    "NotifyStmt": "NOTIFY",
    "LoadStmt": "LOAD",
    "LockStmt": "LOCK",
    "DiscardStmt": "DISCARD",
    "CheckPointStmt": "CHECKPOINT",
    "DeclareCursorStmt": "DECLARE CURSOR",
    "FetchStmt": "FETCH/MOVE",
    "ClosePortalStmt": "CLOSE",
    "ConstraintsSetStmt": "SET CONSTRAINTS",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateExtensionStmt": "CREATE EXTENSION",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "SelectStmt": "SELECT",
    "ExplainStmt": "EXPLAIN",
    "TransactionStmt": "transaction control",
}
UTILITY_REASONS = {
    "VariableSetStmt": "changing settings is not allowed (SET ROLE, SET SESSION AUTHORIZATION, RESET ...)",
    "CopyStmt": "COPY reads or writes server files and programs",
    "DoStmt": "anonymous code blocks execute dynamic SQL",
    "CallStmt": "procedures may commit and execute dynamic SQL",
    "PrepareStmt": "prepared statements hide the executed SQL",
    "ExecuteStmt": "prepared statements hide the executed SQL",
    "LoadStmt": "LOAD loads a shared library into the server",
    "LockStmt": "explicit table locks are not allowed",
    "ListenStmt": "asynchronous notifications are not allowed",
    "NotifyStmt": "asynchronous notifications are not allowed",
}
TRANSACTION_KINDS = {
    TransactionStmtKind.TRANS_STMT_BEGIN: "begin",
    TransactionStmtKind.TRANS_STMT_START: "begin",
    TransactionStmtKind.TRANS_STMT_COMMIT: "commit",
    TransactionStmtKind.TRANS_STMT_ROLLBACK: "rollback",
    TransactionStmtKind.TRANS_STMT_SAVEPOINT: "savepoint",
    TransactionStmtKind.TRANS_STMT_RELEASE: "release",
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "rollback_to",
}


class SqlRefused(Exception):
    """The query is refused; ``reason`` is one of parse_error, ddl, utility, function, catalog, multiple,
    empty, transaction."""

    def __init__(self, reason, message, index=None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.index = index

    def __str__(self):
        where = f"statement {self.index + 1}: " if self.index is not None else ""
        return where + self.message


@dataclass
class Statement:
    """One checked statement of a query or script."""

    index: int
    kind: str  # select | dml | transaction
    command: str  # SELECT, INSERT, EXPLAIN, transaction control ...
    node: object = field(repr=False)
    text: str = ""  # the statement as written
    has_limit: bool = True  # SELECT: a LIMIT/FETCH count is present
    transaction: str | None = None  # begin | commit | rollback | savepoint | release | rollback_to
    savepoint: str | None = None
    analyze: bool = False  # EXPLAIN ANALYZE: the inner statement is executed

    @property
    def sql(self):
        """The statement re-serialised from the checked tree."""
        return to_sql(self.node, self.text)

    @property
    def explainable_sql(self):
        """SQL to put after EXPLAIN: the statement itself, or the inner statement of an EXPLAIN."""
        if isinstance(self.node, ast.ExplainStmt):
            return to_sql(self.node.query)
        return self.sql

    @property
    def is_read(self):
        return self.kind == "select"


# -- tree walking ---------------------------------------------------------------------


def iter_nodes(node):
    """Every ast.Node below (and including) ``node``, depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            for member in item:
                value = getattr(item, member)
                if isinstance(value, ast.Node | tuple | list):
                    stack.append(value)
        elif isinstance(item, tuple | list):
            stack.extend(item)


def _names(items):
    return [getattr(n, "sval", None) for n in items or () if isinstance(n, ast.String)]


def function_block_reason(name):
    """Why a function of this (last component) name is blocked, or None."""
    name = (name or "").lower()
    if name in BLOCKED_FUNCTIONS:
        return BLOCKED_FUNCTIONS[name]
    for prefix, reason in BLOCKED_PREFIXES:
        if name.startswith(prefix):
            return reason
    return None


def _check_functions(root, index):
    for node in iter_nodes(root):
        names = None
        if isinstance(node, ast.FuncCall):
            names = _names(node.funcname)
        elif isinstance(node, ast.ColumnRef) and len(node.fields or ()) > 1:
            # attribute notation: t.func is func(t)
            names = _names(node.fields[-1:])
        elif isinstance(node, ast.A_Indirection):
            names = _names(node.indirection)[-1:]
        if not names:
            continue
        reason = function_block_reason(names[-1])
        if reason:
            shown = ".".join(n.lower() for n in names)
            raise SqlRefused("function", f"function {shown}() is blocked ({reason})", index)


def _check_catalog_writes(root, index):
    """Refuse a data-modifying statement (anywhere in the tree: a CTE, EXPLAIN ANALYZE) whose target is a
    system catalog or view. ``UPDATE pg_settings SET setting = ...`` is rewritten by PostgreSQL into
    ``set_config()``: it would lift the statement timeout or switch the role back."""
    for node in iter_nodes(root):
        if not isinstance(node, DML_NODES):
            continue
        target = node.relation
        relname = (getattr(target, "relname", None) or "").lower()
        schema = (getattr(target, "schemaname", None) or "").lower()
        if schema in SYSTEM_SCHEMAS or relname.startswith("pg_"):
            shown = f"{schema}.{relname}" if schema else relname
            raise SqlRefused("catalog", f"writing to the system catalog {shown} is blocked (server settings "
                             "such as statement_timeout cannot be changed)", index)


def relations(root):
    """Lower-cased names (last component) of every relation the statement tree names (FROM, JOIN,
    TABLE, DML targets, subqueries, CTEs): the fallback check of the SQL tools without their role."""
    found = set()
    for node in iter_nodes(root):
        if isinstance(node, ast.RangeVar) and node.relname:
            found.add(node.relname.lower())
    return found


def _command(node):
    name = type(node).__name__
    if name in COMMAND_NAMES:
        return COMMAND_NAMES[name]
    base = name.removesuffix("Stmt")
    return re.sub(r"(?<!^)(?=[A-Z])", " ", base).upper()


def _has_limit(select):
    count = select.limitCount
    if count is None:
        return False
    # LIMIT ALL / LIMIT NULL mean no limit
    return not (isinstance(count, ast.A_Const) and count.isnull)


def _contains_dml(node):
    return any(isinstance(n, DML_NODES) for n in iter_nodes(node))


def _classify(node, index):
    """Return a Statement skeleton for a top-level parse node, or raise SqlRefused."""
    name = type(node).__name__
    command = _command(node)
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            raise SqlRefused("ddl", "DDL is blocked: SELECT INTO creates a table", index)
        if _contains_dml(node):  # WITH x AS (DELETE ... RETURNING ...) SELECT ...
            return Statement(index, "dml", "SELECT with data-modifying WITH", node)
        return Statement(index, "select", "SELECT", node, has_limit=_has_limit(node))
    if isinstance(node, DML_NODES):
        return Statement(index, "dml", command, node)
    if isinstance(node, ast.ExplainStmt):
        inner = node.query
        analyze = any(
            isinstance(opt, ast.DefElem) and opt.defname == "analyze" and _truthy(opt.arg)
            for opt in node.options or ()
        )
        sub = _classify(inner, index)
        if sub.kind == "transaction":
            raise SqlRefused("utility", "EXPLAIN of a transaction control statement", index)
        kind = "dml" if (sub.kind == "dml" and analyze) else "select"
        return Statement(index, kind, f"EXPLAIN{' ANALYZE' if analyze else ''} {sub.command}", node, analyze=analyze)
    if isinstance(node, ast.TransactionStmt):
        action = TRANSACTION_KINDS.get(node.kind)
        if action is None:
            raise SqlRefused("transaction", "two-phase commit statements are blocked", index)
        if node.chain:
            raise SqlRefused("transaction", "AND CHAIN is not supported", index)
        if node.options:
            raise SqlRefused("transaction", "transaction modes (isolation level, READ WRITE ...) are not supported",
                             index)
        return Statement(index, "transaction", action.upper().replace("_", " "), node, transaction=action,
                         savepoint=node.savepoint_name)
    if name.startswith(DDL_PREFIXES) or isinstance(node, ast.CreateTableAsStmt):
        raise SqlRefused("ddl", f"DDL is blocked: {command}", index)
    reason = UTILITY_REASONS.get(name, "only SELECT, INSERT, UPDATE, DELETE, MERGE and EXPLAIN are allowed")
    raise SqlRefused("utility", f"{command} is blocked: {reason}", index)


def _truthy(arg):
    if arg is None:
        return True
    if isinstance(arg, ast.A_Const):
        value = getattr(arg.val, "sval", None)
        if value is None:
            value = getattr(arg.val, "ival", None)
        if value is None:
            value = getattr(arg.val, "boolval", None)
        return str(value).lower() not in ("false", "off", "0", "no")
    if isinstance(arg, ast.String):
        return arg.sval.lower() not in ("false", "off", "0", "no")
    if isinstance(arg, ast.Boolean):
        return bool(arg.boolval)
    if isinstance(arg, ast.Integer):
        return bool(arg.ival)
    return True


# -- public API -------------------------------------------------------------------------


def parse(sql):
    """Parse ``sql`` into pglast RawStmt nodes; a syntax error is a SqlRefused('parse_error')."""
    if not isinstance(sql, str):
        raise SqlRefused("parse_error", "the query must be a string")
    if "\x00" in sql:
        raise SqlRefused("parse_error", "the query contains a NUL byte")
    try:
        return parse_sql(sql)
    except ParseError as exc:
        raise SqlRefused("parse_error", f"syntax error: {exc}") from None


def _slices(sql, raw_stmts):
    """Statement texts (pglast reports locations in characters of ``sql``)."""
    texts = []
    for raw in raw_stmts:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        texts.append(sql[start:end].strip())
    return texts


def split(sql):
    """Split a script into the texts of its statements (comments and quoting respected)."""
    return _slices(sql, parse(sql))


def analyze(sql, allow_transaction=False, max_statements=None):
    """Parse, classify and check every statement of ``sql``.

    Return a list of :class:`Statement`; raise :class:`SqlRefused` for the first refused
    statement (DDL, utility statements, blocked functions anywhere in the tree, transaction
    control unless ``allow_transaction``, more statements than ``max_statements``).
    """
    raw_stmts = parse(sql)
    if not raw_stmts:
        raise SqlRefused("empty", "the query contains no SQL statement")
    if max_statements is not None and len(raw_stmts) > max_statements:
        raise SqlRefused(
            "multiple",
            f"{len(raw_stmts)} statements found; this tool runs exactly {max_statements} "
            "(use execute_sql_script for several)",
        )
    texts = _slices(sql, raw_stmts)
    statements = []
    for position, (raw, text) in enumerate(zip(raw_stmts, texts, strict=True)):
        index = position if len(raw_stmts) > 1 else None  # "statement N:" only in a script
        stmt = _classify(raw.stmt, index)
        if stmt.kind == "transaction" and not allow_transaction:
            raise SqlRefused("transaction", "transaction control is only available in execute_sql_script", index)
        _check_functions(raw.stmt, index)
        _check_catalog_writes(raw.stmt, index)
        stmt.text = text
        stmt.index = position
        statements.append(stmt)
    return statements


def check(sql, **kw):
    """Return None when ``sql`` passes the guard, else the refusal text."""
    try:
        analyze(sql, **kw)
    except SqlRefused as exc:
        return str(exc)
    return None


def is_dml(sql):
    """True when ``sql`` parses, passes the guard and one of its statements writes data
    (INSERT/UPDATE/DELETE/MERGE, a data-modifying WITH, EXPLAIN ANALYZE of one)."""
    try:
        return any(s.kind == "dml" for s in analyze(sql, allow_transaction=True))
    except SqlRefused:
        return False


def to_sql(node, fallback=None):
    """Serialise a parse node back to SQL, verified by parsing the output again.

    Should the printer not reproduce the tree exactly, ``fallback`` (the original
    text of that single statement, already checked) is returned instead.
    """
    text = _reserialise(node)
    if text is not None:
        return text
    if fallback is None:
        raise SqlRefused("parse_error", "the statement cannot be re-serialised safely")
    return fallback


def add_limit(statement, limit=DEFAULT_LIMIT):
    """SQL of a top-level SELECT with ``LIMIT limit`` added when it has none (the tree is
    changed, then serialised); other statements are returned unchanged."""
    node = statement.node
    if not isinstance(node, ast.SelectStmt) or statement.kind != "select" or statement.has_limit:
        return statement.sql
    saved = node.limitCount, node.limitOption
    node.limitCount = ast.A_Const(isnull=False, val=ast.Integer(ival=int(limit)))
    node.limitOption = LimitOption.LIMIT_OPTION_COUNT
    try:
        text = _reserialise(node)
    finally:
        node.limitCount, node.limitOption = saved
    return text if text is not None else f"SELECT * FROM ({statement.sql}) AS _q LIMIT {int(limit)}"


def _reserialise(node):
    """SQL text of ``node`` that parses back to the same tree, or None (printer gap)."""
    try:
        text = RawStream()(node)
        again = parse_sql(text)
    except Exception:  # noqa: BLE001 - any printer failure means "cannot reproduce"
        return None
    if len(again) == 1 and again[0].stmt == node:
        return text.strip()
    return None
