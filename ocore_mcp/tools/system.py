"""Tool family "system": users, system parameters, scheduled actions, caches, server info and logs.

Every tool of the family is ``admin_only``: it is offered only to keys whose
owner is a system administrator, and it runs as that owner (no sudo) except
where a system-level operation needs it (creating an impersonation link, the
log capture, files of the server). The superuser, the administrator, the
public user and the user templates are protected from every user change; they
are found by their XML ids, never by id numbers. The backup and restore tools
of the family are in ``tools/system_backup.py``.
"""

import contextlib
import glob
import os
import platform
import shutil
import socket
import sys
import time
from typing import Annotated, Literal

import odoo
from odoo import _, models, release
from odoo.exceptions import UserError
from odoo.tools import config
from pydantic import Field

from ..lib import compat, logcapture
from ..lib.fields import format_date_or_none as _dt
from ..lib.fields import jsonable
from ..lib.redact import is_sensitive
from ..lib.shaping import TextResult
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal

# installed when the addon's code is imported: the capture odoo_logs reads without a logfile
logcapture.capture_handler()

PROTECTED_USER_XMLIDS = (
    "base.user_root",  # __system__ (the superuser)
    "base.user_admin",  # the administrator
    "base.public_user",  # the public (website visitor) user
    "base.default_user",  # template of new internal users
    "base.template_portal_user_id",  # template of new portal users (portal module)
)
# System parameters MCP never changes: the MCP server's own settings (production guard,
# kill switch, backup directory …) and the database's identity and signing secret.
PROTECTED_PARAM_PREFIXES = ("ocore_mcp.", "ocore_")
PROTECTED_PARAMS = frozenset({"database.secret", "database.uuid"})
MASK = "********"
PASSWORD_MIN = 8
CRON_COOLDOWN_SECONDS = 60
CACHE_TARGETS = ("orm", "assets", "pyc", "sessions")
PYC_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv"})

ADMIN = {"admin_only": True, "model_args": ()}

UserId = Annotated[int, Field(ge=1)]
Limit = Annotated[int, Field(ge=1, le=500)]


