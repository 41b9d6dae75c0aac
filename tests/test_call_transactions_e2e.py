"""The transactions of a tools/call, seen from PostgreSQL: the call's 'running' audit row is committed before the
tool runs (on the bookkeeping connection of the worker), and the row's outcome commits in the tool's own
transaction, with the tool's writes (one commit per call, no write visible before its row)."""

from __future__ import annotations

import secrets
import threading

import pytest
from harness import pg_query
from mcp_helpers import data_of, error_of

pytestmark = pytest.mark.anyio


def xmin_of(odoo, table, row_id):
    rows = pg_query(odoo.setup, odoo.db, f"SELECT xmin::text FROM {table} WHERE id = %s", (row_id,))  # noqa: S608
    return rows[0][0] if rows else None


def audit_rows(odoo, key, tool):
    return pg_query(odoo.setup, odoo.db, "SELECT id, status FROM mcp_audit_log WHERE key_id = %s AND tool = %s "
                                         "ORDER BY id", (key.id, tool))


async def test_outcome_commits_with_the_tools_write(mcp_client, make_key, slug, odoo):
    """The partner a write tool creates and its audit row's final version are written by one transaction.

    The tool writes in a savepoint: its rows carry the subtransaction's id, which PostgreSQL assigns right
    after the id of the transaction holding it. The outcome, written by that enclosing transaction after the
    savepoint, so carries a smaller id than the partner; written by a transaction of its own after the
    tool's, it would carry a larger one."""
    key = make_key()
    name = f"e2e txn {secrets.token_hex(4)}"
    async with mcp_client(key=key) as client:
        created = data_of(await client.call_tool(f"{slug}_e2e_create_partner", {"name": name}))
    [(audit_id, status)] = audit_rows(odoo, key, "e2e_create_partner")
    assert status == "success"
    partner_xmin = int(xmin_of(odoo, "res_partner", created["id"]))
    outcome_xmin = int(xmin_of(odoo, "mcp_audit_log", audit_id))
    assert outcome_xmin < partner_xmin, f"the outcome ({outcome_xmin}) was written after the tool's transaction " \
                                        f"({partner_xmin}), not by it"


async def test_failed_write_keeps_its_evidence_only(mcp_client, make_key, slug, odoo):
    """A failed write: nothing of the tool is left, its row (committed before the tool ran) holds the error."""
    key = make_key()
    name = f"e2e txn fail {secrets.token_hex(4)}"
    async with mcp_client(key=key) as client:
        assert "failing after creating partner" in error_of(
            await client.call_tool(f"{slug}_e2e_create_partner", {"name": name, "fail": True}))
    assert pg_query(odoo.setup, odoo.db, "SELECT count(*) FROM res_partner WHERE name = %s", (name,))[0][0] == 0
    assert [status for _id, status in audit_rows(odoo, key, "e2e_create_partner")] == ["error"]


def test_running_row_is_committed_before_the_tool_runs(raw, make_key, slug, odoo):
    """While the tool runs, its row is already readable by any other connection, as 'running', and is not
    locked by the request (its outcome update comes after the tool)."""
    key = make_key()
    sid = raw.open_session(key)
    outcome = {}

    def call():
        from mcp_helpers import jsonrpc

        outcome["resp"] = raw.session_post(sid, jsonrpc("tools/call", {
            "name": f"{slug}_e2e_pg_sleep", "arguments": {"seconds": 3}}, id="t-1"), key, Accept="application/json")

    worker = threading.Thread(target=call)
    worker.start()
    try:
        seen = []
        for _ in range(100):  # the statement pg_sleep runs: the tool is running
            busy = pg_query(odoo.setup, odoo.db, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                            "AND query LIKE %s AND query NOT LIKE %s AND state = 'active'",
                            (odoo.db, "%pg_sleep%", "%pg_stat_activity%"))[0][0]
            if busy:
                seen = audit_rows(odoo, key, "e2e_pg_sleep")
                # not locked by the request's transaction: a NOWAIT lock of the row succeeds
                locked = pg_query(odoo.setup, odoo.db, "SELECT id FROM mcp_audit_log WHERE id = %s "
                                  "FOR UPDATE NOWAIT", (seen[0][0],))
                break
            threading.Event().wait(0.05)
        assert seen and [status for _id, status in seen] == ["running"], seen
        assert locked == [(seen[0][0],)]
    finally:
        worker.join(30)
    assert outcome["resp"].status_code == 200
    assert [status for _id, status in audit_rows(odoo, key, "e2e_pg_sleep")] == ["success"]
