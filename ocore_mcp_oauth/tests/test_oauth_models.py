from datetime import timedelta

from odoo import Command, fields
from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.models.mcp_key import hash_token
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import TransactionCase, tagged

from ..lib import resource as R
from ..models.oauth_client import MetadataDocumentError
from ..models.oauth_device import USER_CODE_ALPHABET, new_user_code, normalize_user_code

BASE = "https://odoo.example.com"


@tagged("post_install", "-at_install")
class TestResourceRules(TransactionCase):
    def test_resource_identifiers(self):
        self.assertEqual(R.normalize_resource("HTTPS://Odoo.Example.com/ocore/mcp/stream/"),
                         "https://odoo.example.com/ocore/mcp/stream")
        self.assertIsNone(R.normalize_resource("https://odoo.example.com/ocore/mcp#frag"))
        self.assertIsNone(R.normalize_resource("ftp://odoo.example.com/ocore/mcp"))
        self.assertIsNone(R.normalize_resource("/ocore/mcp"))
        accepted = R.accepted_resources([BASE])
        self.assertEqual(accepted, {f"{BASE}{p}" for p in (
            "/ocore/mcp", "/ocore/mcp/stream", "/ocore/mcp/sse", "/api/mcp", "/api/mcp/stream", "/api/mcp/sse")})
        self.assertNotIn("https://other.example.com/ocore/mcp", accepted)
        self.assertEqual(R.canonical_resource(BASE), f"{BASE}/ocore/mcp")

    def test_metadata_url_of_each_endpoint(self):
        for path, resource in (
            ("/ocore/mcp/stream", "/ocore/mcp/stream"), ("/ocore/mcp/sse", "/ocore/mcp/sse"),
            ("/ocore/mcp/sse/messages", "/ocore/mcp/sse"), ("/api/mcp/stream", "/api/mcp/stream"),
            ("/api/mcp/sse", "/api/mcp/sse"), ("/api/mcp/messages", "/api/mcp"),
        ):
            self.assertEqual(R.resource_metadata_url(BASE, path),
                             f"{BASE}/.well-known/oauth-protected-resource{resource}")
        self.assertEqual(R.resource_metadata_url(BASE, "/web"), f"{BASE}/.well-known/oauth-protected-resource")

    def test_redirect_uri_rules(self):
        for ok in ("https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:33418/callback",
                   "http://localhost:9000/cb", "http://[::1]:8080/cb", "cursor://anysphere.cursor-retrieval/cb",
                   "com.example.app:/oauth"):
            self.assertIsNone(R.redirect_uri_problem(ok), ok)
        for bad in ("http://evil.example.com/cb", "javascript:alert(1)", "data:text/html,x",
                    "https://client.example.com/cb#frag", "file:///etc/passwd", "", "relative/path"):
            self.assertTrue(R.redirect_uri_problem(bad), bad)
        # loopback: any port (RFC 8252 §7.3), same path; everything else exact
        self.assertTrue(R.redirect_uri_matches("http://127.0.0.1:5555/cb", "http://127.0.0.1:8000/cb"))
        self.assertFalse(R.redirect_uri_matches("http://127.0.0.1:5555/other", "http://127.0.0.1:8000/cb"))
        self.assertFalse(R.redirect_uri_matches("http://localhost:5555/cb", "http://127.0.0.1:8000/cb"))
        self.assertFalse(R.redirect_uri_matches("https://a.example.com:444/cb", "https://a.example.com/cb"))
        self.assertTrue(R.redirect_uri_matches("https://a.example.com/cb", "https://a.example.com/cb"))

    def test_user_codes(self):
        codes = {new_user_code() for _i in range(200)}
        self.assertGreater(len(codes), 190)
        for code in codes:
            self.assertRegex(code, r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
        self.assertNotIn("A", USER_CODE_ALPHABET)
        self.assertNotIn("0", USER_CODE_ALPHABET)
        self.assertEqual(normalize_user_code("bckf hmlt"), "BCKF-HMLT")
        self.assertEqual(normalize_user_code(" BCKF-HMLT "), "BCKF-HMLT")
        self.assertIsNone(normalize_user_code("BCKF-HML"))


class OAuthCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("web.base.url", BASE)
        cls.company = cls.env.company
        cls.other_company = cls.env["res.company"].create({"name": "Other Org"})
        group_user = cls.env.ref("ocore_mcp.group_mcp_user")
        cls.alice = cls.env["res.users"].create({
            "name": "Alice", "login": "oauth_alice",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id, group_user.id])],
            "company_ids": [Command.set([cls.company.id])], "company_id": cls.company.id,
        })
        cls.viewer = cls.env["res.users"].create({
            "name": "Vera", "login": "oauth_viewer",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id,
                                       cls.env.ref("ocore_mcp.group_mcp_viewer").id])],
        })
        cls.nobody = cls.env["res.users"].create({
            "name": "Nobody", "login": "oauth_nobody",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id])],
        })
        cls.client = cls.env["ocore.mcp.oauth.client"].create({
            "name": "Test client", "redirect_uris": "http://127.0.0.1:9999/callback",
            "registration": "dcr",
        })
        cls.Auth = cls.env["ocore.mcp.oauth.authorization"]
        cls.Token = cls.env["ocore.mcp.oauth.token"]
        cls.Key = cls.env["ocore.mcp.key"]

    def grant(self, user=None, **decision):
        decision.setdefault("company_id", self.company.id)
        return self.Auth._ocore_grant(user or self.alice, self.client, decision)

    def issue(self, auth, resource=f"{BASE}/ocore/mcp/stream", with_refresh=True):
        return self.Token._ocore_issue(auth, "authorization_code", resource, "mcp", "fam-" + str(auth.id),
                                       with_refresh)


