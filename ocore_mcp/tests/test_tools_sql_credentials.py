"""The SQL tools never return credentials (their PostgreSQL role), and their statement deadline holds."""

import json
import time
from unittest.mock import patch

from odoo.tests import tagged

from ..lib import sqlguard, sqlrole
from .test_tools_sql import McpSqlCase

# Every spelling must fail or return no credential (the role's column grants decide, not a parser).
READS = [
    "SELECT password FROM res_users",
    'SELECT "password" FROM "res_users"',
    "SELECT password FROM public.res_users",
    "SELECT * FROM res_users",
    "SELECT r.* FROM res_users r",
    "SELECT row_to_json(r) FROM res_users r",
    "SELECT to_jsonb(res_users) FROM res_users",
    "SELECT to_json(r.*) FROM res_users AS r",
    "SELECT res_users FROM res_users",
    "SELECT res_users::text FROM res_users",
    "SELECT (r).password FROM res_users r",
    "SELECT json_agg(u) FROM res_users u",
    "SELECT hstore(r) FROM res_users r",
    "TABLE res_users",
    "SELECT * FROM (SELECT * FROM res_users) s",
    "SELECT * FROM (TABLE res_users) s",
    "WITH u AS (SELECT * FROM res_users) SELECT password FROM u",
    "WITH u AS MATERIALIZED (SELECT password AS p FROM res_users) SELECT p FROM u",
    "SELECT (SELECT password FROM res_users WHERE id = 2)",
    "SELECT login FROM res_users WHERE password LIKE '$pbkdf2%'",
    "SELECT login FROM res_users ORDER BY password",
    "SELECT count(*) FROM res_users GROUP BY password",
    "SELECT login FROM res_users WHERE EXISTS (SELECT 1 FROM res_users u2 WHERE u2.password IS NOT NULL)",
    "SELECT password FROM res_users UNION SELECT 'x'",
    "SELECT id FROM res_users JOIN LATERAL (SELECT res_users.password) p ON true",
    "SELECT md5(password) FROM res_users",
    "SELECT length(password) FROM res_users",
    "EXPLAIN ANALYZE SELECT password FROM res_users",
    "SELECT totp_secret FROM res_users",
    "SELECT key FROM res_users_apikeys",
    "SELECT * FROM res_users_apikeys",
    "SELECT k FROM res_users_apikeys k",
    "SELECT key_hash FROM ocore_mcp_key",
    "SELECT k.* FROM ocore_mcp_key k",
    "SELECT json_agg(k) FROM ocore_mcp_key k",
    "SELECT * FROM ocore_mcp_key",
    "SELECT value FROM ir_config_parameter WHERE key = 'database.secret'",
    "SELECT * FROM ir_config_parameter",
    "SELECT string_agg(value, ',') FROM ir_config_parameter",
    "SELECT histogram_bounds::text, most_common_vals::text FROM pg_stats WHERE tablename = 'res_users'",
    "SELECT query FROM pg_stat_activity",
    "SELECT smtp_pass FROM ir_mail_server",
    "SELECT access_token FROM ir_attachment",
]


