"""The few ORM API differences between Odoo 17.0, 18.0 and 19.0 the tools need.

Every version branch of the tool families lives here; the rest of the code
calls these helpers.
"""

import inspect
import re

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
    if hasattr(records, "_has_field_access"):  # 19.0 (Field.is_accessible is gone)
        return records._has_field_access(field, "read")
    if hasattr(field, "is_accessible"):  # 18.0
        return field.is_accessible(records.env)
    if not field.groups or records.env.su:
        return True
    if hasattr(records.env.user, "has_groups"):
        return records.env.user.has_groups(field.groups)
    return records.user_has_groups(field.groups)


def field_aggregator(field):
    """The field's default aggregate function (``group_operator`` before 18.0, then ``aggregator``)."""
    return getattr(field, "aggregator", None) or getattr(field, "group_operator", None)


def aggregator_kwargs(function):
    """Field keyword setting its default aggregate function: ``group_operator`` (17.0), ``aggregator`` (18.0+)."""
    from odoo import fields

    return {"aggregator" if hasattr(fields.Field, "aggregator") else "group_operator": function}


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
    check (access follows the attached record; ``check`` in 17.0/18.0) plus ACLs and record rules.
    19.0 folds its own check into ``check_access`` (``ir.attachment._check_access``; ``check`` is
    deprecated there)."""
    base = next((k for k in reversed(type(attachments).__mro__) if getattr(k, "_name", None) == "ir.attachment"), None)
    own_rules = base is not None and "_check_access" in vars(base)  # base's own ir.attachment class, 19.0
    if not own_rules and callable(getattr(type(attachments), "check", None)):  # 17.0, 18.0
        attachments.check(operation)
    check_access(attachments, operation)


def checked_field_names(records, operation, names):
    """``names`` once the user's access to each field is checked (AccessError otherwise):
    ``check_field_access_rights`` in 17.0/18.0, ``_check_field_access`` per field in 19.0."""
    if records.env.su:
        return names
    if hasattr(records, "_check_field_access"):  # 19.0
        for name in names:
            field = records._fields.get(name)
            if field is not None:
                records._check_field_access(field, operation)
        return names
    return records.check_field_access_rights(operation, names)


def report_groups_field(reports):
    """Groups restricting an ``ir.actions.report``: ``groups_id`` (17.0, 18.0), ``group_ids`` (19.0)."""
    return "group_ids" if "group_ids" in reports._fields else "groups_id"


def action_groups_field(actions):
    """Groups allowed to run an ``ir.actions.server``: ``groups_id`` (17.0, 18.0), ``group_ids`` (19.0)."""
    return "group_ids" if "group_ids" in actions._fields else "groups_id"


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


def check_signaling(registry, cr):
    """``registry.check_signaling``: 18.0+ reads the signals with ``cr``, 17.0 takes no cursor (opens its own)."""
    if "cr" in inspect.signature(registry.check_signaling).parameters:
        return registry.check_signaling(cr)
    return registry.check_signaling()


def in_odoo_test():
    """Whether Odoo is running a test right now (its test cursors refuse commits).

    ``odoo.modules.module.current_test`` is set while the at_install suites run (17.0 - 19.0); 17.0
    leaves it unset in post_install suites, where the thread's ``testing`` flag tells, and an HttpCase's
    request is served by a thread marked neither way: only its cursor, the test's, tells."""
    import threading

    from odoo import http
    from odoo.modules import module

    if getattr(module, "current_test", False) or getattr(threading.current_thread(), "testing", False):
        return True
    try:
        cr = http.request.env.cr if http.request else None
    except (AttributeError, RuntimeError):  # no request, or one without a database
        return False
    return type(cr).__name__ == "TestCursor"


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


# -- series differences of the server, its configuration and its data files -----------------


def series():
    """The running Odoo series, e.g. ``"18.0"``."""
    from odoo import release

    return release.major_version


def module_version(name):
    """The full version of module ``name`` as its manifest gives it to this series ("1.1.0" in the
    manifest is "17.0.1.1.0", "18.0.1.1.0" or "19.0.1.1.0": Odoo prefixes the series)."""
    from odoo.modules import module as odoo_module

    try:
        version = (odoo_module.get_manifest(name) or {}).get("version")
    except Exception:  # noqa: BLE001 - addons path not initialised yet: read it from disk
        version = None
    if not version:
        version = (read_manifest(name) or {}).get("version") or f"{series()}.1.0"
    return version