@tagged("post_install", "-at_install")
class TestConsentGrant(OAuthCase):
    def test_only_categories_holding_tools_are_offered(self):
        """Categories are records; the consent offers (and a grant accepts) only those holding a tool."""
        offered = set(self.env["ocore.mcp.category"]._ocore_offered().mapped("code"))
        self.assertIn("orm", offered)
        self.assertTrue(self.env.ref("ocore_mcp.category_export").exists())  # a record without a tool
        self.assertNotIn("export", offered)
        self.assertFalse(set(self.grant(preset="standard").key_id.category_ids.mapped("code")) - offered)
        with self.assertRaisesRegex(ValidationError, "export"):
            self.grant(preset="custom", categories=["export"])

    def test_new_key_from_presets(self):
        auth = self.grant(preset="standard", instance_scope="prod, test", tool_allowlist="search_read\ncount",
                          auto_context=True)
        key = auth.key_id
        self.assertTrue(auth.key_auto_created)
        self.assertEqual(key.origin, "oauth")
        self.assertEqual(key.user_id, self.alice)
        self.assertEqual(key.company_id, self.company)
        self.assertEqual(key.state, "active")  # has a (never shown) secret: the policy accepts it
        codes = set(key.category_ids.mapped("code"))
        self.assertIn("orm", codes)
        self.assertFalse(codes & {"sql", "shell", "files", "modules", "system"})
        self.assertFalse(key.read_only)
        self.assertEqual(key.instance_scope, "prod,test")
        self.assertEqual(key.tool_allowlist, "search_read,count")
        self.assertTrue(key.auto_context)
        self.assertEqual(self.grant(preset="full").key_id.category_ids.ids, [])
        read_only = self.grant(preset="read_only").key_id
        self.assertTrue(read_only.read_only)
        custom = self.grant(preset="custom", categories=["orm", "sql"], read_only=True).key_id
        self.assertEqual(sorted(custom.category_ids.mapped("code")), ["orm", "sql"])
        self.assertTrue(custom.read_only)
        self.assertEqual(custom._ocore_scope()["categories"], ["orm", "sql"])
        self.assertEqual(self.grant(preset="custom", categories=["orm"]).key_id.read_only, False)

    def test_token_scope_reflects_the_key(self):
        auth = self.grant(preset="custom", categories=["orm", "search"], read_only=True)
        self.assertEqual(auth._ocore_token_scope(offline=True), "mcp mcp:read mcp:orm mcp:search offline_access")
        full = self.grant(preset="full")
        self.assertEqual(full._ocore_token_scope(), "mcp")

    def test_refused_choices(self):
        with self.assertRaises(ValidationError):
            self.grant(preset="custom", categories=["nope"])
        with self.assertRaises(ValidationError):
            self.grant(preset="custom", categories=[])
        with self.assertRaises(ValidationError):
            self.grant(preset="everything")
        with self.assertRaises(AccessError):  # not one of alice's companies
            self.grant(company_id=self.other_company.id)
        with self.assertRaises(AccessError):  # no MCP group
            self.grant(user=self.nobody)
        admin_key, _s = self.Key._ocore_create_key("admin's", self.env.ref("base.user_admin"))
        with self.assertRaises(AccessError):  # someone else's key
            self.grant(key_mode="existing", key_id=admin_key.id)
        revoked, _s = self.Key._ocore_create_key("old", self.alice)
        revoked.active = False
        with self.assertRaises(AccessError):
            self.grant(key_mode="existing", key_id=revoked.id)
        self.alice.company_ids = [Command.link(self.other_company.id)]
        elsewhere, _s = self.Key._ocore_create_key("elsewhere", self.alice, company_id=self.other_company.id)
        with self.assertRaises(AccessError):  # existing key of another company than the chosen one
            self.grant(key_mode="existing", key_id=elsewhere.id)
        self.assertEqual(self.grant(key_mode="existing", key_id=elsewhere.id,
                                    company_id=self.other_company.id).key_id, elsewhere)

    def test_viewer_gets_read_only_key(self):
        auth = self.grant(user=self.viewer, preset="full")
        self.assertTrue(auth.key_id.read_only)

    def test_link_existing_key_and_one_authorization_per_user_client_key(self):
        key, _s = self.Key._ocore_create_key("mine", self.alice, read_only=True)
        auth = self.grant(key_mode="existing", key_id=key.id)
        self.assertEqual(auth.key_id, key)
        self.assertFalse(auth.key_auto_created)
        self.assertEqual(self.grant(key_mode="existing", key_id=key.id), auth)
        auth.action_revoke()
        self.assertFalse(auth.active)
        again = self.grant(key_mode="existing", key_id=key.id)
        self.assertEqual(again, auth)
        self.assertTrue(again.active)


