"""The control plane and the instance side of a link in one database: the control plane enrols itself
(its assertions are verified by the very ocore_mcp code an instance runs)."""

import base64
import json
import time

import jwt

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.service import policy as pol
from odoo.addons.ocore_mcp.service.context import Connection

from ..lib import keys


class TestControlPlane(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.settings = env["ocore.mcp.server"]._ocore_settings()
        users = env["res.users"].with_context(no_reset_password=True)
        groups = {compat.user_groups_field(users): [Command.set([
            env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_user").id])]}
        cls.alice = users.create({"name": "Alice", "login": "alice_ctl", **groups})
        cls.vic = users.create({"name": "Vic", "login": "vic_ctl", **groups})
        cls.org = env["ocore.control.organization"].create({
            "name": "Agency", "member_ids": [Command.create({"user_id": cls.alice.id, "role": "owner"}),
                                             Command.create({"user_id": cls.vic.id, "role": "viewer"})]})
        cls.server = env["ocore.control.server"].create({"name": "host1", "organization_id": cls.org.id})
        # this database is also the instance: same slug, enrolled with a one-time token
        cls.instance = env["ocore.control.instance"].create({
            "name": "Self", "slug": cls.settings["slug"], "organization_id": cls.org.id,
            "server_id": cls.server.id, "environment": "staging", "url": "http://127.0.0.1:1"})
        cls.link = env["ocore.mcp.control.link"].create({"name": "CP"})
        token = cls.link.action_generate_token()
        generation = 1
        _private, public = cls.instance._ocore_signing_key(generation)
        env["ocore.mcp.control.link"]._ocore_enrol(token, cls.instance._ocore_issuer(),
                                                   cls.instance._ocore_kid(generation), public)
        cls.instance.write({"credential_generation": generation, "credential_state": "active", "status": "running"})
        cls.keys = env["ocore.mcp.key"]

    def assertion(self, subject="alice_ctl", scope=None, **kw):
        return self.instance._ocore_assertion(subject, scope or {}, "cid-test", **kw)

    def test_enrolment_token_once(self):
        link = self.env["ocore.mcp.control.link"].create({"name": "other"})
        token = link.action_generate_token()
        _private, public = self.instance._ocore_signing_key(7)
        self.env["ocore.mcp.control.link"]._ocore_enrol(token, "x", self.instance._ocore_kid(7), public)
        with self.assertRaisesRegex(Exception, "Unknown, used or expired"):
            self.env["ocore.mcp.control.link"]._ocore_enrol(token, "x", self.instance._ocore_kid(8), public)

    def test_assertion_runs_as_the_mapped_user(self):
        key, auth = self.keys._ocore_authenticate(self.assertion())
        self.assertEqual(key.user_id, self.alice)
        self.assertEqual(auth.user_id, self.alice.id)
        self.assertEqual(key.origin, "control")
        self.assertFalse(auth.scope["read_only"])
        # the same user again: the same key
        key2, _auth = self.keys._ocore_authenticate(self.assertion())
        self.assertEqual(key, key2)

    def test_explicit_mapping_and_login_matching_off(self):
        self.env["ocore.mcp.control.user.map"].create({"link_id": self.link.id, "subject": "bob@cp",
                                                       "user_id": self.vic.id})
        key, _auth = self.keys._ocore_authenticate(self.assertion(subject="bob@cp"))
        self.assertEqual(key.user_id, self.vic)
        self.link.map_by_login = False
        self.assertFalse(self.keys._ocore_authenticate(self.assertion())[0], "alice_ctl: no mapping, no login match")
        self.assertEqual(self.keys._ocore_authenticate(self.assertion(subject="bob@cp"))[0].user_id, self.vic)
        key.active = False  # the instance revokes the control plane's key of that user
        self.assertFalse(self.keys._ocore_authenticate(self.assertion(subject="bob@cp"))[0])

    def test_forwarded_scopes_intersect(self):
        key, auth = self.keys._ocore_authenticate(self.assertion(scope={"read_only": True, "categories": ["orm"],
                                                                         "tool_deny": ["count"]}))
        self.assertTrue(auth.scope["read_only"])
        self.assertEqual(auth.scope["categories"], ["orm"])
        self.assertIn("count", auth.scope["tool_deny"])
        key.category_ids = self.env["ocore.mcp.category"].search([("code", "=", "sql")])
        _key, auth = self.keys._ocore_authenticate(self.assertion(scope={"categories": ["orm"]}))
        self.assertEqual(auth.scope["categories"], ["__none__"], "orm ∩ sql is nothing")

    def test_replay_wrong_audience_and_unknown_user_refused(self):
        token = self.assertion()
        self.assertTrue(self.keys._ocore_authenticate(token)[0])
        self.assertFalse(self.keys._ocore_authenticate(token)[0], "replayed jti")
        self.assertFalse(self.keys._ocore_authenticate(self.assertion(subject="nobody"))[0])
        self.assertFalse(self.keys._ocore_authenticate(self.assertion(subject="__system__"))[0])
        other = self.instance.copy({"slug": "elsewhere"})
        other.credential_generation = 1
        self.assertFalse(self.keys._ocore_authenticate(
            other._ocore_assertion("alice_ctl", {}, "c"))[0], "audience of another instance, other key")
        self.assertFalse(self.keys._ocore_authenticate(self.assertion(purpose="rotate"))[0])

    def test_used_assertion_register_emptied_by_crash_recovery(self):
        """The used-assertion register is UNLOGGED: crash recovery empties it (as TRUNCATE does here). An
        assertion used before must not be accepted again after; one issued after the reset is."""
        token = self.assertion()
        self.assertTrue(self.keys._ocore_authenticate(token)[0])
        self.assertFalse(self.keys._ocore_authenticate(token)[0], "replayed jti")
        self.env.cr.execute("TRUNCATE ocore_mcp_control_jti")  # what crash recovery does to an unlogged table
        self.assertFalse(self.keys._ocore_authenticate(token)[0], "replayed after the register was emptied")
        # issued after the reset (iat counts whole seconds: the next one)
        fresh = self.assertion(extra={"iat": int(time.time()) + 1})
        self.assertTrue(self.keys._ocore_authenticate(fresh)[0], "a new assertion after the reset")
        self.assertFalse(self.keys._ocore_authenticate(fresh)[0], "and it is used once")

    def test_forged_assertions_refused(self):
        """The instance verifies the compact JWS itself: a changed claim, another algorithm, an expired or
        future assertion, one living too long, or one missing a claim is refused."""
        def b64(data):
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        def unb64(part):
            return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

        head, body, sig = self.assertion().split(".")
        claims = unb64(body)
        self.assertFalse(self.keys._ocore_authenticate(f"{head}.{b64({**claims, 'sub': 'vic_ctl'})}.{sig}")[0])
        self.assertFalse(self.keys._ocore_authenticate(f"{b64({**unb64(head), 'alg': 'none'})}.{body}.")[0])
        self.assertFalse(self.keys._ocore_authenticate(f"{b64({**unb64(head), 'alg': 'HS256'})}.{body}.{sig}")[0])
        now = int(time.time())
        for extra in ({"iat": now - 400, "exp": now - 100}, {"iat": now + 60, "exp": now + 100},
                      {"nbf": now + 60}, {"exp": now + 400}):
            self.assertFalse(self.keys._ocore_authenticate(self.assertion(extra=extra))[0], extra)
        # well signed, without a jti (it could not be used once)
        private = keys.private_key(self.env, f"instance/{self.instance.id}/1")
        no_jti = {k: v for k, v in claims.items() if k != "jti"}
        self.assertFalse(self.keys._ocore_authenticate(
            jwt.encode(no_jti, private, algorithm="EdDSA", headers={"kid": unb64(head)["kid"]}))[0])
        self.assertTrue(self.keys._ocore_authenticate(self.assertion())[0], "a genuine one still passes")

    def test_instance_refuses_and_rotation(self):
        self.assertTrue(self.keys._ocore_authenticate(self.assertion())[0])
        _private, public = self.instance._ocore_signing_key(2)
        self.link._ocore_enrol_rotate(self.instance._ocore_kid(2), public)
        self.assertFalse(self.keys._ocore_authenticate(self.assertion())[0], "old key after rotation")
        self.assertTrue(self.keys._ocore_authenticate(self.assertion(generation=2))[0])
        self.link.action_refuse()
        self.assertFalse(self.keys._ocore_authenticate(self.assertion(generation=2))[0], "refused link")

    def conn(self, key, **kw):
        return Connection(key=key, scope=None, settings=self.settings, transport="modern",
                          protocol_version="2026-07-28", **kw)

    def forward(self, key, full_name, **kw):
        server = self.env["ocore.mcp.server"]
        conn = self.conn(key, **kw)
        org = server._ocore_control_org_route(conn)
        return server._ocore_control_forward(conn, org, server._ocore_control_route_of(org, full_name), full_name, {})

    def test_org_key_scoping_and_kill_switch(self):
        other = self.env["ocore.control.instance"].create({
            "name": "Other", "slug": "other_inst", "organization_id": self.org.id, "status": "running"})
        key, _secret = self.keys._ocore_create_key("org key", self.alice, organization_id=self.org.id)
        server = self.env["ocore.mcp.server"]
        self.assertEqual(server._ocore_control_instances(self.conn(key)), self.instance | other)
        key.instance_ids = other
        self.assertEqual(key.instance_scope, "other_inst")
        self.assertEqual(server._ocore_control_instances(self.conn(key)), other)
        self.assertEqual(server._ocore_control_instances(self.conn(key, instances=["nope"])),
                         self.env["ocore.control.instance"])
        # a call to an instance outside the key's scope is refused before anything is forwarded
        result = self.forward(key, f"{self.instance.slug}_count")
        self.assertTrue(result["isError"])
        self.assertIn("not scoped to instance", result["content"][0]["text"])
        self.org.mcp_enabled = False
        with self.assertRaisesRegex(pol.Refusal, "kill switch"):
            server._ocore_control_check_org(self.conn(key))
        result = self.forward(key, "other_inst_count")
        self.assertIn("kill switch", result["content"][0]["text"])

    def test_routing_table_follows_membership_status_and_credential(self):
        key, _secret = self.keys._ocore_create_key("org key", self.alice, organization_id=self.org.id)
        name = f"{self.instance.slug}_count"
        self.assertIn("unavailable", self.forward(key, name)["content"][0]["text"], "reachable: refused by nothing "
                      "but the unreachable test URL")
        self.instance.status = "stopped"
        self.assertIn("is not running", self.forward(key, name)["content"][0]["text"])
        self.instance.status = "unreachable"  # still routed (drops out of tools/list only when it fails)
        self.assertNotIn("is not running", self.forward(key, name)["content"][0]["text"])
        self.instance.sudo().write({"credential_state": "revoked"})
        self.assertIn("no active credential", self.forward(key, name)["content"][0]["text"])
        self.instance.sudo().write({"credential_state": "active"})
        self.org.member_ids.filtered(lambda m: m.user_id == self.vic).role = "owner"
        self.org.member_ids.filtered(lambda m: m.user_id == self.alice).role = "viewer"
        _subject, claim = self.env["ocore.mcp.server"]._ocore_control_subject(self.conn(key))
        self.assertTrue(claim["read_only"], "the new role is seen at once")
        self.org.member_ids.filtered(lambda m: m.user_id == self.alice).unlink()
        self.assertIn("not a member", self.forward(key, name)["content"][0]["text"])
        rows = self.env["ocore.mcp.audit.log"].sudo().search([("key_id", "=", key.id)], order="id")
        self.assertEqual(len(rows), 5, "one audit row per forwarded call")
        self.assertEqual(rows[-1].refusal_reason, "instance_denied")

    def test_instance_notice_drops_the_cached_lists_and_is_used_once(self):
        self.link.control_url = "http://127.0.0.1:1/ocore/control/tools_changed"
        self.instance.notice_public_key = self.link._ocore_notice_public_key()
        cache = self.env["ocore.control.tool.cache"]
        cache.create({"instance_id": self.instance.id, "cache_key": "k", "tools_json": "[]",
                      "fetched_at": "2030-01-01 00:00:00"})
        key, _secret = self.keys._ocore_create_key("org key", self.alice, organization_id=self.org.id)
        session = self.env["ocore.mcp.session"].sudo().create({
            "key_id": key.id, "session_id": "s-notice", "transport": "stream", "protocol_version": "2025-06-18"})
        notices = self.env["ocore.mcp.control.link"]._ocore_push_tools_changed("tools")
        self.assertEqual([url for url, _n in notices], [self.link.control_url])
        token = notices[0][1]
        received = self.env["ocore.control.instance"]._ocore_receive_notice(token)
        self.assertEqual(received, self.instance)
        self.assertFalse(cache.search([("instance_id", "=", self.instance.id)]), "the cached lists are dropped")
        self.assertIn(session, self.env["ocore.mcp.server"]._ocore_control_announce(self.instance))
        with self.assertRaisesRegex(ValueError, "replayed"):
            self.env["ocore.control.instance"]._ocore_receive_notice(token)
        self.instance.notice_public_key = self.env["ocore.mcp.control.link"].create(
            {"name": "x", "kid": "ocore-control-other"})._ocore_notice_public_key()
        fresh = self.env["ocore.mcp.control.link"]._ocore_push_tools_changed("tools")[0][1]
        with self.assertRaisesRegex(ValueError, "refused"):
            self.env["ocore.control.instance"]._ocore_receive_notice(fresh)
        with self.assertRaisesRegex(ValueError, "malformed|no enrolled"):
            self.env["ocore.control.instance"]._ocore_receive_notice("not.a.token")

    def test_oauth_consent_picks_the_organization_and_its_instances(self):
        other_org = self.env["ocore.control.organization"].create({
            "name": "Other agency", "member_ids": [Command.create({"user_id": self.vic.id, "role": "owner"})]})
        foreign = self.env["ocore.control.instance"].create({"name": "Foreign", "slug": "foreign_inst",
                                                             "organization_id": other_org.id})
        keys = self.keys.sudo()
        html = str(keys._ocore_consent_values(self.alice, {})["consent_extra_html"])
        self.assertIn('name="organization_id"', html)
        self.assertIn(f'value="{self.org.id}"', html)
        self.assertIn(f'name="instance_ids" value="{self.instance.id}"', html)
        self.assertNotIn("Other agency", html, "only the organizations the user is a member of")
        values = keys._ocore_consent_key_values(self.alice, {"organization_id": str(self.org.id),
                                                             "instance_ids": [str(self.instance.id)]})
        self.assertEqual(values["organization_id"], self.org.id)
        key, _secret = keys._ocore_create_key("consent key", self.alice, **values)
        self.assertEqual(key.instance_scope, self.instance.slug)
        with self.assertRaisesRegex(AccessError, "Choose instances of"):
            keys._ocore_consent_key_values(self.alice, {"organization_id": str(self.org.id),
                                                        "instance_ids": [str(foreign.id)]})
        with self.assertRaisesRegex(AccessError, "Choose one of your organizations"):
            keys._ocore_consent_key_values(self.alice, {"organization_id": str(other_org.id), "instance_ids": []})

    def test_tools_of_a_managed_instance_go_to_its_agent(self):
        self.server.action_generate_agent_secret()
        self.server.agent_url = "http://127.0.0.1:1"  # no agent there: the call fails, through the agent
        key, _secret = self.keys._ocore_create_key("org key", self.alice, organization_id=self.org.id)
        result = self.forward(key, f"{self.instance.slug}_odoo_logs")
        self.assertTrue(result["isError"])
        self.assertIn("the agent of host1", result["content"][0]["text"])
        viewer_key, _secret = self.keys._ocore_create_key("viewer key", self.vic, organization_id=self.org.id)
        self.assertIn("owners and admins", self.forward(viewer_key, f"{self.instance.slug}_list_backups")
                      ["content"][0]["text"])

    def test_viewer_forwards_read_only(self):
        key, _secret = self.keys._ocore_create_key("viewer key", self.vic, organization_id=self.org.id)
        _subject, claim = self.env["ocore.mcp.server"]._ocore_control_subject(self.conn(key))
        self.assertTrue(claim["read_only"])

    def test_unreachable_instance_drops_out(self):
        key, _secret = self.keys._ocore_create_key("org key", self.alice, organization_id=self.org.id)
        tools = self.env["ocore.mcp.server"]._ocore_control_remote_tools(self.conn(key))
        self.assertEqual(tools, [])
        self.assertEqual(self.instance.status, "unreachable")
        self.assertTrue(self.instance.last_error)

    def test_stale_heartbeat_marks_the_server_and_its_instances(self):
        self.server._ocore_apply_status({"disk": {"total": 10e9, "free": 4e9}, "load": 0.5, "instances": []})
        self.assertEqual(self.server.status, "online")
        self.assertAlmostEqual(self.server.disk_free_gb, 4.0)
        self.server.last_heartbeat = "2020-01-01 00:00:00"
        self.env["ocore.control.server"]._ocore_mark_stale()
        self.assertEqual(self.server.status, "unreachable")
        self.assertEqual(self.instance.status, "unreachable")

    def test_agent_secret_shown_once_stored_nowhere(self):
        action = self.server.action_generate_agent_secret()
        secret = action["context"]["default_secret"]
        self.assertEqual(secret, self.server._ocore_agent_secret())
        self.assertEqual(self.server.agent_key_fingerprint, keys.fingerprint(secret))
        self.env.flush_all()
        self.env.cr.execute("SELECT count(*) FROM ocore_control_server WHERE agent_key_fingerprint = %s", (secret,))
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        again = self.server.action_generate_agent_secret()["context"]["default_secret"]
        self.assertNotEqual(again, secret, "a new generation, the old secret no longer valid")

    def test_views(self):
        for view_type in ("kanban", "list", "form", "search"):
            self.env["ocore.control.instance"].get_views([(False, view_type)])
        for model in ("ocore.control.organization", "ocore.control.server", "ocore.mcp.control.link", "ocore.mcp.key"):
            self.env[model].get_views([(False, "list"), (False, "form")])
        self.assertEqual(self.instance.color, 10)
