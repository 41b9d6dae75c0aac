"""Monitoring of an organization's instances on one PostHog project.

An organization holds the PostHog settings of its instances (host, project API key, project id, personal
API key, enabled); the control plane sends them to each enrolled instance over the signed control link
(``POST /ocore/control/posthog``: an EdDSA assertion of purpose ``posthog`` whose ``bsh`` claim is the
SHA-256 of the body), when they change, when an instance is enrolled, and on demand. An instance with no
PostHog host of its own uses them (its own settings, when set, win); every event it sends carries its slug
in ``odoo_instance``, which tells the instances apart in the one project and which the monitoring tools
filter on, so ``<slug>_posthog_*`` called through the control plane reads that instance's events.

The personal API key is write-only: the form shows whether one is set, never the key. It is stored
encrypted (Fernet) with a key derived from the control plane's master key (lib/keys.py), in a field no
user reads through the ORM: a copy of the database alone does not reveal it. It is decrypted only to be
sent to an instance.
"""

import base64
import json
import logging
import uuid

from cryptography.fernet import Fernet, InvalidToken

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.ocore_mcp.models.mcp_posthog import CONTROL_PURPOSE, CONTROL_ROUTE, body_hash
from odoo.addons.ocore_mcp.service import posthog as ph

from ..lib import keys

_logger = logging.getLogger(__name__)

MANAGERS = "ocore_mcp.group_mcp_manager"
POSTHOG_FIELDS = {"posthog_enabled", "posthog_host", "posthog_project_api_key", "posthog_project_id",
                  "posthog_personal_api_key"}
PUSH_TIMEOUT = 5


class ControlOrganizationPosthog(models.Model):
    _inherit = "ocore.control.organization"

    posthog_enabled = fields.Boolean(
        string="PostHog monitoring", groups=MANAGERS,
        help="The instances without PostHog settings of their own capture into this project.")
    posthog_host = fields.Char(string="PostHog host", groups=MANAGERS,
                               help="e.g. https://eu.i.posthog.com, or your self-hosted PostHog's URL.")
    posthog_project_api_key = fields.Char(string="Project API key", groups=MANAGERS)
    posthog_project_id = fields.Char(string="Project id", groups=MANAGERS,
                                     help="The monitoring tools (posthog_*) query this project.")
    posthog_personal_api_key = fields.Char(
        string="Personal API key", compute="_compute_posthog_personal_api_key",
        inverse="_inverse_posthog_personal_api_key", groups=MANAGERS,
        help="For the monitoring tools' queries (write-only: it is never shown again).")
    posthog_personal_api_key_set = fields.Boolean(string="Personal API key set", readonly=True, copy=False,
                                                  groups=MANAGERS)
    posthog_personal_api_key_enc = fields.Char(copy=False, groups=fields.NO_ACCESS)

    @api.constrains("posthog_host")
    def _check_posthog_host(self):
        for org in self.sudo():
            if org.posthog_host and not ph.normalize_host(org.posthog_host):
                raise ValidationError(_("PostHog host: an http(s) URL, e.g. https://eu.i.posthog.com"))

    def _compute_posthog_personal_api_key(self):
        for org in self:
            org.posthog_personal_api_key = False  # write-only

    def _inverse_posthog_personal_api_key(self):
        for org in self:
            secret = (org.posthog_personal_api_key or "").strip()
            if secret:  # an empty value keeps the stored key (the form never shows it)
                org.sudo().write({"posthog_personal_api_key_enc": org._ocore_posthog_fernet().encrypt(
                    secret.encode()).decode(), "posthog_personal_api_key_set": True})

    def _ocore_posthog_fernet(self):
        self.ensure_one()
        return Fernet(base64.urlsafe_b64encode(keys.derive(self.env, f"posthog/{self.id}")))

    def _ocore_posthog_secret(self):
        """The decrypted personal API key ('' when none, or when the master key changed since it was set)."""
        self.ensure_one()
        self.flush_model(["posthog_personal_api_key_enc"])
        self.env.cr.execute("SELECT posthog_personal_api_key_enc FROM ocore_control_organization WHERE id = %s",
                            (self.id,))
        token = (self.env.cr.fetchone() or [None])[0]
        if not token:
            return ""
        try:
            return self._ocore_posthog_fernet().decrypt(token.encode()).decode()
        except InvalidToken:
            _logger.warning("organization %s: the PostHog personal API key cannot be decrypted (master key "
                            "changed?); set it again", self.id)
            return ""

    def _ocore_posthog_payload(self):
        """What an instance receives (an empty host makes the instances forget the organization's settings)."""
        self.ensure_one()
        org = self.sudo()
        return {
            "enabled": bool(org.posthog_enabled),
            "host": ph.normalize_host(org.posthog_host) if org.posthog_host else "",
            "project_api_key": (org.posthog_project_api_key or "").strip(),
            "project_id": (org.posthog_project_id or "").strip(),
            "personal_api_key": org._ocore_posthog_secret(),
            "organization": org.name,
        }

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records.invalidate_recordset(["posthog_personal_api_key"])  # write-only: never read back from the cache
        return records

    def write(self, vals):
        if "posthog_host" in vals and not (vals.get("posthog_personal_api_key") or "").strip():
            # the instances send the personal API key to this host: a new host does not inherit it (write-only,
            # it would leave for wherever the writer points the host); the same host spelt otherwise keeps it
            new_host = ph.normalize_host(vals["posthog_host"]) if vals["posthog_host"] else ""
            moved = self.sudo().filtered(lambda o: o.posthog_personal_api_key_set and (
                ph.normalize_host(o.posthog_host) if o.posthog_host else "") != new_host)
            if moved:
                moved.write({"posthog_personal_api_key_enc": False, "posthog_personal_api_key_set": False})
        result = super().write(vals)
        if "posthog_personal_api_key" in vals:
            self.invalidate_recordset(["posthog_personal_api_key"])  # write-only: never read back from the cache
        if POSTHOG_FIELDS & set(vals):
            self._ocore_posthog_push()
        return result

    def _ocore_posthog_push(self):
        instances = self.sudo().instance_ids.filtered(lambda i: i.credential_state == "active" and i.url)
        instances._ocore_posthog_push()

    def action_posthog_push(self):
        """Send the PostHog settings to every enrolled instance of the organization now."""
        self._ocore_posthog_push()
        return True

    def action_posthog_forget_personal_key(self):
        self.sudo().write({"posthog_personal_api_key_enc": False, "posthog_personal_api_key_set": False})
        self._ocore_posthog_push()
        return True


