import logging
import os
import shutil
import tempfile
import time

from odoo import fields, release
from odoo.tests import tagged

from ..lib import compat
from ..tools import system_backup as backup_mod
from ..tools.system import CRON_COOLDOWN_SECONDS
from .common import McpToolCase

ADMIN_ONLY = "only offered to system administrators"


@tagged("post_install", "-at_install")
class TestSystemTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.employee = cls.make_user(cls, "sys_employee", [cls.env.ref("base.group_user").id,
                                                         cls.env.ref("ocore_mcp.group_mcp_user").id])
        cls.emp_key, _s = cls.keys._ocore_create_key("employee key", cls.employee, rate_limit=100000)
        cls.ro_key, _s = cls.keys._ocore_create_key("ro admin key", cls.admin, read_only=True, rate_limit=100000)
        cls.target = cls.make_user(cls, "sys_target", [cls.env.ref("base.group_user").id], email="t@example.com")

    def last_audit(self, tool):
        self.env.cr.execute(
            "SELECT params, result_summary, status FROM mcp_audit_log WHERE tool = %s ORDER BY id DESC LIMIT 1", (tool,)
        )
        return self.env.cr.fetchone()

    # -- access ------------------------------------------------------------------

    def test_every_system_tool_is_admin_only(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        system = sorted(name for name, spec in specs.items() if spec.category == "system")
        self.assertEqual(len(system), 18, system)
        self.assertTrue(all(specs[name].meta.admin_only for name in system))
        for tool in ("list_users", "get_system_parameter", "odoo_logs", "backup_database", "restore_database"):
            self.fails(tool, {}, ADMIN_ONLY, key=self.emp_key)

    def test_write_tools_respect_read_only_keys_and_production_guard(self):
        args = {"user_id": self.target.id, "active": False}
        self.fails("set_user_active", args, "write operations blocked", key=self.ro_key)
        self.fails("set_user_active", args, "production guard", write_enabled=False)
        self.fails("set_system_parameter", {"key": "x.y", "value": "1"}, "write operations blocked", key=self.ro_key)
        self.assertTrue(self.target.active)

    # -- users -------------------------------------------------------------------

    def test_list_users(self):
        data = self.ok("list_users", {"search": "sys_target"})
        self.assertEqual(data["total"], 1)
        row = data["users"][0]
        self.assertEqual((row["id"], row["login"], row["active"], row["share"]), (self.target.id, "sys_target", True,
                                                                                 False))
        self.assertEqual(row["company_id"][0], self.target.company_id.id)
        self.target.active = False
        self.assertEqual(self.ok("list_users", {"search": "sys_target"})["total"], 0)
        self.assertEqual(self.ok("list_users", {"search": "sys_target", "active": False})["users"][0]["id"],
                         self.target.id)
        self.assertEqual(self.ok("list_users", {"search": "sys_target", "active": None})["total"], 1)
        page = self.ok("list_users", {"limit": 1, "active": None})
        self.assertEqual(page["count"], 1)
        self.assertTrue(page["has_more"])
        self.fails("list_users", {"limit": 501}, "less than or equal to 500")

    def test_user_groups(self):
        data = self.ok("user_groups", {"user_id": self.target.id})
        self.assertEqual(data["user"]["type"], "internal")
        xmlids = {g["xml_id"] for g in data["groups"]}
        self.assertIn("base.group_user", xmlids)
        self.assertNotIn("base.group_system", xmlids)
        self.fails("user_groups", {"user_id": 999999}, "no user with id 999999")

    def test_protected_users_by_xml_id(self):
        protected = self.env["ocore.mcp.tools.system"]._ocore_protected_users()
        for xmlid in ("base.user_root", "base.user_admin", "base.public_user", "base.default_user"):
            user = self.env.ref(xmlid, raise_if_not_found=False)  # 19.0 has no base.default_user
            if user or xmlid != "base.default_user":
                self.assertIn(user, protected)
        admin_id = self.env.ref("base.user_admin").id
        public_id = self.env.ref("base.public_user").id
        self.fails("set_user_active", {"user_id": admin_id, "active": False}, "protected system user")
        self.fails("set_user_password", {"user_id": public_id, "password": "longenough1"}, "protected system user")
        self.fails("set_user_groups", {"user_id": self.env.ref("base.user_root").id, "groups": ["base.group_user"]},
                   "protected system user")
        self.fails("impersonate_user", {"user_id": admin_id}, "protected system user")
        self.assertTrue(self.env.ref("base.user_admin").active)

    def test_set_user_active(self):
        data = self.ok("set_user_active", {"user_id": self.target.id, "active": False})
        self.assertEqual((data["user"]["active"], data["previous_active"], data["changed"]), (False, True, True))
        self.assertFalse(self.target.active)
        data = self.ok("set_user_active", {"user_id": self.target.id, "active": True})
        self.assertTrue(self.target.active)

    def test_set_user_password(self):
        self.fails("set_user_password", {"user_id": self.target.id, "password": "short"}, "at least 8 characters")
        self.fails("set_user_password", {"user_id": self.target.id, "password": "   a    "}, "at least 8 characters")
        self.ok("set_user_password", {"user_id": self.target.id, "password": "N3w-secret-pw"})
        self.env.cr.execute("SELECT password FROM res_users WHERE id = %s", (self.target.id,))
        stored = self.env.cr.fetchone()[0]
        self.assertTrue(self.env["res.users"]._crypt_context().verify("N3w-secret-pw", stored))
        params, _summary, status = self.last_audit("set_user_password")
        self.assertEqual(status, "success")
        self.assertNotIn("N3w-secret-pw", params)
        self.assertIn("[REDACTED]", params)

    def test_set_user_groups(self):
        data = self.ok("set_user_groups", {"user_id": self.target.id,
                                           "groups": ["base.group_user", self.env.ref("base.group_partner_manager").id]})
        partner_manager = self.env.ref("base.group_partner_manager")
        self.assertIn(partner_manager, compat.user_all_groups(self.target))
        self.assertIn(partner_manager.full_name, data["added"])
        self.fails("set_user_groups", {"user_id": self.target.id, "groups": ["base.nope"]}, "is not a security group")
        self.fails("set_user_groups", {"user_id": self.target.id, "groups": [9999999]}, "is not a security group")
        self.fails("set_user_groups", {"user_id": self.target.id, "groups": []}, "at least 1 item")
        data = self.ok("set_user_groups", {"user_id": self.target.id, "groups": ["base.group_user"]})
        self.assertNotIn(partner_manager, compat.user_all_groups(self.target))
        self.assertIn(partner_manager.full_name, data["removed"])

    def test_impersonate_user_link(self):
        data = self.ok("impersonate_user", {"user_id": self.target.id})
        self.assertIn("/ocore/mcp/impersonate/", data["url"])
        token = data["url"].rsplit("/", 1)[1]
        self.assertGreater(len(token), 30)
        link = self.env["ocore.mcp.impersonation"].browse(data["link_id"])
        self.assertEqual((link.user_id, link.created_by_id, link.key_id), (self.target, self.admin, self.key))
        self.assertNotEqual(link.token_hash, token)
        expires = fields.Datetime.from_string(data["expires_at"])
        self.assertAlmostEqual((expires - fields.Datetime.now()).total_seconds(), 300, delta=10)
        # the audit row of the call does not keep the live token
        _params, summary, status = self.last_audit("impersonate_user")
        self.assertEqual(status, "success")
        self.assertNotIn(token, summary)
        self.assertIn("[REDACTED]", summary)
        # one use only, then "used"; an expired link says so; an unknown token is unknown
        used, problem = self.env["ocore.mcp.impersonation"]._ocore_consume(token, "10.0.0.1", "pytest")
        self.assertEqual((used, problem), (link, None))
        self.assertEqual((link.used_ip, link.state), ("10.0.0.1", "used"))
        self.assertEqual(self.env["ocore.mcp.impersonation"]._ocore_consume(token)[1], "used")
        old, old_token = self.env["ocore.mcp.impersonation"]._ocore_issue(self.target, self.admin, ttl=-1)
        self.assertEqual(self.env["ocore.mcp.impersonation"]._ocore_consume(old_token), (old, "expired"))
        self.assertEqual(self.env["ocore.mcp.impersonation"]._ocore_consume("nope")[1], "unknown")
        self.target.active = False
        self.fails("impersonate_user", {"user_id": self.target.id}, "is archived")

    def test_user_access_rights(self):
        data = self.ok("user_access_rights", {"user_id": self.target.id, "model": "ir.config_parameter"})
        self.assertFalse(any(data[f"can_{op}"] for op in ("read", "write", "create", "unlink")))
        data = self.ok("user_access_rights", {"user_id": self.admin.id, "model": "ir.config_parameter"})
        self.assertTrue(data["can_read"] and data["can_write"])
        self.assertIn(self.env.ref("base.group_system").full_name, data["read_granted_by"])
        data = self.ok("user_access_rights", {"user_id": self.target.id, "model": "res.partner", "detail": True})
        self.assertTrue(data["can_read"])
        self.assertEqual(data["can_unlink"], bool(self.env["ir.model.access"].with_user(self.target).check(
            "res.partner", "unlink", raise_exception=False)))
        self.assertTrue(data["acls"] and all("applies_to_user" in a for a in data["acls"]))
        self.assertIn("record_rules", data)
        self.assertNotIn("acls", self.ok("user_access_rights", {"user_id": self.target.id, "model": "res.partner"}))
        self.fails("user_access_rights", {"user_id": self.target.id, "model": "no.such.model"}, "unknown model")

    # -- system parameters -----------------------------------------------------------

    def test_get_system_parameter_masks_secrets(self):
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("test.smtp_password", "hunter22")
        icp.set_param("test.plain", "visible")
        data = self.ok("get_system_parameter", {})
        values = {p["key"]: p for p in data["parameters"]}
        self.assertEqual(values["test.plain"]["value"], "visible")
        self.assertEqual((values["test.smtp_password"]["value"], values["test.smtp_password"]["masked"]),
                         ("********", True))
        self.assertEqual(values["database.secret"]["value"], "********")
        self.assertEqual(self.ok("get_system_parameter", {"key": "test.plain"})["value"], "visible")
        self.assertNotIn("hunter22", self.call("get_system_parameter", {"key": "test.smtp_password"})["content"][0]
                         ["text"])
        self.fails("get_system_parameter", {"key": "no.such.key"}, "no system parameter")

    def test_set_system_parameter(self):
        data = self.ok("set_system_parameter", {"key": "test.mcp_param", "value": "one"})
        self.assertTrue(data["created"])
        data = self.ok("set_system_parameter", {"key": "test.mcp_param", "value": "two"})
        self.assertEqual((data["previous"], data["value"], data["created"]), ("one", "two", False))
        self.assertEqual(self.env["ir.config_parameter"].get_param("test.mcp_param"), "two")
        for key in ("ocore_mcp.write_enabled", "ocore_mcp.backup_dir", "database.secret", "database.uuid"):
            self.fails("set_system_parameter", {"key": key, "value": "x"}, "is protected")
        self.fails("set_system_parameter", {"key": "has space", "value": "x"}, "must not contain spaces")
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("ocore_mcp.write_enabled"),
                         self.env["ir.config_parameter"].sudo().get_param("ocore_mcp.write_enabled"))
        self.ok("set_system_parameter", {"key": "test.api_token", "value": "tok-123456"})
        params, summary, _status = self.last_audit("set_system_parameter")
        self.assertNotIn("tok-123456", params)
        self.assertNotIn("tok-123456", summary)

    # -- scheduled actions ---------------------------------------------------------

    def make_cron(self, code, **vals):
        return self.env["ir.cron"].create({
            "name": vals.pop("name", "MCP test cron"),
            "model_id": self.env.ref("base.model_res_partner").id,
            "state": "code",
            "code": code,
            "interval_number": 1,
            "interval_type": "days",
            "user_id": self.admin.id,
            **vals,
        })

    def test_list_and_toggle_scheduled_actions(self):
        cron = self.make_cron("model.browse()", name="MCP listed cron", active=False)
        data = self.ok("list_scheduled_actions", {"search": "MCP listed cron"})
        self.assertEqual(data["count"], 1)
        row = data["scheduled_actions"][0]
        self.assertEqual((row["id"], row["active"], row["interval"], row["model"]),
                         (cron.id, False, "every 1 days", "res.partner"))
        self.assertEqual(self.ok("list_scheduled_actions", {"search": "MCP listed cron", "active": True})["count"], 0)
        self.assertGreater(self.ok("list_scheduled_actions", {})["total"], 1)
        data = self.ok("toggle_scheduled_action", {"cron_id": cron.id})
        self.assertTrue(cron.active)
        self.assertFalse(data["previous_active"])
        self.ok("toggle_scheduled_action", {"cron_id": cron.id, "active": True})
        self.assertTrue(cron.active)
        self.ok("toggle_scheduled_action", {"cron_id": cron.id, "active": False})
        self.assertFalse(cron.active)
        self.fails("toggle_scheduled_action", {"cron_id": 99999999}, "no scheduled action")

    def test_run_scheduled_action_confirm_and_cooldown(self):
        partner = self.env["res.partner"].create({"name": "Cron target"})
        cron = self.make_cron(f"model.browse({partner.id}).write({{'comment': 'ran by cron'}})")
        self.fails("run_scheduled_action", {"cron_id": cron.id}, "confirm: true")
        self.assertFalse(partner.comment)
        data = self.ok("run_scheduled_action", {"cron_id": cron.id, "confirm": True})
        self.assertTrue(data["ran"])
        partner.invalidate_recordset()
        self.assertIn("ran by cron", partner.comment)
        self.assertTrue(cron.lastcall)
        text = self.fails("run_scheduled_action", {"cron_id": cron.id, "confirm": True}, "rate limit exceeded")
        self.assertIn(f"{CRON_COOLDOWN_SECONDS}-second cooldown", text)
        # the cooldown is per action: another one runs at once
        other = self.make_cron("model.browse()", name="MCP other cron")
        self.ok("run_scheduled_action", {"cron_id": other.id, "confirm": True})
        # once the 60 s have passed it runs again
        self.env.cr.execute("UPDATE ocore_mcp_cron_trigger SET triggered_at = triggered_at - interval '61 s' "
                            "WHERE cron_id = %s", (cron.id,))
        self.ok("run_scheduled_action", {"cron_id": cron.id, "confirm": True})

    def test_run_scheduled_action_failure_rolls_back_and_counts(self):
        partner = self.env["res.partner"].create({"name": "Cron failing"})
        cron = self.make_cron(f"model.browse({partner.id}).write({{'comment': 'half done'}})\n"
                              "raise UserError('cron exploded')")
        text = self.fails("run_scheduled_action", {"cron_id": cron.id, "confirm": True}, "cron exploded")
        self.assertIn("rolled back", text)
        partner.invalidate_recordset()
        self.assertFalse(partner.comment)
        self.fails("run_scheduled_action", {"cron_id": cron.id, "confirm": True}, "cooldown")
        self.fails("run_scheduled_action", {"cron_id": cron.id, "confirm": True}, "write operations blocked",
                   key=self.ro_key)

    # -- caches, server, logs ---------------------------------------------------------

    def test_clear_system_cache(self):
        self.fails("clear_system_cache", {}, "confirm: true")
        root = tempfile.mkdtemp(prefix="ocore_sys_pyc_")
        self.addCleanup(shutil.rmtree, root, True)
        cache = os.path.join(root, "my_addon", "models", "__pycache__")
        os.makedirs(cache)
        for name in ("a.cpython-311.pyc", "b.cpython-311.pyc"):
            with open(os.path.join(cache, name), "wb") as fh:
                fh.write(b"x")
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.files_root", root)
        data = self.ok("clear_system_cache", {"targets": ["pyc"], "dry_run": True})
        self.assertEqual(data["would_return"]["report"]["pyc"]["files"], 2)
        self.assertTrue(os.path.isdir(cache))
        data = self.ok("clear_system_cache", {"targets": ["pyc", "orm", "sessions", "assets"], "confirm": True})
        report = data["report"]
        self.assertEqual((report["pyc"]["files"], report["pyc"]["cleared"]), (2, True))
        self.assertFalse(os.path.exists(cache))
        self.assertTrue(os.path.isdir(os.path.join(root, "my_addon", "models")))
        self.assertTrue(report["orm"]["cleared"] and report["sessions"]["cleared"] and report["assets"]["cleared"])
        self.assertIn("max_inactivity_seconds", report["sessions"])
        self.fails("clear_system_cache", {"targets": ["disk"], "confirm": True}, "invalid input")

    def test_server_info(self):
        data = self.ok("server_info", {})
        self.assertEqual(data["database"]["name"], self.env.cr.dbname)
        self.assertGreater(data["database"]["installed_modules"], 3)
        self.assertGreater(data["database"]["size_bytes"], 0)
        self.assertEqual(data["odoo"]["series"], release.major_version)
        self.assertEqual(data["server"]["pid"], os.getpid())
        text = self.call("server_info", {})["content"][0]["text"]
        for secret in ("admin_passwd", "db_password", "smtp_password"):
            self.assertNotIn(secret, text)

    def test_odoo_logs(self):
        marker = f"ocore-sys-log-marker-{time.monotonic_ns()}"
        logging.getLogger("odoo.addons.ocore_mcp.tests").warning("%s in the log", marker)
        data = self.ok("odoo_logs", {"filter": marker})
        self.assertEqual(data["source"], "capture")
        self.assertEqual(data["count"], 1)
        self.assertIn(marker, data["lines"][0])
        self.assertIn("WARNING", data["lines"][0])
        data = self.ok("odoo_logs", {"lines": 5})
        self.assertLessEqual(data["count"], 5)
        self.fails("odoo_logs", {"lines": 1001}, "less than or equal to 1000")
        self.fails("odoo_logs", {"filter": "([unclosed"}, "not a valid regular expression")

    def test_odoo_logs_reads_the_logfile(self):
        from odoo.tools import config

        fd, path = tempfile.mkstemp(prefix="ocore_sys_", suffix=".log")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as fh:
            for i in range(3000):
                fh.write(f"2025-01-01 00:00:00,000 1 {'ERROR' if i % 100 == 0 else 'INFO'} db x: line {i}\n")
        old = config.get("logfile")
        config["logfile"] = path
        self.addCleanup(config.__setitem__, "logfile", old)
        data = self.ok("odoo_logs", {"lines": 3})
        self.assertEqual((data["source"], data["path"]), ("logfile", path))
        self.assertEqual([line.rsplit(" ", 1)[1] for line in data["lines"]], ["2997", "2998", "2999"])
        data = self.ok("odoo_logs", {"lines": 4, "filter": "ERROR"})
        self.assertEqual([line.rsplit(" ", 1)[1] for line in data["lines"]], ["2600", "2700", "2800", "2900"])
        data = self.ok("odoo_logs", {"lines": 1000, "max_response_size": 20})
        self.assertTrue(data["truncated"])
        self.assertTrue(data["lines"][-1].endswith("line 2999"))
        self.assertLess(len(data["lines"]), 1000)


