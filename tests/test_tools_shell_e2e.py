"""Shell tools end to end: the official SDK client against a real server (commits are real here)."""

from __future__ import annotations

import secrets
import time

import anyio
import pytest
from mcp_helpers import TRANSPORT_IDS, TRANSPORTS, data_of, error_of, list_all_tools, text_of

pytestmark = pytest.mark.anyio

SHELL_TOOLS = {"execute_shell", "execute_shell_multi", "python_repl"}


async def call(client, slug, tool, **args):
    return await client.call_tool(f"{slug}_{tool}", args)


def partners_named(admin, name):
    return admin.search_read("res.partner", [("name", "=", name)], ["id"])



async def test_shell_tools_listed_for_admins_only(mcp_client, slug, internal_user_key):
    async with mcp_client() as client:
        tools = {t.name: t for t in await list_all_tools(client)}
    for name in SHELL_TOOLS:
        assert f"{slug}_{name}" in tools
        assert not tools[f"{slug}_{name}"].annotations.read_only_hint
    assert tools[f"{slug}_execute_shell_multi"].input_schema["properties"]["commands"]["type"] == "array"
    async with mcp_client(key=internal_user_key) as client:
        names = {t.name for t in await list_all_tools(client)}
        assert not {f"{slug}_{name}" for name in SHELL_TOOLS} & names
        assert "only offered to system administrators" in error_of(
            await call(client, slug, "execute_shell", code="1"))


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_execute_shell_commits_on_success(mcp_client, slug, admin, transport, mode):
    name = f"Shell e2e {secrets.token_hex(4)}"
    async with mcp_client(transport, mode) as client:
        data = data_of(await call(client, slug, "execute_shell", code=(
            f"p = env['res.partner'].create({{'name': {name!r}}})\n"
            "print('created', p.name, 'as', self.login)\n"
            "import sys; print('note', file=sys.stderr)\n"
            "p.id")))
    assert data["exit_code"] == 0
    assert data["stdout"] == f"created {name} as admin\n"
    assert data["stderr"] == "note\n"
    rows = partners_named(admin, name)
    assert [r["id"] for r in rows] == [int(data["result"])]


async def test_execute_shell_failure_rolls_back_and_shows_output(mcp_client, slug, admin):
    name = f"Shell e2e lost {secrets.token_hex(4)}"
    async with mcp_client() as client:
        result = await call(client, slug, "execute_shell", code=(
            f"env['res.partner'].create({{'name': {name!r}}})\nprint('half way')\nraise RuntimeError('boom')"))
        text = error_of(result)
    assert "RuntimeError: boom" in text and "rolled back" in text and "half way" in text
    data = result.structured_content
    assert data["exit_code"] == 1 and data["stdout"] == "half way\n"
    assert "Traceback" in data["stderr"] and "line 3" in data["stderr"]
    assert partners_named(admin, name) == []
    row = admin.wait_audit([("tool", "=", "execute_shell"), ("status", "=", "error")],
                           predicate=lambda r: "boom" in (r["error_message"] or ""))[0]
    assert row["success"] is False


async def test_shell_multi_and_repl(mcp_client, slug, admin):
    name = f"Shell multi {secrets.token_hex(4)}"
    async with mcp_client() as client:
        data = data_of(await call(client, slug, "execute_shell_multi", commands=[
            "import json\ncount = 2", f"names = [{name!r} + str(i) for i in range(count)]",
            "recs = env['res.partner'].create([{'name': n} for n in names])\nprint(json.dumps(names))",
        ]))
        assert [c["exit_code"] for c in data["commands"]] == [0, 0, 0]
        assert data["commands"][2]["stdout"].strip() == f'["{name}0", "{name}1"]'
        result = await call(client, slug, "execute_shell_multi", commands=[
            f"env['res.partner'].create({{'name': {name + 'x'!r}}})", "undefined_name", "print('never')"])
        assert "command 2 of 3 failed" in error_of(result)
        assert result.structured_content["failed_command"] == 2
        data = data_of(await call(client, slug, "python_repl", code="x = 6\nx * 7\nenv.user.login"))
        assert data["stdout"] == "42\n'admin'\n"
        assert "NameError" in error_of(await call(client, slug, "python_repl", code="x"))  # stateless
    assert len(partners_named(admin, f"{name}0")) == 1
    assert partners_named(admin, name + "x") == []


async def test_timeout_interrupts_a_python_loop(mcp_client, slug, admin):
    started = time.monotonic()
    async with mcp_client() as client:
        text = error_of(await call(client, slug, "execute_shell", code="while True:\n    pass", timeout_seconds=2))
        assert "timeout" in text and "timeout_seconds=2" in text
        # the server is fine afterwards
        assert data_of(await call(client, slug, "python_repl", code="1 + 1"))["stdout"] == "2\n"
    assert time.monotonic() - started < 30