class SystemTools(models.AbstractModel):
    _name = "ocore.mcp.tools.system"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: system administration"

    # -- helpers -------------------------------------------------------------

    def _ocore_protected_users(self):
        """The users no MCP tool may change or impersonate (by XML id)."""
        users = self.env["res.users"]
        for xmlid in PROTECTED_USER_XMLIDS:
            record = self.env.ref(xmlid, raise_if_not_found=False)
            if record is not None and record._name == "res.users":
                users |= record
        return users

    def _ocore_user(self, user_id, protect=False):
        user = self.env["res.users"].with_context(active_test=False).browse(user_id).exists()
        if not user:
            raise Refusal("not_found", f"user_id: no user with id {user_id}")
        if protect and user in self._ocore_protected_users():
            raise Refusal(
                "protected",
                f"user {user.login!r} (id {user.id}) is a protected system user (superuser, administrator, "
                "public user or user template) and cannot be changed through MCP",
            )
        return user

    def _ocore_user_row(self, user):
        return {
            "id": user.id,
            "login": user.login,
            "name": user.name,
            "active": user.active,
            "last_login": _dt(user.login_date),
            "share": user.share,
            "company_id": [user.company_id.id, user.company_id.display_name] if user.company_id else None,
        }

    def _ocore_user_type(self, user):
        if user._is_public():
            return "public"
        if user._is_portal():
            return "portal"
        return "internal" if user._is_internal() else "none"

    @contextlib.contextmanager
    def _ocore_own_transaction(self):
        """An environment on a separate transaction that commits when the block succeeds and rolls
        back when it raises; the call's own transaction is left alone. Inside Odoo's tests (whose
        cursor must not commit) a savepoint of the test transaction stands in for it."""
        if compat.in_odoo_test():
            with self.env.cr.savepoint():
                yield self.env
            return
        with self.env.registry.cursor() as cr:
            yield self.env(cr=cr)

    def _ocore_key_id(self):
        """Id of the API key of the running call (None outside a call)."""
        call = self._call()
        if call is None:
            return None
        conn = call.connection
        auth = getattr(conn, "auth", None)
        if auth is not None:
            return auth.id
        return conn.key.id if conn.key else None

    def _ocore_mask(self, key, value):
        if value and is_sensitive(key):
            return MASK, True
        return value, False

    # -- users ---------------------------------------------------------------------

    @mcp_tool("system", **ADMIN, title="List users")
    def _tool_list_users(self, search: str | None = None, active: bool | None = True, limit: Limit = 80,
                         offset: Annotated[int, Field(ge=0)] = 0) -> dict:
        """Users: id, login, name, active, last_login, share, company.

        Args:
            active: null: both.
        """
        users = self.env["res.users"].with_context(active_test=False)
        domain = []
        if active is not None:
            domain.append(("active", "=", active))
        if search:
            domain += ["|", "|", ("name", "ilike", search), ("login", "ilike", search), ("email", "ilike", search)]
        found = users.search(domain, limit=limit, offset=offset, order="login")
        total = users.search_count(domain)
        return {
            "total": total,
            "count": len(found),
            "offset": offset,
            "has_more": offset + len(found) < total,
            "users": [self._ocore_user_row(user) for user in found],
        }

    @mcp_tool("system", **ADMIN, title="User groups")
    def _tool_user_groups(self, user_id: UserId) -> dict:
        """A user's groups (implied included)."""
        user = self._ocore_user(user_id)
        groups = compat.user_all_groups(user).sorted(lambda g: (g.full_name or "").lower())
        xmlids = groups.get_external_id()
        return {
            "user": {"id": user.id, "login": user.login, "type": self._ocore_user_type(user)},
            "count": len(groups),
            "groups": [
                {
                    "id": group.id,
                    "full_name": group.full_name,
                    "category": compat.group_category_name(group),
                    "xml_id": xmlids.get(group.id) or None,
                }
                for group in groups
            ],
        }

    @mcp_tool("system", kind="write", **ADMIN, title="(De)activate user")
    def _tool_set_user_active(self, user_id: UserId, active: bool) -> dict:
        """Activate or archive a user."""
        user = self._ocore_user(user_id, protect=True)
        previous = user.active
        user.write({"active": active})
        return {"user": self._ocore_user_row(user), "previous_active": previous, "changed": previous != active}

    @mcp_tool("system", kind="write", **ADMIN, title="Set password")
    def _tool_set_user_password(self, user_id: UserId,
                                password: Annotated[str, Field(min_length=PASSWORD_MIN, max_length=256)]) -> dict:
        """Set a user's password."""
        user = self._ocore_user(user_id, protect=True)
        if len(password.strip()) < PASSWORD_MIN:
            raise Refusal("invalid_input", f"password: at least {PASSWORD_MIN} characters besides spaces")
        user._change_password(password)
        return {"user": {"id": user.id, "login": user.login}, "password_changed": True}

    @mcp_tool("system", kind="write", **ADMIN, title="Set user groups")
    def _tool_set_user_groups(self, user_id: UserId, groups: Annotated[list[int | str], Field(min_length=1)]) -> dict:
        """Replace a user's groups.

        Args:
            groups: Group ids or XML ids.
        """
        user = self._ocore_user(user_id, protect=True)
        Groups = self.env["res.groups"]
        chosen = Groups
        for ref in groups:
            if isinstance(ref, int):
                group = Groups.browse(ref).exists()
            else:
                group = self.env.ref(ref, raise_if_not_found=False) if "." in ref else None
                group = group if group is not None and group._name == "res.groups" else Groups
            if not group:
                raise Refusal("invalid_input", f"groups: {ref!r} is not a security group (id or XML id)")
            chosen |= group
        before = compat.user_all_groups(user)
        user.write({compat.user_groups_field(user): [(6, 0, chosen.ids)]})
        after = compat.user_all_groups(user)
        return {
            "user": {"id": user.id, "login": user.login, "type": self._ocore_user_type(user)},
            "groups": sorted(after.mapped("full_name")),
            "added": sorted((after - before).mapped("full_name")),
            "removed": sorted((before - after).mapped("full_name")),
        }

    @mcp_tool("system", kind="write", dry_run=False, **ADMIN, title="Impersonate user")
    def _tool_impersonate_user(self, user_id: UserId) -> dict:
        """A one-time login URL as a user (5 minutes, audited)."""
        user = self._ocore_user(user_id, protect=True)
        if not user.active:
            raise Refusal("invalid_input", f"user {user.login!r} is archived; activate it first")
        call = self._call()
        # the link record is a system-level object (only its hash is stored): created with sudo
        link, token = self.env["ocore.mcp.impersonation"]._ocore_issue(
            user, self.env.user, key_id=self._ocore_key_id(), audit_id=call.audit_id if call else None
        )
        base = (call.connection.base_url if call else "") or self.env["ir.config_parameter"].sudo().get_param(
            "web.base.url", ""
        )
        url = f"{base.rstrip('/')}/ocore/mcp/impersonate/{token}"
        if call:
            call.keep_secret(token)
        return {
            "url": url,
            "user": {"id": user.id, "login": user.login, "name": user.name, "type": self._ocore_user_type(user)},
            "expires_at": _dt(link.expires_at),
            "link_id": link.id,
            "note": "Open the URL in a browser within 5 minutes; it logs in once and then stops working.",
        }

    @mcp_tool("system", **ADMIN, title="User access rights")
    def _tool_user_access_rights(self, user_id: UserId, model: str, detail: bool = False) -> dict:
        """A user's CRUD rights on a model and the granting groups.

        Args:
            detail: Add ACLs and record rules.
        """
        records = self._model(model)
        user = self._ocore_user(user_id)
        user_groups = compat.user_all_groups(user)
        access = self.env["ir.model.access"]
        acls = access.with_context(active_test=True).search([("model_id.model", "=", records._name)])
        result = {"user": {"id": user.id, "login": user.login, "type": self._ocore_user_type(user)},
                  "model": records._name, "superuser": user.id == odoo.SUPERUSER_ID}
        for op in ("read", "write", "create", "unlink"):
            result[f"can_{op}"] = bool(access.with_user(user).check(records._name, op, raise_exception=False))
            granting = acls.filtered(lambda a, op=op: a[f"perm_{op}"] and (not a.group_id or a.group_id in user_groups))
            result[f"{op}_granted_by"] = sorted({a.group_id.full_name if a.group_id else "(every user)"
                                                 for a in granting})
        rules = self.env["ir.rule"].search([("model_id.model", "=", records._name)])
        applying = rules.filtered(lambda r: not r.groups or (r.groups & user_groups))
        result["record_rules_applying"] = len(applying)
        if detail:
            result["acls"] = [
                {
                    "name": acl.name,
                    "group": acl.group_id.full_name if acl.group_id else None,
                    "read": acl.perm_read, "write": acl.perm_write,
                    "create": acl.perm_create, "unlink": acl.perm_unlink,
                    "applies_to_user": not acl.group_id or acl.group_id in user_groups,
                }
                for acl in acls
            ]
            result["record_rules"] = [
                {
                    "name": rule.name,
                    "global": rule["global"],
                    "groups": rule.groups.mapped("full_name"),
                    "domain": rule.domain_force,
                    "read": rule.perm_read, "write": rule.perm_write,
                    "create": rule.perm_create, "unlink": rule.perm_unlink,
                    "applies_to_user": rule in applying,
                }
                for rule in rules
            ]
        return result

    # -- system parameters --------------------------------------------------------

    @mcp_tool("system", **ADMIN, title="Read system parameter")
    def _tool_get_system_parameter(self, key: str | None = None) -> dict:
        """System parameters (secrets masked).

        Args:
            key: Omit for all.
        """
        params = self.env["ir.config_parameter"]
        if key:
            param = params.search([("key", "=", key)], limit=1)
            if not param:
                raise Refusal("not_found", f"no system parameter {key!r}")
            value, masked = self._ocore_mask(param.key, param.value)
            return {"key": param.key, "value": value, "masked": masked}
        rows = []
        for param in params.search([], order="key"):  # pylint: disable=no-search-all  # the tool lists them all
            value, masked = self._ocore_mask(param.key, param.value)
            rows.append({"key": param.key, "value": value, "masked": masked})
        return {"count": len(rows), "parameters": rows}

    @mcp_tool("system", kind="write", **ADMIN, title="Set system parameter")
    def _tool_set_system_parameter(self, key: Annotated[str, Field(min_length=1, max_length=256)],
                                   value: str) -> dict:
        """Set a system parameter (not ocore_mcp.*, database.secret/uuid)."""
        if key != key.strip() or any(c.isspace() for c in key):
            raise Refusal("invalid_input", f"key: {key!r} must not contain spaces")
        if key.startswith(PROTECTED_PARAM_PREFIXES) or key in PROTECTED_PARAMS:
            raise Refusal(
                "protected",
                f"system parameter {key!r} is protected: MCP never changes the MCP server's own settings "
                "(change them in Settings) nor the database's identity",
            )
        params = self.env["ir.config_parameter"]
        existing = params.search([("key", "=", key)], limit=1)
        previous = existing.value if existing else None
        params.set_param(key, value)
        shown_prev, masked = self._ocore_mask(key, previous)
        shown, _masked = self._ocore_mask(key, value)
        return {"key": key, "value": shown, "previous": shown_prev, "created": not existing, "masked": masked}

    # -- scheduled actions ----------------------------------------------------------

    def _ocore_cron(self, cron_id):
        cron = self.env["ir.cron"].with_context(active_test=False).browse(cron_id).exists()
        if not cron:
            raise Refusal("not_found", f"cron_id: no scheduled action with id {cron_id}")
        return cron

    def _ocore_cron_row(self, cron):
        row = {
            "id": cron.id,
            "name": cron.cron_name or cron.name,
            "model": cron.model_id.model,
            "active": cron.active,
            "interval": f"every {cron.interval_number} {cron.interval_type}",
            "nextcall": _dt(cron.nextcall),
            "lastcall": _dt(cron.lastcall),
            "priority": cron.priority,
            "user": cron.user_id.login,
        }
        if "failure_count" in cron._fields:
            row["failure_count"] = cron.failure_count
        return row

    @mcp_tool("system", **ADMIN, title="List scheduled actions")
    def _tool_list_scheduled_actions(self, search: str | None = None, active: bool | None = None,
                                     limit: Limit = 100) -> dict:
        """Scheduled actions: interval, next/last call, priority.

        Args:
            active: null: both.
        """
        crons = self.env["ir.cron"].with_context(active_test=False)
        domain = []
        if active is not None:
            domain.append(("active", "=", active))
        if search:
            domain.append(("cron_name", "ilike", search))
        found = crons.search(domain, limit=limit, order="cron_name, id")
        return {"total": crons.search_count(domain), "count": len(found),
                "scheduled_actions": [self._ocore_cron_row(cron) for cron in found]}

    @mcp_tool("system", kind="write", **ADMIN, title="Toggle scheduled action")
    def _tool_toggle_scheduled_action(self, cron_id: Annotated[int, Field(ge=1)], active: bool | None = None) -> dict:
        """Enable or disable a scheduled action.

        Args:
            active: Omit to flip.
        """
        cron = self._ocore_cron(cron_id)
        previous = cron.active
        cron.write({"active": (not previous) if active is None else active})
        return {"scheduled_action": self._ocore_cron_row(cron), "previous_active": previous}

    def _ocore_cron_cooldown(self, cron):
        """Start the cooldown of ``cron`` or refuse: one committed check-and-set, exact across workers."""
        import psycopg2

        started = None
        try:
            with self._ocore_own_transaction() as env:
                env.cr.execute(
                    """INSERT INTO ocore_mcp_cron_trigger (cron_id, triggered_at, triggered_by)
                       VALUES (%s, now() at time zone 'UTC', %s)
                       ON CONFLICT (cron_id) DO UPDATE
                             SET triggered_at = EXCLUDED.triggered_at, triggered_by = EXCLUDED.triggered_by
                           WHERE ocore_mcp_cron_trigger.triggered_at
                                 <= EXCLUDED.triggered_at - make_interval(secs => %s)
                       RETURNING cron_id""",
                    (cron.id, self.env.uid, CRON_COOLDOWN_SECONDS),
                )
                started = env.cr.fetchone()
                if not started:
                    env.cr.execute(
                        """SELECT extract(epoch FROM (now() at time zone 'UTC') - triggered_at)
                             FROM ocore_mcp_cron_trigger WHERE cron_id = %s""",
                        (cron.id,),
                    )
                    ago = env.cr.fetchone()[0]
        except (psycopg2.errors.SerializationFailure, psycopg2.errors.LockNotAvailable):
            ago = 0  # another worker started it at this very moment
        if not started:
            ago = max(0, int(ago))
            raise Refusal(
                "cooldown",
                f"scheduled action {cron.cron_name!r} (id {cron.id}) was started {ago} s ago through MCP; "
                f"it can be started again in {max(1, CRON_COOLDOWN_SECONDS - ago)} s ({CRON_COOLDOWN_SECONDS}-second "
                "cooldown)",
            )

    @mcp_tool("system", kind="write", commits=True, **ADMIN, title="Run scheduled action")
    def _tool_run_scheduled_action(self, cron_id: Annotated[int, Field(ge=1)], confirm: bool = False) -> dict:
        """Run a scheduled action now as its user (60 s cooldown)."""
        call = self._call()
        cron = self._ocore_cron(cron_id)
        if not confirm:
            raise Refusal(
                "confirm_required",
                f"this would run the scheduled action {cron.cron_name!r} (id {cron.id}) now, as its user "
                f"{cron.user_id.login!r}, and commit its changes. Nothing was done. Call again with confirm: true.",
            )
        self._ocore_cron_cooldown(cron)
        started = time.monotonic()
        try:
            with self._ocore_own_transaction() as env:
                if call is not None and call.deadline is not None and not compat.in_odoo_test():
                    env.cr.execute("SET LOCAL statement_timeout = %s", (f"{max(1, int(call.deadline.remaining()))}s",))
                job = env["ir.cron"].browse(cron.id)
                compat.run_cron_now(job)
        except Exception as exc:  # the action's own failure, reported to the client
            reason = exc.args[0] if isinstance(exc, UserError) and exc.args else f"{type(exc).__name__}: {exc}"
            raise UserError(_(
                "the scheduled action %(name)r failed; its changes were rolled back: %(reason)s",
                name=cron.cron_name, reason=reason,
            )) from exc
        cron.invalidate_recordset()
        return {
            "scheduled_action": self._ocore_cron_row(cron),
            "ran": True,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "cooldown_seconds": CRON_COOLDOWN_SECONDS,
        }

    # -- server -------------------------------------------------------------------------

    def _ocore_custom_addons_dirs(self):
        """Addons directories that are not Odoo's own source tree (where stale bytecode matters)."""
        root = self.env["ocore.mcp.server"].sudo()._ocore_settings().get("files_root")
        if root:
            return [os.path.realpath(root)]
        odoo_root = os.path.realpath(os.path.join(compat.odoo_root(), os.pardir))
        dirs = []
        for path in compat.config_list("addons_path"):
            path = os.path.realpath(path)
            if path and os.path.isdir(path) and not (path + os.sep).startswith(odoo_root + os.sep):
                dirs.append(path)
        return dirs

    def _ocore_pycache_dirs(self):
        found = []
        for root in self._ocore_custom_addons_dirs():
            for dirpath, dirnames, _files in os.walk(root):
                dirnames[:] = [d for d in dirnames if d not in PYC_SKIP_DIRS]
                if "__pycache__" in dirnames:
                    found.append(os.path.join(dirpath, "__pycache__"))
                    dirnames.remove("__pycache__")
        return found

    def _ocore_expired_sessions(self):
        from odoo import http

        lifetime = compat.session_max_inactivity(self.env)
        threshold = time.time() - lifetime
        store = http.root.session_store
        expired = []
        for path in glob.iglob(os.path.join(store.path, "*", "*")):
            with contextlib.suppress(OSError):
                if os.path.getmtime(path) < threshold:
                    expired.append(path)
        return store, lifetime, expired

    @mcp_tool("system", kind="destructive", **ADMIN, title="Clear caches")
    def _tool_clear_system_cache(self, targets: list[Literal["orm", "assets", "pyc", "sessions"]] | None = None
                                 ) -> dict:
        """Clear caches: ORM, assets, .pyc, expired sessions.

        Args:
            targets: Default: all.
        """
        chosen = list(dict.fromkeys(targets or CACHE_TARGETS))
        dry_run = bool(self._call() and self._call().dry_run)
        report = {}
        if "orm" in chosen:
            report["orm"] = {"cleared": not dry_run, "scope": "every worker (signaled through the database)"}
            if not dry_run:
                self.env.registry.clear_all_caches()
        if "assets" in chosen:
            bundles = self.env["ir.attachment"].search([
                ("public", "=", True), ("url", "=like", "/web/assets/%"), ("res_model", "=", "ir.ui.view"),
                ("res_id", "=", 0), ("create_uid", "=", odoo.SUPERUSER_ID),
            ])
            report["assets"] = {"bundles": len(bundles), "cleared": not dry_run}
            if not dry_run:
                self.env["ir.attachment"].regenerate_assets_bundles()
        if "pyc" in chosen:
            dirs = self._ocore_pycache_dirs()
            files = sum(len(os.listdir(d)) for d in dirs if os.path.isdir(d))
            errors = []
            if not dry_run:
                for directory in dirs:
                    shutil.rmtree(directory, onerror=lambda _f, path, exc: errors.append(path))
            report["pyc"] = {"directories": len(dirs), "files": files, "cleared": not dry_run,
                             "roots": self._ocore_custom_addons_dirs(), "errors": errors[:20]}
        if "sessions" in chosen:
            store, lifetime, expired = self._ocore_expired_sessions()
            if not dry_run:
                store.vacuum(max_lifetime=lifetime)
            report["sessions"] = {"expired_removed" if not dry_run else "expired": len(expired),
                                  "max_inactivity_seconds": lifetime, "cleared": not dry_run}
        if not dry_run and not compat.in_odoo_test():
            self.env.registry.signal_changes()
        return {"targets": chosen, "dry_run": dry_run, "report": report}

    @mcp_tool("system", **ADMIN, title="Server info")
    def _tool_server_info(self) -> dict:
        """Server: version, database, modules, process, configuration."""
        import psutil

        cr = self.env.cr
        cr.execute("SELECT pg_database_size(current_database()), current_setting('server_version')")
        db_size, pg_version = cr.fetchone()
        modules = self.env["ir.module.module"]
        installed = modules.search([("state", "=", "installed")])
        names = set(installed.mapped("name"))
        workers = config.get("workers") or 0
        conf_keys = (
            "http_interface", "http_port", "gevent_port", "proxy_mode", "workers", "max_cron_threads",
            "limit_time_real", "limit_time_cpu", "limit_memory_soft", "limit_memory_hard", "limit_request",
            "db_host", "db_port", "db_user", "db_maxconn", "dbfilter", "list_db", "data_dir", "logfile",
            "log_level", "log_db", "without_demo", "server_wide_modules", "unaccent", "smtp_server",
        )
        conf = {name: jsonable(config.get(name)) for name in conf_keys}
        conf["addons_path"] = compat.config_list("addons_path")
        report = self.env["ir.actions.report"]
        process = psutil.Process()
        return {
            "odoo": {
                "version": release.version,
                "series": release.major_version,
                "edition": "enterprise" if "web_enterprise" in names else "community",
            },
            "database": {
                "name": cr.dbname,
                "size_bytes": db_size,
                "postgresql_version": pg_version,
                "installed_modules": len(installed),
            },
            "server": {
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "mode": "prefork" if workers else "threaded",
                "uptime_seconds": int(time.time() - process.create_time()),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "wkhtmltopdf": report.get_wkhtmltopdf_state(),
            },
            "config": conf,
        }

    @mcp_tool("system", **ADMIN, title="Odoo logs")
    def _tool_odoo_logs(self, lines: Annotated[int, Field(ge=1, le=1000)] = 100, filter: str | None = None
                        ) -> dict:
        """The end of the Odoo log.

        Args:
            filter: Regex a line must match.
        """
        try:
            regex = logcapture.compile_filter(filter)
        except ValueError as exc:
            raise Refusal("invalid_input", str(exc)) from None
        logfile = config.get("logfile")
        data = {"filter": filter or None}
        if logfile and os.path.isfile(logfile):
            found, scanned, complete = logcapture.tail_file(logfile, lines, regex)
            data.update(source="logfile", path=logfile, scanned_bytes=scanned, whole_file_scanned=complete)
        else:
            found, matching = logcapture.tail_capture(lines, regex)
            data.update(source="capture", process=os.getpid(), capture_size=logcapture.CAPTURE_SIZE,
                        matching_in_capture=matching,
                        note="No logfile is configured: these lines come from this server process's own capture "
                             "(in prefork mode each worker has its own).")
        call = self._call()
        budget = (call.max_response_kb if call else 50) * 1024 - 1500
        total = len(found)
        while found and sum(len(line.encode()) + 1 for line in found) > budget:
            found = found[max(1, len(found) // 10):]  # keep the newest lines
        data.update(count=len(found), lines=found)
        if len(found) < total:
            data["truncated"] = True
            data["truncation"] = (f"{total - len(found)} older line(s) left out to fit max_response_size="
                                  f"{call.max_response_kb if call else 50} KB; raise it to get them")
        head = f"{len(found)} line(s) from the {data['source']}" + (f" matching {filter!r}" if filter else "")
        if data.get("truncated"):
            head += f" ({data['truncation']})"
        return TextResult(head + ":\n" + "\n".join(found), data)
