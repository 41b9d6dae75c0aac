"""SQL tools end to end: the official SDK client against a real server (commits are real here)."""

from __future__ import annotations

import secrets
import time

import pytest
from harness import pg_query
from mcp_helpers import TRANSPORT_IDS, TRANSPORTS, data_of, error_of, list_all_tools, text_of

pytestmark = pytest.mark.anyio

SQL_TOOLS = {"execute_sql", "execute_sql_script", "list_tables"}


def by_transport():
    return pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)



@pytest.fixture(scope="module")
def read_only_key(admin):
    return admin.create_key(name="sql e2e read-only", read_only=True)


@pytest.fixture
def partner(admin):
    name = f"SQL e2e {secrets.token_hex(4)}"
    pid = admin.create("res.partner", {"name": name, "ref": "before"})
    return {"id": pid, "name": name}


def ref_of(admin, pid):
    rows = admin.search_read("res.partner", [("id", "=", pid), ("active", "in", [True, False])], ["ref"])
    return rows[0]["ref"] if rows else None


async def test_sql_tools_are_listed_for_admins_only(mcp_client, slug, internal_user_key):
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name in SQL_TOOLS:
        assert f"{slug}_{name}" in tools, name
    execute = tools[f"{slug}_execute_sql"]
    assert {"query", "format", "explain", "confirm", "dry_run"} <= set(
        execute.input_schema["properties"])
    assert execute.input_schema["properties"]["format"]["enum"] == ["json", "table", "csv"]
    assert tools[f"{slug}_execute_sql_script"].annotations.destructive_hint is True
    assert tools[f"{slug}_list_tables"].annotations.read_only_hint is True
    async with mcp_client(key=internal_user_key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert not {f"{slug}_{name}" for name in SQL_TOOLS} & names
        text = error_of(await call(client, slug, "execute_sql", query="SELECT 1"))
        assert "only offered to system administrators" in text


async def test_tools_run_at_odoo_isolation_level(mcp_client, slug):
    """The call's bookkeeping (rate limit, audit row) runs READ COMMITTED; the tool runs in Odoo's own
    REPEATABLE READ, call after call on the same pooled connections."""
    async with mcp_client() as client:
        for _ in range(3):
            data = data_of(await call(client, slug, "execute_sql",
                                      query="SELECT current_setting('transaction_isolation') AS level"))
            assert data["rows"] == [["repeatable read"]]


@by_transport()
async def test_select_with_auto_limit(mcp_client, slug, transport, mode, partner):
    async with mcp_client(transport, mode) as client:
        data = data_of(await call(client, slug, "execute_sql",
                                  query=f"SELECT id, name FROM res_partner WHERE id = {partner['id']}"))
        assert data["rows"] == [[partner["id"], partner["name"]]]
        assert data["columns"] == ["id", "name"]
        data = data_of(await call(client, slug, "execute_sql", query="SELECT g FROM generate_series(1, 1500) g",
                                  max_response_size=500))
        assert (data["row_count"], data["truncated"], data["limit_applied"]) == (1000, True, 1000)


async def test_formats_and_explain(mcp_client, slug, partner):
    query = f"SELECT id, name FROM res_partner WHERE id = {partner['id']}"
    async with mcp_client() as client:
        table = await call(client, slug, "execute_sql", query=query, format="table")
        assert not table.is_error
        assert f"{partner['id']} | {partner['name']}" in text_of(table)
        csv_result = await call(client, slug, "execute_sql", query=query, format="csv")
        # the CSV as is, between the untrusted-data tags of every data result
        assert f">\nid,name\r\n{partner['id']},{partner['name']}\r\n\n</untrusted-data-" in text_of(csv_result)
        plan = data_of(await call(client, slug, "execute_sql", query="SELECT count(*) FROM res_partner",
                                  explain=True))["plan"]
        assert "Aggregate" in plan and "actual time=" in plan


async def test_dml_preview_then_confirm_commits(mcp_client, slug, admin, partner):
    query = f"UPDATE res_partner SET ref = 'after' WHERE id = {partner['id']}"
    async with mcp_client() as client:
        preview = await call(client, slug, "execute_sql", query=query)
        assert not preview.is_error  # a preview is a warning, not an error
        text = text_of(preview)
        assert "Confirmation required" in text and "estimated 1 row(s)" in text
        assert "Update on res_partner" in text
        assert ref_of(admin, partner["id"]) == "before"
        data = data_of(await call(client, slug, "execute_sql", query=query, confirm=True))
        assert (data["statement"], data["row_count"]) == ("UPDATE", 1)
    assert ref_of(admin, partner["id"]) == "after"  # committed with the call


async def test_dml_dry_run_is_rolled_back(mcp_client, slug, admin, partner):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "execute_sql", dry_run=True,
                                  query=f"UPDATE res_partner SET ref = 'dry' WHERE id = {partner['id']}"))
        assert data["would_return"]["row_count"] == 1
    assert ref_of(admin, partner["id"]) == "before"


