"""Adversarial corpus of approvals, the audit log, the playground and change push:
``round_attack_cases.jsonl``, one attack per line, against a real server.

Victims: a pending approval of an administrator's key (``execute_sql_script`` whose script holds
``{ADMIN_MARK}``) and one of a user with more rights than the attackers (``unlink`` of a partner, context
time zone ``{RICHER_MARK}``); a partner and its attachment in a company the attackers are not in.

Families:

* ``approval`` / ``audit`` / ``playground`` — an MCP manager who is not an administrator, an MCP user
  (``peer``) or a viewer calls the ORM the ways Odoo lets a user do (``via``: JSON-RPC ``call_kw``, the
  button route ``call_button``, XML-RPC, JSON-RPC ``/jsonrpc``)::

      {"id", "actor", "via", "model", "method", "args", "kwargs",
       "expect": "<regex of the error>" (must fail so), "expect_value": <exact result>,
       "absent": ["<text the result must not hold>", ...]}

  After the family, both victims' approvals are still pending.
* ``confirm`` — a key that requires a human: the retry of a 2026-07-28 call with a requestState issued for
  another call (other arguments, tool or key) or forged, or an answer that is no acceptance; an approval
  reused for another call, a denied one, an approved one replayed. Nothing runs.
* ``cache`` — a change of the key (revoked, deleted, expired, read-only, scopes, IP list), of its owner
  (archived, groups removed on the user or on the group, administrator rights removed) or the kill switch
  applies at the very next request of the same process: tools/list and tools/call no longer offer what
  the change took away.
* ``marking`` — a partner whose name imitates the untrusted-data boundary (closing tags with made-up or
  all-zero hex, other case, entities, the note's own words) read through ``tool``: the result's text is the
  note, then the content between one opening and one closing tag of a random 128-bit name that appears
  nowhere else in it.
* ``push`` — ``resources/subscribe`` in a 2025-11-25 session (``kind: subscribe``) or ``subscriptions/listen``
  (``kind: listen``) of ``uri`` with the peer's key: refused (a JSON-RPC error, never a 5xx), or, for
  listen, left out of the acknowledgment; no subscription row names the other company's records.
  ``kind: listen_bulk``: one listen request naming ``n`` URIs (``{N}`` = 1..n) is refused whole: a stream
  holds at most a bounded number of subscriptions.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import xmlrpc.client
from pathlib import Path

import pytest
from harness import RpcFault, pg_query
from mcp_helpers import STREAM_PATH, Raw, jsonrpc, modern_request, parse_body
from test_key_privilege import Actor, error_text

CASES = Path(__file__).parent / "round_attack_cases.jsonl"
PLACEHOLDER = re.compile(r"\{([A-Z_0-9]+)\}")
PASSWORD = "Round-attacks-1"  # noqa: S105 - the test users' password
# the first test also waits for the server to start (a fresh database); a bulk listen may take long unrefused
pytestmark = pytest.mark.timeout(900)


def load_cases():
    with open(CASES, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CASE_LIST = load_cases()


def fill(value, values):
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def modern_call(raw, key, slug, tool, arguments):
    body, headers = modern_request("tools/call", {"name": f"{slug}_{tool}", "arguments": arguments})
    resp = raw.post(STREAM_PATH, body, key=key, headers=headers)
    assert resp.status_code == 200, resp.text[:500]
    return parse_body(resp)


@pytest.fixture(scope="module")
def world(odoo, admin):
    tag = secrets.token_hex(3)
    base = ("ocore_mcp.group_mcp_user",)
    uids = {
        "manager": admin.create_user(f"ra_manager_{tag}", groups=("ocore_mcp.group_mcp_manager",), password=PASSWORD),
        "peer": admin.create_user(f"ra_peer_{tag}", groups=base, password=PASSWORD),
        "viewer": admin.create_user(f"ra_viewer_{tag}", groups=("ocore_mcp.group_mcp_viewer",), password=PASSWORD),
        "richer": admin.create_user(f"ra_richer_{tag}", groups=(*base, "base.group_partner_manager"),
                                    password=PASSWORD),
    }
    actors = {role: Actor(odoo.url, odoo.db, f"ra_{role}_{tag}", PASSWORD) for role in uids}
    company_b = admin.create("res.company", {"name": f"adv company B {tag}"})
    b_name, b_email, b_text = f"adv-b-secret-{tag}", f"b-{tag}@example.invalid", f"B-ATTACHMENT-{tag}"
    b_partner = admin.create("res.partner", {"name": b_name, "email": b_email, "company_id": company_b})
    b_attachment = admin.create("ir.attachment", {
        "name": "b.txt", "res_model": "res.partner", "res_id": b_partner, "company_id": company_b,
        "datas": base64.b64encode(b_text.encode()).decode()})
    own_partner = admin.create("res.partner", {"name": f"adv own {tag}"})
    keys = {
        "admin": admin.create_key(f"ra admin {tag}", rate_limit=100000, human_confirmation=True),
        "richer": admin.create_key(f"ra richer {tag}", user_id=uids["richer"], rate_limit=100000,
                                   human_confirmation=True),
        "peer": admin.create_key(f"ra peer {tag}", user_id=uids["peer"], rate_limit=100000),
    }
    values = {
        "ADMIN_MARK": f"adv-admin-mark-{tag}",
        "RICHER_MARK": "Pacific/Chatham",
        "B_PARTNER_ID": b_partner, "B_PARTNER_NAME": b_name, "B_EMAIL": b_email,
        "B_ATTACHMENT_ID": b_attachment, "B_ATTACHMENT_TEXT_B64": base64.b64encode(b_text.encode()).decode(),
        "OWN_PARTNER_ID": own_partner,
        "RICHER_KEY_ID": keys["richer"].id, "PEER_KEY_ID": keys["peer"].id,
    }
    raw = Raw(odoo.url)
    try:
        # the victims' pending approvals: a client that cannot elicit, keys that require a human
        reply = modern_call(raw, keys["admin"], odoo.slug, "execute_sql_script",
                            {"script": f"SELECT '{values['ADMIN_MARK']}'", "confirm": True})
        values["ADMIN_APPROVAL_ID"] = int(re.search(r"approval #(\d+)", json.dumps(reply)).group(1))
        reply = modern_call(raw, keys["richer"], odoo.slug, "unlink", {
            "model": "res.partner", "ids": [own_partner], "confirm": True, "context": {"tz": values["RICHER_MARK"]}})
        values["RICHER_APPROVAL_ID"] = int(re.search(r"approval #(\d+)", json.dumps(reply)).group(1))
    finally:
        raw.close()
    return {"uids": uids, "actors": actors, "keys": keys, "values": values}


def approval_states(odoo, values):
    rows = pg_query(odoo.setup, odoo.db, "SELECT id, state FROM ocore_mcp_approval WHERE id IN (%s, %s)",
                    (values["ADMIN_APPROVAL_ID"], values["RICHER_APPROVAL_ID"]))
    return {int(r[0]): r[1] for r in rows}


def test_corpus_size():
    assert len(CASE_LIST) >= 150
    assert len({c["id"] for c in CASE_LIST}) == len(CASE_LIST)
    assert {c["via"] for c in CASE_LIST if "via" in c} == {"call_kw", "call_button", "xmlrpc", "jsonrpc"}
    assert {c["family"] for c in CASE_LIST} == {"approval", "audit", "playground", "push", "confirm", "cache",
                                                  "marking"}


ORM_FAMILIES = ("approval", "audit", "playground")


@pytest.mark.parametrize("family", ORM_FAMILIES)
def test_orm_family(family, odoo, world):
    values = world["values"]
    before = approval_states(odoo, values)
    failures = []
    cases = [c for c in CASE_LIST if c["family"] == family]
    for case in cases:
        actor = world["actors"][case["actor"]]
        try:
            result = actor.run(case["via"], case["model"], case["method"], fill(case.get("args", []), values),
                               fill(case.get("kwargs", {}), values))
            failure = None
        except (RpcFault, xmlrpc.client.Fault) as exc:
            result, failure = None, error_text(exc)
        text = json.dumps(result, default=str)
        if case.get("expect"):
            if failure is None:
                failures.append(f"{case['id']}: NOT refused: {text[:300]}")
            elif not re.search(case["expect"], failure, re.I):
                failures.append(f"{case['id']}: refused without /{case['expect']}/: {failure[:300]}")
        elif "expect_value" in case and failure is None and result != case["expect_value"]:
            failures.append(f"{case['id']}: returned {text[:300]}, expected {case['expect_value']!r}")
        elif "expect_value" in case and failure is not None:
            failures.append(f"{case['id']}: failed: {failure[:300]}")
        for secret in fill(case.get("absent", []), values):
            if str(secret) in text or (failure and str(secret) in failure):
                failures.append(f"{case['id']}: the result holds {secret!r}: {text[:300]}")
    after = approval_states(odoo, values)
    if after != before:
        failures.insert(0, f"A VICTIM'S APPROVAL WAS DECIDED: {before} -> {after}")
    assert not failures, f"{len(failures)} of {len(cases)} {family} cases not refused:\n" + "\n".join(failures[:80])


# -- change push ------------------------------------------------------------------------------


def listen(odoo, key, uris, timeout=60):
    """(status, first message) of a subscriptions/listen POST naming ``uris`` (the stream is closed after it)."""
    body, headers = modern_request("subscriptions/listen", {"notifications": {"resourceSubscriptions": uris}})
    raw = Raw(odoo.stream_url)
    hdrs = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {key.secret}", **headers}
    try:
        with raw.http.stream("POST", STREAM_PATH, content=json.dumps(body).encode(), headers=hdrs,
                             timeout=timeout) as resp:
            if "text/event-stream" not in resp.headers.get("content-type", ""):
                resp.read()
                return resp.status_code, (resp.json() if resp.content else None)
            data = []
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    return resp.status_code, json.loads("\n".join(data))
            return resp.status_code, None
    finally:
        raw.close()


def push_rows(odoo, key_id, values):
    rows = pg_query(odoo.setup, odoo.db, "SELECT res_model, res_id FROM ocore_mcp_subscription WHERE key_id = %s",
                    (key_id,))
    return [(m, int(i)) for m, i in rows if (m, int(i)) in {("res.partner", values["B_PARTNER_ID"]),
                                                             ("ir.attachment", values["B_ATTACHMENT_ID"])}]


def test_push_family(odoo, world):
    values, key = world["values"], world["keys"]["peer"]
    cases = [c for c in CASE_LIST if c["family"] == "push" and c["kind"] in ("subscribe", "listen")]
    failures = []
    raw = Raw(odoo.url)
    try:
        sid = raw.open_session(key)
        for case in cases:
            uri = fill(case["uri"], values)
            if case["kind"] == "subscribe":
                resp = raw.session_post(sid, jsonrpc("resources/subscribe", {"uri": uri}), key)
                if resp.status_code >= 500:
                    failures.append(f"{case['id']}: server error {resp.status_code} for {uri}")
                    continue
                if resp.status_code < 400:
                    msg = parse_body(resp)
                    if not isinstance(msg, dict) or "error" not in msg:
                        failures.append(f"{case['id']}: subscribed to {uri}: {resp.text[:200]}")
            else:
                status, msg = listen(odoo, key, [uri])
                if status >= 500:
                    failures.append(f"{case['id']}: server error {status} for {uri}")
                elif msg and msg.get("method") == "notifications/subscriptions/acknowledged":
                    honored = msg["params"]["notifications"].get("resourceSubscriptions") or []
                    if honored:
                        failures.append(f"{case['id']}: listen honored {honored}")
                elif not (msg and "error" in msg) and status < 400:
                    failures.append(f"{case['id']}: neither refused nor acknowledged: {status} {msg}")
    finally:
        raw.close()
    rows = push_rows(odoo, key.id, values)
    if rows:
        failures.insert(0, f"SUBSCRIPTIONS TO THE OTHER COMPANY'S RECORDS: {rows}")
    assert not failures, f"{len(failures)} of {len(cases)} push cases not refused:\n" + "\n".join(failures)


@pytest.mark.parametrize("case", [c for c in CASE_LIST if c.get("kind") == "listen_bulk"],
                         ids=lambda c: c["id"])
def test_push_bulk_listen_refused(odoo, world, case):
    values, key = world["values"], world["keys"]["peer"]
    uris = [fill(case["uri"], {**values, "N": n}) for n in range(1, case["n"] + 1)]
    started = time.monotonic()
    status, msg = listen(odoo, key, uris, timeout=120)
    took = time.monotonic() - started
    assert status < 500, (status, msg)
    assert not (msg and msg.get("method") == "notifications/subscriptions/acknowledged"), \
        f"{case['id']}: a listen stream of {len(uris)} URIs was opened ({took:.1f} s, " \
        f"{len(msg['params']['notifications'].get('resourceSubscriptions') or [])} honored)"
    assert msg and "error" in msg, (status, msg)
    rows = pg_query(odoo.setup, odoo.db, "SELECT count(*) FROM ocore_mcp_subscription WHERE key_id = %s", (key.id,))
    assert int(rows[0][0]) <= 1000, rows


# -- human confirmation: one confirmation runs one call, only the call it was given for ------------------

CAPABLE = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}}


def confirm_args(symbol, p1, p2):
    ids = {"A": [p1], "B": [p2], "AB": [p1, p2], "BA": [p2, p1], "A_CONTEXT": [p1], "A_DRY": [p1]}[symbol]
    args = {"model": "res.partner", "ids": ids, "confirm": True}
    if symbol == "A_CONTEXT":
        args["context"] = {"tz": "UTC"}
    if symbol == "A_DRY":
        args["dry_run"] = False
    return args


def forged_state(state, spelling):
    version, payload, sig = state.split(".")
    flip = {"A": "B", "B": "A"}
    return {
        "first": state,
        "tamper_payload": f"{version}.{payload[:-2]}{flip.get(payload[-2], 'A')}{payload[-1]}.{sig}",
        "tamper_sig": f"{version}.{payload}.{sig[:-2]}{flip.get(sig[-2], 'A')}{sig[-1]}",
        "swap_sig": f"{version}.{sig}.{payload}",
        "v2": f"v2.{payload}.{sig}",
        "empty": "",
        "dots": "v1..",
        "number": 12345,
        "null_with_answer": None,
        "other_db_secret": f"{version}.{payload}.{'A' * len(sig)}",
        "no_sig": f"{version}.{payload}",
        "extra_part": f"{state}.x",
        "upper": state.upper(),
    }[spelling]


def mcp_tool_call(raw, key, slug, tool, args, capable=True, extra=None, request_id=1):
    params = {"name": f"{slug}_{tool}", "arguments": args, **(extra or {})}
    if capable:
        params["_meta"] = CAPABLE
    body, headers = modern_request("tools/call", params, id=request_id)
    resp = raw.post(STREAM_PATH, body, key=key, headers=headers)
    return resp.status_code, (parse_body(resp) if resp.content else None)


def partners_exist(admin, ids):
    return len(admin.search_read("res.partner", [("id", "in", ids)], ["id"]))


def test_confirm_family(odoo, admin, world):
    cases = [c for c in CASE_LIST if c["family"] == "confirm"]
    # an owner who may delete partners, keys that require a human (confirm: true alone runs nothing)
    owner = world["uids"]["richer"]
    raw = Raw(odoo.url)
    failures = []
    try:
        for case in cases:
            tag = secrets.token_hex(3)
            keys = {name: admin.create_key(f"ra confirm {case['id']} {name} {tag}", user_id=owner, rate_limit=100000,
                                           human_confirmation=True) for name in ("same", "other")}
            p1 = admin.create("res.partner", {"name": f"ra confirm 1 {tag}"})
            p2 = admin.create("res.partner", {"name": f"ra confirm 2 {tag}"})
            first, retry = case["first"], case["retry"]
            status, msg = mcp_tool_call(raw, keys[first.get("key", "same")], odoo.slug, first["tool"],
                                        confirm_args(first["args"], p1, p2), capable=first.get("capable", True))
            result = (msg or {}).get("result") or {}
            state = result.get("requestState")
            if case.get("decide"):
                ids = [a["id"] for a in admin.search_read("ocore.mcp.approval", [("key_id", "in", [k.id for k in
                                                          keys.values()])], ["id"])]
                assert ids, f"{case['id']}: no approval was made: {msg}"
                admin.call("ocore.mcp.approval", f"action_{case['decide']}", ids)
            extra = {}
            if "state" in retry:
                if state is None and retry["state"] != "null_with_answer":
                    state = "v1.e30.AAAA"  # the first call made none (an approval): a made-up one
                extra["requestState"] = forged_state(state, retry["state"]) if state else None
            if "answer" in retry:
                extra["inputResponses"] = retry["answer"]
            retry_args = confirm_args(retry["args"], p1, p2)
            if retry.get("replay"):  # the approved call runs once; its replay must make a new approval
                status, msg = mcp_tool_call(raw, keys["same"], odoo.slug, retry["tool"], retry_args, capable=False)
                if partners_exist(admin, [p1, p2]) != 0:
                    failures.append(f"{case['id']}: the approved call did not run: {json.dumps(msg)[:300]}")
            before = partners_exist(admin, [p1, p2])
            status, msg = mcp_tool_call(raw, keys["same"], odoo.slug, retry["tool"], retry_args,
                                        capable=retry.get("capable", True), extra=extra, request_id=2)
            after = partners_exist(admin, [p1, p2])
            if retry.get("replay") and "awaits the approval" not in json.dumps(msg):
                failures.append(f"{case['id']}: the replay was not sent to a new approval: {json.dumps(msg)[:300]}")
            if status >= 500:
                failures.append(f"{case['id']}: server error {status}: {msg}")
            if case.get("runs"):
                if after == before:
                    failures.append(f"{case['id']}: the confirmed call did not run: {json.dumps(msg)[:300]}")
            elif after != before:
                failures.append(f"{case['id']}: THE CALL RAN ({before} -> {after} partners): {json.dumps(msg)[:300]}")
            elif msg and "result" in msg and not msg["result"].get("isError") and \
                    msg["result"].get("resultType") != "input_required":
                failures.append(f"{case['id']}: succeeded: {json.dumps(msg)[:300]}")
    finally:
        raw.close()
    assert not failures, f"{len(failures)} of {len(cases)} confirm cases not refused:\n" + "\n".join(failures)


# -- caches: a change applies at the very next request of the same process -------------------------------


def test_cache_family(odoo, admin, world):
    cases = [c for c in CASE_LIST if c["family"] == "cache"]
    raw = Raw(odoo.url)
    failures = []
    groups_field = admin.user_groups_field()
    fixed = {
        "SEARCH_CATEGORY_ID": admin.search_read("ocore.mcp.category", [("code", "=", "search")], ["id"])[0]["id"],
        "COUNTRY_MODEL_ID": admin.search_read("ir.model", [("model", "=", "res.country")], ["id"])[0]["id"],
        "MCP_USER_GROUP_ID": admin.ref("ocore_mcp.group_mcp_user"),
        "SYSTEM_GROUP_ID": admin.ref("base.group_system"),
        "GROUPS_FIELD": groups_field,
        # the users of a group: users (17.0, 18.0), user_ids (19.0)
        "GROUP_USERS_FIELD": "user_ids" if "user_ids" in admin.call("res.groups", "fields_get", ["user_ids"],
                                                                     attributes=["type"]) else "users",
    }

    def probe(key, kind):
        """What the key reaches now: ('gone' | set of tool names | call outcome)."""
        if kind == "tools_list":
            body, headers = modern_request("tools/list", {})
            resp = raw.post(STREAM_PATH, body, key=key, headers=headers)
            if resp.status_code in (401, 403):
                return "gone", None
            msg = parse_body(resp)
            if "error" in msg:
                return "gone", msg["error"]
            return "list", {t["name"][len(odoo.slug) + 1:] for t in msg["result"]["tools"]}
        outcomes = {}
        for tool, args in (("search_read", {"model": "res.partner", "limit": 1, "fields": ["name"]}),
                           ("create", {"model": "res.partner", "values": {"name": "ra cache"}, "dry_run": True}),
                           ("execute_sql", {"sql": "SELECT 1"})):
            body, headers = modern_request("tools/call", {"name": f"{odoo.slug}_{tool}", "arguments": args})
            resp = raw.post(STREAM_PATH, body, key=key, headers=headers)
            if resp.status_code in (401, 403):
                return "gone", None
            msg = parse_body(resp)
            if "error" in msg and msg["error"].get("code") in (-32001, -32013):
                return "gone", msg["error"]
            outcomes[tool] = "error" not in msg and not msg["result"].get("isError")
        return "call", outcomes

    try:
        for case in cases:
            tag = secrets.token_hex(3)
            change = case["change"]
            groups = ("ocore_mcp.group_mcp_user", "base.group_partner_manager")
            if change.get("owner") == "admin":
                groups += ("base.group_system",)
            owner = admin.create_user(f"ra_cache_{tag}", groups=groups)
            key = admin.create_key(f"ra cache {case['id']} {tag}", user_id=owner, rate_limit=100000)
            values = {**fixed, "KEY_ID": key.id, "OWNER_ID": owner}
            kind, seen = probe(key, case["probe"])  # warms every cache of this process with the old state
            assert kind != "gone", f"{case['id']}: the key does not work before the change: {seen}"
            args = fill(change["args"], values)
            if change["method"] == "write" and isinstance(args[1], dict):
                args[1] = {fill(k, values): v for k, v in args[1].items()}
            try:
                admin.call(change["model"], change["method"], *args)
                kind, seen = probe(key, case["probe"])
            finally:
                if change.get("restore"):
                    admin.call(change["model"], change["method"], *change["restore"])
            expect = case["expect"]
            names = seen if kind == "list" else {t for t, ok in (seen or {}).items() if ok}
            wrong = {
                "gone": kind != "gone",
                "no_write": kind != "gone" and "create" in names,
                "no_search_read": kind != "gone" and "search_read" in names,
                "no_partner": kind != "gone" and kind == "call" and "search_read" in names,
                "no_admin_tool": kind != "gone" and "execute_sql" in names,
            }[expect]
            if wrong:
                failures.append(f"{case['id']}: after the change the key still reaches {kind} {sorted(names)}")
    finally:
        raw.close()
    assert not failures, f"{len(failures)} of {len(cases)} cache cases not applied at once:\n" + "\n".join(failures)


@pytest.mark.parametrize("case", [c for c in CASE_LIST if c.get("kind") == "subscribe_bulk"], ids=lambda c: c["id"])
def test_push_bulk_subscribe_bounded(odoo, world, case):
    """One session subscribing again and again: refused once it holds the bound, never more rows."""
    values, key = world["values"], world["keys"]["peer"]
    raw = Raw(odoo.url)
    refused = 0
    try:
        sid = raw.open_session(key)
        for n in range(1, case["n"] + 1):
            uri = fill(case["uri"], {**values, "N": n})
            resp = raw.session_post(sid, jsonrpc("resources/subscribe", {"uri": uri}, id=n), key)
            assert resp.status_code < 500, resp.text[:300]
            msg = parse_body(resp) if resp.status_code < 400 else None
            refused += resp.status_code >= 400 or bool(msg and "error" in msg)
        rows = pg_query(odoo.setup, odoo.db, "SELECT count(*) FROM ocore_mcp_subscription s JOIN ocore_mcp_session "
                        "ss ON ss.id = s.session_id WHERE ss.session_id = %s", (sid,))
    finally:
        raw.close()
    assert refused and int(rows[0][0]) <= 1000, f"{case['id']}: {rows[0][0]} subscriptions held, {refused} refused"


# -- untrusted-data marking ------------------------------------------------------------------------------

MARKED = re.compile(r"\A[^\n]*<(untrusted-data-[0-9a-f]{32})> tags[^\n]*\n<\1>\n(.*)\n</\1>\Z", re.S)


def test_marking_family(odoo, admin, world):
    cases = [c for c in CASE_LIST if c["family"] == "marking"]
    key = world["keys"]["admin"]  # export_csv needs Odoo's export right; read tools never ask for a human
    raw = Raw(odoo.url)
    failures = []
    try:
        for case in cases:
            name = case["name"].replace("{TAGLIKE}", secrets.token_hex(16))
            ref = f"ra-mark-{secrets.token_hex(4)}"
            pid = admin.create("res.partner", {"name": name, "ref": ref})
            args = {
                "search_read": {"model": "res.partner", "domain": [["ref", "=", ref]], "fields": ["name"]},
                "read": {"model": "res.partner", "ids": [pid], "fields": ["name"]},
                "export_csv": {"model": "res.partner", "domain": [["ref", "=", ref]], "fields": ["name"]},
                "advanced_search": {"model": "res.partner", "domain": [["ref", "=", ref]], "fields": ["name"]},
            }[case["tool"]]
            body, headers = modern_request("tools/call", {"name": f"{odoo.slug}_{case['tool']}", "arguments": args})
            msg = parse_body(raw.post(STREAM_PATH, body, key=key, headers=headers))
            result = msg.get("result") or {}
            text = (result.get("content") or [{}])[0].get("text", "")
            found = MARKED.match(text)
            if result.get("isError") or not found:
                failures.append(f"{case['id']}: not marked as one block: {text[:300]!r}")
                continue
            tag, inner = found.group(1), found.group(2)
            if tag in inner or text.count(tag) != 3:
                failures.append(f"{case['id']}: the boundary {tag} appears inside the data: {text[:300]!r}")
            stored = admin.search_read("res.partner", [("id", "=", pid)], ["name"])[0]["name"]
            if stored.split("\n")[0][:20] not in inner.replace("\\n", "\n") and \
                    json.dumps(stored)[1:21] not in inner:
                failures.append(f"{case['id']}: the record's name is not between the tags: {text[:300]!r}")
    finally:
        raw.close()
    assert not failures, f"{len(failures)} of {len(cases)} marking cases:\n" + "\n".join(failures)