async def test_concurrent_calls_capture_their_own_output(mcp_client, slug, odoo):
    """Two shell calls running at the same time in the threaded server: each one's print()s only."""
    if odoo.mode != "threaded":
        # prefork workers are single-threaded processes; two SDK clients' GET streams would hold both workers
        pytest.skip("concurrent output capture is a threaded-server concern")
    code = ("import time\nfor i in range(40):\n    print('{tag}', i)\n    time.sleep(0.01)")
    results = {}

    async def run(tag):
        async with mcp_client() as client:
            results[tag] = data_of(await call(client, slug, "execute_shell", code=code.format(tag=tag)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "AAA")
        tg.start_soon(run, "BBB")
    for tag in ("AAA", "BBB"):
        assert results[tag]["stdout"] == "".join(f"{tag} {i}\n" for i in range(40))


async def test_policy(mcp_client, slug, admin):
    ro_key = admin.create_key(name="shell e2e read-only", read_only=True)
    async with mcp_client(key=ro_key) as client:
        assert "write operations blocked" in error_of(await call(client, slug, "execute_shell", code="1"))
    with admin.params(write_enabled="False"):
        async with mcp_client() as client:
            text = error_of(await call(client, slug, "python_repl", code="1"))
            assert "mcp_write_enabled off" in text
    sql_only = admin.create_key(name="shell e2e sql only", categories=["sql"])
    async with mcp_client(key=sql_only) as client:
        assert "permission denied" in error_of(await call(client, slug, "execute_shell_multi", commands=["1"]))
        assert not text_of(await call(client, slug, "execute_sql", query="SELECT 1")).startswith("permission")


# Routes around the Python-level guards: the fence row's deferred trigger fails the COMMIT, the call notices
# that its transaction ended, closes the connection (rolling back what was written since) and the audit row
# is completed through a new connection.
BYPASSES = {
    "c-level-commit": "import psycopg2\n{create}\npsycopg2.extensions.connection.commit(env.cr._cnx)",
    "c-level-commit-caught": ("import psycopg2\n{create}\ntry:\n    psycopg2.extensions.connection.commit(env.cr._cnx)\n"
                              "except Exception as exc:\n    print('caught', type(exc).__name__)\n{create2}"),
    "c-level-rollback-then-write": ("import psycopg2\npsycopg2.extensions.connection.rollback(env.cr._cnx)\n{create}\n"
                                    "env.flush_all()\nraise RuntimeError('after the rollback')"),
    "raw-cursor-commit": ("import psycopg2\n{create}\nenv.flush_all()\n"
                          "psycopg2.extensions.cursor(env.cr._cnx).execute('COMMIT')"),
}


@pytest.mark.parametrize("route", sorted(BYPASSES))
async def test_bypassing_the_guards_commits_nothing(mcp_client, slug, admin, route):
    tag = secrets.token_hex(4)
    name, name2 = f"Shell bypass {tag}", f"Shell bypass after {tag}"
    code = BYPASSES[route].format(create=f"env['res.partner'].create({{'name': {name!r}}})\nenv.flush_all()",
                                  create2=f"env['res.partner'].create({{'name': {name2!r}}})\nenv.flush_all()")
    async with mcp_client() as client:
        result = await call(client, slug, "execute_shell", code=code)
        assert result.is_error, text_of(result)
        # the worker and the connection pool serve the next call
        assert data_of(await call(client, slug, "python_repl", code="1 + 1"))["stdout"] == "2\n"
    assert partners_named(admin, name) == []
    assert partners_named(admin, name2) == []
    rows = admin.wait_audit([("tool", "=", "execute_shell")], predicate=lambda r: tag in str(r["params"]))
    assert rows[0]["status"] == "error", rows[0]


async def test_guarded_routes_are_refused_end_to_end(mcp_client, slug, admin):
    tag = secrets.token_hex(4)
    name = f"Shell guarded {tag}"
    create = f"env['res.partner'].create({{'name': {name!r}}})\nenv.flush_all()\n"
    async with mcp_client() as client:
        for route in ("env.cr._cnx.commit()", "env.cr.connection.commit()", "env.cr.execute('COMMIT')",
                      "env.cr._obj.execute('END')", "env.registry.cursor().execute('SELECT 1')",
                      "odoo.sql_db.db_connect(env.cr.dbname).cursor()"):
            result = await call(client, slug, "execute_shell", code=create + route + "\nraise RuntimeError('x')")
            assert result.is_error
            assert "not available in MCP shell tools" in result.structured_content["stderr"], route
    assert partners_named(admin, name) == []