@tagged("post_install", "-at_install")
class TestBackupTools(McpToolCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ocore_sys_backups_")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.backup_dir", self.dir)

    def write_file(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as fh:
            fh.write(content)
        return path

    def test_backup_custom_plain_filestore_and_list(self):
        data = self.ok("backup_database", {})
        backup = data["backup"]
        self.assertTrue(backup["name"].startswith(self.env.cr.dbname) and backup["name"].endswith(".dump"))
        path = os.path.join(self.dir, backup["name"])
        with open(path, "rb") as fh:
            self.assertEqual(fh.read(5), b"PGDMP")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertGreater(backup["size_bytes"], 10000)
        plain = self.ok("backup_database", {"format": "plain", "label": "nightly"})["backup"]
        self.assertTrue(plain["name"].endswith("_nightly.sql"))
        with open(os.path.join(self.dir, plain["name"]), "rb") as fh:
            text = fh.read()
        self.assertIn(b"-- PostgreSQL database dump complete", text[-200:])
        self.assertIn(b"CREATE TABLE public.res_partner", text)
        zipped = self.ok("backup_database", {"include_filestore": True})["backup"]
        import zipfile

        with zipfile.ZipFile(os.path.join(self.dir, zipped["name"])) as zf:
            self.assertIn("dump.dump", zf.namelist())
            self.assertIn("manifest.json", zf.namelist())
        listed = self.ok("list_backups", {})
        names = [b["name"] for b in listed["backups"]]
        for name in (backup["name"], plain["name"], zipped["name"]):
            self.assertIn(name, names)
        # max_age_days
        old = self.write_file("old_backup.dump", b"PGDMP old")
        ten_days = time.time() - 10 * 86400
        os.utime(old, (ten_days, ten_days))
        self.assertIn("old_backup.dump", [b["name"] for b in self.ok("list_backups", {})["backups"]])
        recent = [b["name"] for b in self.ok("list_backups", {"max_age_days": 1})["backups"]]
        self.assertNotIn("old_backup.dump", recent)
        self.assertIn(backup["name"], recent)

    def test_backup_limits_and_dry_run(self):
        data = self.ok("backup_database", {"dry_run": True})["would_return"]
        self.assertEqual(data["size_check"], "passed")
        self.assertFalse(os.path.exists(os.path.join(self.dir, data["would_write"])))
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.backup_max_bytes", "1000")
        text = self.fails("backup_database", {}, "limit exceeded")
        self.assertIn("ocore_mcp.backup_max_bytes", text)
        self.assertEqual(os.listdir(self.dir), [])
        self.fails("backup_database", {"label": "../etc"}, "invalid input")
        self.fails("backup_database", {"format": "tar"}, "invalid input")

    def test_backup_directory_must_not_be_served(self):
        from odoo.tools import config

        module_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for bad in (os.path.join(module_dir, "static", "backups"), os.path.join(config["data_dir"], "filestore"),
                    "relative/dir"):
            self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.backup_dir", bad)
            self.fails("backup_database", {}, "not configured")
        self.assertFalse(os.path.exists(os.path.join(module_dir, "static", "backups")))

    def test_restore_refuses_bad_files_and_leaves_the_database(self):
        partner = self.env["res.partner"].create({"name": "Restore untouched"})
        self.fails("restore_database", {"backup": "x.dump"}, "confirmation required")
        self.fails("restore_database", {"backup": "../x.dump", "confirm": True}, "not a backup file name")
        self.fails("restore_database", {"backup": "missing.dump", "confirm": True}, "no backup file")
        self.write_file("garbage.dump", b"this is not a dump at all")
        self.fails("restore_database", {"backup": "garbage.dump", "confirm": True}, "neither a pg_dump archive")
        real = self.ok("backup_database", {})["backup"]["name"]
        with open(os.path.join(self.dir, real), "rb") as fh:
            content = fh.read()
        self.write_file("cut.dump", content[: len(content) // 3])
        self.fails("restore_database", {"backup": "cut.dump", "confirm": True}, "not a readable pg_dump archive")
        plain = self.ok("backup_database", {"format": "plain"})["backup"]["name"]
        with open(os.path.join(self.dir, plain), "rb") as fh:
            text = fh.read()
        self.write_file("cut.sql", text[: len(text) // 2])
        self.fails("restore_database", {"backup": "cut.sql", "confirm": True}, "incomplete SQL dump")
        self.write_file("bad.zip", b"PK\x03\x04 broken zip")
        self.fails("restore_database", {"backup": "bad.zip", "confirm": True}, "neither a pg_dump archive")
        self.assertTrue(partner.exists())
        # no staging database was left behind, no pre-restore backup was written
        self.assertFalse([n for n in os.listdir(self.dir) if "pre-restore" in n])
        self.assertEqual(self.staging_dbs(), [])

    def staging_dbs(self):
        self.env.cr.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (self.env.cr.dbname + "\\_restore\\_%",))
        return self.env.cr.fetchall()

    def plain_dump(self, name, body):
        return self.write_file(name, b"--\n-- PostgreSQL database dump\n--\n" + body
                               + b"\n--\n-- PostgreSQL database dump complete\n--\n")

    def test_restore_failing_midway_drops_the_staging_copy(self):
        self.plain_dump("fails.sql", b"CREATE TABLE t (x int);\nSELECT 1/0;\n")
        text = self.fails("restore_database", {"backup": "fails.sql", "confirm": True}, "psql failed")
        self.assertIn("the database was not changed", text)
        self.assertIn("division by zero", text)
        self.assertEqual(self.staging_dbs(), [])
        self.assertEqual(len([n for n in os.listdir(self.dir) if "pre-restore" in n]), 1)

    def test_restore_refuses_other_series_and_missing_modules(self):
        table = b"CREATE TABLE ir_module_module (name varchar, state varchar, latest_version varchar);\n"
        series, other = release.major_version, f"{release.version_info[0] - 1}.0"  # e.g. 18.0 and 17.0
        self.plain_dump("old.sql", table + f"INSERT INTO ir_module_module VALUES ('base', 'installed', '{other}.1.3');"
                        .encode())
        self.fails("restore_database", {"backup": "old.sql", "confirm": True}, "cannot be restored here")
        self.plain_dump("mods.sql", table + f"INSERT INTO ir_module_module VALUES ('base', 'installed', '{series}.1.3'), "
                        f"('ocore_no_such_module', 'installed', '{series}.1.0');".encode())
        self.fails("restore_database", {"backup": "mods.sql", "confirm": True}, "ocore_no_such_module")
        self.assertEqual(self.staging_dbs(), [])

    def test_one_restore_at_a_time(self):
        name = self.ok("backup_database", {})["backup"]["name"]
        pending = backup_mod._pg_name(self.env.cr.dbname, "_restore_0pend0")
        with backup_mod._postgres_cursor() as pcr:
            pcr.execute(f'CREATE DATABASE "{pending}" TEMPLATE template0')
        self.addCleanup(backup_mod._drop_database, pending)
        text = self.fails("restore_database", {"backup": name, "confirm": True}, "another restore")
        self.assertIn(pending, text)
        self.assertFalse([n for n in os.listdir(self.dir) if "pre-restore" in n])

    def test_restore_dry_run_and_pre_restore_abort(self):
        name = self.ok("backup_database", {})["backup"]["name"]
        data = self.ok("restore_database", {"backup": name, "dry_run": True})["would_return"]
        self.assertEqual((data["checked"], data["format"]), (True, "custom"))
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.backup_max_bytes", "1000")
        self.fails("restore_database", {"backup": name, "confirm": True}, "pre-restore backup failed")
        self.assertFalse([n for n in os.listdir(self.dir) if "pre-restore" in n])

    def test_restore_stages_a_verified_copy(self):
        """Inside a test the swap (which needs the request's transaction to end) is not run: the
        restored staging copy and the pre-restore backup are checked, then dropped."""
        name = self.ok("backup_database", {})["backup"]["name"]
        data = self.ok("restore_database", {"backup": name, "confirm": True, "timeout_seconds": 120})
        staging = data["staging_database"]
        self.addCleanup(backup_mod._drop_database, staging)
        self.assertEqual(data["status"], "staged")
        self.assertIn("pre-restore", data["pre_restore_backup"])
        self.assertTrue(os.path.isfile(os.path.join(self.dir, data["pre_restore_backup"])))
        self.assertTrue(backup_mod._db_exists(staging))
        import odoo

        with odoo.sql_db.db_connect(staging).cursor() as cr:
            cr.execute("SELECT login FROM res_users WHERE id = %s", (self.admin.id,))
            self.assertEqual(cr.fetchone()[0], self.admin.login)
        odoo.sql_db.close_db(staging)
