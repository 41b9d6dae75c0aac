import json
import logging
from datetime import timedelta

from odoo import api, fields, models

_logger = logging.getLogger(__name__)

SNAPSHOT_PARAM = "ocore_mcp.module_snapshot"  # {module: installed version} last seen
BUSY_PARAM = "ocore_mcp.module_operation"  # set while an immediate install/upgrade/uninstall runs
BUSY_MAX = timedelta(minutes=30)
SYNC_LOCK = 0x6F636D6D  # advisory lock: one snapshot comparison at a time across workers
INSTALLED_STATES = ("installed", "to upgrade", "to remove")


class McpModuleEvent(models.Model):
    """One module install, upgrade or uninstall.

    Recorded by the immediate buttons of ir.module.module (models/ir_module_module.py): through an
    MCP module tool (source "mcp") or from Odoo itself, e.g. the Apps menu or an RPC script (source
    "odoo"). Changes made any other way (``odoo-bin -i/-u`` on the command line, another server) are
    found when a registry loads by comparing the installed modules with the last snapshot (source
    "database", no user: it is not known).
    """

    _name = "ocore.mcp.module.event"
    _description = "MCP module operation"
    _order = "date desc, id desc"
    _rec_name = "module"

    module = fields.Char(required=True, index=True, readonly=True)
    module_id = fields.Many2one("ir.module.module", string="Module record", ondelete="set null", readonly=True)
    action = fields.Selection(
        [("install", "Install"), ("upgrade", "Upgrade"), ("uninstall", "Uninstall")], required=True, readonly=True
    )
    version_before = fields.Char(readonly=True)
    version_after = fields.Char(readonly=True)
    requested = fields.Boolean(
        readonly=True, help="The module was asked for; otherwise it came along as a dependency or a dependent."
    )
    user_id = fields.Many2one("res.users", ondelete="set null", readonly=True)
    key_id = fields.Many2one("ocore.mcp.key", string="API key", ondelete="set null", readonly=True)
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True, readonly=True)
    source = fields.Selection(
        [("mcp", "MCP tool"), ("odoo", "Odoo (Apps, RPC)"), ("database", "Seen on the database")],
        required=True, default="odoo", readonly=True,
    )

    @api.model
    def _ocore_installed(self):
        """{module: installed version} of the installed modules, read from the table."""
        self.env["ir.module.module"].flush_model(["state", "latest_version"])
        self.env.cr.execute("SELECT name, latest_version FROM ir_module_module WHERE state IN %s", [INSTALLED_STATES])
        return {name: version or "" for name, version in self.env.cr.fetchall()}

    @api.model
    def _ocore_save_snapshot(self, current=None):
        current = self._ocore_installed() if current is None else current
        self.env["ir.config_parameter"].sudo().set_param(SNAPSHOT_PARAM, json.dumps(current, sort_keys=True))

    @api.model
    def _ocore_set_busy(self, busy):
        value = fields.Datetime.to_string(fields.Datetime.now()) if busy else False
        self.env["ir.config_parameter"].sudo().set_param(BUSY_PARAM, value)

    @api.model
    def _ocore_sync_database(self):
        """Record the module changes made since the last snapshot without the immediate buttons."""
        cr = self.env.cr
        cr.execute("SELECT pg_try_advisory_xact_lock(%s)", [SYNC_LOCK])
        if not cr.fetchone()[0]:
            return self.browse()
        icp = self.env["ir.config_parameter"].sudo()
        busy = icp.get_param(BUSY_PARAM)
        if busy and fields.Datetime.now() - fields.Datetime.to_datetime(busy) < BUSY_MAX:
            return self.browse()  # an immediate operation records its own changes
        current = self._ocore_installed()
        raw = icp.get_param(SNAPSHOT_PARAM)
        try:
            previous = json.loads(raw) if raw else None
        except ValueError:
            previous = None
        if previous == current:
            return self.browse()
        self._ocore_save_snapshot(current)
        if previous is None:  # first run: the baseline
            return self.browse()
        modules = {m.name: m.id for m in self.env["ir.module.module"].sudo().search([("name", "in", list(
            set(current) | set(previous)))])}
        values = []
        now = fields.Datetime.now()
        for name in sorted(set(current) | set(previous)):
            before, after = previous.get(name), current.get(name)
            if before == after:
                continue
            action = "install" if before is None else "uninstall" if after is None else "upgrade"
            values.append({
                "module": name, "module_id": modules.get(name), "action": action, "date": now,
                "version_before": before or False, "version_after": after or False, "source": "database",
                "requested": False, "user_id": False,
            })
        return self.sudo().create(values)
