"""SQL tools: direct PostgreSQL queries checked by a real parser (lib/sqlguard.py).

Raw SQL bypasses Odoo's access rights and record rules, so every tool of this
family is ``admin_only`` (offered only to keys whose owner is a system
administrator). Layers, each on its own enough to stop a write from a read:

1. the guard refuses DDL, utility statements and blocked functions anywhere in
   the tree; what runs is the statement re-serialised from the checked tree,
   one statement per ``execute``;
2. read statements (SELECT, EXPLAIN) run in a nested savepoint switched to
   ``transaction_read_only`` and always rolled back, so even a function the
   guard missed cannot write (PostgreSQL refuses to switch such a
   subtransaction back to read-write);
3. every statement runs as the SQL tools' PostgreSQL role (lib/sqlrole.py), which cannot read a
   credential column (password hashes, key hashes, tokens, TOTP secrets) nor a secret system
   parameter, whatever the spelling (``r.*``, ``row_to_json(r)``, whole-row references, views).
   Without the role (the database user may not create it) the tools say so and refuse statements
   naming a table that holds credentials;
4. the pipeline's ``statement_timeout`` (``timeout_seconds``) and savepoint; writes to ``pg_settings``
   (which PostgreSQL turns into ``set_config``) are refused by the guard, and a watchdog cancels on the
   server a statement that outlives the call's deadline anyway (``connection.cancel()``: PostgreSQL's
   cancel request, sent from another thread), so no worker is held.
"""

import base64
import contextlib
import datetime
import decimal
import json
import logging
import math
import threading
import uuid
from typing import Literal

import psycopg2

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..lib import fields as fieldlib
from ..lib import sqlguard, sqlrole
from ..lib.shaping import TextResult
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal, ToolFailed, check_write

SELECT_LIMIT = sqlguard.DEFAULT_LIMIT  # added to a SELECT without LIMIT
FETCH_CAP = 5000  # rows ever fetched from one statement (an explicit LIMIT above it is cut)
SCRIPT_MAX_STATEMENTS = 200
CELL_WIDTH = 80  # table format: longer cells are shortened
ROLE_KEY = "ocore_mcp_sql_role"  # context key: the role of this call's statements (None: the fallback mode)
CANCEL_MARGIN = 0.25  # seconds after the call's deadline before a still running statement is cancelled

_logger = logging.getLogger(__name__)


def _guard(sql, **kw):
    try:
        return sqlguard.analyze(sql, **kw)
    except sqlguard.SqlRefused as exc:
        raise Refusal("sql_refused", str(exc)) from None


def _execute_sql_reads_only(args):
    """readonly_when of execute_sql: the call cannot write (a SELECT, an EXPLAIN without ANALYZE
    of anything, or a query the guard refuses anyway)."""
    try:
        statements = sqlguard.analyze(args.get("query") or "", max_statements=1)
    except sqlguard.SqlRefused:
        return True  # refused by the tool before anything runs
    stmt = statements[0]
    if stmt.kind == "select":
        return True
    return bool(args.get("explain")) and not isinstance(stmt.node, sqlguard.ast.ExplainStmt)


