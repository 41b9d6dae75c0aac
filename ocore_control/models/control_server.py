import json
import logging

import requests

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from odoo.addons.ocore_mcp.lib import compat

from ..agent import signing
from ..lib import keys

_logger = logging.getLogger(__name__)

AGENT_TIMEOUT = 10
HEARTBEAT_STALE_SECONDS = 90


class ControlServer(models.Model):
    """A machine that runs instances, with one host agent."""

    _name = "ocore.control.server"
    _description = "Control plane: server"
    _order = "name, id"

    name = fields.Char(required=True)
    organization_id = fields.Many2one("ocore.control.organization", required=True, ondelete="cascade", index=True)
    host = fields.Char(help="Host name or address of the machine.")
    agent_url = fields.Char(string="Agent URL", help="Where the host agent listens, e.g. http://10.0.0.5:8470")
    agent_key_generation = fields.Integer(readonly=True, copy=False, groups="base.group_system")
    agent_key_fingerprint = fields.Char(
        readonly=True, copy=False, help="SHA-256 prefix of the agent secret (the secret itself is not stored).")
    status = fields.Selection(
        [("unknown", "Unknown"), ("online", "Online"), ("unreachable", "Unreachable")],
        default="unknown", readonly=True)
    last_heartbeat = fields.Datetime(readonly=True)
    disk_total_gb = fields.Float(string="Disk total (GB)", readonly=True, digits=(16, 1))
    disk_free_gb = fields.Float(string="Disk free (GB)", readonly=True, digits=(16, 1))
    load_average = fields.Float(readonly=True, digits=(16, 2))
    instance_ids = fields.One2many("ocore.control.instance", "server_id", string="Instances")

    def write(self, vals):
        result = super().write(vals)
        if {"agent_url", "agent_key_generation", "organization_id"} & set(vals):
            self.env["ocore.control.instance"]._ocore_routes_changed()  # a managed instance's tools change path
        return result

    def unlink(self):
        result = super().unlink()
        self.env["ocore.control.instance"]._ocore_routes_changed()
        return result

    # -- the agent's secret (derived, never stored) ------------------------------------------

    def _ocore_agent_secret(self):
        self.ensure_one()
        generation = self.sudo().agent_key_generation
        if not generation:
            raise UserError(_("Server %s has no agent secret yet: generate one.", self.name))
        return keys.derive(self.env, f"agent/{self.id}/{generation}").hex()

    def action_generate_agent_secret(self):
        """Rotate the agent secret (the previous one stops working) and show the new one once."""
        self.ensure_one()
        compat.check_access(self, "write")
        server = self.sudo()
        server.agent_key_generation += 1
        secret = server._ocore_agent_secret()
        server.agent_key_fingerprint = keys.fingerprint(secret)
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")
        config = {"server_id": self.id, "secret": secret, "listen": "127.0.0.1:8470",
                  "control_plane_url": base, "backup_dir": "/var/backups/ocore", "instances": []}
        return self.env["ocore.control.secret.show"]._ocore_show(
            _("Agent secret of %s", self.name), secret,
            _("Put this in the agent's configuration file (shown once):\n%s", json.dumps(config, indent=2)))

    # -- calls to the agent ------------------------------------------------------------------

    def _ocore_agent_call(self, method, path, payload=None, timeout=AGENT_TIMEOUT, stream=False, raise_error=True):
        """A signed request to the agent; the decoded JSON answer (or the response when ``stream``;
        ``(status, data)`` when not ``raise_error``)."""
        self.ensure_one()
        if not self.agent_url:
            raise UserError(_("Server %s has no agent URL.", self.name))
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = signing.sign(self._ocore_agent_secret(), method, path, body)
        headers["Content-Type"] = "application/json"
        try:
            resp = requests.request(method, self.agent_url.rstrip("/") + path, data=body, headers=headers,
                                    timeout=timeout, stream=stream)
        except requests.RequestException as exc:
            raise UserError(_("The agent of %(server)s is unreachable: %(error)s", server=self.name,
                              error=exc)) from None
        if stream and resp.ok:
            return resp
        try:
            data = resp.json()
        except ValueError:
            data = {"error": resp.text[:500]}
        if not raise_error:
            return resp.status_code, data
        if not resp.ok:
            raise UserError(_("The agent of %(server)s refused %(path)s: %(error)s", server=self.name,
                              path=path, error=data.get("error") or resp.status_code))
        return data

    def action_refresh(self):
        """Ask the agent for its status and instances now."""
        for server in self:
            try:
                server._ocore_apply_status(server._ocore_agent_call("GET", "/v1/status"))
            except UserError as exc:
                server.status = "unreachable"
                _logger.info("%s", exc)
        return True

    def _ocore_apply_status(self, data):
        """Apply a heartbeat or status report of the agent: server load and disk, instance states."""
        self.ensure_one()
        disk = data.get("disk") or {}
        self.sudo().write({
            "status": "online",
            "last_heartbeat": fields.Datetime.now(),
            "disk_total_gb": (disk.get("total") or 0) / 1e9,
            "disk_free_gb": (disk.get("free") or 0) / 1e9,
            "load_average": float(data.get("load") or 0.0),
        })
        states = {row.get("name"): row for row in data.get("instances") or [] if isinstance(row, dict)}
        for instance in self.sudo().instance_ids:
            row = states.get(instance.agent_name or instance.slug)
            if row:
                instance._ocore_apply_agent_state(row)

    @api.model
    def _ocore_mark_stale(self):
        """Cron: a server whose agent stopped sending heartbeats is unreachable, and so are its instances."""
        limit = fields.Datetime.subtract(fields.Datetime.now(), seconds=HEARTBEAT_STALE_SECONDS)
        stale = self.sudo().search([("status", "=", "online"), ("last_heartbeat", "<", limit)])
        stale.write({"status": "unreachable"})
        stale.instance_ids.filtered(lambda i: i.status == "running").write({"status": "unreachable"})


@compat.table_constraints(("nonce_unique", "UNIQUE(nonce)", "A nonce is used once."))
class ControlNonce(models.Model):
    """Nonces of signed agent requests seen recently (replays refused, in every worker)."""

    _name = "ocore.control.nonce"
    _description = "Control plane: used request nonce"

    nonce = fields.Char(required=True, index=True)


    @api.model
    def _ocore_use(self, nonce):
        """True the first time ``nonce`` is seen; older nonces are purged (the signature window is short)."""
        cr = self.env.cr
        cr.execute("DELETE FROM ocore_control_nonce WHERE create_date < (now() at time zone 'UTC') - interval '5 min'")
        cr.execute("""INSERT INTO ocore_control_nonce (nonce, create_uid, write_uid, create_date, write_date)
                      VALUES (%s, 1, 1, now() at time zone 'UTC', now() at time zone 'UTC')
                      ON CONFLICT (nonce) DO NOTHING""", (nonce,))
        return bool(cr.rowcount)
