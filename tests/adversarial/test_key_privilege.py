"""Adversarial corpus of API key privilege: ``key_privilege_cases.jsonl``, one attack per line.

An attacker — an MCP manager without Settings rights, an MCP user, a viewer, or the administrator for the
hash cases — calls ``ocore.mcp.key`` methods the ways Odoo lets a user call them: JSON-RPC
``/web/dataset/call_kw`` (the web client), the backend's button route ``/web/dataset/call_button``,
XML-RPC ``execute_kw`` and JSON-RPC ``/jsonrpc`` (service ``object``)::

    {"id": ..., "actor": "manager" | "peer" | "viewer" | "admin", "via": "call_kw" | "call_button" |
     "xmlrpc" | "jsonrpc", "steps": [{"method": ..., "args": [...], "kwargs": {...}}, ...],
     "expect": "<regex of the error>" | null, "dead": ["<placeholder of a secret that must not work>"]}

Steps run in order until one fails; with ``expect`` one must fail with a matching message, with
``expect: null`` all must succeed. Whatever happened, after every case:

* no key of another user changed owner or secret (their secrets still authenticate);
* no key the case created belongs to someone whose rights exceed the actor's, nor holds a secret unless
  the actor owns it;
* no secret returned to the actor authenticates a key of another user;
* every secret listed in ``dead`` authenticates nothing (un-archived keys do not get their secret back);
* the server log has no secret.

Victims in a known state for every case (``{ADMIN_KEY}``, ``{ADMIN_REVOKED_KEY}``, ``{PEER_KEY}``, ``{RICHER_KEY}``,
``{ROOT_KEY}``, ``{OWN_KEY}``, ``{OWN_REVOKED_KEY}`` and their ``..._SECRET``; made again when a case
changed one), so cases are independent;
``{STEP0}`` is what the first step returned.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import xmlrpc.client
from pathlib import Path

import pytest
from harness import Admin, RpcFault, pg_query

CASES = Path(__file__).parent / "key_privilege_cases.jsonl"
PLACEHOLDER = re.compile(r"\{([A-Z_0-9]+)\}")
TOKEN = re.compile(r"ocore_[0-9a-f]{10}_[A-Za-z0-9_-]{20,}")
PASSWORD = "Key-privilege-1"  # noqa: S105 - the test users' password


def load_cases():
    with open(CASES, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Actor:
    """One user calling the ORM the four ways a client can."""

    def __init__(self, url, db, login, password):
        self.api = Admin(url, db, login=login, password=password)
        self.url, self.db, self.login, self.password = url, db, login, password

    def run(self, via, model, method, args, kwargs):
        if via == "call_kw":
            return self.api.call(model, method, *args, **kwargs)
        if via == "call_button":
            return self.api._jsonrpc("/web/dataset/call_button",
                                     {"model": model, "method": method, "args": args, "kwargs": kwargs})
        if via == "xmlrpc":
            return self.api.xmlrpc(model, method, *args, **kwargs)
        if via == "jsonrpc":
            body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
                "service": "object", "method": "execute_kw",
                "args": [self.db, self.api.uid, self.password, model, method, args, kwargs]}}
            reply = self.api.http.post("/jsonrpc", json=body).json()
            if "error" in reply:
                data = reply["error"].get("data") or {}
                raise RpcFault(data.get("message") or reply["error"].get("message"), data)
            return reply["result"]
        raise AssertionError(f"unknown via {via!r}")


@pytest.fixture(scope="module")
def world(odoo, admin):
    """Users of each role (passwords known), logged in; the user ids the cases name."""
    tag = secrets.token_hex(3)
    base = ("ocore_mcp.group_mcp_user",)
    uids = {
        "manager": admin.create_user(f"kp_manager_{tag}", groups=("ocore_mcp.group_mcp_manager",),
                                     password=PASSWORD),
        "peer": admin.create_user(f"kp_peer_{tag}", groups=base, password=PASSWORD),
        "richer": admin.create_user(f"kp_richer_{tag}", groups=(*base, "base.group_partner_manager"),
                                    password=PASSWORD),
        "viewer": admin.create_user(f"kp_viewer_{tag}", groups=("ocore_mcp.group_mcp_viewer",),
                                    password=PASSWORD),
        "admin": admin.uid,
        "root": admin.ref("base.user_root"),
    }
    actors = {role: Actor(odoo.url, odoo.db, f"kp_{role}_{tag}", PASSWORD)
              for role in ("manager", "peer", "viewer")}
    actors["admin"] = Actor(odoo.url, odoo.db, "admin", admin.password)
    return {"uids": uids, "actors": actors}


def key_rows(odoo):
    rows = pg_query(odoo.setup, odoo.db, "SELECT id, user_id, coalesce(key_hash, ''), active FROM ocore_mcp_key")
    return {int(r[0]): (int(r[1]), r[2], r[3]) for r in rows}


def authenticates(odoo, secret):
    """The owner of the active key this secret authenticates, or None."""
    rows = pg_query(odoo.setup, odoo.db, "SELECT user_id FROM ocore_mcp_key WHERE active AND key_hash = %s",
                    (sha256(secret),))
    return int(rows[0][0]) if rows else None


def victims(admin, world):
    """Fresh keys for one case: {placeholder: value}."""
    uids = world["uids"]
    tag = secrets.token_hex(2)
    values = {f"{role.upper()}_ID": uid for role, uid in uids.items()}
    values["ADMIN_ID_STR"] = str(uids["admin"])
    for name, owner, active in (("ADMIN_KEY", "admin", True), ("ADMIN_REVOKED_KEY", "admin", False),
                                ("PEER_KEY", "peer", True), ("RICHER_KEY", "richer", True),
                                ("ROOT_KEY", "root", True), ("OWN_KEY", None, True),
                                ("OWN_REVOKED_KEY", None, False)):
        values[name] = (name, owner, active)
    values["ATTACKER_SECRET"] = f"ocore_0123456789_{secrets.token_urlsafe(30)}"
    values["ATTACKER_HASH"] = sha256(values["ATTACKER_SECRET"])
    values["TAG"] = tag
    return values


def make_victim_keys(admin, world, values, actor_role):
    uids = world["uids"]
    for name in [n for n, v in values.items() if isinstance(v, tuple)]:
        _n, owner, active = values[name]
        owner_id = uids[owner or actor_role]
        key = admin.create_key(f"kp {name} {values['TAG']}", user_id=owner_id, active=active,
                               read_only=owner_id == uids["viewer"])
        values[name], values[f"{name}_SECRET"] = key.id, key.secret


def fresh_victims(odoo, admin, world, role):
    """The victims of ``role``'s cases: made once, made again only after a case changed one of them."""
    cache = world.setdefault("victims", {})
    rows = key_rows(odoo)
    if role in cache:
        values, snapshot = cache[role]
        if all(rows.get(key_id) == row for key_id, row in snapshot.items()):
            return {k: v for k, v in values.items() if not k.startswith("STEP")}
    values = victims(admin, world)
    make_victim_keys(admin, world, values, role)
    rows = key_rows(odoo)
    key_ids = [v for k, v in values.items() if k.endswith("_KEY")]
    cache[role] = (values, {key_id: rows[key_id] for key_id in key_ids})
    return dict(values)


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