@tagged("post_install", "-at_install", "ocore_sql")
class TestSqlCredentials(McpSqlCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin.password = "ocore-sql-credentials-Passw0rd"
        apikeys = cls.env["res.users.apikeys"].with_user(cls.admin)
        try:
            apikeys._generate(None, "sql credentials test", None)
        except TypeError:  # 17.0: no expiration date
            apikeys._generate(None, "sql credentials test")
        cls.env.flush_all()
        cr = cls.env.cr
        secrets = []
        for query in ("SELECT password FROM res_users WHERE password IS NOT NULL",
                      "SELECT key FROM res_users_apikeys", "SELECT key_hash FROM ocore_mcp_key WHERE key_hash IS NOT NULL",
                      "SELECT value FROM ir_config_parameter WHERE key = 'database.secret'"):
            cr.execute(query)
            secrets += [row[0] for row in cr.fetchall()]
        cls.secrets = secrets
        cr.execute("SAVEPOINT role_check")
        try:
            sqlrole.ensure_role(cr)
            cls.role_missing = None
        except sqlrole.RoleUnavailable as exc:
            cls.role_missing = str(exc)
        cr.execute("ROLLBACK TO SAVEPOINT role_check")

    def require_role(self):
        if self.role_missing:
            self.skipTest(f"the SQL tools run in their fallback mode here: {self.role_missing}")

    def role(self):
        self.env.cr.execute("SELECT session_user")
        return sqlrole.role_name(self.env.cr.fetchone()[0])

    def assert_no_secret(self, result, query):
        blob = json.dumps(result, default=str)
        for secret in self.secrets:
            self.assertNotIn(secret, blob, f"a credential came back from {query!r}")
            self.assertNotIn(secret[-20:], blob, f"part of a credential came back from {query!r}")

    def test_secrets_exist(self):
        self.require_role()
        self.assertGreaterEqual(len(self.secrets), 4)  # password hash, API key hash, MCP key hash, database.secret
        cr = self.env.cr
        cr.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.role(),))
        self.assertTrue(cr.fetchone(), "the SQL tools' role was created at install")

    def test_no_spelling_reads_a_credential(self):
        for query in READS:
            with self.subTest(query=query):
                result = self.call("execute_sql", {"query": query})
                self.assert_no_secret(result, query)
                script = self.call("execute_sql_script", {"script": f"SELECT 1; {query}", "confirm": True})
                self.assert_no_secret(script, query)

    def test_reads_fail_with_an_explanation(self):
        self.require_role()
        result = self.fails("execute_sql", {"query": "SELECT * FROM res_users"}, "permission denied for table res_users")
        text = result["content"][0]["text"]
        self.assertIn("never reads credentials", text)
        self.assertIn("res_users: password", text)
        self.fails("execute_sql", {"query": "SELECT key_hash FROM ocore_mcp_key"}, "ocore_mcp_key: key_hash")
        # what is not a credential stays readable, secret parameters are left out
        data = self.ok("execute_sql", {"query": f"SELECT id, login FROM res_users WHERE id = {self.admin.id}"})
        self.assertEqual(data["rows"], [[self.admin.id, self.admin.login]])
        data = self.ok("execute_sql", {"query": "SELECT key FROM ir_config_parameter ORDER BY key"})
        keys = [row[0] for row in data["rows"]]
        self.assertIn("web.base.url", keys)
        self.assertNotIn("database.secret", keys)
        self.assertIn("database.uuid", keys)

    def test_writes_cannot_return_or_test_credentials(self):
        self.require_role()
        admin = self.admin.id
        for query in (
            f"UPDATE res_users SET login = login WHERE id = {admin} RETURNING password",
            f"UPDATE res_users SET login = login WHERE id = {admin} RETURNING *",
            f"UPDATE res_users SET login = login WHERE id = {admin} RETURNING res_users",
            f"UPDATE res_users SET login = login WHERE id = {admin} AND password LIKE '$pbkdf2%' RETURNING id",
            f"UPDATE res_partner SET comment = (SELECT password FROM res_users WHERE id = {admin}) WHERE id = 1",
            "INSERT INTO res_partner (name, active, type) SELECT password, true, 'contact' FROM res_users RETURNING name",
            "WITH u AS (UPDATE res_users SET login = login RETURNING password) SELECT * FROM u",
        ):
            with self.subTest(query=query):
                result = self.call("execute_sql", {"query": query, "confirm": True})
                self.assertTrue(result["isError"], result["content"][0]["text"][:300])
                self.assert_no_secret(result, query)
        # a secret system parameter is not even there for the role
        for query in ("UPDATE ir_config_parameter SET value = value WHERE key = 'database.secret' RETURNING value",
                      "DELETE FROM ir_config_parameter WHERE key = 'database.secret' RETURNING value"):
            data = self.ok("execute_sql", {"query": query, "confirm": True})
            self.assertEqual(data["rows"], [], query)
        self.assertTrue(self.env["ir.config_parameter"].sudo().get_param("database.secret"))
        # a write that needs no credential still works, as the role, and the connection is the user's after it
        data = self.ok("execute_sql", {"query": f"UPDATE res_users SET login = login WHERE id = {admin} "
                                                "RETURNING id, current_user", "confirm": True})
        self.assertEqual(data["rows"][0][1], self.role())
        self.env.cr.execute("SELECT current_user = session_user")
        self.assertTrue(self.env.cr.fetchone()[0])

    def test_reads_run_as_the_role_and_the_audit_completes(self):
        self.require_role()
        data = self.ok("execute_sql", {"query": "SELECT current_user, session_user"})
        role = self.role()
        self.assertEqual(data["rows"][0][0], role)
        self.assertEqual(self.last_audit("execute_sql"), ("success", None))
        self.env.cr.execute("SELECT current_user = session_user")
        self.assertTrue(self.env.cr.fetchone()[0])

    def test_new_tables_and_credential_columns_are_covered(self):
        self.require_role()
        cr = self.env.cr
        cr.execute("CREATE TABLE ocore_sql_test_new (id int, name varchar, api_token varchar)")
        cr.execute("INSERT INTO ocore_sql_test_new VALUES (1, 'visible', 'tok-SECRET-123')")
        cr.execute("ALTER TABLE res_partner_category ADD COLUMN x_client_secret varchar")
        cr.execute("UPDATE res_partner_category SET x_client_secret = 'cat-SECRET-456'")
        data = self.ok("execute_sql", {"query": "SELECT id, name FROM ocore_sql_test_new"})
        self.assertEqual(data["rows"], [[1, "visible"]])
        for query in ("SELECT * FROM ocore_sql_test_new", "SELECT api_token FROM ocore_sql_test_new",
                      "SELECT x_client_secret FROM res_partner_category", "SELECT c.* FROM res_partner_category c"):
            with self.subTest(query=query):
                result = self.fails("execute_sql", {"query": query}, "permission denied")
                self.assertNotIn("SECRET-", json.dumps(result))
        self.ok("execute_sql", {"query": "SELECT id, name FROM res_partner_category"})
        # views run with their owner's rights: none reading a table that holds credentials is readable (a
        # whole-row reference next to a named column leaves no trace in pg_depend), others are
        cr.execute("CREATE VIEW ocore_sql_test_rows AS SELECT id, row_to_json(u)::text AS j FROM res_users u")
        cr.execute("CREATE VIEW ocore_sql_test_hashes AS SELECT id, password AS innocent FROM res_users")
        cr.execute("CREATE VIEW ocore_sql_test_nested AS SELECT id FROM ocore_sql_test_hashes")
        cr.execute("CREATE VIEW ocore_sql_test_logins AS SELECT id, login FROM res_users")
        cr.execute("CREATE VIEW ocore_sql_test_codes AS SELECT id, code FROM res_country")
        data = self.ok("execute_sql", {"query": "SELECT code FROM ocore_sql_test_codes WHERE code = 'BE'"})
        self.assertEqual(data["rows"], [["BE"]])
        for view in ("ocore_sql_test_rows", "ocore_sql_test_hashes", "ocore_sql_test_nested", "ocore_sql_test_logins"):
            with self.subTest(view=view):
                result = self.fails("execute_sql", {"query": f"SELECT * FROM {view}"}, "permission denied")
                self.assert_no_secret(result, view)
        # a column renamed into a credential, a grant made by hand: caught on the next call
        cr.execute("ALTER TABLE ocore_sql_test_new RENAME COLUMN name TO old_password")
        cr.execute(f'GRANT SELECT (api_token) ON ocore_sql_test_new TO "{self.role()}"')
        for query in ("SELECT old_password FROM ocore_sql_test_new", "SELECT api_token FROM ocore_sql_test_new"):
            with self.subTest(query=query):
                self.fails("execute_sql", {"query": query}, "permission denied")

    def test_credential_columns(self):
        """Which column names are credentials (the role never reads them) and which only look like one."""
        credentials = ["password", "new_passwd", "smtp_pass", "client_secret_hash", "totp_secret", "access_token",
                       "refresh_token_hash", "key_hash", "code_hash", "device_code_hash", "api_key", "apikey",
                       "private_key", "x_signup_token", "pwd",
                       # payment providers' and services' secrets named ..._key (Odoo's addons)
                       "adyen_hmac_key", "aps_sha_request", "aps_sha_response", "authorize_signature_key",
                       "authorize_transaction_key", "paytm_merchant_key", "worldline_webhook_key",
                       "viva_wallet_webhook_verification_key", "cloud_storage_google_service_account_key",
                       "account_peppol_migration_key", "sfu_server_key", "attendance_kiosk_key"]
        others = ["name", "login", "token_id", "payment_token_ids", "key_prefix", "token_prefix", "api_key_duration",
                  "token_expires", "secret_count", "password_set", "code_challenge", "keyword", "tokenizer_type",
                  # public keys and identifiers named ..._key
                  "stripe_publishable_key", "adyen_client_key", "recaptcha_public_key", "turnstile_site_key",
                  "website_form_key", "grouping_key", "avatar_cache_key", "push_to_talk_key", "public_key"]
        columns = ", ".join(f"{name} varchar" for name in credentials + others)
        self.env.cr.execute(f"CREATE TABLE ocore_sql_test_columns ({columns})")  # noqa: S608 - constant names
        found = sqlrole.credential_relations(self.env.cr)["ocore_sql_test_columns"]
        self.assertEqual(sorted(found), sorted(credentials))
        for column in ("res_users_apikeys.key", "auth_totp_device.key", "ocore_mcp_key.key_hash"):
            table, name = column.split(".")
            self.assertIn(name, sqlrole.credential_relations(self.env.cr).get(table, []), column)

    def test_fallback_without_the_role(self):
        def unavailable(cr, extra_columns=()):
            raise sqlrole.RoleUnavailable("the role cannot be created here (test)")

        with patch.object(sqlrole, "ensure", unavailable):
            for query in ("SELECT id FROM res_users", "SELECT * FROM ir_config_parameter",
                          "SELECT k FROM ocore_mcp_key k", "WITH x AS (SELECT 1) SELECT * FROM x, res_users_apikeys",
                          "SELECT * FROM pg_stats", "SELECT query FROM pg_catalog.pg_stat_activity"):
                with self.subTest(query=query):
                    result = self.fails("execute_sql", {"query": query}, "may hold credentials")
                    self.assertIn("the role cannot be created here (test)", result["content"][0]["text"])
            self.fails("execute_sql_script", {"script": "SELECT 1; TABLE res_users", "confirm": True},
                       "statement 2: res_users may hold credentials")
            data = self.ok("execute_sql", {"query": "SELECT count(*) FROM res_partner"})
            self.assertEqual(data["columns"], ["count"])
            data = self.ok("execute_sql", {"query": "SELECT current_user = session_user"})
            self.assertEqual(data["rows"], [[True]])

    def test_ensure_reports_a_missing_createrole(self):
        """A database user that may not create the role gets the fix in the message."""
        cr = self.env.cr
        with patch.object(sqlrole, "role_name", return_value="ocore_mcp_sql_test_never_created"):
            cr.execute("SAVEPOINT no_createrole")
            try:
                cr.execute("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")
                if cr.fetchone()[0]:
                    self.skipTest("the database user may create roles here")
                with self.assertRaises(sqlrole.RoleUnavailable) as caught:
                    sqlrole.ensure_role(cr)
                self.assertIn("CREATE ROLE ocore_mcp_sql_test_never_created NOLOGIN", str(caught.exception))
            finally:
                cr.execute("ROLLBACK TO SAVEPOINT no_createrole")


