"""Follow-ups of an attacker's pass: open streams per key (TestStreamLimit), untrusted-data marking of every part
of an answer (TestUntrustedParts), deletions pushed only to who could read the record (TestDeletionPush)."""

import json
from pathlib import Path

from odoo import Command
from odoo.tests import TransactionCase, tagged

from ..lib.shaping import UNTRUSTED_META_KEY, UNTRUSTED_NOTE, unmark_untrusted
from ..models.mcp_stream import DEFAULT_MAX_STREAMS, PARAM, STALE_SECONDS
from ..service import policy
from ..service.context import Connection
from .common import McpToolCase


class TestStreamLimit(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = cls.env["ocore.mcp.key"]
        admin = cls.env.ref("base.user_admin")
        cls.key, _secret = cls.keys._ocore_create_key("streams", admin)
        cls.other, _secret = cls.keys._ocore_create_key("streams other", admin)
        cls.limit = cls.env["ocore.mcp.stream.limit"]

    def test_default_is_sane(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, False)
        self.assertEqual(self.limit._ocore_stream_limit(), DEFAULT_MAX_STREAMS)
        self.assertTrue(1 <= DEFAULT_MAX_STREAMS <= 50)
        for junk in ("0", "-3", "many"):
            self.env["ir.config_parameter"].sudo().set_param(PARAM, junk)
            self.assertGreaterEqual(self.limit._ocore_stream_limit(), 1, junk)

    def test_cap_counts_every_kind_and_frees_on_close(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, "3")
        ids = [self.limit._ocore_stream_open(self.key.id, kind, "c") for kind in ("sse", "get", "listen")]
        with self.assertRaisesRegex(policy.Refusal, "already holds 3 open streams") as caught:
            self.limit._ocore_stream_open(self.key.id, "listen")
        self.assertEqual(caught.exception.code, "too_many_streams")
        self.assertEqual(self.limit._ocore_open_streams(self.key.id), 3)
        # another key is counted apart
        self.limit._ocore_stream_open(self.other.id, "sse")
        self.limit._ocore_stream_close(ids[0])
        self.limit._ocore_stream_open(self.key.id, "sse")
        with self.assertRaises(policy.Refusal):
            self.limit._ocore_stream_open(self.key.id, "get")

    def test_a_stale_stream_stops_counting_and_must_end(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, "1")
        stale = self.limit._ocore_stream_open(self.key.id, "sse")
        self.assertTrue(self.limit._ocore_stream_alive(stale))
        with self.assertRaises(policy.Refusal):
            self.limit._ocore_stream_open(self.key.id, "sse")
        # its process died: no heartbeat for longer than STALE_SECONDS
        self.env.cr.execute("UPDATE ocore_mcp_open_stream SET heartbeat = heartbeat - make_interval(secs => %s) "
                            "WHERE id = %s", (STALE_SECONDS + 1, stale))
        fresh = self.limit._ocore_stream_open(self.key.id, "sse")
        self.assertTrue(fresh)
        self.assertFalse(self.limit._ocore_stream_alive(stale), "a stream whose row was purged is told to end")
        self.assertTrue(self.limit._ocore_stream_alive(fresh, "listen-x"))


CORPUS = Path(__file__).resolve().parents[2] / "tests" / "adversarial" / "untrusted_parts_cases.jsonl"
ECHO_CODE = "raise UserError(records[:1].name)"


@tagged("post_install", "-at_install")
class TestUntrustedParts(McpToolCase):
    """Every part of an answer that may hold what anyone wrote says so: the text between the call's tags,
    structuredContent (kept valid against the outputSchema) and a resource's contents (kept in their media
    type) named in ``_meta``, an exception's error text marked after the server's prefix, with the same tag
    (corpus ``tests/adversarial/untrusted_parts_cases.jsonl``)."""

    KEY_NAME = "untrusted parts"

    def marking(self, answer):
        meta = (answer.get("_meta") or {}).get(UNTRUSTED_META_KEY)
        self.assertTrue(meta, f"no {UNTRUSTED_META_KEY} in {list(answer)}")
        self.assertRegex(meta["boundary"], r"\Auntrusted-data-[0-9a-f]{32}\Z")
        return meta

    def resource(self, uri):
        conn = Connection(key=self.key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-06-18")
        reply = self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 5, "method": "resources/read",
                                                 "params": {"uri": uri}})
        self.assertNotIn("error", reply)
        return reply["result"]

    def check(self, case):
        evil = case["name"]
        partner = self.Partner.create({"name": evil})
        if case["path"] == "search_read":
            result = self.call("search_read", {"model": "res.partner", "domain": [["id", "=", partner.id]],
                                               "fields": ["name"]})
            meta = self.marking(result)
            self.assertEqual(set(meta["parts"]), {"content", "structuredContent"})
            tag = meta["boundary"]
            self.assertEqual(result["content"][0]["text"].count(tag), 3, "note, opening and closing tag")
            self.assertEqual(result["structuredContent"]["records"][0]["name"], evil, "the data is unchanged")
            self.assertNotIn(tag, json.dumps(result["structuredContent"]), "no tag inside structuredContent")
        elif case["path"] == "resource":
            result = self.resource(f"odoo://res.partner/{partner.id}?fields=name")
            meta = self.marking(result)
            content = result["contents"][0]
            part = self.marking(content)
            self.assertEqual(part["boundary"], meta["boundary"])
            self.assertEqual(part["parts"], ["text"])
            self.assertEqual(json.loads(content["text"])["name"], evil, "the JSON stays JSON")
            self.assertNotIn(meta["boundary"], content["text"])
        else:
            result = self.call(case["tool"], {"ids": [partner.id]})
            self.assertTrue(result["isError"])
            text = result["content"][0]["text"]
            meta = self.marking(result)
            tag = meta["boundary"]
            self.assertTrue(text.startswith(f"error: {UNTRUSTED_NOTE.format(tag=tag)}\n<{tag}>\n"), text[:300])
            self.assertTrue(text.endswith(f"\n</{tag}>"), text[-200:])
            self.assertEqual(text.count(tag), 3)
            self.assertIn(evil, text)
            self.assertEqual(unmark_untrusted(text), f"error: {evil}")

    def test_corpus(self):
        cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
        self.assertGreaterEqual(len(cases), 9)
        self.env["ir.actions.server"].create({
            "name": "echo name", "model_id": self.env["ir.model"]._get("res.partner").id, "state": "code",
            "code": ECHO_CODE, "mcp_tool": True, "mcp_tool_name": "echo_partner_name", "mcp_read_only": True})
        for case in cases:
            with self.subTest(case["id"]):
                self.check({**case, "tool": "echo_partner_name"})

    def test_refusals_and_server_words_stay_unmarked(self):
        refused = self.call("search_read", {"model": "res.nope"})
        self.assertTrue(refused["isError"])
        self.assertNotIn("untrusted-data-", refused["content"][0]["text"])
        self.assertNotIn("_meta", refused)
        platform = self.server._ocore_call_tool(self.conn(), "ocore_list_instances", {})
        self.assertNotIn("_meta", platform)


