"""MCP ``completion/complete``: values for resource-template and prompt arguments.

Ranked (exact, then prefix, then a word of the name starting with the value, then anywhere in the name,
then in the label) and limited to what the key may see: its model allowlist, no protected model, models
the key owner may read, fields their groups may read, reports they may print. An addon completes another
argument name by overriding ``_ocore_complete_argument`` of ``ocore.mcp.completion``.
"""

from odoo import models

from ..lib import compat, protocol

MAX_VALUES = 100  # the specification's maximum per response
_MODELS_CACHE = "_ocore_mcp_completion_models"


def rank(value, name, label=""):
    """The rank of ``name`` for the typed ``value`` (lower is better), or None when it does not match."""
    needle = (value or "").lower()
    low = name.lower()
    if not needle:
        return 1
    if low == needle:
        return 0
    if low.startswith(needle):
        return 1
    if any(part.startswith(needle) for part in low.replace("_", ".").split(".")[1:]):
        return 2
    if needle in low:
        return 3
    if label and needle in label.lower():
        return 4
    return None


def ranked(value, candidates):
    """[name] of ``candidates`` ((name, label) pairs) matching ``value``, best first."""
    scored = []
    for name, label in candidates:
        score = rank(value, name, label)
        if score is not None:
            scored.append((score, name))
    scored.sort()
    return [name for _score, name in scored]


class McpCompletion(models.AbstractModel):
    """The values of ``completion/complete`` (the server's handler delegates here)."""

    _name = "ocore.mcp.completion"
    _description = "MCP Argument Completion"

    def _ocore_complete(self, conn, params):
        """The ``completion`` of a parsed CompleteRequest's params, or a ProtocolError."""
        server = self.env["ocore.mcp.server"]
        ref = params.ref
        name = params.argument.name
        value = params.argument.value or ""
        context = dict((params.context.arguments or {}) if params.context else {})
        if ref.type == "ref/resource":
            templates = {t.uri_template: t for t in self.env["ocore.mcp.resources"]._ocore_resource_templates()}
            template = templates.get(ref.uri)
            if template is None:
                raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Unknown resource template: {ref.uri}")
            known = template.arguments
        else:
            spec = self.env["ocore.mcp.prompts"]._ocore_prompt_specs().get(ref.name)
            if spec is None:
                raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Unknown prompt: {ref.name}")
            known = tuple(a[0] for a in spec["arguments"])
        if name not in known:
            raise protocol.ProtocolError(protocol.INVALID_PARAMS, f"Unknown argument: {name}")
        env = server._ocore_tool_env(conn, None)
        values = self._ocore_complete_argument(conn, env, name, value, context)
        return {"values": values[:MAX_VALUES], "total": len(values), "hasMore": len(values) > MAX_VALUES}

    # -- per argument (extension point) -------------------------------------------------------

    def _ocore_complete_argument(self, conn, env, name, value, context):
        """The ranked values of argument ``name`` (all of them; the caller keeps the first 100)."""
        if name == "model":
            return self._ocore_complete_models(conn, env, value)
        if name == "fields" or name == "field":
            head, _sep, last = value.rpartition(",")
            prefix = f"{head}," if head else ""
            taken = set(head.split(",")) if head else set()
            names = self._ocore_complete_fields(conn, env, context.get("model"), last)
            return [prefix + field for field in names if field not in taken]
        if name == "report":
            return self._ocore_complete_reports(conn, env, context.get("model"), value)
        if name == "format":
            return [v for v in ("pdf", "html") if v.startswith(value.lower())]
        if name == "module":
            return self._ocore_complete_modules(env, value)
        return []

    def _ocore_completion_models(self):
        """[(model, label)] of every model with records (not abstract, not transient), per registry."""
        registry = self.env.registry
        cache = registry.__dict__.get(_MODELS_CACHE)
        if cache is None:
            cache = sorted(
                (name, cls._description or "")
                for name, cls in registry.items()
                if not cls._abstract and not cls._transient
            )
            setattr(registry, _MODELS_CACHE, cache)
        return cache

    def _ocore_model_reachable(self, conn, env, model):
        allowed = conn.scope["models"]
        if allowed and model not in allowed:
            return False
        if model not in env or env["ocore.mcp.toolset"]._ocore_protected_model(model):
            return False
        return compat.has_access(env[model], "read")

    def _ocore_complete_models(self, conn, env, value):
        names = ranked(value, self._ocore_completion_models())
        return [name for name in names if self._ocore_model_reachable(conn, env, name)]

    def _ocore_complete_fields(self, conn, env, model, value):
        if not isinstance(model, str) or not self._ocore_model_reachable(conn, env, model):
            return []
        records = env[model]
        candidates = [(name, field.string or "") for name, field in records._fields.items()
                      if compat.field_accessible(field, records)]
        return ranked(value, candidates)

    def _ocore_complete_reports(self, conn, env, model, value):
        domain = []
        if isinstance(model, str) and model:
            if not self._ocore_model_reachable(conn, env, model):
                return []
            domain.append(("model", "=", model))
        if value:
            domain.append(("report_name", "ilike", value))
        Reports = env["ir.actions.report"]
        if not compat.has_access(Reports, "read"):
            return []
        groups_field = compat.report_groups_field(Reports)
        user_groups = set(compat.user_all_groups(env.user).ids)
        candidates = []
        rows = Reports.search_read(domain, ["report_name", "name", "model", groups_field], order="report_name",
                                   limit=5000)
        for row in rows:
            if row[groups_field] and not user_groups.intersection(row[groups_field]):
                continue
            if not model and not self._ocore_model_reachable(conn, env, row["model"]):
                continue
            candidates.append((row["report_name"], row["name"] or ""))
        return list(dict.fromkeys(ranked(value, candidates)))

    def _ocore_complete_modules(self, env, value):
        Modules = env["ir.module.module"]
        if not compat.has_access(Modules, "read"):
            return []
        rows = Modules.search_read([("state", "=", "installed")], ["name", "shortdesc"], order="name")
        return ranked(value, [(row["name"], row["shortdesc"] or "") for row in rows])