@tagged("post_install", "-at_install")
class TestTokens(OAuthCase):
    def test_access_token_resolves_to_its_key(self):
        auth = self.grant(preset="standard")
        response = self.issue(auth)
        self.assertTrue(response["access_token"].startswith("ocoat_"))
        self.assertTrue(response["refresh_token"].startswith("ocort_"))
        self.assertEqual(response["expires_in"], 3600)
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("ocore_mcp_oauth.access_token_ttl", "0")  # what Settings saves for an empty field
        self.assertEqual(self.Token._ocore_ttl("access_token_ttl"), 3600)
        icp.set_param("ocore_mcp_oauth.access_token_ttl", "120")
        self.assertEqual(self.Token._ocore_ttl("access_token_ttl"), 120)
        record = self.Token.search([("authorization_id", "=", auth.id)])
        self.assertEqual(record.access_token_hash, hash_token(response["access_token"]))
        self.assertEqual(record.refresh_token_hash, hash_token(response["refresh_token"]))
        self.assertNotIn(response["access_token"], str(record.read()))
        self.assertEqual(self.Key._ocore_find_by_token(response["access_token"]), auth.key_id)
        self.assertFalse(self.Key._ocore_find_by_token(response["refresh_token"]))
        self.assertFalse(self.Key._ocore_find_by_token(response["access_token"] + "x"))
        self.assertTrue(auth.last_auth_at)
        # every equivalent MCP URL of this server is an accepted audience
        for path in ("/ocore/mcp", "/ocore/mcp/sse", "/api/mcp/stream", "/api/mcp/sse"):
            token = self.issue(auth, resource=f"{BASE}{path}")["access_token"]
            self.assertEqual(self.Key._ocore_find_by_token(token), auth.key_id, path)

    def test_wrong_audience_expired_and_revoked_tokens_are_refused(self):
        auth = self.grant(preset="standard")
        other = self.issue(auth, resource="https://control.example.com/ocore/mcp")["access_token"]
        self.assertFalse(self.Key._ocore_find_by_token(other))
        other_path = self.issue(auth, resource=f"{BASE}/web")["access_token"]
        self.assertFalse(self.Key._ocore_find_by_token(other_path))
        expired = self.issue(auth)["access_token"]
        record = self.Token._ocore_find(expired)
        record.access_expires_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertFalse(self.Key._ocore_find_by_token(expired))
        revoked = self.issue(auth)["access_token"]
        self.Token._ocore_find(revoked)._ocore_revoke("client")
        self.assertFalse(self.Key._ocore_find_by_token(revoked))
        self.assertEqual(self.Token.with_context(active_test=False).search(
            [("access_token_hash", "=", hash_token(revoked))]).revoke_reason, "client")

    def test_token_of_a_revoked_key_reaches_the_policy_check(self):
        auth = self.grant(preset="standard")
        token = self.issue(auth)["access_token"]
        auth.key_id.active = False
        key = self.Key._ocore_find_by_token(token)
        self.assertEqual(key, auth.key_id)  # resolved, then refused by check_key: "the API key has been revoked"
        self.assertFalse(key.active)
        self.assertFalse(auth._ocore_usable())

    def test_revoke_authorization(self):
        auth = self.grant(preset="standard")
        key = auth.key_id
        token = self.issue(auth)["access_token"]
        session = self.env["ocore.mcp.session"]._ocore_open(key.id, "sse", "127.0.0.1",
                                                              oauth_authorization_id=auth.id)
        manual, _s = self.Key._ocore_create_key("manual", self.alice)
        linked = self.grant(key_mode="existing", key_id=manual.id)
        linked_token = self.issue(linked)["access_token"]
        linked_session = self.env["ocore.mcp.session"]._ocore_open(manual.id, "sse", "127.0.0.1",
                                                                     oauth_authorization_id=linked.id)
        auth.with_user(self.alice).action_revoke()
        self.assertFalse(auth.active)
        self.assertFalse(key.active)  # auto-created: deactivated
        self.assertTrue(session.ended_at)
        self.assertFalse(self.Key._ocore_find_by_token(token))
        tokens = self.Token.with_context(active_test=False).search([("authorization_id", "=", auth.id)])
        self.assertEqual(set(tokens.mapped("revoke_reason")), {"authorization_revoked"})
        self.assertEqual(set(tokens.mapped("active")), {False})
        # the other authorization is untouched; revoking it keeps the linked (manual) key
        self.assertEqual(self.Key._ocore_find_by_token(linked_token), manual)
        self.assertFalse(linked_session.ended_at)
        linked.with_user(self.alice).action_revoke()
        self.assertTrue(manual.active)
        self.assertTrue(linked_session.ended_at)
        self.assertFalse(self.Key._ocore_find_by_token(linked_token))

    def test_revoke_all_of_a_client_and_access_rules(self):
        first = self.grant(preset="standard")
        second = self.grant(preset="read_only")
        admin_auth = self.grant(user=self.env.ref("base.user_admin"), preset="full")
        bob = self.viewer
        with self.assertRaises(AccessError):
            first.with_user(bob).action_revoke()
        visible = self.Auth.with_user(self.alice).search([])
        self.assertEqual(visible, first | second)
        first.with_user(self.alice).action_revoke_client()
        self.assertFalse(first.active or second.active)
        self.assertTrue(admin_auth.active)  # not alice's
        self.client.action_revoke_all()  # as the superuser: all of the client
        self.assertFalse(admin_auth.active)

    def test_www_authenticate_points_at_the_metadata(self):
        header = self.Key._ocore_www_authenticate(BASE, "invalid_token", 'bad "token"')
        self.assertIn('error="invalid_token"', header)
        self.assertIn(f'resource_metadata="{BASE}/.well-known/oauth-protected-resource"', header)


