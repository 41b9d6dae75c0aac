"""Adversarial corpus: every case of ``cases/*.jsonl`` is refused with a clear error and leaves the
database (and the files outside the file tools' root) unchanged.

A case of a tool family is one ``tools/call`` through the official SDK client::

    {"id": ..., "tool": "<tool without the instance prefix>", "args": {...}, "expect": "<regex of the error>",
     "key": "admin" (default) | "orm" | "partner_only" | "read_only" | ..., "query": "?instances=..",
     "setup": "production"}

It passes when the result is an error (``isError``) whose text matches ``expect``. Placeholders
``{NAME}`` in string arguments are replaced by the fixture's values (conftest.py); a string that is
exactly one placeholder takes the value's type. Generated values: ``{"$repeat": v, "n": N}``,
``{"$range": N}``, ``{"$str": s, "n": N}``, ``{"$b64": bytes}``, ``{"$nest": depth}`` ...

Raw HTTP cases (``"kind": "raw"`` / ``"modern"``) pass on a 4xx answer or a JSON-RPC error, never a 5xx;
``"path"`` (default the Streamable HTTP endpoint) and ``"method"`` (default POST) choose the request, and
``"status"`` requires that exact HTTP status (e.g. 403 for a foreign ``Origin``).
CSV cases (``"kind": "csv_import"`` / ``"csv_export"``) pass when the formula cell is neutralised.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import secrets
from pathlib import Path

import mcp_types
import pytest
from harness import pg_query
from mcp_helpers import (
    LATEST_HANDSHAKE,
    STREAM_PATH,
    Raw,
    connect,
    modern_request,
    parse_body,
    text_of,
)

pytestmark = pytest.mark.anyio

CASES_DIR = Path(__file__).parent / "cases"
FAMILIES = sorted(p.stem for p in CASES_DIR.glob("*.jsonl"))
MIN_CASES = 500

# (table, expression) of the database fingerprint: what any escaped write would change
FINGERPRINT = [
    (table, "count(*)::text || '/' || coalesce(max(id), 0) || '/' || coalesce(max(write_date)::text, '')")
    for table in ("res_partner", "res_users", "res_groups", "res_company", "ir_attachment", "ir_rule",
                  "ir_model_access", "ir_model", "ir_model_fields", "ir_module_module", "ir_act_server",
                  "ir_model_data", "ir_ui_view")
] + [
    ("res_users_apikeys", "count(*)::text || '/' || coalesce(max(id), 0)"),
    ("ocore_mcp_key", "md5(string_agg(id || ':' || active || ':' || read_only, ',' ORDER BY id))"),
    ("res_groups_users_rel", "md5(coalesce(string_agg(gid || ':' || uid, ',' ORDER BY gid, uid), ''))"),
    ("res_users", "md5(string_agg(id || ':' || active || ':' || coalesce(password, ''), ',' ORDER BY id))"),
    ("res_partner", "md5(string_agg(id || ':' || active || ':' || coalesce(name, '') || ':' || coalesce(ref, ''),"
                    " ',' ORDER BY id))"),
    ("ir_cron", "md5(string_agg(id || ':' || active || ':' || coalesce(nextcall::text, ''), ',' ORDER BY id))"),
    ("ir_config_parameter", "md5(string_agg(key || '=' || coalesce(value, ''), ',' ORDER BY key))"),
    ("pg_tables", "count(*)::text"),
    ("pg_proc", "count(*)::text"),
    ("pg_roles", "count(*)::text"),
]
PLACEHOLDER = re.compile(r"\{([A-Z_]+)\}")


def load(family):
    with open(CASES_DIR / f"{family}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def fingerprint(odoo):
    parts = [f"SELECT {expr} FROM {table}" for table, expr in FINGERPRINT]
    sql = " UNION ALL ".join(f"({p})" for p in parts)
    rows = pg_query(odoo.setup, odoo.db, sql)
    return dict(zip([f"{t}:{i}" for i, (t, _e) in enumerate(FINGERPRINT)], [r[0] for r in rows], strict=True))


def tree_digest(path: Path):
    """Names, sizes and contents of every file under ``path`` (the outside of the files root)."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode())
        if item.is_file() and not item.is_symlink():
            digest.update(item.read_bytes())
    return digest.hexdigest()