@pytest.mark.parametrize("query, expected", [
    ("DROP TABLE res_partner", "DDL is blocked: DROP"),
    ("CREATE TABLE e2e_evil (id int)", "DDL is blocked: CREATE TABLE"),
    ("SELECT * FROM pg_read_file('/etc/passwd')", "function pg_read_file() is blocked"),
    ('SELECT * FROM pg_catalog."pg_ls_dir"(\'.\')', "pg_catalog.pg_ls_dir() is blocked"),
    ("WITH x AS (SELECT lo_import('/etc/passwd')) SELECT * FROM x", "lo_import() is blocked"),
    ("SELECT set_config('role', 'postgres', true)", "set_config() is blocked"),
    ("COPY res_users TO PROGRAM 'id'", "COPY is blocked"),
    ("SET ROLE postgres", "SET is blocked"),
    ("SELECT 1; DROP TABLE res_partner", "use execute_sql_script"),
])
async def test_guard_refusals(mcp_client, slug, admin, query, expected):
    async with mcp_client() as client:
        text = error_of(await call(client, slug, "execute_sql", query=query, confirm=True))
    assert text.startswith("SQL refused:") and expected in text
    # a refusal of the tool's own guard is "refused", like the policy's
    row = admin.wait_audit([("tool", "=", "execute_sql"), ("status", "=", "refused")],
                           predicate=lambda r: expected in (r["error_message"] or ""))[0]
    assert row["refusal_reason"] == "sql_refused"


async def test_select_is_read_only_and_the_call_is_audited(mcp_client, slug, admin):
    async with mcp_client() as client:
        text = error_of(await call(client, slug, "execute_sql", query="SELECT nextval('res_partner_id_seq')"))
        assert "read-only transaction" in text
        marker = secrets.token_hex(4)
        data = data_of(await call(client, slug, "execute_sql", query=f"SELECT '{marker}' AS m"))
        assert data["rows"] == [[marker]]
    # the audit row of the read-only call was completed after it (the transaction was read-write again)
    row = admin.wait_audit([("tool", "=", "execute_sql")], predicate=lambda r: marker in (r["params"] or ""))[0]
    assert (row["status"], row["success"]) == ("success", True)


async def test_read_only_key_and_production_guard(mcp_client, slug, admin, read_only_key, partner):
    update = f"UPDATE res_partner SET ref = 'ro' WHERE id = {partner['id']}"
    async with mcp_client(key=read_only_key) as client:
        assert data_of(await call(client, slug, "execute_sql", query="SELECT 1 AS one"))["rows"] == [[1]]
        text = error_of(await call(client, slug, "execute_sql", query=update, confirm=True))
        assert "write operations blocked" in text
        assert data_of(await call(client, slug, "list_tables", search="res_partner"))["count"] >= 1
    with admin.params(write_enabled="False"):
        async with mcp_client() as client:
            assert data_of(await call(client, slug, "execute_sql", query="SELECT 2 AS two"))["rows"] == [[2]]
            text = error_of(await call(client, slug, "execute_sql", query=update, confirm=True))
            assert "mcp_write_enabled off" in text
    assert ref_of(admin, partner["id"]) == "before"


async def test_statement_timeout(mcp_client, slug):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "execute_sql", query="SELECT current_setting('statement_timeout')",
                                  timeout_seconds=9))
        assert data["rows"] == [["9s"]]
        text = error_of(await call(client, slug, "execute_sql", query="SELECT pg_sleep(5)", timeout_seconds=1))
        assert "timeout" in text


