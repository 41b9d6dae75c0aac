import json
import re

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.ocore_mcp.lib import compat

LABEL_MAX = 200
NOTE_MAX = 1000
RESULT_MAX = 500


class Bookmark(models.Model):
    """A bookmarked MCP tool call. The call is kept as an inline snapshot (tool, redacted parameters,
    result summary, status, date): the bookmark stays useful after the audit log row is purged.

    A bookmark shows the output of a call: it is visible only to users who could have made the call
    (record rule on ``ocore_visible``): bookmarks of tools offered to system administrators only
    (``admin_only``: SQL, shell, files, modules, system) to system administrators, bookmarks of a
    call on a model (``call_models``) to users who may read that model."""

    _name = "ocore.mcp.bookmark"
    _inherit = ["ocore.mcp.knowledge.mixin"]
    _description = "MCP Bookmark"
    _order = "create_date desc, id desc"
    _rec_name = "label"
    _ocore_model_field = "call_models"
    _ocore_text_fields = ("label", "note", "tool_params", "result_summary")

    label = fields.Char(required=True, help=f"Up to {LABEL_MAX} characters.")
    note = fields.Text(help=f"Up to {NOTE_MAX} characters.")
    tag_ids = fields.Many2many("ocore.mcp.knowledge.tag", string="Tags")
    instance = fields.Char(index=True, help="Slug of the instance the call was made on.")
    tool_name = fields.Char(required=True, index=True, help="The tool's name as the client saw it.")
    tool_params = fields.Text(string="Parameters", help="The call's parameters (JSON), secrets redacted.")
    result_summary = fields.Text(help=f"The call's result, truncated to {RESULT_MAX} characters.")
    call_status = fields.Char(help="success, error, refused …")
    call_date = fields.Datetime()
    call_session = fields.Char(string="MCP session")
    audit_log_id = fields.Many2one(
        "ocore.mcp.audit.log", string="Audit log entry", ondelete="set null", index=True,
        help="Emptied when the audit entry is purged; the snapshot on this bookmark remains.",
    )
    audit_log_ref = fields.Integer(string="Audit log ID", readonly=True,
                                   help="The audit entry's id, kept after the entry is purged.")
    admin_only = fields.Boolean(
        string="Administrators' tool", compute="_compute_call_scope", store=True, index=True,
        help="A call of a tool offered to system administrators only (or of a tool unknown here): the "
             "bookmark is visible to system administrators only.",
    )
    call_models = fields.Char(
        string="Models of the call", compute="_compute_call_scope", store=True, index=True,
        help="The models the call read or wrote (its model arguments): the bookmark is visible only to users "
             "who may read them.",
    )

    @api.depends("tool_name", "tool_params")
    def _compute_call_scope(self):
        specs = self.env["ocore.mcp.toolset"]._ocore_tool_specs()
        for mark in self:
            name = mark.tool_name or ""
            # the tool name as the client saw it: <instance slug>_<tool> or ocore_<tool>
            matching = [spec for tool, spec in specs.items() if name == tool or name.endswith(f"_{tool}")]
            mark.admin_only = not matching or any(spec.meta.admin_only for spec in matching)
            try:
                params = json.loads(mark.tool_params or "{}")
            except ValueError:  # a parameter snapshot cut by the audit writer: its model arguments still count
                params = {}
                for spec in matching:
                    for arg in spec.meta.model_args:
                        found = re.findall(rf'"{re.escape(arg)}": ?"([\w.]+)"', mark.tool_params or "")
                        params[arg] = found
            models_ = set()
            for spec in matching:
                for arg in spec.meta.model_args:
                    value = params.get(arg) if isinstance(params, dict) else None
                    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
                    models_.update(v for v in values if isinstance(v, str) and v)
            mark.call_models = ",".join(sorted(models_)) or False

    @api.model_create_multi
    def create(self, vals_list):
        # a bookmark links only an audit entry its author may read (never sudo)
        audit = self.env["ocore.mcp.audit.log"].with_env(self.env(su=False))
        for vals in vals_list:
            if vals.get("audit_log_id") and not self.env.su:
                compat.check_access(audit.browse(vals["audit_log_id"]), "read")
        return super().create(vals_list)

    @api.model
    def _ocore_visible_terms(self):
        if self.env.user._is_system():
            return []
        return [("admin_only", "=", False)]

    def _ocore_visible_record(self):
        self.ensure_one()
        return not self.sudo().admin_only or self.env.user._is_system()

    @api.constrains("label", "note", "result_summary")
    def _check_sizes(self):
        for mark in self:
            if not (mark.label or "").strip() or len(mark.label) > LABEL_MAX:
                raise ValidationError(_("A bookmark's label has 1 to %s characters.", LABEL_MAX))
            if mark.note and len(mark.note) > NOTE_MAX:
                raise ValidationError(_("A bookmark's note has at most %s characters.", NOTE_MAX))
            if mark.result_summary and len(mark.result_summary) > RESULT_MAX:
                raise ValidationError(_("A bookmark's result summary has at most %s characters.", RESULT_MAX))
