"""The few ORM API differences between Odoo 17.0, 18.0 and 19.0 the tools need.

Every version branch of the tool families lives here; the rest of the code
calls these helpers.
"""

# Aggregate functions offered by the aggregation tool; each exists in the
# ``_read_group`` of 17.0, 18.0 and 19.0.
READ_GROUP_AGGREGATES = ("sum", "avg", "min", "max", "count", "count_distinct", "bool_and", "bool_or")
# Date granularities understood by ``_read_group`` in all three versions.
READ_GROUP_GRANULARITIES = ("day", "week", "month", "quarter", "year")


def check_access(records, operation):
    """Raise AccessError unless the user may ``operation`` these records (ACL + record rules)."""
    if hasattr(records, "check_access"):  # 18.0+
        records.check_access(operation)
    else:  # 17.0
        records.check_access_rights(operation)
        records.check_access_rule(operation)


def has_access(records, operation):
    """Whether the user may ``operation`` these records, without raising."""
    if hasattr(records, "has_access"):  # 18.0+
        return records.has_access(operation)
    from odoo.exceptions import AccessError

    try:
        check_access(records, operation)
    except AccessError:
        return False
    return True


def field_accessible(field, records):
    """Whether the field's ``groups`` let the environment's user read it."""
    if hasattr(field, "is_accessible"):  # 18.0+
        return field.is_accessible(records.env)
    if not field.groups or records.env.su:
        return True
    if hasattr(records.env.user, "has_groups"):
        return records.env.user.has_groups(field.groups)
    return records.user_has_groups(field.groups)


def field_aggregator(field):
    """The field's default aggregate function (``group_operator`` before 18.0, then ``aggregator``)."""
    return getattr(field, "aggregator", None) or getattr(field, "group_operator", None)


def read_group(records, domain, groupby, aggregates, order=None, limit=None, offset=0):
    """``_read_group``: same signature and tuple rows in 17.0, 18.0 and 19.0 (``read_group`` is
    deprecated in 19.0). It checks read access on the model and on the fields used."""
    return records._read_group(domain, groupby, aggregates, offset=offset, limit=limit, order=order)


def is_api_private(records, name):
    """Whether ``name`` is marked ``@api.private`` (18.0+) on the model or one of its parents."""
    for klass in type(records).__mro__:
        method = klass.__dict__.get(name)
        if method is not None and getattr(method, "_api_private", False):
            return True
    return False


def is_model_method(method):
    """Whether the bound method is decorated ``@api.model`` / ``@api.model_create_multi`` (no ids)."""
    if getattr(method, "_api_model", False):  # 19.0
        return True
    return getattr(method, "_api", None) in ("model", "model_create")  # 17.0, 18.0


# -- metadata tools (tools/metadata.py) ------------------------------------------


def sql_constraints(model):
    """The model's declared SQL constraints / indexes as dicts (name, db_name, kind, definition, message, module).

    17.0/18.0 declare them in ``_sql_constraints`` [(name, definition, message)]; 19.0 as
    ``models.Constraint`` / ``models.Index`` / ``models.UniqueIndex`` attributes gathered in
    ``_table_objects``.
    """
    cls = type(model)
    definitions = [k for k in cls.__mro__ if getattr(k, "pool", None) is None and getattr(k, "_module", None)]
    out = []
    objects = getattr(cls, "_table_objects", None)
    if objects:  # 19.0
        for name, obj in objects.items():
            if hasattr(obj, "get_definition"):
                definition = obj.get_definition(model.pool)
            else:
                definition = getattr(obj, "definition", None)
            message = getattr(obj, "message", None)
            if callable(message):
                try:
                    message = obj.get_error_message(model)
                except Exception:  # noqa: BLE001 - best effort, see below
                    message = None
            module = next((k._module for k in definitions if any(v is obj for v in vars(k).values())), None)
            out.append({
                "name": str(getattr(obj, "name", None) or name).lstrip("_"),
                "db_name": obj.full_name(model) if hasattr(obj, "full_name") else f"{model._table}_{name}",
                "kind": type(obj).__name__.lower(),
                "definition": definition,
                "message": str(message) if message else None,
                "module": module,
            })
        return out
    for name, definition, message in getattr(cls, "_sql_constraints", None) or []:  # 17.0, 18.0
        module = next(
            (k._module for k in reversed(definitions)
             if any(c[0] == name for c in vars(k).get("_sql_constraints", ()))),
            None,
        )
        text = definition.strip().lower()
        kind = "unique" if text.startswith("unique") else "check" if text.startswith("check") else (
            "exclude" if text.startswith("exclude") else "constraint"
        )
        out.append({
            "name": name,
            "db_name": f"{model._table}_{name}",
            "kind": kind,
            "definition": definition,
            "message": str(message) if message else None,
            "module": module,
        })
    return out


# (attribute set by the decorator, label) in every series; 19.0 marks @api.model
# and @api.model_create_multi with ``_api_model``, 17.0/18.0 with ``_api``.
_API_MARKS = (
    ("_depends", "depends"),
    ("_depends_context", "depends_context"),
    ("_constrains", "constrains"),
    ("_onchange", "onchange"),
    ("_ondelete", "ondelete"),
    ("_returns", "returns"),  # removed in 19.0
    ("_autovacuum", "autovacuum"),
    ("_api_private", "private"),  # 18.0+
    ("_readonly", "readonly"),  # 18.0+
)


