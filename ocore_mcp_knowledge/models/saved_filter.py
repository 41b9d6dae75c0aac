import ast

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, ValidationError

from odoo.addons.ocore_mcp.lib import fields as fieldlib
from odoo.addons.ocore_mcp.service.policy import Refusal

NAME_MAX = 100
DEFAULT_LIMIT = 80
LIMIT_MAX = 2000


def parse_domain(text):
    """The domain stored as a Python literal (like ir.filters), as a list."""
    try:
        domain = ast.literal_eval(text or "[]")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValidationError(_("The domain must be a literal list of conditions, e.g. [('state', '=', 'sale')].")) \
            from None
    if not isinstance(domain, list | tuple):
        raise ValidationError(_("The domain must be a list of conditions."))
    return [list(item) if isinstance(item, tuple) else item for item in domain]


def domain_text(domain):
    """Store a checked domain: leaves as tuples, as Odoo writes domains."""
    return repr([tuple(item) if isinstance(item, list) else item for item in domain or []])


def split_fields(text):
    return [name.strip() for name in (text or "").replace("\n", ",").split(",") if name.strip()]


class SavedFilter(models.Model):
    """A reusable search of the Knowledge Layer: run by name through MCP (run_filter)."""

    _name = "ocore.mcp.saved.filter"
    _inherit = ["ocore.mcp.knowledge.mixin"]
    _description = "MCP Saved Filter"
    _order = "use_count desc, name, id"
    _ocore_model_field = "model"
    _ocore_text_fields = ("description",)

    name = fields.Char(required=True, help="Unique per company among live filters, e.g. large_orders.")
    description = fields.Text()
    model = fields.Char(required=True, index=True, help="Technical name of the model searched, e.g. sale.order.")
    model_installed = fields.Boolean(compute="_compute_model_installed", help="Whether the model exists now.")
    domain = fields.Text(default="[]", required=True, help="Odoo domain, e.g. [('amount_total', '>', 10000)].")
    field_names = fields.Char(string="Fields", help="Comma-separated field names; empty: smart field selection.")
    order = fields.Char(string="Order by", help="e.g. amount_total desc, id")
    limit = fields.Integer(string="Result limit", default=DEFAULT_LIMIT, required=True)
    is_default = fields.Boolean(string="Default", help="The default filter of its model (at most one per model).")
    use_count = fields.Integer(readonly=True, default=0, copy=False, help="Runs through MCP.")
    last_used = fields.Datetime(readonly=True, copy=False)

    def init(self):
        # the name is unique among live filters: a deleted filter's name may be reused
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS ocore_mcp_saved_filter_name_uniq
                   ON ocore_mcp_saved_filter (company_id, name) WHERE active"""
        )

    @api.depends("model")
    def _compute_model_installed(self):
        for rec in self:
            rec.model_installed = bool(rec.model) and rec.model in self.env

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records.filtered("is_default")._ocore_unset_other_defaults()
        return records

    def write(self, vals):
        res = super().write(vals)
        if vals.get("is_default") or vals.get("model") or vals.get("active"):
            self.filtered("is_default")._ocore_unset_other_defaults()
        return res

    def _ocore_unset_other_defaults(self):
        for rec in self.filtered("active"):
            others = self.search([("company_id", "=", rec.company_id.id), ("model", "=", rec.model),
                                  ("is_default", "=", True), ("id", "!=", rec.id)])
            if others:
                others.write({"is_default": False})

    @api.constrains("name", "company_id", "active")
    def _check_name(self):
        for rec in self.filtered("active"):
            if not rec.name.strip() or len(rec.name) > NAME_MAX:
                raise ValidationError(_("A saved filter's name has 1 to %s characters.", NAME_MAX))
            if self.sudo().search_count([("company_id", "=", rec.company_id.id), ("name", "=", rec.name),
                                         ("id", "!=", rec.id)]):
                raise ValidationError(_("A saved filter named %s already exists.", rec.name))

    @api.constrains("limit")
    def _check_limit(self):
        for rec in self:
            if not 1 <= rec.limit <= LIMIT_MAX:
                raise ValidationError(_("The result limit is between 1 and %s.", LIMIT_MAX))

    @api.constrains("model", "domain", "field_names", "order")
    def _check_query(self):
        for rec in self:
            rec._ocore_checked_query()

    def _ocore_checked_query(self):
        """(domain, fields, order) validated against the model as it is now; ValidationError otherwise."""
        self.ensure_one()
        if self.model not in self.env:
            raise ValidationError(
                _("Saved filter %(name)r searches the model %(model)r, which is not installed on this database "
                  "(was its module uninstalled?). Reinstall the module or delete the filter.",
                  name=self.name, model=self.model)
            )
        records = self.env[self.model]
        try:
            domain = fieldlib.check_domain(records, parse_domain(self.domain))
            names = fieldlib.check_field_names(records, split_fields(self.field_names)) if self.field_names else []
            order = fieldlib.check_order(records, self.order or None)
            # Odoo's own parsing of the domain into SQL (not run): operators, values, field paths
            records._search(domain)
        except Refusal as exc:
            raise ValidationError(_("Saved filter %(name)r: %(error)s", name=self.name, error=exc.message)) from None
        except AccessError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(_("Saved filter %(name)r: invalid domain: %(error)s", name=self.name,
                                    error=exc)) from None
        return domain, names, order

    def _ocore_count_use(self):
        """Count a run: an atomic increment (no write_date / write_uid change; works for read-only keys,
        whose owners may only read saved filters)."""
        self.env.cr.execute(
            """UPDATE ocore_mcp_saved_filter SET use_count = use_count + 1, last_used = now() at time zone 'UTC'
                WHERE id IN %s RETURNING use_count""",
            (tuple(self.ids),),
        )
        counts = [row[0] for row in self.env.cr.fetchall()]
        self.invalidate_recordset(["use_count", "last_used"])
        return counts[0] if len(counts) == 1 else counts