def error_text(exc):
    if isinstance(exc, xmlrpc.client.Fault):
        return exc.faultString
    return str(exc)


CASE_LIST = load_cases()


def test_corpus_size():
    assert len(CASE_LIST) >= 30
    assert len({c["id"] for c in CASE_LIST}) == len(CASE_LIST)
    spellings = {c["via"] for c in CASE_LIST}
    assert spellings == {"call_kw", "call_button", "xmlrpc", "jsonrpc"}


@pytest.mark.parametrize("case", CASE_LIST, ids=[c["id"] for c in CASE_LIST])
def test_key_privilege(case, odoo, admin, world):
    role = case["actor"]
    actor = world["actors"][role]
    actor_uid = world["uids"][role]
    values = fresh_victims(odoo, admin, world, role)
    before = key_rows(odoo)
    log_offset = odoo.log_size()

    results, failure = [], None
    for index, step in enumerate(case["steps"]):
        try:
            results.append(actor.run(case["via"], step.get("model", "ocore.mcp.key"), step["method"],
                                     fill(step.get("args", []), values), fill(step.get("kwargs", {}), values)))
            values[f"STEP{index}"] = results[-1]  # {STEP0}: what the first step returned
        except (RpcFault, xmlrpc.client.Fault) as exc:
            failure = error_text(exc)
            break
    if case["expect"] is None:
        assert failure is None, f"{case['id']}: a step failed: {failure}"
    else:
        assert failure is not None, f"{case['id']}: every step succeeded: {results!r}"[:2000]
        assert re.search(case["expect"], failure, re.I), f"{case['id']}: unexpected error {failure[:600]}"

    after = key_rows(odoo)
    uids = world["uids"]
    # 1. no key of another user changed owner or secret
    for key_id, (owner, key_hash, _active) in before.items():
        if owner != actor_uid and key_id in after:
            assert after[key_id][:2] == (owner, key_hash), f"key #{key_id} of user #{owner} was changed"
    # 2. keys created by the case: the actor's own or a peer's, with a secret only when the actor's
    for key_id in set(after) - set(before):
        owner, key_hash, _active = after[key_id]
        assert owner in (actor_uid, uids["peer"]) or role == "admin", f"new key #{key_id} for user #{owner}"
        assert not key_hash or owner == actor_uid or role == "admin", f"new key #{key_id} has a secret"
    # 3. no secret handed to the actor acts as someone else
    for token in TOKEN.findall(json.dumps(results, default=str)):
        assert authenticates(odoo, token) in (None, actor_uid), f"{case['id']}: got a secret of another user"
    # 4. dead secrets stay dead
    for name in case.get("dead", []):
        assert authenticates(odoo, values[name]) is None, f"{case['id']}: {name} works again"
    # 5. the victims' secrets still work (unless the case is about their own key)
    for name in ("ADMIN_KEY", "PEER_KEY", "RICHER_KEY", "ROOT_KEY"):
        assert authenticates(odoo, values[f"{name}_SECRET"]) is not None, f"{case['id']}: {name} was killed"
    # 6. nothing secret in the server log
    log = odoo.log_since(log_offset)
    for name, value in values.items():
        if name.endswith("_SECRET"):
            assert value not in log, f"{case['id']}: {name} in the server log"
    assert not TOKEN.search(log), f"{case['id']}: a key secret in the server log"


def test_key_events_are_logged_with_actor_and_address(odoo, admin, world):
    """Creation, secret generation and revocation are in the server log with the acting user and the
    client address; the secret is not."""
    offset = odoo.log_size()
    key = admin.create_key(f"kp logged {secrets.token_hex(2)}", user_id=world["uids"]["peer"])
    admin.revoke_key(key)
    log = odoo.log_since(offset)
    for event in ("created", "secret generated", "revoked"):
        assert re.search(rf"MCP API key #{key.id} {event}: owner 'kp_peer_\w+' \(#\d+\), by 'admin' "
                         rf"\(#{admin.uid}\) from 127\.0\.0\.1", log), (event, log[-3000:])
    assert key.secret not in log
    # nor its random part (ocore_<prefix>_<random>: the random part may itself hold "_", so split at the first
    # two only; its last "_"-separated piece alone can be a couple of characters found anywhere in a log)
    random_part = key.secret.split("_", 2)[2]
    assert len(random_part) >= 40 and random_part not in log
