from unittest import mock

from odoo import Command
from odoo.tests import tagged

from ..lib import protocol as P
from ..models.mcp_resources import RESOURCE_NOT_FOUND
from ..models.mcp_subscription import SUBSCRIPTION_ID_META_KEY, TRIGGER_DELETE, TRIGGER_UPDATE
from ..service.context import Connection
from ..service.notify import hub
from .common import McpToolCase

LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


@tagged("post_install", "-at_install")
class TestSubscriptions(McpToolCase):
    """resources/subscribe, subscriptions/listen, the access check before delivery, list_changed on key
    changes."""

    KEY_NAME = "subscription tests"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Sub = cls.env["ocore.mcp.subscription"]
        cls.partner = cls.Partner.create({"name": "Subscribed Partner"})
        cls.other_company = cls.env["res.company"].create({"name": "Subscription Other Co"})
        cls.hidden = cls.Partner.create({"name": "Other Company Partner", "company_id": cls.other_company.id})
        cls.user = cls.make_user(cls, "subscription_user", [cls.env.ref("base.group_user").id],
                                 company_id=cls.env.company.id, company_ids=[Command.set([cls.env.company.id])])
        cls.user_key, _secret = cls.keys._ocore_create_key("subscriber without access", cls.user,
                                                           rate_limit=1000000, read_only=True)

    def session_conn(self, key=None):
        key = key or self.key
        session = self.env["ocore.mcp.session"]._ocore_open(key.id, "stream", "127.0.0.1",
                                                             protocol_version="2025-11-25")
        return Connection(key=key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-11-25", session=session)

    def modern_conn(self, key=None):
        return Connection(key=key or self.key, scope=None, settings=self.settings, transport="modern",
                          protocol_version="2026-07-28")

    def request(self, conn, method, params):
        return self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 5, "method": method, "params": params})

    def test_capability(self):
        self.assertIs(self.server._ocore_capabilities()["resources"]["subscribe"], True)

    def test_subscribe_installs_triggers_and_unsubscribe(self):
        conn = self.session_conn()
        uri = f"odoo://res.partner/{self.partner.id}"
        reply = self.request(conn, "resources/subscribe", {"uri": uri})
        self.assertEqual(reply.get("result"), {}, reply)
        sub = self.Sub.search([("channel", "=", conn.session_id)])
        self.assertEqual((sub.uri, sub.res_model, sub.res_table, sub.res_id, sub.key_id, sub.session_id),
                         (uri, "res.partner", "res_partner", self.partner.id, self.key, conn.session))
        self.assertEqual(sub.transport, "stream")
        self.assertIn(sub, conn.session.subscription_ids)
        self.assertIn(sub, self.key.subscription_ids)
        self.env.cr.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'res_partner'::regclass")
        self.assertLessEqual({TRIGGER_UPDATE, TRIGGER_DELETE}, {r[0] for r in self.env.cr.fetchall()})
        # idempotent; a report or ?fields URI of the same record counts as a subscription to it
        self.request(conn, "resources/subscribe", {"uri": uri})
        self.assertEqual(len(self.Sub.search([("channel", "=", conn.session_id)])), 1)
        self.request(conn, "resources/unsubscribe", {"uri": uri})
        self.assertFalse(self.Sub.search([("channel", "=", conn.session_id)]))

    def test_subscribe_refusals(self):
        conn = self.session_conn()
        for uri in ("odoo://res.partner/999999999", f"odoo://ocore.mcp.key/{self.key.id}"):
            self.assertEqual(self.request(conn, "resources/subscribe", {"uri": uri})["error"]["code"],
                             RESOURCE_NOT_FOUND, uri)
        for uri in ("odoo://instance", "odoo://res.partner"):  # not records: no updates reported
            reply = self.request(conn, "resources/subscribe", {"uri": uri})
            self.assertEqual(reply["error"]["code"], P.INVALID_PARAMS, uri)
        # a record the key owner may not read (record rule): as if it did not exist
        user_conn = self.session_conn(self.user_key)
        reply = self.request(user_conn, "resources/subscribe", {"uri": f"odoo://res.partner/{self.hidden.id}"})
        self.assertEqual(reply["error"]["code"], RESOURCE_NOT_FOUND)
        self.assertFalse(self.Sub.search([("key_id", "in", (self.key | self.user_key).ids)]))
        # the model allowlist
        self.key.model_ids = self.env["ir.model"]._get("res.country")
        reply = self.request(self.session_conn(), "resources/subscribe", {"uri": f"odoo://res.partner/{self.partner.id}"})
        self.assertIn("allowlist", reply["error"]["message"])
        # 2026-07-28 has no resources/subscribe
        self.assertEqual(self.request(self.modern_conn(), "resources/subscribe", {"uri": "odoo://x/1"})["error"]["code"],
                         P.METHOD_NOT_FOUND)

    def test_delivery_only_to_subscribers_who_may_read(self):
        conn = self.session_conn()
        user_conn = self.session_conn(self.user_key)
        uri = f"odoo://res.partner/{self.partner.id}"
        self.request(conn, "resources/subscribe", {"uri": uri})
        self.request(user_conn, "resources/subscribe", {"uri": uri})
        # a subscription whose owner lost access after subscribing (the record moved to another company)
        hidden_uri = f"odoo://res.partner/{self.hidden.id}"
        self.Sub.sudo().create({"channel": user_conn.session_id, "session_id": user_conn.session.id,
                                "key_id": self.user_key.id, "uri": hidden_uri, "res_model": "res.partner",
                                "res_table": "res_partner", "res_id": self.hidden.id})
        changes = {("res_partner", self.partner.id), ("res_partner", self.hidden.id)}
        channels = {conn.session_id, user_conn.session_id}
        sent = self.Sub._ocore_deliveries(changes, channels)
        updated = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}
        self.assertCountEqual(sent, [(conn.session_id, updated), (user_conn.session_id, updated)])
        # only the streams this process holds
        self.assertEqual(self.Sub._ocore_deliveries(changes, {conn.session_id}), [(conn.session_id, updated)])
        # a revoked key gets nothing; an ended session neither (and its subscriptions end with it)
        self.user_key.active = False
        self.assertEqual(self.Sub._ocore_deliveries(changes, channels), [(conn.session_id, updated)])
        conn.session._ocore_end("test")
        self.assertEqual(self.Sub._ocore_deliveries(changes, channels), [])
        self.assertFalse(self.Sub.search([("session_id", "=", conn.session.id)]))

    def test_deleted_record_reported_to_model_readers(self):
        conn = self.session_conn()
        partner = self.Partner.create({"name": "Soon Deleted"})
        uri = f"odoo://res.partner/{partner.id}"
        self.request(conn, "resources/subscribe", {"uri": uri})
        partner.unlink()
        sent = self.Sub._ocore_deliveries({("res_partner", partner.id)}, {conn.session_id})
        self.assertEqual([m["params"]["uri"] for _c, m in sent], [uri])

    def test_listen_opens_honored_subscriptions(self):
        meta = {P.PROTOCOL_VERSION_META_KEY: "2026-07-28", P.CLIENT_CAPABILITIES_META_KEY: {},
                P.CLIENT_INFO_META_KEY: {"name": "t", "version": "1"}}
        uri = f"odoo://res.partner/{self.partner.id}"
        wanted = [uri, f"{uri}?fields=name", "odoo://instance", "odoo://res.partner/999999999"]
        conn = self.modern_conn()
        reply = self.request(conn, "subscriptions/listen", {
            "notifications": {"toolsListChanged": True, "resourceSubscriptions": wanted}, "_meta": meta})
        self.assertNotIn("error", reply, reply)
        self.assertEqual(reply["result"]["_meta"][SUBSCRIPTION_ID_META_KEY], 5)
        channel, honored = conn.listen
        self.assertEqual(honored, {"toolsListChanged": True, "resourceSubscriptions": [uri, f"{uri}?fields=name"]})
        rows = self.Sub.search([("channel", "=", channel)])
        self.assertEqual(sorted(rows.mapped("kind")), ["resource", "resource", "tools"])
        sent = self.Sub._ocore_deliveries({("res_partner", self.partner.id)}, {channel})
        self.assertEqual(sent[0][1]["params"]["_meta"], {SUBSCRIPTION_ID_META_KEY: 5})
        # a key change that may alter the tool list: list_changed to the key's sessions and listen streams
        session_conn = self.session_conn()
        other = self.session_conn(self.user_key)
        with mock.patch.object(type(hub), "publish") as publish:
            self.key.read_only = True
        sent = [c.args[1:] for c in publish.call_args_list]
        self.assertIn((session_conn.session_id, {"t": "msg", "m": LIST_CHANGED}), sent)
        stamped = dict(LIST_CHANGED, params={"_meta": {SUBSCRIPTION_ID_META_KEY: 5}})
        self.assertIn((channel, {"t": "msg", "m": stamped}), sent)
        self.assertNotIn(other.session_id, [s[0] for s in sent])
        with mock.patch.object(type(hub), "publish") as publish:
            self.key.note = "not a scope"
        self.assertFalse(publish.called)
        self.Sub._ocore_close_listen(channel)
        self.assertFalse(self.Sub.search([("channel", "=", channel)]))

    def test_autovacuum_drops_orphans_and_unused_triggers(self):
        conn = self.session_conn()
        self.request(conn, "resources/subscribe", {"uri": f"odoo://res.country/{self.env.ref('base.be').id}"})
        self.assertIn("res_country", self.Sub._ocore_tables_with_triggers())
        self.Sub.sudo().create({"channel": "listen-orphan", "key_id": self.key.id, "kind": "tools"})
        self.env["ocore.mcp.session"].browse(conn.session.id).write({"ended_at": "2020-01-01 00:00:00"})
        self.Sub._gc_subscriptions()
        self.assertFalse(self.Sub.search([("channel", "in", [conn.session_id, "listen-orphan"])]))
        self.assertNotIn("res_country", self.Sub._ocore_tables_with_triggers())