@tagged("post_install", "-at_install")
class TestDeviceCodes(OAuthCase):
    def test_poll_interval_and_decision(self):
        device, ttl = self.env["ocore.mcp.oauth.device"]._ocore_create(self.client, "dc-secret", "mcp",
                                                                        f"{BASE}/ocore/mcp", 5)
        self.assertEqual(ttl, 900)
        self.assertAlmostEqual((device.expires_at - fields.Datetime.now()).total_seconds(), 900, delta=5)
        self.assertEqual(self.env["ocore.mcp.oauth.device"]._ocore_find("dc-secret"), device)
        self.assertEqual(self.env["ocore.mcp.oauth.device"]._ocore_find_user_code(device.user_code.lower()), device)
        self.assertFalse(device._ocore_poll())  # first poll
        self.assertTrue(device._ocore_poll())  # too fast: slow_down, interval + 5
        self.assertEqual(device.interval, 10)
        device.last_poll_at = fields.Datetime.now() - timedelta(seconds=11)
        self.assertFalse(device._ocore_poll())
        auth = self.grant(preset="read_only")
        device._ocore_decide(self.alice, auth)
        self.assertEqual(device.status, "approved")
        self.assertFalse(self.env["ocore.mcp.oauth.device"]._ocore_find_user_code(device.user_code))
        with self.assertRaises(UserError):
            device._ocore_decide(self.alice, None)  # decided once only
        expired, _ttl = self.env["ocore.mcp.oauth.device"]._ocore_create(self.client, "dc-2", "mcp", BASE, 5)
        expired.expires_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertTrue(expired.is_expired)
        self.assertFalse(self.env["ocore.mcp.oauth.device"]._ocore_find_user_code(expired.user_code))