def config_list(name):
    """A list option of the server configuration (``addons_path``, ``server_wide_modules``...) as a
    list of strings: 17.0 and 18.0 keep comma-separated strings, 19.0 lists."""
    from odoo.tools import config

    value = config.get(name)
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(item).strip() for item in value if str(item).strip()]


def odoo_root():
    """Directory of the ``odoo`` package (19.0 makes it a namespace package: ``odoo.__file__`` is None)."""
    import os

    import odoo

    path = getattr(odoo, "__file__", None)
    if path:
        return os.path.dirname(path)
    return list(odoo.__path__)[0]


def wkhtmltopdf_bin():
    """Path of the wkhtmltopdf Odoo uses (``_get_wkhtmltopdf_bin`` in 17.0/18.0, ``_wkhtml().bin`` in 19.0)."""
    from odoo.addons.base.models import ir_actions_report as report

    getter = getattr(report, "_get_wkhtmltopdf_bin", None)
    if getter is not None:
        return getter()
    info = getattr(report, "_wkhtml", None)
    if info is not None:
        return info().bin
    from odoo.tools.misc import find_in_path

    return find_in_path("wkhtmltopdf")


def run_cron_now(job):
    """Run the scheduled action ``job`` now, as its user, in the caller's transaction, raising its
    errors: 17.0/18.0's ``method_direct_trigger``. 19.0's runs the job through the scheduler's path
    instead (its own commits, failures logged, not raised), so the steps are written out here."""
    import psycopg2

    from odoo import _, fields
    from odoo.exceptions import UserError

    job.ensure_one()
    check_access(job.browse(), "write")
    try:  # the scheduler's lock: fail at once when the job is running elsewhere
        with job.env.cr.savepoint(flush=False):
            job.env.cr.execute(
                f'SELECT id FROM "{job._table}" WHERE id = %s FOR NO KEY UPDATE NOWAIT', [job.id]  # noqa: S608
            )
    except psycopg2.OperationalError:
        raise UserError(_("the scheduled action %r is running right now", job.name)) from None
    run_as = job.with_user(job.user_id).with_context(lastcall=job.lastcall)
    if hasattr(run_as, "_add_progress"):  # 18.0+: the job's progress record (what _commit_progress updates)
        run_as, _progress = run_as._add_progress()
    run_as.ir_actions_server_id.run()
    job.lastcall = fields.Datetime.now()
    job.env.flush_all()
    return True


def table_constraints(*constraints):
    """Class decorator declaring SQL constraints ``(name, definition, message)`` the way the series
    wants them: ``_sql_constraints`` in 17.0/18.0, ``models.Constraint`` attributes ``_<name>`` in 19.0
    (which ignores ``_sql_constraints``). The database name is ``<table>_<name>`` in every series."""

    def decorate(cls):
        from odoo import models

        constraint_class = getattr(models, "Constraint", None)
        if constraint_class is None:  # 17.0, 18.0
            cls._sql_constraints = [*getattr(cls, "_sql_constraints", []), *constraints]
            return cls
        for name, definition, message in constraints:  # 19.0
            attr = f"_{name}"
            obj = constraint_class(definition, message)
            setattr(cls, attr, obj)
            obj.__set_name__(cls, attr)  # what a class-body assignment does
        return cls

    return decorate


def group_users_field(groups):
    """Name of the field of a group's direct members: ``users`` (17.0, 18.0), ``user_ids`` (19.0)."""
    return "user_ids" if "user_ids" in groups._fields else "users"


def group_category(group):
    """The application category (``ir.module.category``) a group belongs to: its ``category_id`` in
    17.0/18.0, the category of its privilege (``res.groups.privilege``) in 19.0."""
    if "category_id" in group._fields:
        return group.category_id
    return group.privilege_id.category_id


def group_category_name(group):
    """The name the user form shows above a group: its category (17.0/18.0) or privilege (19.0)."""
    if "category_id" in group._fields:
        return group.category_id.name or None
    return group.privilege_id.name or None


