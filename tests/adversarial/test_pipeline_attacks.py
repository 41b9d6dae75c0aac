"""Bursts of concurrent calls of one key across the server's workers (``pipeline_attack_cases.jsonl``), against
the call path's bookkeeping (the rate-limit hit and the 'running' row on each worker's bookkeeping connection, a
read tool's own transaction committed with its outcome)::

    {"id", "tool", "args", "limit": the key's rate limit per minute, "calls": sent at once,
     "policy_refused": true when the policy refuses every call (counted all the same)}

Whatever the tool's outcome (success, failure, refusal), at most ``limit`` calls are admitted across workers, every
call has exactly one audit row, none is left 'running', and the refusals say why."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from harness import pg_query
from mcp_helpers import STREAM_PATH, Raw, modern_request, parse_body

CASES = Path(__file__).parent / "pipeline_attack_cases.jsonl"
CASE_LIST = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
pytestmark = pytest.mark.timeout(300)


def burst(odoo, key, slug, tool, args, calls):
    """``calls`` tools/call POSTs sent at once from as many threads; their JSON-RPC answers."""
    answers, gate = [None] * calls, threading.Barrier(calls)

    def one(i):
        raw = Raw(odoo.url)
        try:
            body, headers = modern_request("tools/call", {"name": f"{slug}_{tool}", "arguments": args}, id=i + 1)
            gate.wait(30)
            resp = raw.post(STREAM_PATH, body, key=key, headers=headers)
            answers[i] = (resp.status_code, parse_body(resp) if resp.content else None)
        finally:
            raw.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


@pytest.mark.parametrize("case", CASE_LIST, ids=[c["id"] for c in CASE_LIST])
def test_burst_is_counted_and_audited_exactly(odoo, admin, slug, case):
    key = admin.create_key(f"pipeline {case['id']}", rate_limit=case["limit"])
    answers = burst(odoo, key, slug, case["tool"], case["args"], case["calls"])
    assert all(a is not None and a[0] in (200, 429) for a in answers), answers
    results = [a[1].get("result") or {} for a in answers]
    texts = [" ".join(c.get("text", "") for c in r.get("content") or []) for r in results]
    rate_refused = sum("rate limit exceeded" in t for t in texts)
    admitted = case["calls"] - rate_refused
    rows = pg_query(odoo.setup, odoo.db, """SELECT status, refusal_reason FROM mcp_audit_log
                                             WHERE key_id = %s AND event IN ('call', 'denied') ORDER BY id""",
                    (key.id,))
    assert len(rows) == case["calls"], f"{case['id']}: {len(rows)} audit rows for {case['calls']} calls: {rows}"
    assert not [r for r in rows if r[0] == "running"], f"{case['id']}: rows left running: {rows}"
    rate_rows = [r for r in rows if r[1] == "rate_limited"]
    assert len(rate_rows) == rate_refused, f"{case['id']}: {rate_refused} refusals answered, {len(rate_rows)} audited"
    # a call the policy refuses counts against the limit too (every request does)
    assert admitted == min(case["limit"], case["calls"]), \
        f"{case['id']}: {admitted} calls admitted under a limit of {case['limit']}/min"
    if case.get("policy_refused"):
        assert all(r[0] == "refused" for r in rows), rows