def api_decorators(func):
    """The ``odoo.api`` decorators of a method, e.g. ``["model"]`` or ``["depends", "readonly"]``."""
    func = getattr(func, "__func__", func)
    kinds = []
    api_kind = getattr(func, "_api", None)
    if api_kind == "model_create":
        kinds.append("model_create_multi")
    elif api_kind == "model" or getattr(func, "_api_model", False):
        kinds.append("model_create_multi" if func.__name__ == "create" else "model")
    for attr, label in _API_MARKS:
        if getattr(func, attr, None):
            kinds.append(label)
    return kinds


def user_groups_field(users):
    """Name of the field holding a user's groups: ``groups_id`` (17.0, 18.0), ``group_ids`` (19.0)."""
    return "group_ids" if "group_ids" in users._fields else "groups_id"


def user_all_groups(user):
    """Every group of the user, implied ones included (``all_group_ids`` in 19.0; 17.0/18.0 store
    implied groups in ``groups_id``)."""
    if "all_group_ids" in user._fields:
        return user.all_group_ids
    return user[user_groups_field(user)]


def session_login_as(session, env, user):
    """Log an HTTP session in as ``user`` without a password (pre-session + ``finalize``, the step
    Odoo itself runs after a second factor; 17.0 - 19.0). The session id is rotated on save."""
    session.pre_login = user.login
    session.pre_uid = user.id
    session.finalize(env)


def clear_manifest_cache():
    """Forget the manifests Odoo cached in this process (``_get_manifest_cached`` in 17.0 - 19.0),
    so that a manifest edited on disk is read again by update_list / an upgrade."""
    from odoo.modules import module as odoo_module

    for name in ("_get_manifest_cached", "get_manifest"):
        func = getattr(odoo_module, name, None)
        if hasattr(func, "cache_clear"):
            func.cache_clear()


def addons_paths():
    """The server's addons directories (``odoo.addons.__path__``, the same in 17.0 - 19.0)."""
    import odoo.addons

    return list(odoo.addons.__path__)


def read_manifest(name):
    """The manifest of module ``name`` read from disk now (no cache), with its full version
    ("18.0.x.y"), its directory as ``path``; None when no addons directory holds it."""
    import ast
    import os

    from odoo import release

    for base in addons_paths():
        for filename in ("__manifest__.py", "__openerp__.py"):
            path = os.path.join(base, name, filename)
            if not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as fh:
                manifest = ast.literal_eval(fh.read())
            version = str(manifest.get("version") or "1.0")
            serie = release.major_version
            if version == serie or not version.startswith(serie + "."):  # as odoo.modules.adapt_version
                version = f"{serie}.{version}"
            return {**manifest, "version": version, "path": os.path.join(base, name)}
    return None


def list_view_tag():
    """Root tag of a list view: ``tree`` in 17.0, ``list`` from 18.0 on."""
    from odoo import release

    return "tree" if release.version_info[0] < 18 else "list"


def session_max_inactivity(env):
    """Seconds after which an idle web session expires (``sessions.max_inactivity_seconds`` since
    17.2; a fixed week before)."""
    from odoo import http

    getter = getattr(http, "get_session_max_inactivity", None)
    if getter is not None:
        return getter(env)
    return getattr(http, "SESSION_LIFETIME", 60 * 60 * 24 * 7)


def check_attachment_access(attachments, operation):
    """Raise AccessError unless the user may ``operation`` these attachments: ir.attachment's own
    check (access follows the attached record; ``check`` in 17.0/18.0) plus ACLs and record rules."""
    custom = getattr(type(attachments), "check", None)
    if custom is not None and callable(custom):
        attachments.check(operation)
    check_access(attachments, operation)


def report_groups_field(reports):
    """Groups restricting an ``ir.actions.report``: ``groups_id`` (17.0, 18.0), ``group_ids`` (19.0)."""
    return "group_ids" if "group_ids" in reports._fields else "groups_id"


def modules_on_disk():
    """Names of the module directories (with a manifest) of every addons directory."""
    import os

    names = set()
    for base in addons_paths():
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for name in entries:
            if any(os.path.isfile(os.path.join(base, name, f)) for f in ("__manifest__.py", "__openerp__.py")):
                names.add(name)
    return names


def in_odoo_test():
    """Whether Odoo is running a test right now (its test cursors refuse commits)."""
    from odoo.modules import module

    return bool(getattr(module, "current_test", False))


def kanban_card_to_box(arch):
    """17.0 knows only the ``kanban-box`` template: turn a 18.0+ ``card`` template of a kanban arch
    (an lxml element, changed in place) into one."""
    from odoo import release

    if release.version_info[0] >= 18:
        return arch
    from lxml import etree

    for card in arch.iter("t"):
        if card.get("t-name") == "card":
            card.set("t-name", "kanban-box")
            box = etree.Element("div", {"class": "oe_kanban_global_click " + (card.get("class") or "")})
            card.attrib.pop("class", None)
            for child in list(card):
                box.append(child)
            box.text, card.text = card.text, None
            card.append(box)
    return arch