@tagged("post_install", "-at_install")
class TestInvites(OAuthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.env["res.users"].create({
            "name": "Manny", "login": "oauth_manager",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id,
                                       cls.env.ref("ocore_mcp.group_mcp_manager").id])],
        })
        cls.admin = cls.env.ref("base.user_admin")
        cls.newcomer = cls.env["res.users"].create({
            "name": "Newton", "login": "oauth_newcomer",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id])],
            "company_ids": [Command.set([cls.other_company.id])], "company_id": cls.other_company.id,
        })
        specs = cls.env["ocore.mcp.toolset"]._ocore_tool_specs()
        cls.admin_tool = next(name for name, spec in specs.items() if spec.meta.admin_only)
        cls.plain_tool = next(name for name, spec in specs.items() if not spec.meta.admin_only)

    def invite(self, user, **vals):
        vals.setdefault("name", "Team")
        return self.env["ocore.mcp.oauth.invite"].with_user(user).create(vals)

    def test_ceiling_at_creation(self):
        invite = self.invite(self.manager, read_only=False, tool_allowlist=self.plain_tool)
        self.assertEqual(invite.inviter_id, self.manager)
        with self.assertRaises(ValidationError):  # an admin-only tool, from a non-admin manager
            self.invite(self.manager, tool_allowlist=self.admin_tool)
        with self.assertRaises(ValidationError):  # a company the manager is not in
            self.invite(self.manager, company_id=self.other_company.id)
        self.assertIn("is not a member of", self.env["ocore.mcp.oauth.invite"].new(
            {"name": "x", "inviter_id": self.manager.id, "company_id": self.other_company.id}
        )._ocore_ceiling_problems()[0])
        with self.assertRaises(ValidationError):  # a model the manager cannot read
            self.invite(self.manager, model_ids=[Command.set([self.env.ref("base.model_ir_config_parameter").id])])
        with self.assertRaises(ValidationError):
            self.invite(self.manager, tool_allowlist="no_such_tool")
        with self.assertRaises(AccessError):  # only MCP managers create invites
            self.invite(self.alice)
        # nobody invites in someone else's name
        forged = self.invite(self.manager, inviter_id=self.admin.id)
        self.assertEqual(forged.inviter_id, self.manager)
        self.assertTrue(self.invite(self.admin, tool_allowlist=self.admin_tool))

    def test_accept_adds_membership_and_creates_the_key(self):
        invite = self.invite(self.admin, company_id=self.company.id, read_only=False, max_uses=2,
                             category_ids=[Command.set(self.env.ref("ocore_mcp.category_orm").ids)],
                             tool_allowlist=self.plain_tool)
        self.assertEqual(invite.state, "new")
        token = invite._ocore_new_token()
        self.assertEqual(invite.state, "active")
        self.assertEqual(self.env["ocore.mcp.oauth.invite"]._ocore_find(token), invite)
        self.assertFalse(self.env["ocore.mcp.oauth.invite"]._ocore_find(token + "x"))
        self.assertNotIn(self.company, self.newcomer.company_ids)
        key, secret = invite._ocore_accept(self.newcomer)
        self.assertIn(self.company, self.newcomer.company_ids)
        self.assertTrue(self.newcomer.has_group("ocore_mcp.group_mcp_viewer"))
        self.assertFalse(self.newcomer.has_group("ocore_mcp.group_mcp_user"))
        self.assertEqual(key.user_id, self.newcomer)
        self.assertEqual(key.company_id, self.company)
        self.assertEqual(key.origin, "invite")
        self.assertEqual(key.oauth_invite_id, invite)
        self.assertTrue(key.read_only)  # a new member is a Viewer: read-only whatever the invite says
        self.assertEqual(key.category_ids.mapped("code"), ["orm"])
        self.assertEqual(key.tool_allowlist, self.plain_tool)
        self.env.flush_all()  # the key lookup reads the table directly
        self.assertEqual(self.Key._ocore_find_by_token(secret), key)
        self.assertEqual(invite.use_count, 1)
        with self.assertRaises(AccessError):  # once per user
            invite._ocore_accept(self.newcomer)
        key2, _s = invite._ocore_accept(self.alice)  # an MCP user keeps write access
        self.assertFalse(key2.read_only)
        self.assertEqual(invite.state, "used")
        with self.assertRaises(AccessError):
            invite._ocore_accept(self.viewer)

    def test_acceptance_rechecks_the_ceiling_expiry_and_revocation(self):
        carol = self.env["res.users"].create({
            "name": "Carol", "login": "oauth_carol",
            compat.user_groups_field(self.env["res.users"]): [Command.set([self.env.ref("base.group_system").id,
                                       self.env.ref("ocore_mcp.group_mcp_manager").id])],
        })
        invite = self.invite(carol, tool_allowlist=self.admin_tool)
        invite._ocore_new_token()
        self.assertIsNone(invite._ocore_acceptance_problem(self.alice))
        carol[compat.user_groups_field(carol)] = [Command.unlink(self.env.ref("base.group_system").id)]
        self.assertFalse(carol._is_system())
        problem = invite._ocore_acceptance_problem(self.alice)
        self.assertIn("reserved to system administrators", problem)
        with self.assertRaises(AccessError):
            invite._ocore_accept(self.alice)
        self.assertFalse(self.Key.search([("oauth_invite_id", "=", invite.id)]))
        expiring = self.invite(self.manager)
        expiring._ocore_new_token()
        expiring.expiration_date = fields.Datetime.now() - timedelta(seconds=1)
        self.assertIn("expired", expiring._ocore_acceptance_problem(self.alice))
        revoked = self.invite(self.manager)
        revoked._ocore_new_token()
        revoked.action_revoke()
        self.assertIn("revoked", revoked._ocore_acceptance_problem(self.alice))
        no_link = self.invite(self.manager)
        self.assertTrue(no_link._ocore_acceptance_problem(self.alice))


