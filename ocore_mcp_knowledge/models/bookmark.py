from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

LABEL_MAX = 200
NOTE_MAX = 1000
RESULT_MAX = 500


class Bookmark(models.Model):
    """A bookmarked MCP tool call. The call is kept as an inline snapshot (tool, redacted parameters,
    result summary, status, date): the bookmark stays useful after the audit log row is purged."""

    _name = "ocore.mcp.bookmark"
    _inherit = ["ocore.mcp.knowledge.mixin"]
    _description = "MCP Bookmark"
    _order = "create_date desc, id desc"
    _rec_name = "label"

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

    @api.constrains("label", "note", "result_summary")
    def _check_sizes(self):
        for mark in self:
            if not (mark.label or "").strip() or len(mark.label) > LABEL_MAX:
                raise ValidationError(_("A bookmark's label has 1 to %s characters.", LABEL_MAX))
            if mark.note and len(mark.note) > NOTE_MAX:
                raise ValidationError(_("A bookmark's note has at most %s characters.", NOTE_MAX))
            if mark.result_summary and len(mark.result_summary) > RESULT_MAX:
                raise ValidationError(_("A bookmark's result summary has at most %s characters.", RESULT_MAX))