@tagged("post_install", "-at_install", "ocore_sql")
class TestSqlSettingsAndDeadline(McpSqlCase):
    ESCAPES = [
        "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'",
        "update PG_CATALOG.\"pg_settings\" set setting = '0' where name = 'statement_timeout'",
        "WITH s AS (UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout' RETURNING 1) "
        "SELECT * FROM s",
        "EXPLAIN ANALYZE UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'",
        "UPDATE pg_settings SET setting = 'odoo' WHERE name = 'role'",
        "SELECT set_config('statement_timeout', '0', false)",
        'SELECT pg_catalog."set_config"(\'statement_timeout\', \'0\', false)',
        "SET statement_timeout = 0",
        "RESET statement_timeout",
        "SET LOCAL statement_timeout TO DEFAULT",
        "ALTER ROLE CURRENT_USER SET statement_timeout = 0",
    ]

    def test_every_route_to_a_setting_is_refused(self):
        for query in self.ESCAPES:
            with self.subTest(query=query):
                self.fails("execute_sql", {"query": query, "confirm": True}, "SQL refused")
                self.fails("execute_sql_script", {"script": f"{query}; SELECT pg_sleep(5)", "confirm": True},
                           "SQL refused")
        self.env.cr.execute("SHOW statement_timeout")
        self.assertNotEqual(self.env.cr.fetchone()[0], "0")

    def test_a_statement_past_the_deadline_is_cancelled_on_the_server(self):
        """Should a route to the timeout escape the guard, the watchdog still cancels the statement at the
        call's deadline: the worker is free again right after it."""
        script = ("UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'; "
                  "SELECT current_setting('statement_timeout') AS t; SELECT pg_sleep(30)")
        with patch.object(sqlguard, "_check_catalog_writes", lambda *a: None):
            started = time.monotonic()
            text = self.fails("execute_sql_script", {"script": script, "confirm": True, "timeout_seconds": 2},
                              "timeout")["content"][0]["text"]
            elapsed = time.monotonic() - started
        self.assertLess(elapsed, 2 + 1.5, f"the statement held the worker {elapsed:.1f} s: {text[:300]}")
        self.assertEqual(self.last_audit("execute_sql_script"), ("error", "timeout"))
        data = self.ok("execute_sql", {"query": "SELECT 1 AS one"})  # the connection serves the next call
        self.assertEqual(data["rows"], [[1]])