def set_groups_category(env, category_xmlid, group_xmlids):
    """Put the groups under the category (data files call it through ``res.groups``): 17.0/18.0 set
    ``category_id``; 19.0 groups go through a privilege, ``<module>.res_groups_privilege_<name>`` with
    the category's name and sequence, created or updated here."""
    category = env.ref(category_xmlid)
    groups = env["res.groups"].browse([env.ref(xmlid).id for xmlid in group_xmlids])
    if "privilege_id" not in groups._fields:  # 17.0, 18.0
        groups.write({"category_id": category.id})
        return
    module, name = category_xmlid.split(".", 1)
    privilege = env["res.groups.privilege"]._load_records([{
        "xml_id": f"{module}.res_groups_privilege_{name}",
        "values": {"name": category.name, "sequence": category.sequence, "category_id": category.id},
        "noupdate": False,
    }])
    groups.write({"privilege_id": privilege.id})


def add_group_users(group, users):
    """Make ``users`` direct members of ``group`` (field ``users`` or ``user_ids``)."""
    from odoo.fields import Command

    group.write({group_users_field(group): [Command.link(user.id) for user in users]})


def installed_dependencies_graph(env, module_names):
    """``ir.module.module.dependency.all_dependencies`` (18.0+): {module: its dependency names,
    transitively}, computed on 17.0 from the dependency records."""
    Dependency = env["ir.module.module.dependency"]
    if hasattr(Dependency, "all_dependencies"):
        return Dependency.all_dependencies(module_names)
    graph = {}
    todo = list(module_names)
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        deps = Dependency.search([("module_id.name", "=", name)]).mapped("name")
        graph[name] = deps
        todo.extend(deps)
    return graph


# -- list views: 17.0 knows them as "tree" ---------------------------------------------------


def lists_are_trees(env):
    """Whether this series names list views ``tree`` (17.0): ``ir.ui.view.type`` offers no ``list``."""
    return "list" not in dict(env["ir.ui.view"]._fields["type"].selection)


# "list" as an element step of an xpath ("//list", "/list[1]"), not inside a name or a string
_LIST_STEP = re.compile(r"(?<![\w.@$'\"-])list(?![\w.'\"(-])")


def list_arch_to_tree(arch):
    """A view arch written for 18.0+ (``<list>`` elements, ``//list`` in xpaths, ``mode="list"``) in
    17.0's words (``tree``). Returns ``arch`` itself when there is nothing to change or it does not parse."""
    from lxml import etree

    if not arch or not isinstance(arch, str | bytes):
        return arch
    text = arch.decode() if isinstance(arch, bytes) else arch
    if "list" not in text:
        return arch
    try:
        root = etree.fromstring(text.encode() if text.lstrip().startswith("<?xml") else text)
    except (etree.XMLSyntaxError, ValueError):
        return arch
    if root.tag in ("t", "templates"):
        return arch
    changed = False
    for node in root.iter(tag=etree.Element):
        if node.tag == "list":
            node.tag = "tree"
            changed = True
        expr = node.get("expr")
        if expr and "list" in expr:
            new = _LIST_STEP.sub("tree", expr)
            if new != expr:
                node.set("expr", new)
                changed = True
        mode = node.get("mode")
        if node.tag == "field" and mode and "list" in mode.split(","):
            node.set("mode", ",".join("tree" if m == "list" else m for m in mode.split(",")))
            changed = True
    if not changed:
        return arch
    out = etree.tostring(root, encoding="unicode")
    return out.encode() if isinstance(arch, bytes) else out


def list_view_mode_to_tree(view_mode):
    """``view_mode`` "list,form" of an action in 17.0's words ("tree,form")."""
    if not view_mode or not isinstance(view_mode, str) or "list" not in view_mode:
        return view_mode
    return ",".join("tree" if mode.strip() == "list" else mode for mode in view_mode.split(","))


