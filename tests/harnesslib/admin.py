"""The administrator over XML-RPC and the web session: keys, users, settings, audit rows."""

from __future__ import annotations

import contextlib
import secrets
import time
import xmlrpc.client
from dataclasses import dataclass

from .config import ADMIN_LOGIN, ADMIN_PASSWORD, HarnessError


# -- admin XML-RPC ----------------------------------------------------------------------------


@dataclass
class Key:
    id: int
    secret: str
    name: str
    user_id: int

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.secret}"}


class RpcFault(xmlrpc.client.Fault):
    """An error raised by the server on an admin call: ``faultString`` holds its message (and the
    server traceback). A ``xmlrpc.client.Fault``, whichever way the call went."""

    def __init__(self, message, data=None):
        self.data = data or {}
        self.message = message or ""
        debug = self.data.get("debug") or ""
        super().__init__(1, f"{self.message}\n{debug}".strip())

    def __str__(self):
        return self.message


class Admin:
    """The administrator, doing what the backend UI does.

    The login is checked over XML-RPC (``/xmlrpc/2/common`` authenticate, as a script would); the
    calls then go through a web session (JSON-RPC ``/web/dataset/call_kw``, as the UI does): unlike
    XML-RPC, a session does not re-verify the password hash (~1 s) after every cache invalidation,
    and tests change settings often.
    """

    def __init__(self, url: str, db: str, login: str = ADMIN_LOGIN, password: str = ADMIN_PASSWORD):
        import httpx2

        self.url = url
        self.db = db
        self.password = password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(db, login, password, {})
        if not self.uid:
            raise HarnessError(f"XML-RPC login {login}/{password} on {db} failed")
        self.http = httpx2.Client(base_url=url, timeout=60)
        result = self._jsonrpc("/web/session/authenticate", {"db": db, "login": login, "password": password})
        if result.get("uid") != self.uid:
            raise HarnessError(f"web login {login} on {db} failed: {result}")

    def _jsonrpc(self, path, params):
        resp = self.http.post(path, json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params})
        resp.raise_for_status()
        body = resp.json()
        if "error" in body:
            data = body["error"].get("data") or {}
            raise RpcFault(data.get("message") or body["error"].get("message"), data)
        return body["result"]

    def call(self, model: str, method: str, *args, **kwargs):
        return self._jsonrpc(f"/web/dataset/call_kw/{model}/{method}",
                             {"model": model, "method": method, "args": list(args), "kwargs": kwargs})

    def xmlrpc(self, model: str, method: str, *args, **kwargs):
        """The same call over XML-RPC (``/xmlrpc/2/object``)."""
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)
        return proxy.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)

    # generic helpers
    def search_read(self, model, domain=(), fields=(), **kw):
        return self.call(model, "search_read", list(domain), list(fields), **kw)

    def create(self, model, values) -> int:
        return self.call(model, "create", values)

    def write(self, model, ids, values):
        return self.call(model, "write", list(ids) if isinstance(ids, list | tuple) else [ids], values)

    def ref(self, xmlid: str) -> int:
        module, name = xmlid.split(".", 1)
        rows = self.search_read("ir.model.data", [("module", "=", module), ("name", "=", name)], ["res_id"])
        if not rows:
            raise HarnessError(f"no record {xmlid}")
        return rows[0]["res_id"]

    # settings (ir.config_parameter ocore_mcp.*)
    def set_param(self, name: str, value):
        """Set a system parameter; ``None`` removes it (back to the default)."""
        return self.call("ir.config_parameter", "set_param", name, False if value is None else str(value))

    def get_param(self, name: str, default=None):
        value = self.call("ir.config_parameter", "get_param", name)
        return default if value is False else value

    @contextlib.contextmanager
    def params(self, prefix="ocore_mcp", **values):
        """Temporarily set ``<prefix>.<name>`` parameters; restore the previous values after."""
        previous = {name: self.get_param(f"{prefix}.{name}") for name in values}
        try:
            for name, value in values.items():
                self.set_param(f"{prefix}.{name}", value)
            yield
        finally:
            for name, value in previous.items():
                self.set_param(f"{prefix}.{name}", value)

    # users and companies
    def user_groups_field(self) -> str:
        """The field of a user's groups: ``groups_id`` (Odoo 17.0, 18.0) or ``group_ids`` (19.0)."""
        if getattr(self, "_groups_field", None) is None:
            found = self.call("res.users", "fields_get", ["group_ids", "groups_id"], attributes=["type"])
            self._groups_field = "group_ids" if "group_ids" in found else "groups_id"
        return self._groups_field

    def create_user(self, login: str, groups=("ocore_mcp.group_mcp_user",), company_ids=None, **values) -> int:
        group_ids = [self.ref("base.group_user")] + [self.ref(g) for g in groups]
        vals = {"name": values.pop("name", login), "login": login, self.user_groups_field(): [(6, 0, group_ids)],
                **values}
        if company_ids:
            vals["company_ids"] = [(6, 0, list(company_ids))]
            vals.setdefault("company_id", company_ids[0])
        return self.create("res.users", vals)

    # API keys
    def create_key(
        self,
        name: str | None = None,
        user_id: int | None = None,
        categories=(),
        read_only: bool = False,
        tool_allowlist=None,
        tool_denylist=None,
        models=(),
        ip_allowlist=None,
        rate_limit: int = 0,
        expiration_date: str | None = None,
        active: bool = True,
        **extra,
    ) -> Key:
        """Create a key like the UI does (form + "Generate secret" button) and return it with its secret."""
        name = name or f"e2e key {secrets.token_hex(3)}"
        vals = {"name": name, "read_only": read_only, "rate_limit": rate_limit, **extra}
        if user_id:
            vals["user_id"] = user_id
        if categories:
            cat_ids = [r["id"] for r in self.search_read("ocore.mcp.category", [("code", "in", list(categories))],
                                                         ["code"])]
            if len(cat_ids) != len(set(categories)):
                raise HarnessError(f"unknown MCP categories in {categories}")
            vals["category_ids"] = [(6, 0, cat_ids)]
        if models:
            model_ids = [r["id"] for r in self.search_read("ir.model", [("model", "in", list(models))], ["model"])]
            if len(model_ids) != len(set(models)):
                raise HarnessError(f"unknown models in {models}")
            vals["model_ids"] = [(6, 0, model_ids)]
        for fname, value in (("tool_allowlist", tool_allowlist), ("tool_denylist", tool_denylist),
                             ("ip_allowlist", ip_allowlist)):
            if value:
                vals[fname] = value if isinstance(value, str) else ",".join(value)
        if expiration_date:
            vals["expiration_date"] = expiration_date
        key_id = self.create("ocore.mcp.key", vals)
        action = self.call("ocore.mcp.key", "action_generate_secret", [key_id])
        if not isinstance(action, dict) or action.get("res_model") != "ocore.mcp.key.show":
            raise HarnessError(f"action_generate_secret returned {action!r}")
        secret = action["context"]["default_secret"]  # shown from the action only: stored nowhere
        if not active:
            self.write("ocore.mcp.key", [key_id], {"active": False})
        owner = self.search_read("ocore.mcp.key", [("id", "=", key_id), ("active", "in", [True, False])],
                                 ["user_id"])[0]["user_id"][0]
        return Key(id=key_id, secret=secret, name=name, user_id=owner)

    def revoke_key(self, key: Key | int):
        key_id = key.id if isinstance(key, Key) else key
        # what the "Revoke" button (action_revoke) does; the button itself returns None,
        # which XML-RPC cannot marshal
        return self.write("ocore.mcp.key", [key_id], {"active": False})

    # audit log
    AUDIT_FIELDS = (
        "event", "tool_name", "tool", "category", "params", "result_summary", "status", "success",
        "error_message", "refusal_reason", "latency_ms", "session_id", "request_id", "key_id", "user_id",
        "company_id", "ip_address", "client_name", "protocol_version", "transport", "dry_run",
    )

    def audit(self, domain=(), limit=50, order="id desc", fields=AUDIT_FIELDS):
        return self.search_read("ocore.mcp.audit.log", list(domain), list(fields), limit=limit, order=order)

    def wait_audit(self, domain, predicate=None, timeout: float = 15, count: int = 1, fields=AUDIT_FIELDS):
        """Poll the audit log until ``count`` rows match ``domain`` (and ``predicate``); return them, newest
        first."""
        deadline = time.monotonic() + timeout
        rows = []
        while True:
            rows = [r for r in self.audit(domain, fields=fields) if predicate is None or predicate(r)]
            if len(rows) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if len(rows) < count:
            raise AssertionError(
                f"expected {count} audit row(s) for {domain} within {timeout}s, found {len(rows)}: "
                f"{self.audit(domain, limit=5)}"
            )
        return rows

    def sessions(self, domain=(), fields=("session_id", "key_id", "transport", "protocol_version", "log_level",
                                          "ended_at", "end_reason", "client_name", "instances_filter",
                                          "categories_filter")):
        return self.search_read("ocore.mcp.session", list(domain), list(fields), order="id desc")
