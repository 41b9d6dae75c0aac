from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

TAG_MAX = 50  # characters of one tag
TAGS_MAX = 20  # tags of one note or bookmark
SUMMARY_TAG = "summary"


def clean_tag(name):
    """A tag as stored: trimmed, lower-case, inner whitespace collapsed."""
    return " ".join(str(name).split()).lower()


class KnowledgeTag(models.Model):
    _name = "ocore.mcp.knowledge.tag"
    _description = "MCP Knowledge Tag"
    _order = "name"

    name = fields.Char(required=True, help="Lower-case label, e.g. summary, workflow, vat.")
    color = fields.Integer()

    def init(self):
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS ocore_mcp_knowledge_tag_name_uniq ON ocore_mcp_knowledge_tag (name)"
        )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name"):
                vals["name"] = clean_tag(vals["name"])
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("name"):
            vals["name"] = clean_tag(vals["name"])
        return super().write(vals)

    @api.constrains("name")
    def _check_name(self):
        for tag in self:
            if not tag.name or len(tag.name) > TAG_MAX:
                raise ValidationError(_("A tag has 1 to %s characters.", TAG_MAX))
            if self.search_count([("name", "=", tag.name), ("id", "!=", tag.id)]):
                raise ValidationError(_("The tag %s already exists.", tag.name))

    @api.model
    def _ocore_get(self, names):
        """The tags named ``names`` (cleaned), created when missing."""
        wanted = list(dict.fromkeys(clean_tag(n) for n in names or [] if clean_tag(n)))
        if len(wanted) > TAGS_MAX:
            raise ValidationError(_("At most %s tags.", TAGS_MAX))
        for name in wanted:
            if len(name) > TAG_MAX:
                raise ValidationError(_("The tag %(tag)r is longer than %(max)s characters.", tag=name, max=TAG_MAX))
        existing = self.search([("name", "in", wanted)])
        missing = [n for n in wanted if n not in existing.mapped("name")]
        return existing | self.create([{"name": n} for n in missing]) if missing else existing


class KnowledgeMixin(models.AbstractModel):
    """Company scope and soft delete of the knowledge records (notes, saved filters, bookmarks).

    A record belongs to the company its author acted in (for an MCP call: the API key's company);
    a record rule shows it to every user of that company, so every key of the company shares it.
    Deleting through MCP archives the record and stamps ``deleted_at``: it leaves every query.
    """

    _name = "ocore.mcp.knowledge.mixin"
    _description = "MCP Knowledge: company scope and soft delete"

    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company, ondelete="cascade"
    )
    active = fields.Boolean(default=True, help="Unset when deleted (soft delete).")
    deleted_at = fields.Datetime(readonly=True, copy=False)
    deleted_by = fields.Many2one("res.users", readonly=True, copy=False, ondelete="set null")
    key_id = fields.Many2one(
        "ocore.mcp.key", string="Created with key", readonly=True, copy=False, ondelete="set null",
        help="The MCP API key of the call that created the record (empty when created in the backend).",
    )

    def _ocore_soft_delete(self):
        self.write({"active": False, "deleted_at": fields.Datetime.now(), "deleted_by": self.env.uid})

    def write(self, vals):
        if vals.get("active"):  # restored from the archive
            vals = {**vals, "deleted_at": False, "deleted_by": False}
        return super().write(vals)