_SEARCH_GROUP_ATTRS = {}
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def search_groups_take_attributes():
    """Whether search views accept ``<group expand="0" string="Group By">`` (17.0, 18.0): read from
    the search views' ``group`` in the server's schema (base/rng/common.rng); 19.0's has neither."""
    if "allowed" not in _SEARCH_GROUP_ATTRS:
        import os

        from odoo.tools.misc import file_path

        try:
            with open(file_path(os.path.join("base", "rng", "common.rng")), encoding="utf-8") as fh:
                text = fh.read()
            start = text.index('<rng:define name="group">')
            group = text[start:text.index("</rng:define>", start)]
            _SEARCH_GROUP_ATTRS["allowed"] = 'name="expand"' in group
        except (OSError, ValueError):
            _SEARCH_GROUP_ATTRS["allowed"] = True
    return _SEARCH_GROUP_ATTRS["allowed"]


def search_arch_bare_groups(arch):
    """A search view arch with its ``<group>`` elements stripped of ``expand`` and ``string`` (what
    19.0 accepts). Returns ``arch`` itself when there is nothing to change or it does not parse."""
    from lxml import etree

    if not arch or not isinstance(arch, str | bytes):
        return arch
    text = arch.decode() if isinstance(arch, bytes) else arch
    if "expand" not in text and "<group " not in text:
        return arch
    try:
        root = etree.fromstring(text.encode() if text.lstrip().startswith("<?xml") else text)
    except (etree.XMLSyntaxError, ValueError):
        return arch
    changed = False
    for group in root.iter("group"):
        for attr in ("expand", "string"):
            if attr in group.attrib:
                del group.attrib[attr]
                changed = True
    if not changed:
        return arch
    out = etree.tostring(root, encoding="unicode")
    return out.encode() if isinstance(arch, bytes) else out


def adapt_view_values(model, vals, view_type=None):
    """The values of an ``ir.ui.view`` / ``ir.actions.act_window`` / ``...act_window.view`` being
    written, in the words of the running series (changed in place), so that data files and code (this
    project's and any addon's) are written once for 17.0 - 19.0:

    - 17.0 calls list views ``tree``: ``<list>`` and ``view_mode="list"`` become ``tree``;
    - 19.0 search views take bare ``<group>`` elements: ``expand`` / ``string`` are dropped;
    - 19.0 window actions have no ``target="inline"`` (the settings form): it becomes ``current``.

    ``view_type``: the type of the view(s) written when ``vals`` does not say it (their own, or their
    parent's for an extension)."""
    env = model.env
    if model._name == "ir.ui.view":
        view_type = vals.get("type") or view_type
        if view_type == "qweb":
            return vals
        archs = [f for f in ("arch", "arch_base", "arch_db") if vals.get(f)]
        if lists_are_trees(env):
            if vals.get("type") == "list":
                vals["type"] = "tree"
            for fname in archs:
                vals[fname] = list_arch_to_tree(vals[fname])
        if archs and not search_groups_take_attributes():
            for fname in archs:
                text = vals[fname].decode() if isinstance(vals[fname], bytes) else vals[fname]
                text = _XML_DECLARATION.sub("", text, count=1)  # data files' archs start with one
                if view_type == "search" or text.lstrip().startswith("<search"):
                    vals[fname] = search_arch_bare_groups(vals[fname])
    elif model._name == "ir.actions.act_window":
        if lists_are_trees(env):
            for fname in ("view_mode", "mobile_view_mode"):
                if fname in vals:
                    vals[fname] = list_view_mode_to_tree(vals[fname])
        if vals.get("target") == "inline" and "inline" not in dict(model._fields["target"].selection):
            vals["target"] = "current"
    elif model._name == "ir.actions.act_window.view" and vals.get("view_mode") == "list" and lists_are_trees(env):
        vals["view_mode"] = "tree"
    return vals


def boolean_search_values(operator, value):
    """The truth values a search method of a Boolean field is asked for: ``= True`` / ``!= False`` (17.0,
    18.0) and ``in [True]`` / ``not in [False]`` (19.0 normalises to these) alike; None for another operator."""
    if operator in ("=", "!=") and isinstance(value, bool):
        return {value} if operator == "=" else {not value}
    if operator in ("in", "not in") and isinstance(value, list | tuple | set | frozenset) \
            and all(isinstance(v, bool) for v in value):
        return set(value) if operator == "in" else {True, False} - set(value)
    return None