@tagged("post_install", "-at_install")
class TestClientMetadataDocuments(TransactionCase):
    URL = "https://client.example.com/oauth/metadata.json"

    def doc(self, **values):
        return {"client_id": self.URL, "client_name": "Example", "redirect_uris": ["https://client.example.com/cb"],
                **values}

    def test_metadata_urls(self):
        Client = self.env["ocore.mcp.oauth.client"]
        self.assertTrue(Client._ocore_is_metadata_url(self.URL))
        for bad in ("http://client.example.com/m.json", "https://client.example.com", "https://client.example.com/",
                    "https://user:pw@client.example.com/m.json", "https://client.example.com/m.json#x", "abc"):
            self.assertFalse(Client._ocore_is_metadata_url(bad), bad)

    def test_document_validation(self):
        Client = self.env["ocore.mcp.oauth.client"]
        vals = Client._ocore_metadata_document_values(self.URL, self.doc(logo_uri="https://client.example.com/l.png"))
        self.assertEqual(vals["name"], "Example")
        self.assertEqual(vals["redirect_uris"], "https://client.example.com/cb")
        self.assertEqual(vals["grant_types"], "authorization_code")
        self.assertEqual(vals["token_endpoint_auth_method"], "none")
        self.assertEqual(vals["logo_uri"], "https://client.example.com/l.png")
        for bad in (
            self.doc(client_id="https://other.example.com/m.json"),
            self.doc(client_secret="x"),
            self.doc(token_endpoint_auth_method="private_key_jwt"),
            self.doc(redirect_uris=[]),
            self.doc(redirect_uris=["http://attacker.example.com/cb"]),
            self.doc(grant_types=["password"]),
        ):
            with self.assertRaises(MetadataDocumentError):
                Client._ocore_metadata_document_values(self.URL, bad)

    def test_private_addresses_are_not_fetched(self):
        Client = self.env["ocore.mcp.oauth.client"]
        with self.assertRaisesRegex(MetadataDocumentError, "non-public address"):
            Client._ocore_fetch_metadata_document("https://127.0.0.1:9/client.json")
        # an unknown URL client_id resolves to nothing (the authorization request is refused)
        self.assertFalse(Client._ocore_find_or_fetch("https://127.0.0.1:9/client.json"))
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp_oauth.cimd_enabled", "0")
        self.assertFalse(Client._ocore_find_or_fetch(self.URL))