class ControlInstancePosthog(models.Model):
    _inherit = "ocore.control.instance"

    posthog_status = fields.Selection(
        [("none", "Not sent"), ("organization", "Organization's project"), ("local", "Instance's own settings"),
         ("cleared", "No organization settings"), ("error", "Not delivered")],
        string="PostHog settings", default="none", readonly=True, copy=False,
        help="What the instance answered to the organization's PostHog settings: in force, or its own settings "
        "win (set on the instance).")
    posthog_pushed_at = fields.Datetime(string="PostHog settings sent", readonly=True, copy=False)
    posthog_push_error = fields.Char(readonly=True, copy=False)

    def _ocore_posthog_push(self):
        """Send the organization's PostHog settings to each instance (never raises: the outcome is kept on
        the instance)."""
        for instance in self:
            payload = instance.organization_id._ocore_posthog_payload()
            body = json.dumps(payload)  # the exact body _ocore_post_json sends: its hash is signed
            try:
                assertion = instance._ocore_assertion("control-plane", {}, uuid.uuid4().hex, purpose=CONTROL_PURPOSE,
                                                      extra={"bsh": body_hash(body)})
                answer = instance._ocore_post_json(CONTROL_ROUTE, payload, assertion, timeout=PUSH_TIMEOUT)
            except UserError as exc:
                _logger.info("PostHog settings not delivered to %s: %s", instance.slug, exc)
                instance.sudo().write({"posthog_status": "error", "posthog_push_error": str(exc)[:300]})
                continue
            status = "organization" if answer.get("in_force") else ("local" if payload["host"] else "cleared")
            instance.sudo().write({"posthog_status": status, "posthog_pushed_at": fields.Datetime.now(),
                                   "posthog_push_error": False})

    @api.model
    def _ocore_posthog_retry(self):
        """Cron: send the settings again to the instances that did not receive them (down at the time of the
        change): an instance that comes back gets its organization's project without anyone pressing "Send"."""
        self.search([("posthog_status", "=", "error")])._ocore_posthog_push()

    def _ocore_enrol(self, token):
        data = super()._ocore_enrol(token)
        if self.sudo().organization_id.posthog_host:
            self._ocore_posthog_push()
        return data

    def action_posthog_push(self):
        self._ocore_posthog_push()
        return True
