from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .knowledge_tag import SUMMARY_TAG

TITLE_MAX = 200
BODY_MAX = 2000
NOTES_PER_SCOPE = 100
TARGET_TYPES = [
    ("instance", "Instance"),
    ("model", "Model"),
    ("record", "Record"),
    ("field", "Field"),
    ("module", "Module"),
]


TARGET_FIELDS = ("target_type", "target_model", "target_res_id", "target_field", "target_module")


def target_of(target_type, model=None, res_id=None, field=None, module=None):
    """The canonical text of a note's target: ``instance``, ``sale.order``, ``res.partner#42``,
    ``sale.order.x_notes`` or ``custom_invoicing``."""
    if target_type == "instance":
        return "instance"
    if target_type == "model":
        return model or ""
    if target_type == "record":
        return f"{model}#{res_id}"
    if target_type == "field":
        return f"{model}.{field}"
    return module or ""


class KnowledgeNote(models.Model):
    """A knowledge note about the instance, a model, a record, a field or a module.

    Scope = company + target: at most 100 live notes per scope. Notes tagged ``summary`` are the one
    authoritative description of their target (set_model_summary / set_instance_summary upsert them);
    auto-context puts them into tool descriptions.
    """

    _name = "ocore.mcp.note"
    _inherit = ["ocore.mcp.knowledge.mixin"]
    _description = "MCP Knowledge Note"
    _order = "is_summary desc, write_date desc, id desc"
    _ocore_model_field = "target_model"
    _ocore_text_fields = ("title", "body")

    title = fields.Char(required=True, help=f"Up to {TITLE_MAX} characters.")
    body = fields.Text(help=f"Up to {BODY_MAX} characters.")
    tag_ids = fields.Many2many("ocore.mcp.knowledge.tag", string="Tags")
    is_summary = fields.Boolean(
        compute="_compute_is_summary", store=True, index=True, help="Tagged 'summary': the target's summary note."
    )
    target_type = fields.Selection(TARGET_TYPES, required=True, default="instance", index=True)
    target_model = fields.Char(string="Model", index=True, help="Technical model name (model, record, field notes).")
    target_res_id = fields.Integer(string="Record ID")
    target_field = fields.Char(string="Field")
    target_module = fields.Char(string="Module")
    target = fields.Char(
        compute="_compute_target", store=True, index=True,
        help="instance, sale.order, res.partner#42, sale.order.x_notes or custom_invoicing",
    )

    @api.depends("tag_ids", "tag_ids.name")
    def _compute_is_summary(self):
        for note in self:
            note.is_summary = SUMMARY_TAG in note.tag_ids.mapped("name")

    @api.depends(*TARGET_FIELDS)
    def _compute_target(self):
        for note in self:
            note.target = target_of(
                note.target_type, note.target_model, note.target_res_id, note.target_field, note.target_module
            )

    @api.depends("title", "target")
    def _compute_display_name(self):
        for note in self:
            note.display_name = f"[{note.target}] {note.title}" if note.target else note.title

    @api.constrains("title", "body")
    def _check_sizes(self):
        for note in self:
            if not (note.title or "").strip():
                raise ValidationError(_("A note needs a title."))
            if len(note.title) > TITLE_MAX:
                raise ValidationError(_("A note's title has at most %s characters.", TITLE_MAX))
            if note.body and len(note.body) > BODY_MAX:
                raise ValidationError(_("A note's body has at most %s characters.", BODY_MAX))

    @api.constrains(*TARGET_FIELDS)
    def _check_target(self):
        needs = {
            "instance": set(),
            "model": {"target_model"},
            "record": {"target_model", "target_res_id"},
            "field": {"target_model", "target_field"},
            "module": {"target_module"},
        }
        labels = {"target_model": _("a model"), "target_res_id": _("a record ID"), "target_field": _("a field"),
                  "target_module": _("a module")}
        for note in self:
            wanted = needs[note.target_type]
            for name in ("target_model", "target_res_id", "target_field", "target_module"):
                if name in wanted and not note[name]:
                    raise ValidationError(_("A %(type)s note needs %(what)s.", type=note.target_type,
                                            what=labels[name]))
                if name not in wanted and note[name]:
                    raise ValidationError(_("A %(type)s note has no %(what)s.", type=note.target_type,
                                            what=labels[name]))

    @api.constrains("company_id", "active", *TARGET_FIELDS)
    def _check_scope_limit(self):
        for note in self.filtered("active"):
            # serialise concurrent additions to the same scope until the end of the transaction
            self.env.cr.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"ocore_mcp_note:{note.company_id.id}:{note.target_type}:{note.target}",),
            )
            count = self.sudo().search_count(note._ocore_scope_domain())
            if count > NOTES_PER_SCOPE:
                raise ValidationError(
                    _("At most %(max)s notes per target: %(target)s already has %(count)s.",
                      max=NOTES_PER_SCOPE, target=note.target, count=count - 1)
                )

    @api.constrains("tag_ids", "company_id", "active", *TARGET_FIELDS)
    def _check_one_summary(self):
        for note in self.filtered(lambda n: n.active and n.is_summary):
            others = self.sudo().search_count([*note._ocore_scope_domain(), ("is_summary", "=", True),
                                               ("id", "!=", note.id)])
            if others:
                raise ValidationError(
                    _("%(target)s already has a summary note: update it (set_model_summary / "
                      "set_instance_summary) instead of adding another one.", target=note.target)
                )

    def _ocore_scope_domain(self):
        self.ensure_one()
        return [("company_id", "=", self.company_id.id), ("target_type", "=", self.target_type),
                ("target", "=", self.target), ("active", "=", True)]

    # -- visibility: a record note is shown to the users who may read that record ----------------------

    @api.model
    def _ocore_hidden_record_notes(self):
        """Ids of the record notes whose record the current user may not read (record rules included)."""
        self.flush_model(["target_type", "target_model", "target_res_id"])
        self.env.cr.execute(
            """SELECT target_model, array_agg(DISTINCT target_res_id), array_agg(id) FROM ocore_mcp_note
                WHERE target_type = 'record' AND target_model IS NOT NULL GROUP BY target_model"""
        )
        env = self.env(su=False)
        hidden = []
        for model, res_ids, note_ids in self.env.cr.fetchall():
            if model not in env:
                continue
            records = env[model].with_context(active_test=False)
            readable = set(records.search([("id", "in", res_ids)]).ids) if self._ocore_readable(model) else set()
            if len(readable) < len(res_ids):
                notes = self.sudo().browse(note_ids)
                hidden += notes.filtered(lambda n, ok=readable: n.target_res_id not in ok).ids
        return hidden

    @api.model
    def _ocore_visible_terms(self):
        hidden = self._ocore_hidden_record_notes()
        return [("id", "not in", hidden)] if hidden else []

    def _ocore_visible_record(self):
        self.ensure_one()
        note = self.sudo()
        if note.target_type != "record" or note.target_model not in self.env:
            return True
        records = self.env(su=False)[note.target_model].with_context(active_test=False)
        return bool(records.search_count([("id", "=", note.target_res_id)]))
