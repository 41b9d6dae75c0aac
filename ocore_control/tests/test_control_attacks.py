"""Credentials move only where they were enrolled: the corpus ``tests/adversarial/control_plane_cases.jsonl``.

An MCP manager of the control plane who is not a system administrator edits an enrolled instance's URL or
an organization's PostHog host to an address they listen on (a real HTTP listener of this test). Neither
the organization's write-only PostHog personal API key (pushed to the instance's URL) nor a member's
signed assertion (a bearer token the instance accepts for 60 s, sent with every forwarded request and
tools/list fetch) may reach it: a changed URL needs a new enrolment, a changed PostHog host forgets the
stored personal key unless the same write gives a new one. The same host spelt otherwise keeps it."""

import contextlib
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from odoo import Command
from odoo.tests import HttpCase, tagged

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.service.context import Connection
from .common import LocalServer, send_json

CASES = Path(__file__).resolve().parents[2] / "tests" / "adversarial" / "control_plane_cases.jsonl"
SECRET = "phx_orgAttackCorpusSecret0123456789abcdef"
HOST = "https://eu.i.posthog.com"


class _Listener(LocalServer):
    """An HTTP server that records what reaches it (headers and bodies) and answers 200 {}."""

    def __init__(self):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen.append(str(self.headers) + (self.rfile.read(length).decode(errors="replace") if length else ""))
                send_json(self, {})

            do_GET = do_POST = _record  # noqa: N815

            def log_message(self, *args):
                pass

        self.serve(Handler)


def load_cases():
    if not CASES.exists():  # an installed wheel carries the addon without the repository's corpus
        return []
    with open(CASES, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@tagged("post_install", "-at_install")
class TestControlPlaneAttacks(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.settings = env["ocore.mcp.server"]._ocore_settings()
        users = env["res.users"].with_context(no_reset_password=True)
        field = compat.user_groups_field(users)
        cls.mallory = users.create({"name": "Mallory", "login": "mallory_ctl", field: [Command.set([
            env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_manager").id])]})
        cls.alice = users.create({"name": "Alice", "login": "alice_attack_ctl", field: [Command.set([
            env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_user").id])]})
        cls.org = env["ocore.control.organization"].create({
            "name": "Attacked agency", "member_ids": [Command.create({"user_id": cls.alice.id, "role": "owner"})]})
        # this database is the control plane and its own enrolled instance (the push goes over HTTP for real)
        cls.instance = env["ocore.control.instance"].create({
            "name": "Self", "slug": cls.settings["slug"], "organization_id": cls.org.id, "environment": "staging",
            "url": cls.base_url(), "status": "running"})
        link = env["ocore.mcp.control.link"].create({"name": "CP"})
        token = link.action_generate_token()
        _private, public = cls.instance._ocore_signing_key(1)
        env["ocore.mcp.control.link"]._ocore_enrol(token, cls.instance._ocore_issuer(), cls.instance._ocore_kid(1),
                                                   public)
        cls.instance.write({"credential_generation": 1, "credential_state": "active", "status": "running"})
        cls.alice_key = env["ocore.mcp.key"].create({"name": "alice org key", "user_id": cls.alice.id,
                                                     "organization_id": cls.org.id})
        cls.cases = load_cases()

    def allowed(self):
        allow = getattr(self, "allow_requests", None)  # 19.0's HttpCase serves only the requests it allowed
        return allow(all_requests=True) if allow else contextlib.nullcontext()

    def test_corpus(self):
        self.assertGreaterEqual(len(self.cases), 20, f"the corpus {CASES} is missing or short")
        self.assertEqual(len({c["id"] for c in self.cases}), len(self.cases))

    def fill(self, value, values):
        if isinstance(value, dict):
            return {k: self.fill(v, values) for k, v in value.items()}
        if isinstance(value, str):
            for name, sub in values.items():
                value = value.replace("{" + name + "}", sub)
        return value

    def test_credentials_never_follow_an_edited_address(self):
        failures = []
        for case in self.cases:
            with self.subTest(case=case["id"]), self.env.cr.savepoint(flush=False) as sp:
                listener = _Listener()
                try:
                    why = self.run_case(case, listener)
                finally:
                    listener.close()
                    sp.rollback()
                    self.env.invalidate_all()  # the record cache still holds what the case wrote
                    self.env.registry.clear_cache()
                if why:
                    failures.append(f"{case['id']}: {why}")
        self.assertFalse(failures, "\n".join(failures))

    def run_case(self, case, listener):
        values = {"LISTENER": listener.address, "PERSONAL_KEY": SECRET, "HOST": HOST}
        with self.allowed():
            self.org.write({"posthog_enabled": True, "posthog_host": HOST, "posthog_project_id": "7",
                            "posthog_personal_api_key": SECRET})
        self.assertEqual(self.org._ocore_posthog_secret(), SECRET)
        record = {"INSTANCE": self.instance, "ORG": self.org}[case["record"]].with_user(self.mallory)
        with self.allowed():
            record.write(self.fill(case["write"], values))
            if case["then"] == "posthog_push":
                self.org.with_user(self.mallory).action_posthog_push()
            elif case["then"] == "forward":
                conn = Connection(key=self.alice_key, scope=None, settings=self.settings, transport="modern",
                                  protocol_version="2026-07-28")
                self.env["ocore.mcp.server"]._ocore_control_remote_tools(conn)
        got = "\n".join(listener.seen)
        for secret in self.fill(case.get("absent", []), values):
            if secret in got:
                return f"{secret[:12]}... reached the edited address: {got[:300]!r}"
        stored = self.org._ocore_posthog_secret()
        if case["then"] == "key_forgotten" and stored:
            return "the personal API key is kept for the new PostHog host (the instances send it there)"
        if case["then"] == "key_kept" and stored != SECRET:
            return "the same PostHog host spelt otherwise lost the personal API key"
        if case["then"] == "key_is" and stored != case["key"]:
            return f"the key given with the new host was not kept: {stored[:6]!r}"
        return None