def expand(value, values):
    """Substitute placeholders and generated values in a case's arguments."""
    if isinstance(value, dict):
        if "$repeat" in value:
            return [expand(value["$repeat"], values) for _ in range(value["n"])]
        if "$range" in value:
            return list(range(1, value["$range"] + 1))
        if "$str" in value:
            return value["$str"] * value["n"]
        if "$b64" in value:
            return base64.b64encode(b"\0" * value["$b64"]).decode()
        if "$nest" in value:
            nested = ["name", "=", "x"]
            for _ in range(value["$nest"]):
                nested = [nested]
            return nested
        if "$inlist" in value:
            return [["id", "in", list(range(1, value["$inlist"] + 1))]]
        if "$ilike" in value:
            return [["name", "ilike", "x" * value["$ilike"]]]
        if "$csv" in value:
            return "name\n" + ("x" * 99 + "\n") * (value["$csv"] // 100)
        if "$csvrows" in value:
            return "name\n" + "".join(f"adv {i}\n" for i in range(value["$csvrows"]))
        if "$sqlbig" in value:
            return "SELECT 1 WHERE 'x' = '" + "x" * value["$sqlbig"] + "'; DROP TABLE res_partner"
        if "$script" in value:
            return "".join("SELECT 1;\n" for _ in range(value["$script"]))
        return {k: expand(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, values) for v in value]
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    return value


def short(value, size=160):
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= size else text[:size] + f"... ({len(text)} chars)"


def neutralise(value):
    """What the export must write for a text cell (the spreadsheet formula prefixes get a quote)."""
    if value[:1] in ("=", "@", "\t", "\r") or (value[:1] in "+-" and not re.fullmatch(r"[+-][0-9 ().,/+-]*", value)):
        return "'" + value
    return value


class Outcome:
    def __init__(self, tally, family, total):
        self.tally = tally
        self.family = family
        self.total = total
        self.failures = []
        self.failed = set()

    def fail(self, case, why):
        self.failed.add(case["id"])
        self.failures.append(f"{case['id']}: {why}")

    def finish(self):
        self.tally[self.family] = [self.total, self.total - len(self.failed)]
        assert not self.failures, f"{len(self.failures)} of {self.total} {self.family} cases NOT refused:\n" + \
            "\n".join(self.failures[:60])


@pytest.fixture(scope="module")
def unchanged(odoo, adv):
    """``with unchanged(outcome):`` records a failure of the family when the database or the outside
    of the files root differs after the block."""

    class Check:
        def __init__(self, outcome):
            self.outcome = outcome

        def __enter__(self):
            self.db = fingerprint(odoo)
            self.outside = tree_digest(adv["outside"])
            return self

        def __exit__(self, *exc):
            after = fingerprint(odoo)
            changed = {k: (v, after[k]) for k, v in self.db.items() if after[k] != v}
            if changed:
                self.outcome.failures.insert(0, f"THE DATABASE CHANGED during the family: {changed}")
            if tree_digest(adv["outside"]) != self.outside:
                self.outcome.failures.insert(0, "A FILE OUTSIDE THE FILES ROOT CHANGED during the family")
            return False

    return Check


def test_corpus_size():
    counts = {family: len(load(family)) for family in FAMILIES}
    ids = [case["id"] for family in FAMILIES for case in load(family)]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert sum(counts.values()) >= MIN_CASES, counts
    assert {"sql", "files", "identifiers", "methods", "scope", "users", "csv", "oversized", "jsonrpc",
            "headers"} <= set(counts)


# -- tool families ----------------------------------------------------------------------------

TOOL_FAMILIES = ["sql", "files", "identifiers", "methods", "scope", "users", "oversized", "sql_credentials",
                 "sql_settings", "files_symlink", "monitoring", "server_actions"]


async def run_tool_cases(odoo, admin, adv, outcome, cases):
    groups: dict[tuple, list] = {}
    for case in cases:
        groups.setdefault((case.get("key", "admin"), case.get("query", ""), case.get("setup")), []).append(case)
    values = adv["values"]
    for (key_name, query, setup), group in groups.items():
        params = {"write_enabled": "0"} if setup == "production" else {}
        with admin.params(**params):
            async with connect(odoo.url, adv["keys"][key_name], query=query, stream_port=odoo.gevent_port) as client:
                for case in group:
                    args = expand(case["args"], values)
                    try:
                        result = await client.call_tool(f"{odoo.slug}_{case['tool']}", args)
                    except Exception as exc:  # noqa: BLE001 - a protocol error is a refusal too
                        text, is_error = f"protocol error: {exc}", True
                        if not re.search(case["expect"], text) and not re.search(r"^(invalid input|unknown tool)",
                                                                                 str(exc)):
                            outcome.fail(case, f"expected /{case['expect']}/, got {short(text)}")
                        continue
                    text, is_error = text_of(result), result.is_error
                    if not is_error:
                        outcome.fail(case, f"NOT refused: {short(text, 300)}")
                    elif not re.search(case["expect"], text):
                        outcome.fail(case, f"refused without the expected /{case['expect']}/: {short(text, 300)}")


@pytest.mark.parametrize("family", TOOL_FAMILIES)
async def test_tool_family(odoo, admin, adv, adv_tally, unchanged, family):
    cases = load(family)
    outcome = Outcome(adv_tally, family, len(cases))
    with unchanged(outcome):
        await run_tool_cases(odoo, admin, adv, outcome, cases)
    outcome.finish()


# -- CSV formula injection --------------------------------------------------------------------


async def test_csv_formulas(odoo, admin, adv, adv_tally, unchanged):
    cases = load("csv")
    outcome = Outcome(adv_tally, "csv", len(cases))
    tag = secrets.token_hex(3)
    exported = {}
    for case in cases:
        if case["kind"] == "csv_export":
            ref = f"adv-csv-{tag}-{case['id']}"
            pid = admin.create("res.partner", {"name": case["cell"], "ref": ref})
            # the name as stored (Odoo may normalise it) is what the export must neutralise
            exported[case["id"]] = (ref, admin.search_read("res.partner", [("id", "=", pid)], ["name"])[0]["name"])
    with unchanged(outcome):
        async with connect(odoo.url, adv["keys"]["admin"], stream_port=odoo.gevent_port) as client:
            for case in cases:
                cell = case["cell"]
                if case["kind"] == "csv_import":
                    buf = io.StringIO()
                    csv.writer(buf).writerows([["name", "ref"], [cell, cell]])
                    result = await client.call_tool(f"{odoo.slug}_import_csv", {
                        "model": "res.partner", "csv_content": buf.getvalue(), "dry_run": True})
                    data = result.structured_content or {}
                    report = data.get("would_return") or {}
                    marked = {(n.get("row"), n.get("column")) for n in report.get("neutralised_cells") or []}
                    if result.is_error or marked != {(1, "name"), (1, "ref")}:
                        outcome.fail(case, f"import did not neutralise both cells: {short(text_of(result), 400)}")
                else:
                    result = await client.call_tool(f"{odoo.slug}_export_csv", {
                        "model": "res.partner", "domain": [["ref", "=", exported[case["id"]][0]]], "fields": ["name"],
                        "header": "name"})
                    data = result.structured_content or {}
                    content = data.get("csv") or data.get("content") or ""
                    rows = list(csv.reader(io.StringIO(content, newline="")))
                    stored = exported[case["id"]][1]
                    expected = neutralise(stored)
                    if result.is_error or len(rows) != 2 or rows[1][0] != expected:
                        outcome.fail(case, f"export did not neutralise {cell!r}: {short(content or text_of(result))}")
                    elif ("\r" in stored or "\n" in stored) and '"' + expected.replace('"', '""') + '"' not in content:
                        # unquoted, a spreadsheet starts a new row (and the formula) at the line break
                        outcome.fail(case, f"a cell with a line break is not quoted: {short(content)}")
    outcome.finish()


# -- raw HTTP: malformed JSON-RPC and wrong protocol headers ------------------------------------


def refused_http(resp):
    """Why the answer is not a refusal, or None."""
    if resp.status_code >= 500:
        return f"server error {resp.status_code}: {resp.text[:200]}"
    if 400 <= resp.status_code < 500:
        return None
    try:
        body = parse_body(resp)
    except ValueError:
        return f"status {resp.status_code}, body not JSON: {resp.text[:200]}"
    messages = body if isinstance(body, list) else [body]
    if messages and all(isinstance(m, dict) and "error" in m for m in messages):
        return None
    if isinstance(body, dict) and isinstance(body.get("result"), dict) and body["result"].get("isError"):
        return None
    return f"status {resp.status_code}, accepted: {resp.text[:300]}"


def raw_session(raw, keys, kind):
    if kind == "none":
        return None
    if kind == "bogus":
        return "bogus-" + secrets.token_hex(16)
    if kind == "other":
        return raw.open_session(keys["orm"])
    sid = raw.open_session(keys["admin"])
    if kind == "ended":
        resp = raw.request("DELETE", STREAM_PATH, key=keys["admin"],
                           headers={"Mcp-Session-Id": sid, "MCP-Protocol-Version": LATEST_HANDSHAKE})
        assert resp.status_code in (200, 202, 204), resp.text
    return sid


@pytest.mark.parametrize("family", ["jsonrpc", "headers", "origin", "limits"])
def test_raw_family(odoo, adv, adv_tally, unchanged, family):
    cases = load(family)
    outcome = Outcome(adv_tally, family, len(cases))
    keys, values = adv["keys"], adv["values"]
    raw = Raw(odoo.url)
    sessions = {}
    try:
        with unchanged(outcome):
            for case in cases:
                if case["kind"] == "modern":
                    version = case.get("version", "2026-07-28")
                    body, headers = modern_request(case["method"], expand(case.get("params"), values), version=version)
                    meta = body["params"]["_meta"]
                    if "meta_version" in case:
                        meta[mcp_types.PROTOCOL_VERSION_META_KEY] = case["meta_version"]
                    if case.get("drop_meta"):
                        del body["params"]["_meta"]
                    if "meta_raw" in case:
                        body["params"]["_meta"] = case["meta_raw"]
                    for name, value in expand(case.get("headers") or {}, values).items():
                        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
                        if value is not None:
                            headers[name] = value
                    resp = raw.post(case.get("path", STREAM_PATH), body, key=keys["admin"], headers=headers)
                else:
                    kind = case["session"]
                    if kind not in sessions:
                        sessions[kind] = raw_session(raw, keys, kind)
                    sid = sessions[kind]
                    headers = {"MCP-Protocol-Version": LATEST_HANDSHAKE}
                    if sid:
                        headers["Mcp-Session-Id"] = sid
                    headers.update(expand(case.get("headers") or {}, values))
                    path = case.get("path", STREAM_PATH)
                    if case.get("method", "POST") != "POST":
                        resp = raw.request(case["method"], path, key=keys["admin"], headers=headers)
                    elif "deep" in case:  # arguments nested deeper than any JSON encoder goes
                        depth = case["deep"]
                        text = ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "'
                                + f'{odoo.slug}_{case["tool"]}", "arguments": {{"model": "res.partner", "{case["arg"]}": '
                                + "[" * depth + "]" * depth + "}}}")
                        resp = raw.post(STREAM_PATH, key=keys["admin"], headers=headers, raw=text.encode())
                    elif "text" in case:
                        resp = raw.post(path, key=keys["admin"], headers=headers, raw=case["text"].encode())
                    else:
                        resp = raw.post(path, expand(case["body"], values), key=keys["admin"], headers=headers)
                why = refused_http(resp)
                if not why and case.get("status") and resp.status_code != case["status"]:
                    why = f"status {resp.status_code}, expected {case['status']}: {resp.text[:200]}"
                if why:
                    outcome.fail(case, why)
    finally:
        raw.close()
    outcome.finish()
