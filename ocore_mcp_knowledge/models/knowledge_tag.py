from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.lib.redact import redact_text

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
    """Company scope, visibility and soft delete of the knowledge records (notes, saved filters, bookmarks).

    A record belongs to the company its author acted in (for an MCP call: the API key's company);
    a record rule shows it to every user of that company, so every key of the company shares it.
    Another record rule (on ``ocore_visible``) hides what the user could not have read themselves: a
    record about a model the user may not read (a note on ``hr.employee``, a saved filter of
    ``account.move``, a bookmark of a call on such a model) and, for bookmarks, the calls of tools
    offered to system administrators only. Free texts are stored with their secrets redacted (by name
    and by value, lib/redact.py): a note pasted from a tool's output does not carry a password hash.
    Deleting through MCP archives the record and stamps ``deleted_at``: it leaves every query.
    """

    _name = "ocore.mcp.knowledge.mixin"
    _description = "MCP Knowledge: company scope, visibility and soft delete"
    # the Char field holding the model(s) the record is about (comma-separated), and the free texts
    _ocore_model_field = None
    _ocore_text_fields = ()

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
    ocore_visible = fields.Boolean(
        string="Visible to me", compute="_compute_ocore_visible", search="_search_ocore_visible",
        help="Whether the current user may see this record: they may read the model it is about (and, for a "
             "bookmark, call its tool). A record rule hides the others.",
    )

    # -- visibility ---------------------------------------------------------------------------

    @api.model
    def _ocore_readable(self, models_text):
        """Whether the current user (never sudo) may read every model of ``models_text``. A model that is
        not installed holds no data: it does not hide the record."""
        env = self.env(su=False)
        access = env["ir.model.access"]
        return all(access.check(name, "read", raise_exception=False)
                   for name in (models_text or "").replace(" ", "").split(",") if name and name in env)

    def _ocore_visible_record(self):
        """Extension point: whether the current user may see this record (beyond the model check)."""
        self.ensure_one()
        return True

    @api.model
    def _ocore_visible_terms(self):
        """Extension point: expressions (each a domain leaf or a normalized prefix domain), all of which
        a record the current user may see satisfies, beyond the model check."""
        return []

    @api.depends_context("uid")
    def _compute_ocore_visible(self):
        field = self._ocore_model_field
        for rec in self:
            rec.ocore_visible = (not field or self._ocore_readable(rec.sudo()[field])) and rec._ocore_visible_record()

    def _search_ocore_visible(self, operator, value):
        wanted = compat.boolean_search_values(operator, value)
        if wanted is None:
            raise UserError(_("Search on 'Visible to me' with = True or = False only."))
        if len(wanted) != 1:
            return [(1, "=", 1)] if wanted else [(0, "=", 1)]
        field = self._ocore_model_field
        terms = list(self._ocore_visible_terms())
        if field:
            self.flush_model([field])
            column = SQL.identifier(field)
            self.env.cr.execute(SQL("SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL", column,
                                    SQL.identifier(self._table), column))
            hidden = [name for (name,) in self.env.cr.fetchall() if not self._ocore_readable(name)]
            if hidden:
                terms.append(["|", (field, "=", False), (field, "not in", hidden)])
        domain = ["&"] * (len(terms) - 1)
        for term in terms:
            domain += term if isinstance(term, list) else [term]
        domain = domain or [(1, "=", 1)]
        return domain if wanted == {True} else ["!", *domain]

    # -- secrets out of the free texts --------------------------------------------------------------

    def _ocore_redact_vals(self, vals):
        texts = {name: redact_text(vals[name]) for name in self._ocore_text_fields
                 if isinstance(vals.get(name), str) and vals[name]}
        return {**vals, **texts} if texts else vals

    @api.model_create_multi
    def create(self, vals_list):
        return super().create([self._ocore_redact_vals(vals) for vals in vals_list])

    def _ocore_soft_delete(self):
        self.write({"active": False, "deleted_at": fields.Datetime.now(), "deleted_by": self.env.uid})

    def write(self, vals):
        if vals.get("active"):  # restored from the archive
            vals = {**vals, "deleted_at": False, "deleted_by": False}
        return super().write(self._ocore_redact_vals(vals))
