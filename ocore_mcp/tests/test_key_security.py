"""Who may give a key an owner or a secret, where secrets are (not) kept, and what is logged.

The rule (README, "Security guarantees"): the acting user never produces a key whose effective rights
exceed their own; only the owner or a system administrator generates a key's secret; a change of owner
or an un-archiving clears the secret; the hash is readable by nobody through the ORM; the "shown once"
display keeps the secret in no table.
"""

import logging

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, tagged

from ..lib import compat
from ..lib.logfilter import SecretFilter, redact_secrets
from ..models.mcp_key import hash_token

KEY_LOGGER = "odoo.addons.ocore_mcp.models.mcp_key"


def secret_tables_holding(cr, secret):
    """[table.column] of every text-like column of the database that contains ``secret``."""
    cr.execute("""
        SELECT c.table_name, c.column_name
          FROM information_schema.columns c
          JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND c.data_type IN ('character varying', 'text', 'jsonb', 'json', 'character')
    """)
    found = []
    for table, column in cr.fetchall():
        cr.execute(
            f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE %s LIMIT 1',  # noqa: S608 - names from the catalog
            (f"%{secret}%",),
        )
        if cr.fetchone():
            found.append(f"{table}.{column}")
    return found


@tagged("post_install", "-at_install")
class TestKeyOwnership(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.env.ref("base.user_admin")
        cls.Key = cls.env["ocore.mcp.key"]
        groups_field = compat.user_groups_field(cls.admin)
        Users = cls.env["res.users"].with_context(no_reset_password=True)

        def user(login, *xmlids):
            groups = [cls.env.ref("base.group_user").id] + [cls.env.ref(x).id for x in xmlids]
            return Users.create({"name": login, "login": login, groups_field: [Command.set(groups)]})

        cls.manager = user("sec_manager", "ocore_mcp.group_mcp_manager")  # MCP manager, not an admin
        cls.peer = user("sec_peer", "ocore_mcp.group_mcp_user")  # rights within the manager's
        cls.richer = user("sec_richer", "ocore_mcp.group_mcp_user", "base.group_partner_manager")
        cls.viewer = user("sec_viewer", "ocore_mcp.group_mcp_viewer")
        cls.admin_key, cls.admin_secret = cls.Key._ocore_create_key("admin's key", cls.admin)

    def as_(self, user):
        return self.Key.with_user(user)

    def authenticates(self, secret):
        return bool(self.Key._ocore_find_by_token(secret))

    def generate(self, key, user):
        action = key.with_user(user).action_generate_secret()
        self.assertNotIn("res_id", action)  # nothing was stored to show it
        return action["context"]["default_secret"]

    # -- create ---------------------------------------------------------------------------------

    def test_manager_cannot_create_a_key_for_an_admin_or_a_richer_user(self):
        for owner in (self.admin, self.env.ref("base.user_root"), self.richer):
            with self.subTest(owner=owner.login), self.assertRaises(AccessError):
                self.as_(self.manager).create({"name": "escalation", "user_id": owner.id})
        self.assertFalse(self.Key.search([("name", "=", "escalation")]))

    def test_manager_may_create_a_key_for_a_user_within_their_rights_but_not_see_its_secret(self):
        key = self.as_(self.manager).create({"name": "for the peer", "user_id": self.peer.id})
        self.assertEqual(key.user_id, self.peer)
        with self.assertRaisesRegex(AccessError, "Only sec_peer or a system administrator"):
            key.with_user(self.manager).action_generate_secret()
        self.assertFalse(key.sudo().key_prefix)
        secret = self.generate(key, self.peer)  # the owner generates it
        self.assertEqual(self.Key._ocore_find_by_token(secret), key)

    def test_non_managers_create_keys_for_themselves_only(self):
        with self.assertRaises(AccessError):
            self.as_(self.viewer).create({"name": "x", "user_id": self.peer.id, "read_only": True})
        own = self.as_(self.viewer).create({"name": "mine", "read_only": True})
        self.assertEqual(own.user_id, self.viewer)

    def test_admin_may_create_and_generate_for_anyone(self):
        key = self.as_(self.admin).create({"name": "by admin", "user_id": self.richer.id})
        secret = self.generate(key, self.admin)
        self.assertEqual(self.Key._ocore_find_by_token(secret), key)

    def test_internal_creation_checks_the_acting_user(self):
        # the OAuth consent and the invites create keys with sudo on behalf of a user: checked as them
        with self.assertRaises(AccessError):
            self.Key.with_user(self.manager)._ocore_create_key("sudo path", self.admin)
        with self.assertRaises(AccessError):
            self.Key.sudo()._ocore_create_key("sudo path", self.admin, acting=self.manager)
        key, secret = self.Key.sudo()._ocore_create_key("own", self.peer, acting=self.peer)
        self.assertEqual(self.Key._ocore_find_by_token(secret), key)

    # -- write user_id / company ------------------------------------------------------------------

    def test_manager_cannot_give_a_key_to_an_admin(self):
        key = self.as_(self.manager).create({"name": "mine"})
        for owner in (self.admin, self.richer):
            with self.subTest(owner=owner.login), self.assertRaises(AccessError):
                key.with_user(self.manager).write({"user_id": owner.id})
        self.assertEqual(key.user_id, self.manager)

    def test_manager_cannot_take_over_an_admin_key(self):
        with self.assertRaises(AccessError):
            self.admin_key.with_user(self.manager).write({"user_id": self.manager.id})
        self.assertEqual(self.admin_key.user_id, self.admin)
        self.assertTrue(self.authenticates(self.admin_secret))

    def test_changing_the_owner_clears_the_secret(self):
        key, secret = self.Key._ocore_create_key("moving", self.manager)
        self.assertTrue(self.authenticates(secret))
        key.with_user(self.manager).write({"user_id": self.peer.id})
        self.assertFalse(key.sudo().key_prefix)
        self.assertFalse(self.authenticates(secret))
        self.assertEqual(key.state, "new")
        # the same by an administrator
        key2, secret2 = self.Key._ocore_create_key("moving 2", self.peer)
        key2.with_user(self.admin).write({"user_id": self.admin.id})
        self.assertFalse(self.authenticates(secret2))

    def test_secret_fields_cannot_be_written(self):
        key = self.as_(self.admin).create({"name": "mine"})
        for vals in ({"key_hash": hash_token("ocore_0123456789_x")}, {"key_prefix": "0123456789"}):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                key.with_user(self.admin).write(vals)

    def test_non_manager_cannot_change_owner(self):
        key = self.as_(self.peer).create({"name": "mine"})
        with self.assertRaises(UserError):
            key.with_user(self.peer).write({"user_id": self.viewer.id})

    # -- (re)generate ---------------------------------------------------------------------------

    def test_manager_cannot_regenerate_an_admin_key(self):
        with self.assertRaises(AccessError):
            self.admin_key.with_user(self.manager).action_generate_secret()
        self.assertTrue(self.authenticates(self.admin_secret))  # untouched

    def test_only_owner_or_admin_regenerates(self):
        key, secret = self.Key._ocore_create_key("peer key", self.peer)
        with self.assertRaises(AccessError):
            key.with_user(self.manager).action_generate_secret()
        self.assertTrue(self.authenticates(secret))
        new = self.generate(key, self.peer)
        self.assertFalse(self.authenticates(secret))
        self.assertTrue(self.authenticates(new))
        newer = self.generate(key, self.admin)
        self.assertFalse(self.authenticates(new))
        self.assertTrue(self.authenticates(newer))

    def test_a_revoked_key_gets_no_secret(self):
        key, _secret = self.Key._ocore_create_key("revoked", self.peer)
        key.with_user(self.peer).action_revoke()
        with self.assertRaises(UserError):
            key.with_user(self.peer).action_generate_secret()

    # -- un-archive -------------------------------------------------------------------------------

    def test_unarchiving_clears_the_secret(self):
        key, secret = self.Key._ocore_create_key("revived", self.peer)
        key.with_user(self.peer).action_revoke()
        key.with_user(self.peer).write({"active": True})
        self.assertTrue(key.active)
        self.assertFalse(key.sudo().key_prefix)
        self.assertFalse(self.authenticates(secret))
        self.assertEqual(key.state, "new")

    def test_manager_cannot_unarchive_an_admin_key(self):
        key, secret = self.Key._ocore_create_key("admin revoked", self.admin)
        key.write({"active": False})
        with self.assertRaises(AccessError):
            key.with_user(self.manager).write({"active": True})
        self.assertFalse(key.active)
        key.with_user(self.admin).write({"active": True})  # an admin may: the old secret stays dead
        self.assertFalse(self.authenticates(secret))

    # -- the hash ---------------------------------------------------------------------------------

    def test_hash_is_readable_by_nobody_through_the_orm(self):
        for user in (self.admin, self.manager, self.peer):
            keys = self.Key.with_user(user)
            with self.subTest(user=user.login):
                self.assertNotIn("key_hash", keys.fields_get())
                with self.assertRaises(AccessError):
                    self.admin_key.with_user(user).read(["key_hash"])
                with self.assertRaises(AccessError):
                    keys.search_read([("id", "=", self.admin_key.id)], ["key_hash"])
                with self.assertRaises(AccessError):
                    keys.search([("key_hash", "=", hash_token(self.admin_secret))])
                rows = keys.search_read([("user_id", "=", user.id)])
                self.assertTrue(all("key_hash" not in row for row in rows))

    def test_every_core_hash_field_is_no_access(self):
        for model, field in (("ocore.mcp.key", "key_hash"), ("ocore.mcp.impersonation", "token_hash")):
            with self.subTest(field=f"{model}.{field}"):
                self.assertEqual(self.env[model]._fields[field].groups, ".")  # fields.NO_ACCESS
                self.assertNotIn(field, self.env[model].with_user(self.admin).fields_get())

    # -- no secret at rest ------------------------------------------------------------------------

    def test_shown_secret_is_in_no_table(self):
        key = self.as_(self.peer).create({"name": "shown once"})
        secret = self.generate(key, self.peer)
        self.assertEqual(self.Key._ocore_find_by_token(secret), key)
        self.env.flush_all()
        self.assertEqual(secret_tables_holding(self.env.cr, secret), [])
        self.assertEqual(secret_tables_holding(self.env.cr, secret[-20:]), [])  # not even a part of it
        # the display model has no table; its form is filled from the action's context
        action = key.with_user(self.peer).action_generate_secret()
        secret = action["context"]["default_secret"]
        display = self.env["ocore.mcp.key.show"].with_user(self.peer).with_context(**action["context"])
        self.assertTrue(display._abstract)
        shown = display.default_get(["secret", "stream_url", "sse_url", "client_config"])
        self.assertEqual(shown["secret"], secret)
        self.assertTrue(shown["stream_url"].endswith("/ocore/mcp/stream"))
        self.assertIn(f"Bearer {secret}", shown["client_config"])
        self.env.flush_all()
        self.assertEqual(secret_tables_holding(self.env.cr, secret), [])
        self.env.cr.execute("SELECT to_regclass('ocore_mcp_key_show')")
        self.assertIsNone(self.env.cr.fetchone()[0])

    # -- logs -------------------------------------------------------------------------------------

    def test_key_events_are_logged_with_actor_and_address_never_the_secret(self):
        with self.assertLogs(KEY_LOGGER, logging.INFO) as logs:  # not "INFO": Odoo names 25 INFO
            key = self.as_(self.peer).create({"name": "logged"})
            secret = self.generate(key, self.peer)
            key.with_user(self.peer).action_revoke()
        text = "\n".join(logs.output)
        self.assertIn(f"MCP API key #{key.id} created", text)
        self.assertIn(f"MCP API key #{key.id} secret generated", text)
        self.assertIn(f"MCP API key #{key.id} revoked", text)
        self.assertIn("by 'sec_peer'", text)
        self.assertIn("from n/a", text)  # no HTTP request here; the client address otherwise
        self.assertNotIn(secret, text)
        # nor its random part (ocore_<prefix>_<random>: the random part may itself hold "_" and end with one,
        # so split at the first two only)
        random_part = secret.split("_", 2)[2]
        self.assertGreaterEqual(len(random_part), 40)
        self.assertNotIn(random_part, text)

    def test_log_filter_masks_secrets_of_urls(self):
        invite = "ocinv_1a2b3c4d_AbCdEfGhIjKlMnOpQrStUvWxYz012345"
        record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - [%s] "%s" %s %s',
                                   ("127.0.0.1", "now", f"GET /oauth/invite/{invite} HTTP/1.1", "200", "-"), None)
        self.assertTrue(SecretFilter().filter(record))
        self.assertNotIn(invite, record.getMessage())
        self.assertIn("/oauth/invite/[redacted]", record.getMessage())
        self.assertIn(SecretFilter, [type(f) for f in logging.getLogger("werkzeug").filters])
        for line in (
            f"GET /web/login?redirect=%2Foauth%2Finvite%2F{invite} HTTP/1.1",
            "GET /oauth/device?user_code=BCDF-GHJK HTTP/1.1",
            "GET /web/login?redirect=/oauth/device%3Fuser_code%3Dbcdfghjk HTTP/1.1",
            "GET /ocore/mcp/impersonate/Zm9vYmFyYmF6cXV4cXV1eA HTTP/1.1",
            f"GET /x?token={self.admin_secret} HTTP/1.1",
        ):
            with self.subTest(line=line):
                masked = redact_secrets(line)
                self.assertIn("[redacted]", masked)
                for secret in (invite, "BCDF-GHJK", "bcdfghjk", "Zm9vYmFyYmF6cXV4cXV1eA", self.admin_secret):
                    self.assertNotIn(secret, masked)
        self.assertEqual(redact_secrets('"POST /ocore/mcp/stream HTTP/1.1" 200'), '"POST /ocore/mcp/stream HTTP/1.1" 200')