DELETION_CASES = Path(__file__).resolve().parents[2] / "tests" / "adversarial" / "deletion_push_cases.jsonl"


@tagged("post_install", "-at_install")
class TestDeletionPush(McpToolCase):
    """A deleted record is reported only to subscriptions whose last check found it readable (corpus
    ``tests/adversarial/deletion_push_cases.jsonl``): a subscriber from whom the record moved away (another
    company, a record rule), seen at an update's delivery, does not learn of its deletion."""

    KEY_NAME = "deletion push"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Sub = cls.env["ocore.mcp.subscription"]
        cls.other_company = cls.env["res.company"].create({"name": "Deletion Push Other Co"})
        company = cls.env.company
        cls.hidden_group = cls.env["res.groups"].create({"name": "Deletion push: records hidden by a rule"})
        cls.user = cls.make_user(cls, "deletion_push_user", [cls.env.ref("base.group_user").id, cls.hidden_group.id],
                                 company_id=company.id, company_ids=[Command.set([company.id])])
        cls.user_key, _secret = cls.keys._ocore_create_key("deletion subscriber", cls.user, rate_limit=1000000,
                                                           read_only=True)

    def session_conn(self, key):
        session = self.env["ocore.mcp.session"]._ocore_open(key.id, "stream", "127.0.0.1",
                                                             protocol_version="2025-11-25")
        return Connection(key=key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-11-25", session=session)

    def subscribe(self, conn, uri):
        reply = self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 5, "method": "resources/subscribe",
                                                 "params": {"uri": uri}})
        self.assertNotIn("error", reply)

    def run_case(self, case):
        partner = self.Partner.create({"name": f"Deletion {case['id']}", "company_id": self.env.company.id})
        uri = f"odoo://res.partner/{partner.id}"
        admin, user = self.session_conn(self.key), self.session_conn(self.user_key)
        self.subscribe(admin, uri)
        self.subscribe(user, uri)
        channels = {admin.session_id, user.session_id}
        change = {("res_partner", partner.id)}
        rule = None
        for step in case["steps"]:
            if step == "move_other":
                partner.company_id = self.other_company
            elif step == "move_back":
                partner.company_id = self.env.company
            elif step == "rename":
                partner.name += "+"
            elif step == "hide_rule":
                rule = self.env["ir.rule"].create({
                    "name": "hide from the subscriber", "model_id": self.env["ir.model"]._get("res.partner").id,
                    "domain_force": f"[('id', '!=', {partner.id})]",
                    "groups": [Command.set([self.hidden_group.id])]})
            elif step == "drop_rule":
                rule.unlink()
            elif step == "resubscribe":
                self.subscribe(user, uri)
            elif step == "deliver":
                self.env.flush_all()
                self.Sub._ocore_deliveries(change, channels)
            elif step == "delete":
                partner.unlink()
                self.env.flush_all()
                sent = {channel for channel, _m in self.Sub._ocore_deliveries(change, channels)}
                # the administrator's key reads its own company's records only (the key's company)
                self.assertEqual(admin.session_id in sent, case.get("admin", case["reported"]), case["id"])
                self.assertEqual(user.session_id in sent, case["reported"], case.get("note") or case["id"])
        if rule and rule.exists():
            rule.unlink()

    def test_corpus(self):
        cases = [json.loads(line) for line in DELETION_CASES.read_text().splitlines() if line.strip()]
        self.assertGreaterEqual(len(cases), 8)
        for case in cases:
            with self.subTest(case["id"]):
                self.run_case(case)