def jsonable(value):
    """A JSON-friendly form of a value psycopg2 returned."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return float(value) if value.is_finite() and len(value.as_tuple().digits) <= 15 else str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, memoryview | bytes | bytearray):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _cell(value):
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\r", "").replace("\n", "\\n")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def format_table(columns, rows):
    """An aligned text table (psql style)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    lines = [
        " | ".join(c.ljust(widths[i]) for i, c in enumerate(columns)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(t.ljust(widths[i]) for i, t in enumerate(row)).rstrip() for row in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def format_csv(columns, rows):
    """Result rows as CSV (the tools' one writer, RFC 4180); json and arrays as their JSON text."""
    return fieldlib.csv_table(columns, (
        ["" if v is None else v if isinstance(v, str) else
         json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, dict | list) else v
         for v in row]
        for row in rows))


def _plan_rows(plan):
    """Estimated rows written by the ModifyTable nodes of an EXPLAIN (FORMAT JSON) plan."""
    total, found = 0, False
    stack = [plan]
    while stack:
        node = stack.pop()
        children = node.get("Plans") or []
        if node.get("Node Type") == "ModifyTable":
            found = True
            total += sum(int(child.get("Plan Rows") or 0) for child in children[:1])
        stack.extend(children)
    return total if found else int(plan.get("Plan Rows") or 0)


class SqlTools(models.AbstractModel):
    _name = "ocore.mcp.tools.sql"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: SQL"

    def init(self):
        """Create the SQL tools' role and its grants at install and upgrade (checked again before each
        call: modules installed later add tables and columns)."""
        try:
            sqlrole.ensure(self.env.cr, self._sql_credential_fields())
        except sqlrole.RoleUnavailable as exc:
            _logger.warning("oCore MCP: %s. Until then the SQL tools refuse statements naming tables that hold "
                            "credentials.", exc)

    # -- helpers -----------------------------------------------------------------------

    def _sql_credential_fields(self):
        """``table.column`` of the stored fields nobody may read through the ORM (``groups=NO_ACCESS``, e.g. key
        hashes): credentials for the SQL tools' role too, whatever their name."""
        registry = self.env.registry
        cached = getattr(registry, "_ocore_mcp_sql_credentials", None)  # the registry's code, not request state
        if cached is not None:
            return cached
        found = set()
        for model in registry.values():
            if model._abstract or not model._table or not model._auto:
                continue
            for field in model._fields.values():
                if field.store and field.column_type and field.groups == fields.NO_ACCESS:
                    found.add(f"{model._table}.{field.name}")
        registry._ocore_mcp_sql_credentials = sorted(found)
        return registry._ocore_mcp_sql_credentials

    @property
    def _sql_role(self):
        """The role statements run as, None in the fallback mode (see _sql_prepare)."""
        if ROLE_KEY not in self.env.context:
            raise RuntimeError("SQL statements run after _sql_prepare() only")
        return self.env.context[ROLE_KEY]

    def _sql_prepare(self, statements=()):
        """Pending ORM writes reach the database before raw SQL reads it; the parser and the
        server must read string literals alike; the role is ready (or, without it, no statement
        names a table holding credentials). Return the toolset to run the statements with."""
        self.env.flush_all()
        cr = self.env.cr
        status = cr.connection.get_parameter_status("standard_conforming_strings")
        if status and status != "on":
            raise Refusal("sql_refused", "the database runs with standard_conforming_strings off; "
                          "SQL tools need it on")
        extra = self._sql_credential_fields()
        try:
            role = sqlrole.ensure(cr, extra)
        except sqlrole.RoleUnavailable as exc:
            role = None
            blocked = set(sqlrole.credential_relations(cr, extra)) | sqlrole.FALLBACK_BLOCKED
            for stmt in statements:
                named = sorted(sqlguard.relations(stmt.node) & blocked)
                if named:
                    where = f"statement {stmt.index + 1}: " if len(statements) > 1 else ""
                    raise Refusal("sql_refused", (
                        f"{where}{', '.join(named)} may hold credentials and the SQL tools run without their "
                        f"read-only role: {exc}")) from None
        return self.with_context(**{ROLE_KEY: role})

    @contextlib.contextmanager
    def _sql_watchdog(self):
        """Cancel the running statement on the server when the call's deadline has passed (plus a small
        margin): a statement whose timeout was lifted, or stuck in a C call, never holds the worker."""
        call = self._call()
        deadline = getattr(call, "deadline", None) if call else None
        if deadline is None:
            yield
            return
        cnx = self.env.cr._cnx
        lock = threading.Lock()
        state = {"active": True}

        def cancel():
            with lock:
                if state["active"]:
                    _logger.warning("oCore MCP: cancelling a SQL statement past the call's deadline (%ss)",
                                    deadline.seconds)
                    try:
                        cnx.cancel()  # PostgreSQL's cancel request, through a connection of its own
                    except Exception:  # noqa: BLE001 - a failed cancel leaves the statement_timeout
                        _logger.exception("oCore MCP: cancelling a SQL statement failed")

        timer = threading.Timer(deadline.remaining() + CANCEL_MARGIN, cancel)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with lock:
                state["active"] = False
            timer.cancel()

    def _sql_execute(self, sql):
        with self._sql_watchdog():
            self.env.cr.execute(sql, log_exceptions=False)

    @contextlib.contextmanager
    def _sql_credentials_hint(self, stmt):
        """A statement the role may not run fails with a message saying which columns it never reads."""
        try:
            yield
        except psycopg2.errors.InsufficientPrivilege as exc:
            if not self._sql_role:
                raise
            error = (exc.pgerror or str(exc)).strip().splitlines()[0]
            named = sqlguard.relations(stmt.node)
            credentials = {name: columns for name, columns in
                           sqlrole.credential_relations(self.env.cr, self._sql_credential_fields()).items()
                           if name in named}
            detail = "; ".join(f"{name}: {', '.join(cols) if cols else 'a view of credentials'}"
                               for name, cols in sorted(credentials.items()))
            detail = f" ({detail})" if detail else ""  # not inside _(): the term extractor evaluates its arguments
            raise UserError(_(
                "%(error)s. The SQL tools run as the role %(role)s, which never reads credentials (password and key "
                "hashes, tokens, TOTP secrets, secret system parameters)%(detail)s: name the columns you need "
                "instead of * or a whole row.",
                error=error, role=self._sql_role, detail=detail,
            )) from None

    def _sql_fetch(self, max_rows):
        cr = self.env.cr
        if cr.description is None:
            return None, None, False, cr.rowcount
        columns = [d.name for d in cr.description]
        rows = cr.fetchmany(max_rows + 1)
        more = len(rows) > max_rows
        return columns, [[jsonable(v) for v in row] for row in rows[:max_rows]], more, cr.rowcount

    def _sql_read(self, sql, max_rows=FETCH_CAP):
        """Run a read statement in a nested read-only savepoint that is always rolled back.
        Return (columns, rows, more_rows, rowcount)."""
        cr = self.env.cr
        name = f"ocore_sql_ro_{uuid.uuid4().hex}"
        cr.execute(SQL("SAVEPOINT %s", SQL.identifier(name)))
        try:
            if self._sql_role:  # undone with the savepoint, like the read-only mode
                cr.execute(SQL("SET LOCAL transaction_read_only = on; SET LOCAL ROLE %s",
                               SQL.identifier(self._sql_role)))
            else:
                cr.execute("SET LOCAL transaction_read_only = on")
            self._sql_execute(sql)
            return self._sql_fetch(max_rows)
        finally:
            cr.execute(SQL("ROLLBACK TO SAVEPOINT %s", SQL.identifier(name)))
            cr.execute(SQL("RELEASE SAVEPOINT %s", SQL.identifier(name)))

    def _sql_write(self, sql, max_rows=FETCH_CAP):
        """Run a data-modifying statement in the call's savepoint."""
        check_write(self._call().spec, self._call().connection)  # same check as the pipeline's
        cr = self.env.cr
        if not self._sql_role:
            self._sql_execute(sql)
            result = self._sql_fetch(max_rows)
            self.env.invalidate_all()
            return result
        # as the role (RETURNING and WHERE read no credential either), back to the database user after it
        name = f"ocore_sql_rw_{uuid.uuid4().hex}"
        cr.execute(SQL("SAVEPOINT %s; SET LOCAL ROLE %s", SQL.identifier(name), SQL.identifier(self._sql_role)))
        try:
            self._sql_execute(sql)
            result = self._sql_fetch(max_rows)
        except BaseException:
            cr.execute(SQL("ROLLBACK TO SAVEPOINT %s; RELEASE SAVEPOINT %s", SQL.identifier(name),
                           SQL.identifier(name)))
            raise
        cr.execute(SQL("SET LOCAL ROLE NONE; RELEASE SAVEPOINT %s", SQL.identifier(name)))
        self.env.invalidate_all()
        return result

    def _sql_explain(self, stmt, analyze=False):
        """The query plan as text (EXPLAIN ANALYZE only for read statements)."""
        options = "(ANALYZE, BUFFERS) " if analyze and stmt.kind == "select" else ""
        _columns, rows, _more, _count = self._sql_read(f"EXPLAIN {options}{stmt.explainable_sql}")
        return "\n".join(row[0] for row in rows)

    def _sql_preview(self, stmt):
        """EXPLAIN of a data-modifying statement: (plan text, estimated rows written)."""
        plan_text = self._sql_explain(stmt)
        _columns, rows, _more, _count = self._sql_read(f"EXPLAIN (FORMAT JSON) {stmt.explainable_sql}")
        plan = rows[0][0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return plan_text, _plan_rows(plan[0]["Plan"])

    def _sql_result(self, stmt, columns, rows, more, rowcount, limit_added, output="json"):
        result = {"statement": stmt.command}
        if columns is None:
            result["row_count"] = rowcount
            return result
        result.update(columns=columns, row_count=len(rows), truncated=more)
        if stmt.kind == "dml":
            result["affected_rows"] = rowcount
        if limit_added:
            result["limit_applied"] = SELECT_LIMIT
        if more:
            result["note"] = (f"more rows exist: the first {len(rows)} are returned; "
                              "add a LIMIT/OFFSET or aggregate")
        if output == "table":
            table = format_table(columns, rows)
            return TextResult(table, dict(result, table=table))
        if output == "csv":
            text = format_csv(columns, rows)
            return TextResult(text, dict(result, csv=text))
        result["rows"] = rows
        return result

    def _sql_run_statement(self, stmt, output="json"):
        """Run one checked SELECT or DML statement (confirmation already handled)."""
        with self._sql_credentials_hint(stmt):
            if stmt.kind == "select":
                limit_added = isinstance(stmt.node, sqlguard.ast.SelectStmt) and not stmt.has_limit
                if limit_added:
                    columns, rows, more, count = self._sql_read(sqlguard.add_limit(stmt, SELECT_LIMIT + 1),
                                                                SELECT_LIMIT)
                else:
                    columns, rows, more, count = self._sql_read(stmt.sql)
                return self._sql_result(stmt, columns, rows, more, count, limit_added, output)
            columns, rows, more, count = self._sql_write(stmt.sql)
        return self._sql_result(stmt, columns, rows, more, count, False, output)

    # -- tools ----------------------------------------------------------------------------

    @mcp_tool("sql", kind="write", admin_only=True, model_args=(), readonly_when=_execute_sql_reads_only,
              title="Run SQL")
    def _tool_execute_sql(
        self,
        query: str,
        format: Literal["json", "table", "csv"] = "json",
        explain: bool = False,
        confirm: bool = False,
    ) -> dict:
        """Run one SQL statement (bypasses record rules). SELECT read-only, LIMIT 1000; DML needs confirm (else
        EXPLAIN); DDL, COPY, SET, file/admin functions refused.

        Args:
            explain: The plan (ANALYZE for SELECT).
        """
        call = self._call()
        stmt = _guard(query, max_statements=1)[0]
        tools = self._sql_prepare([stmt])
        if explain and not isinstance(stmt.node, sqlguard.ast.ExplainStmt):
            with tools._sql_credentials_hint(stmt):
                return {"statement": stmt.command, "plan": tools._sql_explain(stmt, analyze=True)}
        if stmt.kind == "dml" and not (call.confirm or call.dry_run):
            with tools._sql_credentials_hint(stmt):
                plan, estimate = tools._sql_preview(stmt)
            # a preview, not an error: nothing ran, the result says what would and how to run it
            warning = (f"Confirmation required: nothing was done. {stmt.command} would write an estimated "
                       f"{estimate} row(s). Call again with confirm: true to run it.")
            return TextResult(f"{warning}\n\nQuery plan:\n{plan}", {
                "statement": stmt.command, "executed": False, "confirmation_required": True,
                "estimated_rows": estimate, "warning": warning, "plan": plan})
        return tools._sql_run_statement(stmt, format)

    @mcp_tool("sql", kind="destructive", admin_only=True, model_args=(), title="Run SQL script")
    def _tool_execute_sql_script(self, script: str) -> dict:
        """Run SQL statements (BEGIN/COMMIT/SAVEPOINT as savepoints), all rolled back on a failure."""
        statements = _guard(script, allow_transaction=True, max_statements=SCRIPT_MAX_STATEMENTS)
        tools = self._sql_prepare(statements)
        cr = self.env.cr
        stack = []  # open frames: [kind ("tx" | "sp"), user savepoint name, our savepoint name]
        results, notes = [], []
        for stmt in statements:
            entry = {"index": stmt.index + 1, "statement": stmt.command}
            try:
                if stmt.kind == "transaction":
                    note = tools._sql_script_control(stmt, stack)
                    if note:
                        notes.append(f"statement {stmt.index + 1}: {note}")
                    entry["status"] = "ok"
                else:
                    value = tools._sql_run_statement(stmt)
                    entry.update(value)
            except psycopg2.errors.QueryCanceled:
                raise
            except (psycopg2.Error, UserError) as exc:
                error = (getattr(exc, "pgerror", None) or (exc.args[0] if exc.args else str(exc))).strip()
                raise ToolFailed(
                    f"error: statement {stmt.index + 1} ({stmt.command}) failed: {error}. The whole script "
                    "was rolled back.",
                    {"failed_statement": stmt.index + 1, "error": error, "rolled_back": True,
                     "statements": results},
                ) from None
            results.append(entry)
        for kind, _user_name, name in reversed(stack):
            if kind == "tx":
                cr.execute(SQL("ROLLBACK TO SAVEPOINT %s", SQL.identifier(name)))
                notes.append("a BEGIN block without COMMIT was rolled back at the end of the script")
            cr.execute(SQL("RELEASE SAVEPOINT %s", SQL.identifier(name)))
        self.env.invalidate_all()
        out = {"statements": results, "executed": len(results)}
        if notes:
            out["notes"] = notes
        return out

    def _sql_script_control(self, stmt, stack):
        """Map a transaction control statement onto savepoints of the call's transaction."""
        cr = self.env.cr
        action = stmt.transaction
        if action == "begin":
            name = f"ocore_sql_tx_{uuid.uuid4().hex}"
            cr.execute(SQL("SAVEPOINT %s", SQL.identifier(name)))
            stack.append(("tx", None, name))
            return None
        if action == "savepoint":
            name = f"ocore_sql_sp_{uuid.uuid4().hex}"
            cr.execute(SQL("SAVEPOINT %s", SQL.identifier(name)))
            stack.append(("sp", stmt.savepoint, name))
            return None
        if action in ("commit", "rollback"):
            at = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] == "tx"), None)
            if at is None:
                return f"{action.upper()} outside a BEGIN block: nothing to do"
            name = stack[at][2]
            if action == "rollback":
                cr.execute(SQL("ROLLBACK TO SAVEPOINT %s", SQL.identifier(name)))
            cr.execute(SQL("RELEASE SAVEPOINT %s", SQL.identifier(name)))
            del stack[at:]
            return None
        # release / rollback_to a named savepoint of the current BEGIN block
        at = next((i for i in range(len(stack) - 1, -1, -1)
                   if stack[i][0] == "sp" and stack[i][1] == stmt.savepoint), None)
        if at is None:
            raise UserError(_("savepoint %r does not exist", stmt.savepoint))
        if any(frame[0] == "tx" for frame in stack[at + 1:]):
            raise UserError(_("savepoint %r was set outside the current BEGIN block", stmt.savepoint))
        name = stack[at][2]
        if action == "rollback_to":
            cr.execute(SQL("ROLLBACK TO SAVEPOINT %s", SQL.identifier(name)))
            del stack[at + 1:]
        else:
            cr.execute(SQL("RELEASE SAVEPOINT %s", SQL.identifier(name)))
            del stack[at:]
        return None

    @mcp_tool("sql", kind="read", admin_only=True, model_args=(), title="List tables")
    def _tool_list_tables(self, search: str | None = None, raw_pg: bool = False, limit: int = 200) -> dict:
        """Tables with estimated rows, sizes, models.

        Args:
            raw_pg: PostgreSQL statistics.
        """
        limit = max(1, min(int(limit), 5000))
        cr = self.env.cr
        cr.execute("""
            SELECT c.relname, c.relkind,
                   CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE s.n_live_tup END,
                   pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid),
                   s.n_live_tup, s.n_dead_tup, s.seq_scan, s.idx_scan,
                   GREATEST(s.last_vacuum, s.last_autovacuum), GREATEST(s.last_analyze, s.last_autoanalyze)
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
          ORDER BY c.relname
        """)
        rows = cr.fetchall()
        mapping, relations = ({}, {}) if raw_pg else self._sql_table_models()
        needle = (search or "").strip().lower()
        tables = []
        for (name, relkind, estimate, total, table_size, index_size, live, dead, seq_scan, idx_scan,
             vacuumed, analyzed) in rows:
            item = {
                "table": name,
                "rows_estimate": int(estimate) if estimate is not None else None,
                "total_size": total,
                "total_size_pretty": _pretty(total),
            }
            if raw_pg:
                item.update(
                    kind="partitioned" if relkind == "p" else "table",
                    table_size=table_size, index_size=index_size, live_tuples=live, dead_tuples=dead,
                    seq_scans=seq_scan, index_scans=idx_scan,
                    last_vacuum=jsonable(vacuumed), last_analyze=jsonable(analyzed),
                )
            else:
                item["models"] = mapping.get(name, [])
                if name in relations:
                    item["many2many_of"] = relations[name]
            if needle and needle not in name.lower() and not any(needle in m for m in item.get("models", [])):
                continue
            tables.append(item)
        return {"schema": self._sql_schema(), "count": len(tables), "tables": tables[:limit],
                "truncated": len(tables) > limit}

    def _sql_schema(self):
        self.env.cr.execute("SELECT current_schema()")
        return self.env.cr.fetchone()[0]

    def _sql_table_models(self):
        """{table: [model names]} and {relation table: ["model.field", ...]} from the registry."""
        tables, relations = {}, {}
        for name, model in self.env.registry.items():
            if model._abstract or not model._table:
                continue
            tables.setdefault(model._table, []).append(name)
            for field in model._fields.values():
                if field.type == "many2many" and field.store and getattr(field, "relation", None):
                    owner = f"{name}.{field.name}"
                    if owner not in relations.setdefault(field.relation, []):
                        relations[field.relation].append(owner)
        return tables, relations


def _pretty(size):
    if size is None:
        return None
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return None