@tagged("post_install", "-at_install")
class TestConsentMergeAndCleanup(OAuthCase):
    def backdate(self, auth):
        self.env.flush_all()
        self.env.cr.execute("UPDATE ocore_mcp_oauth_authorization SET create_date = create_date - interval '1 hour' "
                            "WHERE id = %s", (auth.id,))
        auth.invalidate_recordset()

    def test_reauthorization_merges_and_names_the_key(self):
        first = self.grant(preset="standard")
        second = self.grant(preset="custom", categories=["orm"], read_only=True, expiry_days="30")
        self.assertEqual(first, second)
        self.assertEqual(self.Auth.search_count([("user_id", "=", self.alice.id), ("client_id", "=", self.client.id)]), 1)
        key = second.key_id
        self.assertEqual(self.Key.search_count([("user_id", "=", self.alice.id), ("origin", "=", "oauth")]), 1)
        self.assertEqual(key.category_ids.mapped("code"), ["orm"])
        self.assertTrue(key.read_only)
        self.assertTrue(key.expiration_date)
        self.assertIn("Test client", key.name)
        self.assertIn("oauth_alice", key.name)
        with self.assertRaisesRegex(ValidationError, "Unknown expiry"):
            self.grant(preset="standard", expiry_days="7")

    def test_an_approval_never_exchanged_is_dropped(self):
        unused = self.grant(preset="standard")
        other = self.env["ocore.mcp.oauth.client"].create({
            "name": "Exchanged client", "redirect_uris": "http://127.0.0.1:9999/callback", "registration": "dcr"})
        used = self.Auth._ocore_grant(self.alice, other, {"company_id": self.company.id, "preset": "standard"})
        self.issue(used)
        for auth in (unused, used):
            self.backdate(auth)
        self.Auth._gc_never_exchanged()
        self.assertFalse(unused.active)
        self.assertFalse(unused.key_id.active)
        self.assertTrue(used.active)
        self.assertTrue(used.key_id.active)
        # a fresh approval (its code may still be exchanged) stays
        fresh = self.grant(preset="standard")
        self.Auth._gc_never_exchanged()
        self.assertTrue(fresh.active)