async def test_script_with_transaction_control(mcp_client, slug, admin, partner):
    pid = partner["id"]
    script = (f"BEGIN; UPDATE res_partner SET ref = 'lost' WHERE id = {pid}; ROLLBACK; "
              f"BEGIN; UPDATE res_partner SET ref = 'kept' WHERE id = {pid}; SAVEPOINT s; "
              f"UPDATE res_partner SET ref = 'undone' WHERE id = {pid}; ROLLBACK TO SAVEPOINT s; COMMIT; "
              f"SELECT ref FROM res_partner WHERE id = {pid}")
    async with mcp_client() as client:
        text = error_of(await call(client, slug, "execute_sql_script", script=script))
        assert "confirmation required" in text
        data = data_of(await call(client, slug, "execute_sql_script", script=script, confirm=True))
        assert data["executed"] == 10
        assert data["statements"][-1]["rows"] == [["kept"]]
    assert ref_of(admin, pid) == "kept"


async def test_script_failure_rolls_back_everything(mcp_client, slug, admin, partner):
    pid = partner["id"]
    async with mcp_client() as client:
        result = await call(client, slug, "execute_sql_script", confirm=True,
                            script=f"UPDATE res_partner SET ref = 'partial' WHERE id = {pid}; SELECT 1/0")
        text = error_of(result)
        assert "statement 2 (SELECT) failed" in text and "division by zero" in text
        assert result.structured_content["failed_statement"] == 2
        text = error_of(await call(client, slug, "execute_sql_script", confirm=True,
                                   script=f"UPDATE res_partner SET ref = 'x' WHERE id = {pid}; TRUNCATE res_partner"))
        assert "statement 2: DDL is blocked: TRUNCATE" in text
    assert ref_of(admin, pid) == "before"


async def test_list_tables(mcp_client, slug):
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "list_tables", search="res_partner"))
        tables = {t["table"]: t for t in data["tables"]}
        assert "res.partner" in tables["res_partner"]["models"]
        assert tables["res_partner"]["total_size"] > 0
        raw = data_of(await call(client, slug, "list_tables", search="res_users", raw_pg=True))
        row = next(t for t in raw["tables"] if t["table"] == "res_users")
        assert "models" not in row and "dead_tuples" in row


async def test_no_credential_comes_back(mcp_client, slug, odoo):
    """The SQL tools read as their role: no spelling returns a password hash, a key hash or database.secret."""
    secrets_seen = [row[0] for row in pg_query(odoo.setup, odoo.db,
        "SELECT password FROM res_users WHERE password IS NOT NULL UNION ALL SELECT key_hash FROM ocore_mcp_key "
        "WHERE key_hash IS NOT NULL UNION ALL SELECT value FROM ir_config_parameter WHERE key = 'database.secret'")]
    assert secrets_seen
    async with mcp_client() as client:
        for query in ("SELECT password FROM res_users", "SELECT r.* FROM res_users r",
                      "SELECT row_to_json(r) FROM res_users r", "SELECT res_users FROM res_users",
                      "TABLE ocore_mcp_key", "SELECT * FROM ir_config_parameter",
                      "WITH u AS (SELECT * FROM res_users) SELECT * FROM u"):
            text = text_of(await call(client, slug, "execute_sql", query=query))
            assert not any(secret in text for secret in secrets_seen), query
        text = error_of(await call(client, slug, "execute_sql", query="SELECT * FROM res_users"))
        assert "permission denied" in text and "res_users: password" in text
        data = data_of(await call(client, slug, "execute_sql", query="SELECT current_user"))
        assert data["rows"][0][0].startswith("ocore_mcp_sql_")


async def test_the_statement_timeout_cannot_be_lifted(mcp_client, slug):
    """UPDATE pg_settings (set_config in disguise) is refused; a long statement ends at the call's deadline
    and the worker serves the next call."""
    async with mcp_client() as client:
        text = error_of(await call(client, slug, "execute_sql_script", confirm=True, timeout_seconds=2, script=(
            "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'; SELECT pg_sleep(30)")))
        assert "SQL refused" in text and "pg_settings" in text
        started = time.monotonic()
        text = error_of(await call(client, slug, "execute_sql", query="SELECT pg_sleep(30)", timeout_seconds=2))
        assert "timeout" in text
        assert time.monotonic() - started < 2 + 8  # the 2 s deadline, not the 30 s sleep (margin for load)
        data = data_of(await call(client, slug, "execute_sql", query="SELECT 1 AS one"))
        assert data["rows"] == [[1]]
